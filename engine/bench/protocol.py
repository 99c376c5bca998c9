"""`vmb bench protocol`: the daemon measured over real loopback sockets.

It starts a private daemon in a temporary VMB home, so they never touch the user's jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bridge.client import EngineClient
from engine.bench import figure
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


def _submit_latencies(home: Path, n: int, out: list[float], interval_s: float = 0.0) -> None:
    """n submits, back to back or paced every `interval_s` (random phase)."""
    with EngineClient(home=home, timeout_s=30) as c:
        nxt = time.perf_counter() + random.uniform(0, interval_s)
        for _ in range(n):
            if interval_s:
                time.sleep(max(0.0, nxt - time.perf_counter()))
                nxt += interval_s
            t0 = time.perf_counter()
            c.submit("noop", {})
            out.append((time.perf_counter() - t0) * 1000)


def _run_clients(home: Path, clients: int, per: int, interval_s: float) -> tuple[list, float]:
    lat: list[float] = []
    threads = [
        threading.Thread(target=_submit_latencies, args=(home, per, lat, interval_s))
        for _ in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, len(lat) / (time.perf_counter() - t0)


def bench_protocol(opts: argparse.Namespace) -> dict[str, Any]:
    """Latency at a realistic load (1 client back to back; 50 clients offering 1000
    submits/s together), then the saturated throughput of 50 clients."""
    quick = bool(opts.quick)
    figures, extra = [], {}
    with private_engine() as settings:
        home = settings.home
        _run_clients(home, 1, 20, 0.0)  # warm-up
        cases = (
            ("1 client", 1, 100 if quick else 500, 0.0),
            ("50 clients at 1000/s", 50, 10 if quick else 40, 0.05),
        )
        for label, clients, per, interval in cases:
            lat, rate = _run_clients(home, clients, per, interval)
            p50, p99 = statistics.median(lat), _pct(lat, 0.99)
            extra[label] = {"p50_ms": p50, "p99_ms": p99, "submits_per_s": rate, "n": len(lat)}
            figures += [
                figure(f"submit->accepted p50, {label}", p50, "ms"),
                figure(f"submit->accepted p99, {label}", p99, "ms", "<= 5 ms", p99 <= 5),
            ]
            if interval:  # a paced load: say the rate it reached, not just the one offered
                offered = clients / interval
                figures.append(
                    figure(
                        f"submits/s reached, {label}",
                        rate,
                        "1/s",
                        f">= {0.9 * offered:g} (90 % of offered)",
                        rate >= 0.9 * offered,
                    )  # fmt: skip
                )
        lat, rate = _run_clients(home, 50, 5 if quick else 20, 0.0)
        extra["50 clients saturated"] = {"p99_ms": _pct(lat, 0.99), "submits_per_s": rate}
        figures += [
            figure("submits/s, 50 clients saturated", rate, "1/s", ">= 300", rate >= 300),
            figure("submit->accepted p99, saturated", _pct(lat, 0.99), "ms"),
        ]
    return {
        "name": "protocol",
        "figures": figures,
        "notes": [
            "each accepted reply follows a committed SQLite transaction (synchronous=FULL); "
            "a burst of requests shares one commit",
            "clients are threads of one process (GIL-bound), the daemon a separate process",
        ],
        **extra,
    }
