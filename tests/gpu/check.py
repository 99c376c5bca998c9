"""The prepared GPU check (run by tests/gpu/check.sh): the `gpu` tests, then `vmb bench
generate --size full` at the paper's settings in bf16, without and with offload, and one JSON
report of everything (environment, tests, figures, targets) in --out.

One Python process does it all: on a lent GPU the time goes to the work, not to importing
stable-audio-tools three times. --dry-run runs the same steps on the CPU with tiny weights
(`vmb models tiny`), a 2-step 2 s cue, so CI proves the script works end to end.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPORT = "gpu-check.json"
HOPPER_SECONDS = 2.0
OFFLOAD_PEAK_BYTES = 12e9


def _environment() -> dict[str, Any]:
    import torch

    from engine.config import settings_from_dict
    from engine.util.device import compute_report

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cpu_count": os.cpu_count(),
        "compute": compute_report(settings_from_dict(Path(tempfile.gettempdir()), {})),
    }
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        env["nvidia_smi"] = (smi.stdout or smi.stderr).strip()
    env["packages"] = _versions(
        ["stable-audio-tools", "k-diffusion", "laion-clap", "transformers", "numpy",
         "onnxruntime", "onnxruntime-gpu", "torchaudio", "soundfile"]
    )  # fmt: skip
    return env


def _versions(names: list[str]) -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class _Outcomes:
    """A pytest plugin that counts outcomes (the check runs pytest in this process)."""

    def __init__(self) -> None:
        self.counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
        self.failures: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.outcome != "passed":
            key = "error" if report.when != "call" and report.outcome == "failed" else None
            key = key or report.outcome
            self.counts[key] = self.counts.get(key, 0) + 1
            if report.outcome == "failed":
                self.failures.append(f"{report.nodeid}: {str(report.longrepr)[-1500:]}")


def _run_tests(dry: bool, out: Path, models: Path | None) -> dict[str, Any]:
    import pytest

    figures = out / "gpu-test-figures.jsonl"
    figures.unlink(missing_ok=True)
    os.environ["VMB_GPU_CHECK_FIGURES"] = str(figures)
    if dry:
        os.environ["VMB_GPU_CHECK_DRY_RUN"] = "1"
        os.environ["VMB_GPU_CHECK_MODELS"] = str(models)
    args = [str(ROOT / "tests" / "gpu" / "test_gpu.py"), "-q", "-p", "no:cacheprovider",
            "--rootdir", str(ROOT), "-o", "addopts=--import-mode=importlib"]  # fmt: skip
    if not dry:
        args += ["-m", "gpu"]
    outcomes = _Outcomes()
    t0 = time.perf_counter()
    code = int(pytest.main(args, plugins=[outcomes]))
    rows = [json.loads(x) for x in figures.read_text().splitlines()] if figures.exists() else []
    figures.unlink(missing_ok=True)
    return {"exit_code": code, **outcomes.counts, "failures": outcomes.failures,
            "wall_s": round(time.perf_counter() - t0, 2), "figures": rows}  # fmt: skip


def _vmb(command: str, argv: list[str]) -> int:
    """`vmb COMMAND ARGV` through that command's own module: the whole CLI would also import
    the timeline and media stacks (OpenTimelineIO, PyAV, ZeroMQ) a GPU machine lacks."""
    import importlib

    module = importlib.import_module(f"engine.commands.{command}")
    parser = argparse.ArgumentParser(prog="vmb")
    module.register(parser.add_subparsers(dest="command"))
    opts = parser.parse_args([command, *argv])
    return int(opts.func(opts) or 0)


def _bench(argv: list[str]) -> dict[str, Any]:
    """`vmb bench generate ARGV` through the bench command's own parser and loader."""
    from engine import bench as registry
    from engine.commands import bench

    parser = argparse.ArgumentParser(prog="vmb")
    bench.register(parser.add_subparsers(dest="command"))
    opts = parser.parse_args(["bench", "generate", *argv])
    t0 = time.perf_counter()
    result = registry.run("generate", opts)
    result["argv"] = ["vmb", "bench", "generate", *argv]
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        bench.print_table(result)
    print(log.getvalue(), flush=True)
    return result


