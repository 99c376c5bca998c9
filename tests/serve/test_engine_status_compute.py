"""`vmb engine status` reports the daemon's worker's compute block (device, dtype, ONNX
providers), worked out once in the worker; the CLI process imports neither torch nor
onnxruntime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.engine import REPO_ROOT

# Runs the CLI in a fresh interpreter and says on stderr whether it imported torch.
CLI = (
    "import sys\n"
    "from engine.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('IMPORTED', 'torch' in sys.modules, 'onnxruntime' in sys.modules, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def _status(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get(
        "PYTHONPATH", "")])}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", CLI, "engine", "status", *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_status_shows_the_workers_compute_without_importing_torch(engine) -> None:
    done = _status("--json")
    assert done.returncode == 0, done.stderr
    assert "IMPORTED False False" in done.stderr
    st = json.loads(done.stdout)
    compute = st["compute"]
    assert "state" not in compute, compute
    assert compute["device"] == "cpu" and compute["dtype"] == "float32"
    assert compute["onnx_providers"] == ["CPUExecutionProvider"]
    # the report comes from the daemon's worker process, not from the CLI
    assert compute["pid"] != st["pid"] and _ppid(compute["pid"]) == st["pid"]
    # and the daemon itself stays without torch (a torch type in the report would load it)
    assert "libtorch" not in Path(f"/proc/{st['pid']}/maps").read_text()
    assert "libtorch" in Path(f"/proc/{compute['pid']}/maps").read_text()
    text = _status()
    assert text.returncode == 0 and "IMPORTED False False" in text.stderr
    assert "full backend runs on: cpu (CPU), float32; ONNX encoders: CPUExecutionProvider" in (
        text.stdout
    )


def test_hello_without_compute_asks_the_worker_nothing(engine) -> None:
    """Plain hellos (every client's, every `engine start`) leave torch out of the worker."""
    with engine.client() as c:
        caps = c.hello()["capabilities"]
    assert caps["compute"]["state"].startswith("not asked")
    assert caps["compute"]["device"] is None


def test_status_of_a_stopped_engine_imports_nothing() -> None:
    done = _status("--json")
    assert done.returncode == 1
    assert "IMPORTED False False" in done.stderr
    st = json.loads(done.stdout)
    assert st["running"] is False and st["compute"]["state"] == "engine not running"
    text = _status()
    assert text.returncode == 1 and text.stdout.strip() == "not running"
