"""`vmb bench hits`: do the stems hit the editor's markers? Measured on the rendered audio.

Cues of several genres and energies, each with markers at random times (seeded), are
rendered by the draft backend with the markers as hit points, and once more with
`hits=none` as the baseline: the share of markers with an onset within 50 ms of them (onset
detection on the stem: spectral flux peaks, engine.retrieve.dsp's onset envelope). The
baseline says how often an onset lands there by chance, so the figure means something.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from engine.retrieve.dsp import HOP, SR, magnitude_spectrogram, onset_envelope, to_analysis_rate

HIT_WINDOW_S = 0.05
TARGET = 0.9
CASES = (  # knobs of the cues; markers are drawn per case
    {"mood": "calm", "genre": "ambient", "energy": "low"},
    {"mood": "happy", "genre": "pop", "energy": "medium"},
    {"mood": "tense", "genre": "cinematic", "energy": "high"},
    {"mood": "nostalgic", "genre": "lofi"},
)


def onset_times(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times (s): peaks of the normalised onset envelope that stand 0.07 above its
    mean over +-0.1 s, at least 30 ms apart (librosa's peak picking, without librosa)."""
    env = onset_envelope(magnitude_spectrogram(to_analysis_rate(audio, sample_rate)))
    if not env.size or env.max() <= 0:
        return np.zeros(0)
    env = env / env.max()
    fps = SR / HOP
    local = uniform_filter1d(env, size=max(1, int(0.2 * fps)), mode="nearest")
    peaks, _ = find_peaks(env, distance=max(1, int(0.03 * fps)))
    return peaks[env[peaks] >= local[peaks] + 0.07] / fps


def hit_share(onsets: np.ndarray, markers: Sequence[float], window_s: float = HIT_WINDOW_S):
    """The share of markers with an onset within `window_s` of them."""
    if not markers:
        return 1.0
    if not onsets.size:
        return 0.0
    return float(np.mean([np.min(np.abs(onsets - m)) <= window_s for m in markers]))


def stem_hit_share(path: Path, markers: Sequence[float]) -> float:
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return hit_share(onset_times(audio, sr), markers)


def _render(knobs: dict, markers: list[float], hits: str, seed: int, out: Path) -> float:
    from engine.config import load_settings
    from engine.score.cue import run_cue
    from engine.score.cue_spec import parse_cue_params
    from engine.types import no_progress

    settings = load_settings()
    params = {
        "text": "a scene cut to markers",
        "duration_s": 20.0,
        "knobs": knobs,
        "backend": "draft",
        "markers": [{"time_s": m} for m in markers],
        "hits": hits,
    }
    cue = run_cue(parse_cue_params(params, settings), settings, seed, out, no_progress)[0]
    return stem_hit_share(cue.audio, markers)


def bench_hits(opts: argparse.Namespace) -> dict[str, Any]:
    from engine.bench import figure

    cases = CASES[:2] if opts.quick else CASES
    rng = np.random.default_rng(13)
    hit, chance, rows = [], [], []
    with tempfile.TemporaryDirectory(prefix="vmb-bench-hits-") as tmp:
        os.environ.setdefault("VMB_HOME", str(Path(tmp) / "home"))
        for i, knobs in enumerate(cases):
            markers = sorted(float(m) for m in rng.uniform(0.8, 19.2, 8).round(3))
            with_hits = _render(knobs, markers, "markers", i, Path(tmp) / f"h{i}")
            without = _render(knobs, markers, "none", i, Path(tmp) / f"n{i}")
            hit.append(with_hits)
            chance.append(without)
            rows.append({"knobs": knobs, "markers": markers, "hit": with_hits, "none": without})
    share = float(np.mean(hit))
    return {
        "name": "hits",
        "figures": [
            figure("markers hit within 50 ms", 100 * share, "%", ">= 90 %", share >= TARGET),
            figure("  by chance (hits=none)", 100 * float(np.mean(chance)), "%"),
        ],
        "notes": [f"{len(cases)} 20 s draft cues x 8 markers; onsets on the rendered stems"],
        "cases": rows,
    }
