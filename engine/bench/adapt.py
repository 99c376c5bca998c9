"""`vmb bench adapt`: draft cues of every genre, at its default tempo and at a slow and a fast
one, adapted shorter and longer, measured against their own MIDI (the bar lines the arranger
wrote).

Per cue: the bar length found on the audio against the MIDI's bar (within 1%: a grid of two or
three real bars misses) and the downbeats found against the MIDI's bar lines (a grid half a bar
off misses). Per adapted file: the length in samples against the target, the tempo measured on
the audio before and after, the largest sample step at each splice against the music's own
99.9th percentile, and each edit's two source points against the MIDI's bar lines.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import taxonomy
from engine.bench import figure
from engine.config import load_settings
from engine.types import no_progress

QUICK_GENRES = ("rock", "lofi", "hip-hop", "latin")
TARGETS = (0.45, 0.7, 1.35, 2.2)  # x the cue's length
QUICK_TARGETS = (0.6, 1.4)
CUE_S = 40.0
BAR_LINE_MS = 20.0  # a downbeat or an edit point this close to a MIDI bar line is on it
TEMPO_PCT = 1.0
STEP_RATIO = 1.0
BAR_PCT = 1.0  # the bar found is this close to the MIDI's bar
TEMPOS = (None, 70, 165)  # the genre's default tempo, then explicit BPMs


def _bar_lines(midi: Path, duration_s: float) -> tuple[np.ndarray, float]:
    """The MIDI's bar lines and its bar length in seconds."""
    import mido

    tracks = mido.MidiFile(str(midi)).tracks
    tempo = next(m.tempo for t in tracks for m in t if m.type == "set_tempo")
    sig = next((m for t in tracks for m in t if m.type == "time_signature"), None)
    beats = sig.numerator * 4 / sig.denominator if sig else 4.0
    bar = beats * tempo / 1e6
    return bar * np.arange(int(duration_s / bar) + 2), bar


def _render(genre: str, bpm: int | None, folder: Path, seed: int) -> tuple[Path, Path]:
    from engine.score.cue import run_cue
    from engine.score.cue_spec import parse_cue_params

    settings = load_settings()
    spec = parse_cue_params(
        {"text": f"{genre} music", "duration_s": CUE_S, "backend": "draft",
         "knobs": {"genre": genre, **({"tempo": bpm} if bpm else {})}, "duck": False},
        settings,
    )  # fmt: skip
    cue = run_cue(spec, settings, seed, folder, no_progress)[0]
    if cue.midi is None:
        raise RuntimeError("the draft cue has no MIDI to measure against")
    return Path(cue.audio), Path(cue.midi)


def _off_lines(times: np.ndarray, lines: np.ndarray) -> float:
    return float(max((np.min(np.abs(lines - t)) for t in times), default=0.0)) * 1000.0


def _measure(audio: Path, lines: np.ndarray, target: float, out: Path) -> dict[str, float]:
    import soundfile as sf

    from engine.score.adapt import adapt_track, parse_adapt_params

    t0 = time.perf_counter()
    spec = parse_adapt_params({"track": str(audio), "duration_s": target}, load_settings())
    r = adapt_track(spec, out, no_progress)
    seconds = time.perf_counter() - t0
    src, sr = sf.read(str(audio), dtype="float32", always_2d=True)
    res, _ = sf.read(r["audio"], dtype="float32", always_2d=True)
    p999 = float(np.percentile(np.abs(np.diff(src, axis=0)).max(axis=1), 99.9))
    steps = [0.0]
    for e in r["edits"]:
        at = round(e["output_s"] * sr)
        window = res[max(0, at - round(0.06 * sr)) : at - round(0.005 * sr)]
        steps.append(float(np.abs(np.diff(window, axis=0)).max(initial=0.0)) / p999)
    points = [t for e in r["edits"] for t in (e["source_start_s"], e["source_end_s"])]
    return {
        "length_error": abs(res.shape[0] - round(target * sr)),
        "tempo_pct": abs(r["tempo"]["change_pct"]),
        "step_ratio": max(steps),
        "edit_ms": _off_lines(np.array(points), lines),
        "edits": len(r["edits"]),
        "seconds": seconds,
    }


