"""Start, inspect and stop the daemon from another process (CLI, tests, gateway)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bridge.client import EngineClient
from bridge.discovery import discovery_path, read_discovery
from bridge.errors import ConfigError, EngineUnavailable, VMBError
from bridge.protocol import PROTO_MAJOR, PROTO_MINOR
from engine.config import Settings


def log_path(settings: Settings) -> Path:
    return settings.run_dir / "engine.log"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(
    settings: Settings, timeout_s: float = 2.0, compute_wait_s: float | None = None
) -> dict[str, Any]:
    """{"running", "pid", "boot_id", "endpoint", ...}; running means it answered a ping.
    With compute_wait_s, also the worker's compute block (``compute``), waiting that long
    while an idle worker works it out (its first torch import; later answers are cached)."""
    out: dict[str, Any] = {
        "running": False,
        "pid": None,
        "boot_id": None,
        "endpoint": None,
        "home": str(settings.home),
    }
    try:
        disc = read_discovery(settings.home)
    except EngineUnavailable:
        return out
    out.update(pid=disc.pid, endpoint=disc.endpoint, version=disc.version)
    if not _pid_alive(disc.pid):
        out["stale_discovery"] = True
        return out
    try:
        with EngineClient(disc, home=settings.home, timeout_s=timeout_s, retries=0) as c:
            caps = c.hello()["capabilities"]
            out.update(
                running=True,
                boot_id=c.boot_id,
                kinds=sorted(caps["kinds"]),
                model_dir=caps.get("model_dir"),
            )
            if compute_wait_s is not None:
                out["compute"] = _worker_compute(c, compute_wait_s)
    except VMBError as exc:
        out["error"] = exc.message
    return out


def _worker_compute(client: EngineClient, wait_s: float) -> dict[str, Any]:
    """The daemon's worker's compute block; "state" says why there is none yet."""
    deadline = time.monotonic() + wait_s
    while True:
        caps = client.request("hello", proto=[PROTO_MAJOR, PROTO_MINOR], compute=1)
        compute = caps["capabilities"].get("compute") or {"state": "not reported (older engine)"}
        if "state" not in compute or compute.get("busy") or time.monotonic() >= deadline:
            return compute
        time.sleep(0.2)


def start(
    settings: Settings, timeout_s: float = 60.0, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Start the daemon in the background and return once it answers (or raise)."""
    current = status(settings)
    if current["running"]:
        current["already_running"] = True
        return current
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    log = log_path(settings).open("ab")
    env = {**os.environ, "VMB_HOME": str(settings.home), **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.serve", "--home", str(settings.home)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            tail = log_path(settings).read_text(errors="replace").strip().splitlines()[-5:]
            raise EngineUnavailable(
                f"the engine exited at start (code {code}): " + " | ".join(tail)
            )
        with contextlib.suppress(EngineUnavailable):
            if read_discovery(settings.home).pid == proc.pid:
                st = status(settings)
                if st["running"]:
                    return st
        time.sleep(0.05)
    proc.kill()
    raise EngineUnavailable(
        f"the engine did not answer within {timeout_s:g} s; see {log_path(settings)}"
    )


def stop(settings: Settings, timeout_s: float = 10.0) -> bool:
    """SIGTERM the daemon and wait; SIGKILL if it does not go. False if none was running."""
    try:
        disc = read_discovery(settings.home)
    except EngineUnavailable:
        return False
    if not _pid_alive(disc.pid):
        with contextlib.suppress(FileNotFoundError):
            discovery_path(settings.home).unlink()
        return False
    os.kill(disc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(disc.pid):
        time.sleep(0.05)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(disc.pid, os.WNOHANG)
    if _pid_alive(disc.pid):
        os.kill(disc.pid, signal.SIGKILL)
    return True


def ensure_running(settings: Settings) -> EngineClient:
    """A client to this home's daemon, starting one if none runs (CLI convenience).

    The daemon loads the models, so it must use the model folder this command asks for."""
    st = status(settings)
    if not st["running"]:
        print("starting the engine…", file=sys.stderr)
        st = start(settings)
    running = st.get("model_dir")
    if running and Path(running).resolve() != settings.model_dir.resolve():
        raise ConfigError(
            f"the running engine uses the models in {running}, not {settings.model_dir}; "
            "stop it with `vmb engine stop` (the next command starts one with this folder)"
        )
    return EngineClient(home=settings.home)
