"""The draft's FluidSynth render in process (libfluidsynth through ctypes): the same MIDI gives
the same samples however renders are interleaved, the `fluidsynth` CLI's samples bit for bit,
and bad input is a clear JobError. Real FluidSynth, real soundfont, tiny MIDI files."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import mido
import numpy as np
import pytest

from bridge.errors import JobError
from engine.generate.draft import libfluid, midiclock
from engine.generate.draft import render as draft_render

SR = 22050
SOUNDFONTS = [p for p in draft_render.SOUNDFONT_CANDIDATES if Path(p).is_file()]
needs_library = pytest.mark.skipif(
    libfluid.library() is None or not SOUNDFONTS,
    reason="needs libfluidsynth 2.x and a GM soundfont (apt-get install libfluidsynth3 "
    "fluid-soundfont-gm)",
)
needs_cli = pytest.mark.skipif(
    shutil.which("fluidsynth") is None,
    reason="needs the fluidsynth CLI (apt-get install fluidsynth)",
)


def _midi(path: Path, program: int, pitches: list[int], drums: bool = False) -> Path:
    """A tiny file: a conductor track that changes tempo (as a cue's tempo map does at a cut)
    and one part with a reverb and chorus send, notes an eighth apart, then "all sound off"
    (as the draft's MIDI ends)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = [mido.MetaMessage("set_tempo", tempo=500000)]
    conductor.append(mido.MetaMessage("set_tempo", tempo=431034, time=700))
    conductor.append(mido.MetaMessage("set_tempo", tempo=612245, time=500))
    mid.tracks.append(mido.MidiTrack(conductor))
    track = mido.MidiTrack()
    ch = 9 if drums else 0
    track.append(mido.Message("program_change", channel=ch, program=program))
    track.append(mido.Message("control_change", channel=ch, control=91, value=90))
    track.append(mido.Message("control_change", channel=ch, control=93, value=40))
    for i, pitch in enumerate(pitches):
        track.append(
            mido.Message("note_on", channel=ch, note=pitch, velocity=100, time=0 if i == 0 else 240)
        )
        track.append(mido.Message("note_off", channel=ch, note=pitch, velocity=0, time=240))
    track.append(mido.Message("control_change", channel=ch, control=120, value=0, time=480))
    mid.tracks.append(track)
    mid.save(str(path))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("render")
    return {
        "piano": _midi(tmp / "piano.mid", 0, [60, 64, 67, 72]),
        "strings": _midi(tmp / "strings.mid", 48, [55, 59, 62]),
        "drums": _midi(tmp / "drums.mid", 0, [36, 38, 42, 38, 36], drums=True),
    }


def _render(path: Path) -> np.ndarray:
    return libfluid.render_file(path, Path(SOUNDFONTS[0]), SR, 0.6)


@needs_library
def test_the_same_midi_gives_the_same_samples_after_other_renders(files) -> None:
    first = _render(files["piano"])
    assert first.dtype == np.float32 and first.shape[1] == 2 and np.abs(first).max() > 0.01
    strings = _render(files["strings"])
    again = _render(files["piano"])
    assert np.array_equal(first, again)  # a reused synth would carry the strings' reverb state
    assert not np.array_equal(first[: len(strings)], strings[: len(first)])


@needs_library
def test_parallel_renders_in_threads_give_each_file_its_own_samples(files) -> None:
    alone = {name: _render(path) for name, path in files.items()}
    results: dict[tuple[str, int], np.ndarray] = {}

    def work(name: str, rep: int) -> None:
        results[name, rep] = _render(files[name])

    threads = [threading.Thread(target=work, args=(n, r)) for r in range(2) for n in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 * len(files)
    for (name, _), audio in results.items():
        assert np.array_equal(audio, alone[name]), name


@needs_library
@needs_cli
@pytest.mark.parametrize("rate", [SR, 44100])
def test_the_library_gives_the_cli_samples(files, rate, monkeypatch) -> None:
    """One block a call, as the CLI writes, gives its samples bit for bit. From one event
    block to the next (the plan, no fallback) they agree to float rounding: finished voices
    leave FluidSynth's mix at the end of a call, so a call of many blocks can sum the rest in
    another order (measured on 30 s draft cues: docs/draft-quality.md)."""
    paths = list(files.values())
    sf = Path(SOUNDFONTS[0])
    cli = draft_render.render_cli(paths, sf, rate, 0.6)
    desyncs = libfluid._state.get("desyncs", 0)
    planned = draft_render.render_library(paths, sf, rate, 0.6)
    assert libfluid._state.get("desyncs", 0) == desyncs
    monkeypatch.setattr(midiclock, "event_blocks", _no_plan)
    per_block = draft_render.render_library(paths, sf, rate, 0.6)
    for a, b, c in zip(cli, planned, per_block, strict=True):
        assert a.shape == b.shape == c.shape
        assert float(np.abs(a - c).max()) == 0.0
        assert float(np.abs(a - b).max()) <= 1e-6 * float(np.abs(a).max())


def _no_plan(*_args: object) -> list[tuple[int, int]]:
    raise midiclock.NotPlain("planning off: one block a call")


@needs_library
def test_a_render_cut_at_frames_is_the_start_of_the_whole_render(files) -> None:
    whole = _render(files["strings"])
    cut = libfluid.render_file(files["strings"], Path(SOUNDFONTS[0]), SR, 0.6, frames=SR + 7)
    assert cut.shape == (SR + 7, 2) and np.array_equal(cut, whole[: SR + 7])


def test_the_clock_puts_events_in_the_blocks_the_player_sends_them(files) -> None:
    """At 120 bpm and 480 ticks a beat, tick 240 (an eighth, 250 ms) is due in the block
    where the player's rounded tick first reaches it; the plan lists every event block."""
    plan = midiclock.event_blocks(files["piano"].read_bytes(), SR, 64)
    blocks = [b for b, _ in plan]
    assert blocks == sorted(set(blocks)) and blocks[0] > 0
    clock = midiclock.PlayerClock(480, SR, 64)
    first = clock.first_block(240, 1)
    assert clock.tick(first) >= 240 > clock.tick(first - 1)
    assert abs(first * 64 / SR - 0.25) < 64 / SR
    assert (first, clock.tick(first - 1)) == plan[0]
    with pytest.raises(midiclock.NotPlain):
        midiclock.read_events(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\xe7\x28")  # SMPTE


@needs_library
def test_several_files_are_rendered_and_summed(files) -> None:
    paths = [files["piano"], files["drums"]]
    mix = draft_render.render_midi(paths, Path(SOUNDFONTS[0]), SR)
    parts = [_render(p) for p in paths]
    n = max(len(p) for p in parts)
    expected = sum(np.pad(p, ((0, n - len(p)), (0, 0))) for p in parts)
    assert np.array_equal(mix, expected)
    assert draft_render.renderer().startswith("libfluidsynth 2.")


@needs_cli
def test_without_the_library_the_cli_renders(files, monkeypatch) -> None:
    monkeypatch.setattr(libfluid, "library", lambda: None)
    assert draft_render.renderer() == "fluidsynth CLI"
    if SOUNDFONTS:
        audio = draft_render.render_midi(files["piano"], Path(SOUNDFONTS[0]), SR)
        assert np.abs(audio).max() > 0.01


@needs_library
def test_bad_input_is_a_job_error(files, tmp_path) -> None:
    sf = Path(SOUNDFONTS[0])
    with pytest.raises(JobError, match="cannot read the soundfont"):
        libfluid.render_file(files["piano"], tmp_path / "missing.sf2", SR, 0.6)
    not_sf = tmp_path / "notes.sf2"
    not_sf.write_bytes(b"RIFF\x04\x00\x00\x00sfbk" + b"\x00" * 64)
    with pytest.raises(JobError, match="could not load the soundfont"):
        libfluid.render_file(files["piano"], not_sf, SR, 0.6)
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"this is not a MIDI file at all")
    with pytest.raises(JobError, match="not a readable MIDI file"):
        libfluid.render_file(garbage, sf, SR, 0.6)
    cut = tmp_path / "cut.mid"
    cut.write_bytes(files["piano"].read_bytes()[:30])  # the header, then a broken track
    with pytest.raises(JobError, match="FluidSynth failed on"):
        libfluid.render_file(cut, sf, SR, 0.6)
    with pytest.raises(JobError, match="synth.sample-rate"):
        libfluid.render_file(files["piano"], sf, 1000, 0.6)
    assert np.abs(_render(files["piano"])).max() > 0.01  # and the next render is fine


def _three_events(path: Path, tempo: int, end_ticks: int = 0) -> Path:
    """A tempo event, a middle C a beat long, and the end of the track ``end_ticks`` later."""
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=tempo),
                mido.Message("note_on", note=60, velocity=100),
                mido.Message("note_off", note=60, velocity=0, time=480),
                mido.MetaMessage("end_of_track", time=end_ticks),
            ]
        )
    )
    mid.save(str(path))
    return path