def _free_gpu() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _figure(result: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    return next((f for f in result.get("figures", []) if f["name"].startswith(prefix)), None)


def _targets(benches: list[dict[str, Any]], dry: bool) -> list[dict[str, Any]]:
    """Issue 17's targets, read off the bench runs (not judged in a dry run)."""
    out = []
    for result in benches:
        if "error" in result or result.get("size") != "full":
            continue
        cue = _figure(result, f"{result['cue_s']:g} s cue, end to end")
        peak = _figure(result, "peak GPU memory")
        name = result.get("device_name") or result.get("device")
        label = f"{result.get('dtype')}, offload {'on' if result.get('offload') else 'off'}"
        if cue:
            hopper = "H100" in str(name) or "H200" in str(name)
            out.append({
                "name": f"{result['cue_s']:g} s cue end to end on {name} ({label})",
                "value_s": cue["value"], "target": "<= 2 s on one H100/H200",
                "ok": None if dry or not hopper else cue["value"] <= HOPPER_SECONDS,
            })  # fmt: skip
        if peak and result.get("offload"):
            out.append({
                "name": f"peak GPU memory, generator with offload ({label})",
                "value_bytes": result.get("peak_gpu_bytes"), "target": "<= 12 GB",
                "ok": None if dry else result.get("peak_gpu_bytes", 1e99) <= OFFLOAD_PEAK_BYTES,
            })  # fmt: skip
    return out


def _write(out: Path, report: dict[str, Any]) -> None:
    tmp = out / f".{REPORT}.tmp"
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, out / REPORT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny weights, 2 steps")
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu-check.json")
    parser.add_argument("--skip-bench", action="store_true", help="only the gpu tests")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "check": "vmb gpu check",
        "mode": "dry-run" if args.dry_run else "gpu",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    report["environment"] = _environment()
    if not args.dry_run and not report["environment"]["cuda_available"]:
        report["error"] = "no CUDA device: run with --dry-run on a machine without a GPU"
        _write(out, report)
        print(f"gpu check: {report['error']}", file=sys.stderr)
        return 2
    _write(out, report)
    with tempfile.TemporaryDirectory(prefix="vmb-gpu-check-") as tmp:
        models = None
        if args.dry_run:  # the tiny weights, as a user would make them
            models = Path(tmp) / "models"
            code = _vmb("models", ["tiny", "--out", str(models),
                                   "--only", "sao-1.0", "t5-base", "vmb-ecmg"])  # fmt: skip
            if code:
                report["error"] = f"vmb models tiny failed (exit {code})"
        report["tests"] = _run_tests(args.dry_run, out, models)
        _write(out, report)
        _free_gpu()
        benches: list[dict[str, Any]] = []
        if not args.skip_bench:
            runs = [["--size", "full", "--dtype", "bf16"], ["--size", "full", "--dtype", "bf16",
                                                           "--offload"]]  # fmt: skip
            if args.dry_run:
                runs = [["--size", "tiny", "--dtype", "bf16", "--steps", "2",
                         "--cue-seconds", "2"]]  # fmt: skip
            for run in runs:
                try:
                    benches.append(_bench(run))
                except Exception as exc:  # one failed run must not lose the others' figures
                    traceback.print_exc()
                    benches.append({"argv": run, "error": f"{type(exc).__name__}: {exc}"})
                _free_gpu()
                report["bench"] = benches
                _write(out, report)
    report["targets"] = _targets(benches, args.dry_run)
    tests = report["tests"]
    report["ok"] = (
        "error" not in report
        and tests["exit_code"] == 0
        and tests["failed"] == tests["error"] == 0
        and tests["passed"] > 0
        and all("error" not in b for b in benches)
        and all(t["ok"] is not False for t in report["targets"])
    )
    report["wall_s"] = round(time.perf_counter() - t0, 2)
    _write(out, report)
    print(f"gpu check ({report['mode']}): {'ok' if report['ok'] else 'FAILED'}; "
          f"tests {tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped; "
          f"report {out / REPORT}")  # fmt: skip
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
