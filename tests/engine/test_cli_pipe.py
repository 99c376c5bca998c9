"""`vmb ... --json | head`: a reader that goes away ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte (head -0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VMB_HOME": str(tmp_path)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "engine.cli", "models", "list", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 141  # as a tool killed by SIGPIPE
