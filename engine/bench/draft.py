"""`vmb bench draft`: a 30 s 1080p H.264 clip -> one cue on the draft backend, warm engine.

"Warm" means the worker has already built its stages (text model loaded, library indexed),
as the daemon's worker has after its first job; the first, cold run is reported apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench import figure
from engine.bench.clips import BENCH_SHOTS, synthetic_video
from engine.config import load_settings
from engine.score.cue import parse_cue_params, run_cue
from engine.types import no_progress


def bench_draft(opts: argparse.Namespace) -> dict[str, Any]:
    runs = 2 if opts.quick else 5
    with tempfile.TemporaryDirectory(prefix="vmb-bench-draft-") as tmp:
        tmpdir = Path(tmp)
        clip = synthetic_video(tmpdir / "clip.mp4", BENCH_SHOTS, size=(1920, 1080), rate=30)
        home = Path(os.environ.get("VMB_HOME") or tmpdir / "home")
        settings = load_settings(home)
        spec = parse_cue_params({"media": str(clip), "backend": "draft"}, settings)
        t0 = time.perf_counter()
        cold = run_cue(spec, settings, 0, tmpdir / "cold", no_progress)[0]
        cold_s = time.perf_counter() - t0
        warm = [run_cue(spec, settings, i, tmpdir / f"w{i}", no_progress)[0] for i in range(runs)]
    stages = {k: statistics.median(c.timings[k] for c in warm) for k in warm[0].timings}
    total = stages["total_s"]
    duration = warm[0].duration_s
    return {
        "name": "draft",
        "figures": [
            figure("30 s 1080p clip -> cue (warm, median)", total, "s", "<= 2 s", total <= 2.0),
            figure("real-time factor", duration / total, "x", ">= 15x", duration / total >= 15),
            *(
                figure(f"  stage {k.removesuffix('_s')}", v, "s")
                for k, v in stages.items()
                if k != "total_s"
            ),
            figure("first (cold) run incl. model load + library index", cold_s, "s"),
        ],
        "notes": [
            f"backend {cold.backend}, weights {cold.weights}; cue {duration:.2f} s; "
            f"{runs} warm runs"
        ],
        "stages_s": stages,
    }
