"""`vmb bench tempo`: the paper's tempo experiment on the draft backend (mean BPM per bucket)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from engine.bench import figure
from engine.config import load_settings
from engine.eval import experiments as ex


def bench_tempo(opts: argparse.Namespace) -> dict[str, Any]:
    """The paper's tempo run (20 clips x 10 variations per bucket; --quick: 3 x 2) on the
    draft backend, each bucket's mean BPM beside the paper's."""
    quick = bool(getattr(opts, "quick", False))
    clips, variations = (
        (ex.QUICK_CLIPS, ex.QUICK_VARIATIONS) if quick else (ex.FULL_CLIPS, ex.FULL_VARIATIONS)
    )
    settings = load_settings()
    generator = ex.make_generator("draft", settings)
    with tempfile.TemporaryDirectory(prefix="vmb-bench-tempo-") as tmp:
        result = ex.run_tempo_experiment(
            generator, clips, variations, Path(tmp), "draft", clip_seconds=ex.CLIP_SECONDS
        )
    figures = []
    for r in result.rows:
        lo, hi = r.bucket_range
        paper = f"paper {r.paper_bpm:.2f}"
        figures.append(
            figure(
                f"tempo {r.bucket}: mean BPM", round(r.mean_bpm, 2), "BPM", paper, r.mean_in_bucket
            )
        )
        ok = r.in_bucket >= ex.IN_BUCKET_TARGET
        share = round(r.in_bucket, 3)
        figures.append(
            figure(
                f"tempo {r.bucket}: in {lo:g}-{hi:g}",
                share,
                "share",
                f">= {ex.IN_BUCKET_TARGET:g}",
                ok,
            )
        )
    figures.append(figure("draft cue generation", round(result.seconds_per_cue, 3), "s/cue"))
    notes = [
        f"draft backend, {clips} clips x {variations} variations x {len(ex.BUCKETS)} buckets "
        f"= {len(result.cues)} cues of {ex.CLIP_SECONDS[0]:g}-{ex.CLIP_SECONDS[1]:g} s",
        "ok = the bucket's mean lies inside its BPM range; the paper's number is shown beside it",
        *result.notes,
    ]
    notes.append(_gpu_note(getattr(opts, "size", "tiny")))
    return {"name": "tempo", "figures": figures, "notes": notes, "table": result.to_markdown(),
            "rows": result.to_json()["rows"]}  # fmt: skip


def _gpu_note(size: str) -> str:
    try:
        import torch

        cuda = torch.cuda.is_available()
    except Exception:
        cuda = False
    if not cuda:
        return (
            "no GPU here: the full backend (on a GPU, full-size SAO + ControlFormer + "
            "Stylization built with random weights: speed only, a random model's tempo means "
            "nothing) was not run"
        )
    return f"GPU present; this benchmark measures the draft backend (--size {size} ignored)"