@needs_library
def test_a_tempo_of_zero_is_rendered_a_block_a_call(tmp_path) -> None:
    """The player's clock divides by the tempo: the plan is not made (no ZeroDivisionError),
    and FluidSynth plays the file a block a call as the CLI would."""
    path = _three_events(tmp_path / "zero.mid", tempo=0)
    with pytest.raises(midiclock.NotPlain, match="tempo of 0"):
        midiclock.event_blocks(path.read_bytes(), SR, 64)
    audio = _render(path)
    assert audio.shape[1] == 2 and np.isfinite(audio).all()


@needs_library
def test_a_file_past_the_longest_render_is_a_job_error(tmp_path, monkeypatch) -> None:
    """Without ``frames`` a render stops at the longest draft file: a far end of track is
    refused before rendering (the plan knows it) or when the render passes the cap."""
    assert libfluid.MAX_RENDER_S > 1200
    far = _three_events(tmp_path / "far.mid", tempo=500000, end_ticks=2_000_000)  # ~35 min
    with pytest.raises(JobError, match="runs past .* s, the longest draft render"):
        _render(far)
    cut = libfluid.render_file(far, Path(SOUNDFONTS[0]), SR, 0.6, frames=SR)
    assert cut.shape == (SR, 2)  # with frames it stops there, as before
    monkeypatch.setattr(libfluid, "MAX_RENDER_S", 0.5)
    monkeypatch.setattr(midiclock, "event_blocks", _no_plan)
    with pytest.raises(JobError, match="runs past 0.5 s"):
        _render(_three_events(tmp_path / "two_s.mid", tempo=500000, end_ticks=960))