def _cue_rows(
    genre: str, bpm: int | None, tmp: Path, targets: tuple[float, ...]
) -> list[dict[str, Any]]:
    import soundfile as sf

    from engine.score.bars import analyse

    folder = tmp / f"{genre}-{bpm or 'default'}"
    audio, midi = _render(genre, bpm, folder, seed=11)
    src, sr = sf.read(str(audio), dtype="float32")
    lines, bar = _bar_lines(midi, src.shape[0] / sr)
    bars = analyse(src, sr)
    found = bars.downbeats_s[bars.downbeats_s < src.shape[0] / sr - 1.0]
    rows = []
    for frac in targets:
        m = _measure(audio, lines, round(CUE_S * frac, 2), folder / f"x{frac:g}")
        rows.append({"genre": genre, "tempo": bpm or "default", "target_x": frac,
                     "grid_bpm": round(bars.bpm, 2), "midi_bar_s": round(bar, 4),
                     "bar_s": round(bars.bar_s, 4),
                     "bar_pct": round(abs(bars.bar_s / bar - 1.0) * 100.0, 3),
                     "downbeat_ms": round(_off_lines(found, lines), 1),
                     **{k: round(v, 4) for k, v in m.items()}})  # fmt: skip
    return rows


def bench_adapt(opts: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(opts, "quick", False))
    genres = QUICK_GENRES if quick else taxonomy.GENRES
    targets = QUICK_TARGETS if quick else TARGETS
    with tempfile.TemporaryDirectory(prefix="vmb-bench-adapt-") as tmp:
        rows = [row for g in genres for b in TEMPOS for row in _cue_rows(g, b, Path(tmp), targets)]

    def worst(key: str) -> float:
        return max(float(r[key]) for r in rows)

    figures = [
        figure("length error (worst)", worst("length_error"), "samples", "0",
               worst("length_error") == 0),
        figure("tempo change before/after (worst)", worst("tempo_pct"), "%",
               f"<= {TEMPO_PCT:g}", worst("tempo_pct") <= TEMPO_PCT),
        figure("splice step / music's 99.9th pct (worst)", round(worst("step_ratio"), 3),
               "ratio", f"<= {STEP_RATIO:g}", worst("step_ratio") <= STEP_RATIO),
        figure("edit points off the MIDI bar lines (worst)", round(worst("edit_ms"), 1), "ms",
               f"<= {BAR_LINE_MS:g}", worst("edit_ms") <= BAR_LINE_MS),
        figure("bar found vs the MIDI's bar (worst)", worst("bar_pct"), "%",
               f"<= {BAR_PCT:g}", worst("bar_pct") <= BAR_PCT),
        figure("downbeats found off the MIDI bar lines (worst)", worst("downbeat_ms"), "ms",
               f"<= {BAR_LINE_MS:g}", worst("downbeat_ms") <= BAR_LINE_MS),
        figure("adapt time per 40 s cue (mean)",
               round(float(np.mean([r["seconds"] for r in rows])), 2), "s"),
    ]  # fmt: skip
    notes = [
        f"draft cues of {CUE_S:g} s, seed 11, genres: {', '.join(genres)}; tempos: the "
        f"genre's default, {', '.join(f'{b} BPM' for b in TEMPOS if b)}; targets "
        f"{', '.join(f'{t:g}x' for t in targets)} the cue's length",
        "the MIDI the draft wrote is the ground truth for bar lines; tempo is measured on the "
        "audio with engine/eval/tempo.py before and after",
    ]
    return {"name": "adapt", "figures": figures, "notes": notes, "rows": rows}
