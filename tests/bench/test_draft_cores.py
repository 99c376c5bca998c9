"""`vmb bench draft` runs on two cores where the machine has more, says so, hands the cores
on to the processes it starts (FluidSynth, the daemon) and gives them back afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.bench import draft

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity")


_PRINT_CORES = "import json, os; print(json.dumps(sorted(os.sched_getaffinity(0))))"


def _child_cores() -> set[int]:
    out = subprocess.run(
        [sys.executable, "-c", _PRINT_CORES],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(json.loads(out.stdout))


def test_pins_fewer_cores_than_the_process_has_and_restores(monkeypatch) -> None:
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs a process allowed on two cores or more")
    monkeypatch.setattr(draft, "BENCH_CORES", len(before) - 1)  # fewer than here, as on a big box
    with draft.two_cores() as said:
        inside = os.sched_getaffinity(0)
        child = _child_cores()
    assert len(inside) == len(before) - 1 and inside <= before
    assert child == inside  # FluidSynth and the daemon run where the bench runs
    assert f"pinned to {len(before) - 1} of {len(before)} cores" in said
    assert os.sched_getaffinity(0) == before


def test_leaves_a_small_machine_alone(monkeypatch) -> None:
    before = os.sched_getaffinity(0)
    monkeypatch.setattr(draft, "BENCH_CORES", len(before))
    with draft.two_cores() as said:
        assert os.sched_getaffinity(0) == before
    assert f"all {len(before)} cores" in said
