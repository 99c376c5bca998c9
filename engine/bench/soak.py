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


def bench_soak(opts: argparse.Namespace) -> dict[str, Any]:
    """Kill the daemon with SIGKILL during jobs, restart it, and count lost jobs."""
    kills = 10 if opts.quick else 50
    rng = random.Random(1)
    accepted: list[str] = []
    t_start = time.perf_counter()
    with private_engine("[jobs]\nmax_attempts = 1000\n") as settings:
        for _ in range(kills):
            with EngineClient(home=settings.home, timeout_s=10) as c:
                for _ in range(2):
                    accepted.append(c.submit("selfcheck", {"steps": 8, "step_s": 0.02})["job_id"])
            time.sleep(rng.uniform(0.05, 0.4))
            st = control.status(settings)
            os.kill(st["pid"], signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(st["pid"], 0)
            control.start(settings)
        done, lost, bad_outputs = 0, [], 0
        with EngineClient(home=settings.home, timeout_s=10) as c:
            for job_id in accepted:
                try:
                    result = c.wait(job_id, timeout_s=120)
                    done += 1
                    audio = Path(result["files"]["audio"])
                    if not audio.exists() or audio.stat().st_size < 44100 * 4:
                        bad_outputs += 1
                except Exception:  # noqa: BLE001 - a lost job is what we count
                    lost.append(job_id)
            attempts = [c.result(j)["attempt"] for j in accepted]
    return {
        "name": "soak",
        "figures": [
            figure("daemon kills (SIGKILL during jobs)", kills, "", ""),
            figure("jobs acknowledged", len(accepted), "", ""),
            figure("jobs done", done, "", ""),
            figure("jobs lost", len(lost), "", "0", not lost),
            figure("damaged outputs", bad_outputs, "", "0", bad_outputs == 0),
            figure("jobs re-run after a kill", sum(a > 1 for a in attempts), "", ""),
            figure("wall time", time.perf_counter() - t_start, "s", ""),
        ],
        "notes": [],
        "lost": lost,
    }
