"""The draft-quality report: what a music editor checks, measured on the rendered audio and MIDI
of a fixed set of mood/genre cues, each composed with several seeds, plus longer cues (60 s and
90 s) where forms, breaks and B sections have room.

Every part is also rendered alone through FluidSynth (the synthesiser is linear, so the parts
sum to the mix); its level is measured on that render. The delivered, mastered cue (what
``generate()`` writes) is measured too. The targets and checks are in ``draft_report``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from engine.describe.draft import instruments_of
from engine.eval import draft_measures as dm
from engine.eval import draft_notes as dn
from engine.eval import draft_report
from engine.eval.tempo import track_beats
from engine.generate.draft.arrangement import Arrangement
from engine.generate.draft.generator import DraftGenerator, fade_end, fit_length
from engine.generate.draft.midi import midi_bytes, part_files
from engine.generate.draft.render import find_soundfont, render_midi
from engine.generate.loudness import integrated_loudness
from engine.types import Attributes, GenerationRequest, MusicDescription, Retrieval

SR = 44100
DEAD_UNDER_LU = 30.0  # a tail this far under the cue is heard as the music having ended
SILENT_DB = 18.0  # a part this far under the loudest part alone is not heard in the mix
GROOVE_GENRES = draft_report.GROOVE


@dataclass(frozen=True)
class CueSpec:
    mood: str
    genre: str
    tempo: str
    energy: str

    @property
    def name(self) -> str:
        return f"{self.mood}-{self.genre}-{self.tempo}"


CUES: tuple[CueSpec, ...] = (
    CueSpec("happy", "pop", "medium", "medium"),
    CueSpec("uplifting", "pop", "fast", "high"),
    CueSpec("fun", "electronic", "fast", "high"),
    CueSpec("calm", "ambient", "slow", "low"),
    CueSpec("dreamy", "lofi", "slow", "low"),
    CueSpec("romantic", "jazz", "medium", "medium"),
    CueSpec("nostalgic", "folk", "medium", "medium"),
    CueSpec("sad", "classical", "slow", "low"),
    CueSpec("melancholic", "cinematic", "slow", "medium"),
    CueSpec("tense", "cinematic", "medium", "medium"),
    CueSpec("epic", "cinematic", "fast", "high"),
    CueSpec("aggressive", "rock", "fast", "high"),
    CueSpec("playful", "funk", "medium", "medium"),
    CueSpec("mysterious", "hip-hop", "slow", "medium"),
    CueSpec("happy", "latin", "medium", "high"),
    CueSpec("sad", "blues", "slow", "medium"),
)
SEEDS = (1, 2, 3, 4)
DURATION_S = 30.0
# longer cues, where forms, breaks and B sections have room: (cue, duration s, seeds)
LONG_RUNS: tuple[tuple[CueSpec, float, tuple[int, ...]], ...] = (
    *((c, 60.0, SEEDS) for c in (CUES[0], CUES[3], CUES[7], CUES[8], CUES[12])),
    (CUES[0], 90.0, (1,)),
)

Log = Callable[[str], None]


def _request(cue: CueSpec, seed: int, out_dir: Path, duration_s: float) -> GenerationRequest:
    attrs = Attributes(
        mood=cue.mood, genre=cue.genre, tempo_bucket=cue.tempo, energy=cue.energy,
        instruments=instruments_of(cue.genre, cue.mood, cue.energy),
    )  # fmt: skip
    desc = MusicDescription(
        text=cue.name, attributes=attrs, source="text", backend="draft", weights="none"
    )
    return GenerationRequest(
        description=desc, retrieval=Retrieval(backend="draft", weights="none"),
        duration_s=duration_s, seed=seed, out_dir=out_dir, name=f"{cue.name}-{seed}",
    )  # fmt: skip


def render_parts(arr: Arrangement, soundfont: Path, num_samples: int) -> list[np.ndarray]:
    """Each part rendered alone (two FluidSynth renders at a time), exact length."""
    with tempfile.TemporaryDirectory(prefix="vmb-quality-") as tmp:
        paths = []
        for pi, data in enumerate(
            part_files(midi_bytes(arr), [{i} for i in range(len(arr.parts))])
        ):
            paths.append(Path(tmp) / f"part{pi}.mid")
            paths[-1].write_bytes(data)
        with ThreadPoolExecutor(2) as pool:
            audios = list(pool.map(lambda p: render_midi(p, soundfont, SR), paths))
    return [fit_length(a, num_samples) for a in audios]


def _role_onsets(arr: Arrangement) -> dict[str, set]:
    """16th-step onset positions of the drums (with the drum: a kick moved is another
    groove), the bass and the comping (chord) parts."""
    groups = {"drums": ("drums", "perc"), "bass": ("bass",), "comp": ("comp", "pad", "arp")}
    out: dict[str, set] = {g: set() for g in groups}
    for n in arr.notes:
        roles = arr.parts[n.part].roles
        step = int(round(n.start * 4))
        for g, rs in groups.items():
            if roles[0] in rs or (g == "bass" and "bass" in roles and len(roles) == 1):
                out[g].add((step, n.pitch) if g == "drums" else step)
    return out


def _midi_measures(arr: Arrangement) -> dict[str, Any]:
    """Harmonic rhythm, form, key clarity and repetition from the notes and bars."""
    body = [b for b in arr.bars if not b.final]
    changes = sum(
        1 for a, b in zip(body, body[1:], strict=False)
        if a.chord is not None and b.chord is not None and a.chord.pcs != b.chord.pcs
    )  # fmt: skip
    pcs = np.zeros(12)
    per_bar: dict[int, set] = {b.index: set() for b in body}
    for n in arr.notes:
        if arr.parts[n.part].is_drum:
            continue
        pcs[n.pitch % 12] += n.dur
        bar = max((b for b in body if b.start <= n.start + 1e-9), key=lambda b: b.start,
                  default=None)  # fmt: skip
        if bar is not None and bar.index in per_bar:
            per_bar[bar.index].add((int(round((n.start - bar.start) * 4)), n.pitch % 12))
    clarity, tonic, mode = dm.key_clarity(pcs)
    return {
        "bars_per_chord": round(len(body) / (changes + 1), 2) if body else 0.0,
        "form": " ".join(s.label for s in arr.sections),
        "key_clarity": round(clarity, 3),
        "key_found": (tonic, mode) == (arr.tonic, arr.mode),
        "repetition": round(dm.repetition([tuple(sorted(per_bar[i])) for i in per_bar]), 3),
    }


def _sections(arr: Arrangement, power: np.ndarray, cue_lufs: float) -> dict[str, Any]:
    """Intro gap, B lift over the A before it, where the loudest moment is, the deepest dip
    inside the body."""
    spans = []
    for sec in arr.sections:
        first, last = arr.bars[sec.bars[0]], arr.bars[sec.bars[-1]]
        t0, t1 = arr.time_of(first.start), arr.time_of(last.start + last.beats)
        spans.append((sec.label, t0, min(t1, arr.duration_s),
                      dm.span_loudness(power, SR, t0, min(t1, arr.duration_s))))  # fmt: skip
    intro = [s for s in spans if s[0] == "intro"]
    lifts = []
    for i, (label, _, _, lu) in enumerate(spans):
        prev = [s for s in spans[:i] if s[0] in ("A", "A2")]
        if label == "B" and prev:
            lifts.append(lu - prev[-1][3])
    times, st_lufs = dm.short_term(power, SR)
    loudest_t = float(times[int(np.argmax(st_lufs))])
    end_start = spans[-1][1] if spans[-1][0] == "end" else arr.duration_s
    last_b = [s for s in spans if s[0] == "B"][-1:]
    in_last_b = bool(last_b) and last_b[0][1] <= loudest_t < last_b[0][2]
    body0 = next((s[2] for s in spans if s[0] == "intro"), 0.0)
    dip = dm.deepest_dip(power, SR, body0, end_start, cue_lufs)
    return {
        "form_s": [(s[0], round(s[1], 2)) for s in spans],
        "intro_gap_lu": round(cue_lufs - intro[0][3], 2) if intro else None,
        "b_lift_lu": [round(x, 2) for x in lifts],
        "loudest_s": round(loudest_t, 2),
        "loudest_is_end": loudest_t >= end_start,
        "loudest_is_climax": loudest_t < end_start
        and (in_last_b or loudest_t >= arr.duration_s / 2),
        "deepest_dip_lu": None if dip is None else round(dip, 2),
        "lra_lu": round(dm.loudness_range(st_lufs), 2),
    }


def _part_levels(arr: Arrangement, parts: list[np.ndarray]) -> dict[str, Any]:
    """Each part's loudness alone; gaps of drums/bass to the loudest; lead against the band."""
    counts = [0] * len(arr.parts)
    for n in arr.notes:
        counts[n.part] += 1
    levels = [integrated_loudness(a, SR) for a in parts]
    levels = [lv if math.isfinite(lv) else -120.0 for lv in levels]
    loudest = max(levels)
    rows = [
        {"name": p.name, "program": p.program, "roles": list(p.roles), "notes": counts[i],
         "lufs": round(levels[i], 2)}
        for i, p in enumerate(arr.parts)
    ]  # fmt: skip
    silent = [r["name"] for r in rows if r["notes"] == 0 or r["lufs"] < loudest - SILENT_DB]
    drums = [levels[i] for i, p in enumerate(arr.parts) if p.roles[0] in ("drums", "perc")]
    bass = [levels[i] for i, p in enumerate(arr.parts) if p.roles == ("bass",)]
    lead = [i for i, p in enumerate(arr.parts) if "melody" in p.roles]
    lead_vs_band = None
    if lead and len(parts) > 1:
        band = sum(a for i, a in enumerate(parts) if i != lead[0])
        lead_vs_band = round(levels[lead[0]] - integrated_loudness(band, SR), 2)
    return {
        "parts": rows,
        "silent": silent,
        "drums_gap_db": round(loudest - max(drums), 2) if drums else None,
        "bass_gap_db": round(loudest - max(bass), 2) if bass else None,
        "lead_vs_band_db": lead_vs_band,
        "lead_lead_chords_same_patch": _shared_patch(arr),
        "lead_program": arr.parts[lead[0]].program if lead else None,
        "bass_program": next((p.program for p in arr.parts if p.roles == ("bass",)), None),
    }


