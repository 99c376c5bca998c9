"""Built-in job kinds that need no models: `selfcheck` exercises the whole job path."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest
from engine.config import Settings
from engine.serve.kinds import JobContext, register


def _validate_selfcheck(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    steps, delay = params.get("steps", 5), params.get("step_s", 0.02)
    if not isinstance(steps, int) or not 1 <= steps <= 10_000:
        raise InvalidRequest("selfcheck.steps must be an integer 1-10000")
    if not isinstance(delay, int | float) or not 0 <= delay <= 60:
        raise InvalidRequest("selfcheck.step_s must be 0-60 seconds")
    return {"steps": steps, "step_s": float(delay)}


def _run_selfcheck(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Steps with cancel checks, then a seeded 1 s tone written as a WAV (16-bit stereo)."""
    import soundfile as sf

    steps = params["steps"]
    for i in range(steps):
        ctx.progress("selfcheck", i, steps)
        time.sleep(params["step_s"])
    ctx.progress("selfcheck", steps, steps)
    rng = np.random.default_rng(ctx.seed)
    sr = 44100
    t = np.arange(sr) / sr
    freq = float(rng.choice([220.0, 261.63, 329.63, 392.0, 440.0]))
    tone = 0.2 * np.sin(2 * np.pi * freq * t) * np.minimum(1, (sr - np.arange(sr)) / 2000)
    path = ctx.out_dir / "selfcheck.wav"
    sf.write(path, np.stack([tone, tone], axis=1), sr, subtype="PCM_16")
    return {"files": {"audio": path.name}, "frequency_hz": freq, "seed": ctx.seed}


register(
    "selfcheck",
    _run_selfcheck,
    _validate_selfcheck,
    "engine self-check: progress steps then a seeded test tone",
)


def _run_noop(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {"files": {}}


register("noop", _run_noop, None, "does nothing (protocol benchmarks)")
