"""Every benchmark, one registry: `vmb bench NAME` runs ``BENCHES[NAME]``.

A benchmark is a function ``run(opts: argparse.Namespace) -> dict`` returning
``{"name": str, "machine": str, "figures": [{"name", "value", "unit", "target", "ok"}],
"notes": [str]}`` plus any extra keys (kept in --json output). Targets live here, in the
figures, never in timed unit tests. A figure with ``ok=False`` is a missed target and makes
`vmb bench` exit non-zero, as does a benchmark that errors.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
from collections.abc import Callable
from typing import Any

BenchFn = Callable[[argparse.Namespace], dict[str, Any]]

BENCHES: dict[str, str] = {
    "protocol": "engine.bench.protocol:bench_protocol",
    "soak": "engine.bench.soak:bench_soak",
    "generate": "engine.bench.generate:bench_generate",
    "tempo": "engine.bench.tempo:bench_tempo",
    "describe": "engine.bench.describe:bench_describe",
    "retrieval": "engine.bench.retrieval:bench_retrieval",
    "media": "engine.bench.media:bench_media",
    "draft": "engine.bench.draft:bench_draft",
    "fuzz": "engine.bench.fuzz:bench_fuzz",
    "hits": "engine.bench.hits:bench_hits",
    "adapt": "engine.bench.adapt:bench_adapt",
    "conform": "engine.bench.conform:bench_conform",
}
NOT_IN_ALL = ("soak",)  # the soak kills daemons repeatedly; run it on its own


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def figure(name: str, value: float, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def load(name: str) -> BenchFn:
    module, func = BENCHES[name].split(":")
    return getattr(importlib.import_module(module), func)


def run(name: str, opts: argparse.Namespace, keep_going: bool = False) -> dict[str, Any]:
    """One benchmark's result; with ``keep_going`` an error becomes the result's "error"."""
    try:
        result = load(name)(opts)
    except Exception as exc:
        if not keep_going:
            raise
        result = {"name": name, "figures": [], "notes": [], "error": f"{type(exc).__name__}: {exc}"}
    result.setdefault("machine", machine())
    return result


def failed(result: dict[str, Any]) -> bool:
    """A benchmark failed when it errored or missed a target."""
    return "error" in result or any(f.get("ok") is False for f in result["figures"])
