"""`vmb bench soak`: SIGKILL the daemon during jobs, restart it, count lost or damaged jobs.

It runs in a private daemon (a temporary VMB home), never the user's."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from bridge.client import EngineClient
from engine.bench import figure
from engine.bench.protocol import private_engine
from engine.serve import control

# The job each kill interrupts: the daemon's self-check (cheap, many kills), or a real draft
# cue (text only, 8 s: describe, retrieve, compose, FluidSynth render, loudness, publish).
SOAK_JOBS: dict[str, tuple[dict[str, Any], float]] = {
    "selfcheck": ({"steps": 8, "step_s": 0.02}, 0.4),
    "cue": ({"text": "a hopeful piano theme", "duration_s": 8.0, "backend": "draft"}, 3.0),
}


def _damaged(kind: str, params: dict[str, Any], result: dict[str, Any]) -> bool:
    """An output that is missing, cut short or not the length the job asked for."""
    audio = Path(result["files"]["audio"])
    if not audio.exists():
        return True
    if kind == "selfcheck":
        return audio.stat().st_size < 44100 * 4
    import soundfile as sf

    info = sf.info(audio)
    return info.frames != round(params["duration_s"] * info.samplerate)


def bench_soak(opts: argparse.Namespace) -> dict[str, Any]:
    """Kill the daemon with SIGKILL during jobs, restart it, and count lost jobs."""
    kind = getattr(opts, "kind", None) or "selfcheck"
    params, max_wait_s = SOAK_JOBS[kind]
    kills = (10 if opts.quick else 50) if kind == "selfcheck" else (3 if opts.quick else 10)
    rng = random.Random(1)
    accepted: list[str] = []
    t_start = time.perf_counter()
    with private_engine("[jobs]\nmax_attempts = 1000\n") as settings:
        for _ in range(kills):
            with EngineClient(home=settings.home, timeout_s=10) as c:
                for _ in range(2):
                    accepted.append(c.submit(kind, params)["job_id"])
            time.sleep(rng.uniform(0.05, max_wait_s))
            st = control.status(settings)
            os.kill(st["pid"], signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(st["pid"], 0)
            control.start(settings)
        done, lost, bad_outputs = 0, [], 0
        with EngineClient(home=settings.home, timeout_s=10) as c:
            for job_id in accepted:
                try:
                    result = c.wait(job_id, timeout_s=300)
                    done += 1
                    bad_outputs += _damaged(kind, params, result)
                except Exception:  # noqa: BLE001 - a lost job is what we count
                    lost.append(job_id)
            attempts = [c.result(j)["attempt"] for j in accepted]
    reruns = sum(a > 1 for a in attempts)
    return {
        "name": "soak",
        "figures": [
            figure(f"daemon kills (SIGKILL during {kind} jobs)", kills, "", ""),
            figure("jobs acknowledged", len(accepted), "", ""),
            figure("jobs done", done, "", ""),
            figure("jobs lost", len(lost), "", "0", not lost),
            figure("damaged outputs", bad_outputs, "", "0", bad_outputs == 0),
            figure(  # a soak whose kills never hit a running job proves nothing
                "jobs re-run after a kill", reruns, "", ">= 1", reruns >= 1
            ),
            figure("wall time", time.perf_counter() - t_start, "s", ""),
        ],
        "notes": [f"job kind {kind}: {params}"],
        "lost": lost,
    }