def _shared_patch(arr: Arrangement) -> bool:
    """One part (or patch) plays both the lead and the chords."""
    lead = {p.program for p in arr.parts if "melody" in p.roles and not p.is_drum}
    chords = {
        p.program
        for p in arr.parts
        if not p.is_drum and {"comp", "pad"} & set(p.roles) and "melody" not in p.roles
    }
    both = any("melody" in p.roles and {"comp", "pad"} & set(p.roles) for p in arr.parts)
    return both or bool(lead & chords)


def _delivered(gen: DraftGenerator, cue: CueSpec, seed: int, duration_s: float) -> dict:
    """The mastered cue as ``generate()`` writes it: mono safety, loudness, clipping."""
    with tempfile.TemporaryDirectory(prefix="vmb-quality-") as tmp:
        out = gen.generate(_request(cue, seed, Path(tmp), duration_s))
        audio, sr = soundfile.read(str(out.audio_path), always_2d=True, dtype="float32")
    return {
        "correlation": round(dm.stereo_correlation(audio), 3),
        "mono_loss_db": round(dm.mono_loss_db(audio), 2),
        "lufs": round(integrated_loudness(audio, sr), 2),
        "target_lufs": gen.config.loudness_lufs,
        "peak_dbfs": round(dm.db(float(np.abs(audio).max()) ** 2), 2),
        "clipped": dm.clipped_share(audio),
        "samples_ok": audio.shape[0] == out.num_samples,
    }


