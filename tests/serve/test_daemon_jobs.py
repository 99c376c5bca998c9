"""The daemon end to end over real loopback sockets and a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from bridge.client import EngineClient
from bridge.errors import (
    IdempotencyConflict,
    InvalidRequest,
    JobCancelled,
    OutOfMemory,
    Unauthorized,
    UnknownJob,
    UnknownKind,
    WorkerCrashed,
)


def test_submit_progress_done(engine) -> None:
    with engine.client() as c:
        acc = c.submit("selfcheck", {"steps": 5, "step_s": 0.02}, seed=7)
        assert acc["event"] == "accepted" and acc["seed"] == 7
        events = list(c.events(acc["job_id"], timeout_s=30))
    kinds = [e.event for e in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1
    assert "progress" in kinds
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    wav = Path(events[-1].data["result"]["files"]["audio"])
    audio, sr = sf.read(wav)
    assert sr == 44100 and audio.shape == (44100, 2)
    assert wav.parent.name == "take-1" and wav.parent.parent.name == acc["job_id"]
    assert not list(wav.parent.parent.glob(".staging-*"))


def test_same_seed_same_output(engine) -> None:
    with engine.client() as c:
        a = c.wait(c.submit("selfcheck", {"steps": 1, "step_s": 0}, seed=3)["job_id"], timeout_s=30)
        b = c.wait(c.submit("selfcheck", {"steps": 1, "step_s": 0}, seed=3)["job_id"], timeout_s=30)
    assert a["frequency_hz"] == b["frequency_hz"]
    assert Path(a["files"]["audio"]).read_bytes() == Path(b["files"]["audio"]).read_bytes()


def test_idempotent_resubmit_and_conflict(engine) -> None:
    with engine.client() as c:
        first = c.submit("selfcheck", {"steps": 1, "step_s": 0}, idempotency_key="k1")
        again = c.submit("selfcheck", {"steps": 1, "step_s": 0}, idempotency_key="k1")
        assert again["job_id"] == first["job_id"] and again["duplicate"] is True
        with pytest.raises(IdempotencyConflict):
            c.submit("selfcheck", {"steps": 2, "step_s": 0}, idempotency_key="k1")
        c.wait(first["job_id"], timeout_s=30)
        assert len(c.list_jobs()) == 1


def test_bad_requests_get_typed_errors(engine) -> None:
    with engine.client() as c:
        with pytest.raises(UnknownKind, match="known kinds"):
            c.submit("nope", {})
        with pytest.raises(InvalidRequest, match="steps"):
            c.submit("selfcheck", {"steps": -1})
        with pytest.raises(UnknownJob):
            c.result("0" * 32)
        with pytest.raises(InvalidRequest):
            c.list_jobs(state="weird")
        assert c.ping()["pong"] is True


def test_wrong_token_refused(engine) -> None:
    disc = engine.client().discovery
    bad = type(disc)(**{**disc.to_json(), "token": "not-the-token"})
    with EngineClient(bad, timeout_s=2, retries=0) as c, pytest.raises(Unauthorized):
        c.ping()


def _wait_state(c: EngineClient, job_id: str, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.result(job_id)
        if job["state"] == state:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job never reached {state}: {job}")


def test_cancel_queued_running_and_stubborn(engine) -> None:
    with engine.client() as c:
        running = c.submit("selfcheck", {"steps": 500, "step_s": 0.02})["job_id"]
        queued = c.submit("selfcheck", {"steps": 1, "step_s": 0})["job_id"]
        _wait_state(c, running, "running")
        assert c.cancel(queued)["state"] == "cancelled"
        t0 = time.monotonic()
        c.cancel(running)
        with pytest.raises(JobCancelled):
            c.wait(running, timeout_s=10)
        assert time.monotonic() - t0 < 1.0  # cooperative cancel, end to end
        stubborn = c.submit("stubborn", {"seconds": 60})["job_id"]
        _wait_state(c, stubborn, "running")
        t0 = time.monotonic()
        c.cancel(stubborn)
        with pytest.raises(JobCancelled):
            c.wait(stubborn, timeout_s=10)
        assert time.monotonic() - t0 < 1.0  # hard kill after the 0.5 s grace period
        # the worker was replaced and the next job runs
        nxt = c.submit("selfcheck", {"steps": 1, "step_s": 0})["job_id"]
        assert "files" in c.wait(nxt, timeout_s=30)


def test_worker_crash_and_oom_are_typed_and_daemon_goes_on(engine) -> None:
    with engine.client() as c:
        with pytest.raises(WorkerCrashed, match="died"):
            c.wait(c.submit("crash", {})["job_id"], timeout_s=30)
        with pytest.raises(OutOfMemory):
            c.wait(c.submit("oom", {})["job_id"], timeout_s=30)
        assert "files" in c.wait(c.submit("selfcheck", {"steps": 1})["job_id"], timeout_s=30)
    assert engine.status()["running"]


def test_twenty_concurrent_clients(engine) -> None:
    errors: list[BaseException] = []
    results: dict[int, dict] = {}

    def one(i: int) -> None:
        try:
            with engine.client(timeout_s=10) as c:
                job = c.submit("selfcheck", {"steps": 2, "step_s": 0}, seed=i)["job_id"]
                results[i] = c.wait(job, timeout_s=120)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert len(results) == 20
    assert all(Path(r["files"]["audio"]).exists() for r in results.values())


def test_kill9_mid_job_then_restart_completes_exactly_once(engine, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    with engine.client() as c:
        job_id = c.submit("counted", {"log": str(log), "steps": 20, "step_s": 0.05})["job_id"]
        _wait_state(c, job_id, "running")
        time.sleep(0.3)
    pid = engine.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    engine.start()
    with engine.client() as c:
        result = c.wait(job_id, timeout_s=60)
        job = c.result(job_id)
    lines = log.read_text().splitlines()
    assert [ln.split()[0] for ln in lines].count("done") == 1
    assert job["state"] == "done" and job["attempt"] == 2
    out = Path(result["files"]["out"])
    assert out.read_bytes() == f"{job_id} seed={job['seed']}\n".encode() * 1000
    assert sorted(p.name for p in out.parent.parent.iterdir()) == ["take-2"]


def test_second_daemon_on_same_home_is_refused(engine) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine.serve", "--home", str(engine.settings.home)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **engine.env},
    )
    assert proc.returncode == 3
    assert "already runs" in proc.stderr and "Traceback" not in proc.stderr
    assert engine.status()["running"]


def test_cli_status_json_and_stop(engine, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    assert main(["engine", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["running"] is True and {"pid", "boot_id", "endpoint"} <= set(st)
    assert st["endpoint"].startswith("tcp://127.0.0.1:")
    disc = engine.settings.run_dir / "engine.json"
    assert disc.stat().st_mode & 0o777 == 0o600
    assert main(["engine", "stop"]) == 0
    assert main(["engine", "status"]) == 1
    assert not disc.exists()


def test_client_waiting_across_a_restart_reattaches(engine, tmp_path: Path) -> None:
    """A client in wait() sees the boot id change, re-attaches and gets the one result."""
    log = tmp_path / "runs.log"
    progress: list[int] = []
    with engine.client(timeout_s=3, retries=10) as c:
        job_id = c.submit("counted", {"log": str(log), "steps": 30, "step_s": 0.05})["job_id"]
        _wait_state(c, job_id, "running")
        boot = c.boot_id

        def restart() -> None:
            time.sleep(0.3)
            os.kill(engine.status()["pid"], signal.SIGKILL)
            time.sleep(0.2)
            engine.start()

        t = threading.Thread(target=restart)
        t.start()
        result = c.wait(job_id, on_progress=lambda ev: progress.append(ev.seq), timeout_s=60)
        t.join()
        assert c.boot_id != boot
    assert Path(result["files"]["out"]).exists()
    assert progress == sorted(progress)
    assert [ln.split()[0] for ln in log.read_text().splitlines()].count("done") == 1
