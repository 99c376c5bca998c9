"""Benchmark of the draft generator: a 30 s cue (with three scene cuts), time and realtime factor.

Not registered in ``BENCHES`` here; ``vmb bench draft`` folds it in.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from engine.commands.bench import figure
from engine.config import DraftConfig
from engine.generate.draft import DraftGenerator
from engine.types import Attributes, GenerationRequest, MusicDescription, Retrieval

CUE_S = 30.0
TARGET_S = 2.0


def _request(out_dir: Path, seed: int) -> GenerationRequest:
    attrs = Attributes(
        mood="uplifting", genre="pop", tempo_bucket="medium", energy="high", instruments=()
    )
    desc = MusicDescription(
        text="an uplifting pop cue", attributes=attrs, source="text", backend="draft",
        weights="none",
    )  # fmt: skip
    return GenerationRequest(
        description=desc, retrieval=Retrieval(), duration_s=CUE_S, seed=seed, out_dir=out_dir,
        cut_times_s=(7.3, 15.1, 22.8), name=f"bench-{seed}",
    )  # fmt: skip


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_draft_generate(opts: argparse.Namespace | None = None) -> dict:
    runs = 1 if getattr(opts, "quick", False) else 3
    gen = DraftGenerator(DraftConfig())
    totals: list[float] = []
    cpu: list[float] = []
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="vmb-bench-draft-") as tmp:
        gen.generate(_request(Path(tmp), 0))  # warm the page cache with the soundfont
        for i in range(runs):
            t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
            out = gen.generate(_request(Path(tmp), i + 1))
            totals.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0 + _children_cpu() - k0)
            for k, v in dict(out.extra["timings_s"]).items():  # type: ignore[call-overload]
                stages.setdefault(k, []).append(float(v))
    best = min(totals)
    figures = [
        figure("draft generate 30 s cue (best)", best, "s", f"< {TARGET_S:g} s", best < TARGET_S),
        figure("draft generate 30 s cue (median)", statistics.median(totals), "s"),
        figure("realtime factor", CUE_S / best, "x", "> 15 x", CUE_S / best > 15),
        figure(
            "CPU time per cue (incl. fluidsynth)",
            min(cpu),
            "s",
            f"< {TARGET_S:g} s",
            min(cpu) < TARGET_S,
        ),  # fmt: skip
    ]
    for k in ("arrange", "render", "post", "write"):
        if k in stages:
            figures.append(figure(f"  stage {k}", min(stages[k]), "s"))
    return {
        "name": "draft-generate",
        "figures": figures,
        "notes": [
            f"{runs} run(s) after one warm-up; FluidSynth CLI with {out.extra['soundfont']}",
            "wall time includes waiting for a busy CPU; CPU time does not",
            "weights: none (symbolic composer + General MIDI soundfont)",
        ],
    }