@needs_library
@pytest.mark.parametrize("call", ["fluid_synth_add_sfont", "fluid_player_play"])
def test_a_failed_lend_or_play_is_a_job_error_not_silence(files, call, monkeypatch) -> None:
    lib = libfluid.library()
    monkeypatch.setattr(lib.dll, call, lambda *_args: libfluid.FAILED)
    with pytest.raises(JobError, match="could not (lend the soundfont|start playing)"):
        _render(files["piano"])
    monkeypatch.undo()
    assert np.abs(_render(files["piano"])).max() > 0.01  # the holder is fine afterwards


@needs_library
def test_voice_cost_uses_libfluid_prototypes() -> None:
    """Every FluidSynth call the voice-cost measure makes has its prototype in libfluid's one
    table (ctypes would pass a pointer as a C int otherwise), and its idle figure runs."""
    import re

    from engine.eval import voice_cost

    source = Path(voice_cost.__file__).read_text()
    calls = set(re.findall(r"dll\.(\w*fluid_\w+)", source))
    assert calls and calls <= set(libfluid._PROTOTYPES)
    assert "argtypes" not in source
    dll, synth, sfont = voice_cost._synth()
    assert sfont != libfluid.FAILED and voice_cost._idle_cpu(dll, synth) >= 0.0
    dll.delete_fluid_synth(synth)