def _note_measures(arr: Arrangement) -> dict[str, Any]:
    """Harmonic rhythm, register, feel, intro layers and form from the notes."""
    return {
        **dn.harmonic_rhythm(arr),
        "melody_below_chord": dn.register_below(arr),
        **dn.feel(arr),
        "intro_layers": dn.intro_layers(arr),
        "form_units": [list(x) for x in dn.form(arr)],
        "odd_units": dn.odd_units(arr),
        "cue_bars": round(dn.cue_bars(arr), 2),
        "short_rule": dn.short_rule(arr),
        "end_hold_s": None if (h := dn.end_hold_s(arr)) is None else round(h, 2),
        "melody_onsets": sorted(dn.melody_onsets(arr)),
        "voicing_onsets": sorted(dn.voicing_onsets(arr)),
    }


def cue_label(cue: CueSpec, duration_s: float) -> str:
    return cue.name if duration_s == DURATION_S else f"{cue.name} {duration_s:g}s"


def measure_cue(
    gen: DraftGenerator, cue: CueSpec, seed: int, soundfont: Path, duration_s: float = DURATION_S
) -> dict[str, Any]:
    """Compose one cue, render its parts, measure everything; generate it as delivered."""
    with tempfile.TemporaryDirectory() as tmp:
        arr, facts = gen.arrange(_request(cue, seed, Path(tmp), duration_s))
    n = int(round(duration_s * SR))
    parts = render_parts(arr, soundfont, n)
    mix = fade_end(sum(parts), SR)  # type: ignore[arg-type]
    cue_lufs = integrated_loudness(mix, SR)
    peak = float(np.abs(mix).max()) or 1.0
    power = dm._k_power(mix, SR)
    beats = track_beats(mix, SR, bpm=float(facts["bpm"]))  # type: ignore[arg-type]
    row: dict[str, Any] = {
        "cue": cue_label(cue, duration_s), "genre": cue.genre, "mood": cue.mood,
        "tempo": cue.tempo, "energy": cue.energy, "seed": seed, "duration_s": duration_s,
        "named": list(instruments_of(cue.genre, cue.mood, cue.energy)),
        "bpm": facts["bpm"], "instruments": list(arr.parts and [p.name for p in arr.parts]),
        "correlation": round(dm.stereo_correlation(mix), 3),
        "mono_loss_db": round(dm.mono_loss_db(mix), 2),
        "beat_regularity": round(dm.beat_regularity(beats), 3),
        "clipped": dm.clipped_share(mix / peak * 10 ** (-1 / 20)),
        "onsets": {k: sorted(v) for k, v in _role_onsets(arr).items()},
    }  # fmt: skip
    row.update({k: round(v, 4) for k, v in dm.band_shares(mix, SR).items()})
    row.update(_part_levels(arr, parts))
    row.update(_sections(arr, power, cue_lufs))
    row["dead_tail_s"] = round(dm.dead_tail_s(power, SR, cue_lufs, DEAD_UNDER_LU), 2)
    row.update(_midi_measures(arr))
    row.update(_note_measures(arr))
    row["delivered"] = _delivered(gen, cue, seed, duration_s)
    return row


def run(
    cues=CUES,
    seeds=SEEDS,
    duration_s: float = DURATION_S,
    log: Log = lambda m: None,
    long_runs=LONG_RUNS,
) -> dict[str, Any]:
    """Measure every cue with every seed (and the long runs); the summary checks the targets."""
    gen = DraftGenerator()
    soundfont = find_soundfont(gen.config.soundfont)
    plan = [(c, duration_s, tuple(seeds)) for c in cues] + list(long_runs)
    rows = []
    t0 = time.perf_counter()
    for cue, dur, cue_seeds in plan:
        for seed in cue_seeds:
            rows.append(measure_cue(gen, cue, seed, soundfont, dur))
            log(f"{rows[-1]['cue']} seed {seed}: corr {rows[-1]['correlation']:+.2f}")
    report = draft_report.summarise(rows)
    report["run"] = {"seconds": round(time.perf_counter() - t0, 1),
                     "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    return report
