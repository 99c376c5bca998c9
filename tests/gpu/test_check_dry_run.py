"""tests/gpu/check.sh --dry-run: the prepared GPU check, end to end on the CPU with tiny
weights (the same tests and bench code a lent GPU runs at full size), and its JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests" / "gpu" / "check.sh"


def test_dry_run_writes_a_passing_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("VMB_GPU_CHECK_DRY_RUN", None)
    done = subprocess.run(
        ["bash", str(CHECK), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gpu check (dry-run): ok" in done.stdout
    report = json.loads((out / "gpu-check.json").read_text())
    assert report["mode"] == "dry-run" and report["ok"] is True
    assert report["environment"]["compute"]["onnx_providers"] == ["CPUExecutionProvider"]
    tests = report["tests"]
    # every gpu check ran (on the CPU), none was skipped
    assert tests["passed"] == 5 and tests["failed"] == tests["skipped"] == 0
    names = {f["name"] for f in tests["figures"]}
    assert {"one CFG step (bfloat16, 64 latents)", "one CFG step (float16, 64 latents)"} <= names
    (bench,) = report["bench"]
    assert bench["argv"][:3] == ["vmb", "bench", "generate"] and bench["size"] == "tiny"
    assert bench["dtype"] == "bfloat16" and bench["steps"] == 2 and bench["cfg_scale"] == 7.0
    assert any(f["name"] == "2 s cue, end to end" and f["value"] > 0 for f in bench["figures"])
    assert report["targets"] == []  # no full-size run, nothing judged
    assert not list(out.glob("*.jsonl")) and not list(out.glob(".*.tmp"))


def test_without_cuda_the_real_check_refuses_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    no_wheels = tmp_path / "no-wheels"  # not a .whl/ fetched for another Python
    no_wheels.mkdir()
    done = subprocess.run(
        ["bash", str(CHECK), "--out", str(tmp_path), "--wheels", str(no_wheels)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no CUDA device: run with --dry-run" in done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["mode"] == "gpu" and "no CUDA device" in report["error"]


def _check_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("vmb_gpu_check", ROOT / "tests/gpu/check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _full(name: str, seconds: float, offload: bool, peak: float) -> dict:
    return {
        "size": "full", "cue_s": 30.0, "device_name": name, "dtype": "bfloat16",
        "offload": offload, "peak_gpu_bytes": peak,
        "figures": [
            {"name": "30 s cue, end to end", "value": seconds},
            {"name": "peak GPU memory", "value": peak / 2**20},
        ],
    }  # fmt: skip


def test_targets_are_judged_on_full_size_hopper_runs_only() -> None:
    targets = _check_module()._targets
    got = targets([_full("NVIDIA H200", 1.5, False, 20e9), _full("NVIDIA H200", 2.5, True, 9e9)],
                  dry=False)  # fmt: skip
    assert [(t["target"], t["ok"]) for t in got] == [
        ("<= 2 s on one H100/H200", True),
        ("<= 2 s on one H100/H200", False),
        ("<= 12 GB", True),  # the peak is judged with offload only
    ]
    (a100_cue, a100_peak) = targets([_full("NVIDIA A100-SXM4-80GB", 9.0, True, 13e9)], dry=False)
    assert a100_cue["ok"] is None and a100_peak["ok"] is False  # 2 s is the Hopper target
    assert all(t["ok"] is None for t in targets([_full("NVIDIA H100", 9.0, True, 13e9)], True))
    tiny = {**_full("cpu", 9.0, True, 1.0), "size": "tiny"}
    assert targets([tiny, {"argv": [], "error": "boom"}], dry=False) == []
