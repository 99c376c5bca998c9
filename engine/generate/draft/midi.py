"""Arrangement -> Standard MIDI File (type 1) with mido.

A conductor track carries the tempo map (so cuts stay on downbeats in REAPER), time and key
signatures and section/cut markers; each part gets its own named track, channel, program and
mixer settings (CC7 volume, CC10 pan, CC91/93 reverb/chorus sends, CC11 expression).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import mido

from engine.generate.draft import patches as pt
from engine.generate.draft import style as st
from engine.generate.draft.arrangement import PPQ, Arrangement, Part
from engine.generate.draft.theory import mido_key

TAIL_S = 0.25  # rendered beyond the cue end, then trimmed with a fade
MAX_DURATION_S = 600.0  # the longest cue (the generator refuses longer; libfluid caps by it)
Event = tuple[int, int, mido.Message | mido.MetaMessage]  # (tick, order at one tick, message)


def _tick(beat: float) -> int:
    return int(round(beat * PPQ))


def _track(events: list[Event], end_tick: int):
    """(tick, order, message) -> a MidiTrack with delta times; order breaks ties at one tick."""
    track = mido.MidiTrack()
    events = sorted(events, key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _, msg in events:
        tick = min(tick, end_tick)
        msg.time = tick - now  # every message is built for this one track: set, not copied
        track.append(msg)
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def _conductor(arr: Arrangement) -> list[Event]:
    """Tempo map, key and time signatures, section markers and cut cue markers."""
    events: list[Event] = [
        (0, 0, mido.MetaMessage("track_name", name="VMB Score draft")),
        (0, 1, mido.MetaMessage("key_signature", key=mido_key(arr.tonic, arr.mode))),
    ]
    for seg in arr.tempo:
        events.append(
            (_tick(seg.start_beat), 2, mido.MetaMessage("set_tempo", tempo=seg.us_per_beat))
        )
    last_sig = None
    for bar in arr.bars:
        beats = bar.beats
        num = 4 if bar.final or beats > 4 or abs(beats - round(beats)) > 1e-6 else int(round(beats))
        if num != last_sig:
            events.append(
                (
                    _tick(bar.start),
                    3,
                    mido.MetaMessage("time_signature", numerator=max(1, num), denominator=4),
                )
            )
            last_sig = num
    for beat, label in arr.markers:
        events.append((_tick(beat), 4, mido.MetaMessage("marker", text=label)))
    for hit in arr.cut_hits:
        beat = arr.beat_of(float(hit["time_s"]))  # type: ignore[arg-type]
        text = f"{hit.get('for', 'cut')} {hit['kind']}"  # "cut section", "marker accent"
        events.append((_tick(beat), 5, mido.MetaMessage("cue_marker", text=text)))
    return events


def _mixer(part: Part, genre: str) -> list[Event]:
    """Track name, program and mixer settings (no pan on the shared drum channel)."""
    ch = part.channel
    reverb = st.GENRES[genre].reverb
    chorus = min(st.GENRES[genre].chorus, pt.CHORUS_MAX.get(part.program, 127))
    volume, pan = st.ROLE_MIX.get(part.roles[0], (90, 64))
    volume = part.volume or volume  # measured per-role level (issue 19) over the role default
    events: list[Event] = [
        (0, 0, mido.MetaMessage("track_name", name=f"{part.name} ({', '.join(part.roles)})")),
        (0, 1, mido.Message("program_change", channel=ch, program=part.program)),
        (0, 2, mido.Message("control_change", channel=ch, control=7, value=volume)),
        (0, 2, mido.Message("control_change", channel=ch, control=10, value=pan)),
        (0, 2, mido.Message("control_change", channel=ch, control=91, value=min(127, reverb))),
        (0, 2, mido.Message("control_change", channel=ch, control=93, value=min(127, chorus))),
        (0, 2, mido.Message("control_change", channel=ch, control=11, value=127)),
    ]
    if part.is_drum:
        events = [e for e in events if not (hasattr(e[2], "control") and e[2].control == 10)]
    return events


def _part_events(arr: Arrangement, pi: int, end_tick: int, loop: bool = False) -> list[Event]:
    part = arr.parts[pi]
    ch = part.channel
    events = _mixer(part, arr.genre)
    if loop:
        events.append((0, 2, mido.Message("control_change", channel=ch, control=111, value=0)))
    for n in arr.notes:
        if n.part != pi:
            continue
        on, off = _tick(n.start), max(_tick(n.start) + 1, _tick(n.start + n.dur))
        events.append((on, 4, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.vel)))
        events.append((off, 3, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
    for cpi, beat, cc, value in arr.ccs:
        if cpi == pi:
            events.append(
                (_tick(beat), 2, mido.Message("control_change", channel=ch, control=cc,
                                              value=int(max(0, min(127, value)))))
            )  # fmt: skip
    # all sound off at the end: FluidSynth otherwise renders until every release tail
    # has died (seconds of audio we would trim anyway)
    events.append((end_tick, 9, mido.Message("control_change", channel=ch, control=120, value=0)))
    return events


def build_midi(
    arr: Arrangement, parts: set[int] | None = None, loop_markers: bool = False
) -> mido.MidiFile:
    """The whole arrangement, or only the ``parts`` given (for split rendering); the
    conductor track is always included. A loop's file ends exactly at the loop's end and
    carries "loopStart"/"loopEnd" markers (and CC111 at the start, the loop-point convention
    some game and tracker tools read)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    end_tick = _tick(arr.beat_of(arr.duration_s + (0.0 if loop_markers else TAIL_S)))
    conductor = _conductor(arr)
    if loop_markers:
        conductor.append((0, 6, mido.MetaMessage("marker", text="loopStart")))
        conductor.append((end_tick, 6, mido.MetaMessage("marker", text="loopEnd")))
    mid.tracks.append(_track(conductor, end_tick))
    for pi in range(len(arr.parts)):
        if parts is None or pi in parts:
            mid.tracks.append(_track(_part_events(arr, pi, end_tick, loop_markers), end_tick))
    return mid


def write_midi(
    arr: Arrangement, path: Path, parts: set[int] | None = None, loop_markers: bool = False
) -> None:
    build_midi(arr, parts, loop_markers).save(str(path))


def midi_bytes(arr: Arrangement, loop_markers: bool = False) -> bytes:
    """The whole arrangement's file (``build_midi``) as bytes."""
    out = io.BytesIO()
    build_midi(arr, None, loop_markers).save(file=out)
    return out.getvalue()


def part_files(whole: bytes, groups: Sequence[set[int]]) -> list[bytes]:
    """Files of the conductor and each group of parts, cut from the whole arrangement's file
    (track 0 the conductor, track i + 1 part i): the bytes ``build_midi(arr, parts)`` saves,
    without building and encoding every note again (a third of a cue's MIDI time each)."""
    chunks, i = [], 14
    while i < len(whole):
        end = i + 8 + int.from_bytes(whole[i + 4 : i + 8], "big")
        chunks.append(whole[i:end])
        i = end
    files = []
    for parts in groups:
        tracks = [chunks[0]] + [chunks[pi + 1] for pi in sorted(parts)]
        header = whole[:10] + len(tracks).to_bytes(2, "big") + whole[12:14]
        files.append(header + b"".join(tracks))
    return files
