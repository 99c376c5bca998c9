"""`vmb bench media`: 10 frames + scene cuts + motion energy of a 30 s 1080p H.264 clip.

The clip comes from engine.bench.clips (lavfi sources, one per shot: cut times known exactly).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine.bench import figure
from engine.bench.clips import BENCH_SHOTS, synthetic_video
from engine.media import visual_input


def bench_media(opts: argparse.Namespace) -> dict:
    runs = 1 if getattr(opts, "quick", False) else 3
    rate = 30
    expected = []
    at = 0.0
    for _, seconds in BENCH_SHOTS[:-1]:
        at += seconds
        expected.append(at)
    with tempfile.TemporaryDirectory(prefix="vmb-bench-media-") as tmp:
        clip = Path(tmp) / "bench.mp4"
        started = time.perf_counter()
        synthetic_video(clip, BENCH_SHOTS, size=(1920, 1080), rate=rate)
        made_s = time.perf_counter() - started
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            seen = visual_input(clip, n_frames=10)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    cuts = seen.cut_times_s
    worst = max(min((abs(c - e) for c in cuts), default=99.0) * rate for e in expected)
    best = min(walls)
    return {
        "name": "media",
        "figures": [
            figure("10 frames + cuts + motion, 30 s 1080p", best, "s", "<= 1 s", best <= 1.0),
            figure("  cpu time, all threads", min(cpus), "s"),
            figure("cuts found", len(cuts), "", f"= {len(expected)}", len(cuts) == len(expected)),
            figure("worst cut error", worst, "frames", "<= 1", worst <= 1),
            figure("motion energy", seen.motion_energy, "0..1"),
        ],
        "notes": [
            f"clip: H.264 (libx264 veryfast) yuv420p 1920x1080 {rate} fps, "
            f"{len(BENCH_SHOTS)} shots, made in {made_s:.1f} s",
            f"best of {runs} run(s); one pass decoding reference frames plus the sampled ones",
        ],
        "cut_times_s": list(cuts),
        "expected_cuts_s": expected,
    }
