"""The two example clients in examples/ work as written against a real daemon (draft)."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

from support.media import color_clip

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip


def test_http_and_zmq_examples_score_a_clip(engine, tmp_path: Path) -> None:
    clip = color_clip(tmp_path / "clip.mp4", [("navy", 1.5), ("orange", 1.5)])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = _run("http_client.py", str(clip), "0.5", "2.5", "--mood", "calm",
                "--out", str(tmp_path / "http"), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (stem,) = [Path(line) for line in done.stdout.split()]
    with wave.open(str(stem)) as w:
        assert abs(w.getnframes() / w.getframerate() - 2.0) < 0.01
    done = _run("zmq_client.py", str(clip), "--mood", "tense", env=env)
    assert done.returncode == 0, done.stderr
    audio = Path(done.stdout.splitlines()[0])
    assert audio.is_file() and "backend: draft" in done.stdout


def test_http_example_says_when_the_engine_is_not_running(tmp_path: Path) -> None:
    env = {**os.environ, "VMB_HOME": str(tmp_path / "nowhere")}
    done = _run("http_client.py", str(tmp_path / "clip.mp4"), env=env)
    assert done.returncode == 1 and "vmb engine start" in done.stderr
    assert "Traceback" not in done.stderr
