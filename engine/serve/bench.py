"""`vmb bench protocol` and `vmb bench soak`: the daemon measured over real loopback sockets.

Both start a private daemon in a temporary VMB home, so they never touch the user's jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bridge.client import EngineClient
from engine.commands.bench import figure
from engine.config import load_settings
from engine.serve import control


@contextlib.contextmanager
def private_engine(config: str = "") -> Iterator[Any]:
    with tempfile.TemporaryDirectory(prefix="vmb-bench-") as tmp:
        home = Path(tmp)
        (home / "config.toml").write_text(config)
        old = os.environ.get("VMB_HOME")
        os.environ["VMB_HOME"] = str(home)
        try:
            settings = load_settings(home)
            control.start(settings)
            yield settings
        finally:
            control.stop(settings)
            if old is None:
                os.environ.pop("VMB_HOME", None)
            else:
                os.environ["VMB_HOME"] = old


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _submit_latencies(home: Path, n: int, out: list[float]) -> None:
    with EngineClient(home=home, timeout_s=30) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            c.submit("noop", {})
            out.append((time.perf_counter() - t0) * 1000)


def bench_protocol(opts: argparse.Namespace) -> dict[str, Any]:
    per_client_single = 100 if opts.quick else 500
    per_client_many = 5 if opts.quick else 20
    figures, extra = [], {}
    with private_engine() as settings:
        with EngineClient(home=settings.home) as c:  # warm-up
            for _ in range(20):
                c.submit("noop", {})
        for clients, per in ((1, per_client_single), (50, per_client_many)):
            lat: list[float] = []
            threads = [
                threading.Thread(target=_submit_latencies, args=(settings.home, per, lat))
                for _ in range(clients)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            rate = len(lat) / elapsed
            p50, p99 = statistics.median(lat), _pct(lat, 0.99)
            extra[f"clients_{clients}"] = {
                "p50_ms": p50,
                "p99_ms": p99,
                "submits_per_s": rate,
                "submits": len(lat),
            }
            figures += [
                figure(f"submit->accepted p50, {clients} client(s)", p50, "ms"),
                figure(
                    f"submit->accepted p99, {clients} client(s)", p99, "ms", "<= 5 ms", p99 <= 5
                ),
                figure(f"submits/s, {clients} client(s)", rate, "1/s", ">= 300", rate >= 300),
            ]
    return {
        "name": "protocol",
        "figures": figures,
        "notes": [
            "each accepted reply follows a committed SQLite transaction (synchronous=FULL)",
            "clients are threads of one process, the daemon a separate process",
        ],
        **extra,
    }


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
