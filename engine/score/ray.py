"""A soundtrack's cues as Ray tasks (`vmb render --ray-address`, RAY_ADDRESS): the studio
scale path. The job record stays with the daemon; only the cue renders travel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bridge import timeline as tl
from engine.config import Settings
from engine.score.cue import Cue, run_cue
from engine.score.cue_spec import CueSpec
from engine.score.soundtrack import Placement, carried_from, placement, spec_of


def render_on_ray(
    plan: tl.CuePlan,
    params: dict[str, Any],
    settings: Settings,
    seed: int,
    out_dir: Path,
    address: str,
    progress: Callable[[int, int], None],
    at: Placement | None = None,
) -> list[tuple[CueSpec, Cue]]:
    """Cues as Ray tasks; a continuous plan renders its first cue, then the rest in parallel.
    Each cue comes back with the request it was rendered from."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address=None if address == "local" else address,
            log_to_driver=False,
            include_dashboard=False,
            ignore_reinit_error=True,
        )
    remote = ray.remote(ray_render)
    at = placement(plan, params, at)
    specs = [spec_of(c, params, None, at, i) for i, c in enumerate(plan.cues)]
    results: list[Cue | None] = [None] * len(specs)
    first = 0
    if plan.continuous and specs:
        results[0] = ray.get(remote.remote(specs[0], str(settings.home), seed, str(out_dir)))
        carried = carried_from(results[0])
        specs = [specs[0]] + [replace(s, continue_from=carried) for s in specs[1:]]
        first = 1
    pending = {
        remote.remote(specs[i], str(settings.home), seed + i, str(out_dir)): i
        for i in range(first, len(specs))
    }
    done = first
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        results[i] = ray.get(ready[0])
        done += 1
        progress(done, len(specs))
    return [(spec, r) for spec, r in zip(specs, results, strict=True) if r is not None]


def ray_render(spec: CueSpec, home: str, seed: int, out_dir: str) -> Cue:
    from engine.config import load_settings
    from engine.types import no_progress

    return run_cue(spec, load_settings(Path(home)), seed, Path(out_dir), no_progress)[0]
