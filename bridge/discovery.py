"""Where the engine lives: the VMB home folder and the daemon's discovery file.

Shared by the daemon, the CLI, the gateway and any Python caller, so it lives on the light
side. ``VMB_HOME`` moves everything (config, jobs, outputs, discovery) in one go.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import EngineUnavailable


def default_home() -> Path:
    env = os.environ.get("VMB_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "VMB Score"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home())) / "VMB Score"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "vmb-score"


def run_dir(home: Path) -> Path:
    return home / "run"


def discovery_path(home: Path) -> Path:
    return run_dir(home) / "engine.json"


@dataclass(frozen=True)
class Discovery:
    """What a client needs to reach the running daemon."""

    endpoint: str
    token: str
    boot_id: str
    pid: int
    version: str
    gateway: str | None = None
    server_public_key: str | None = None

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


def read_discovery(home: Path | None = None) -> Discovery:
    """Read the discovery file; EngineUnavailable when no daemon has published one."""
    path = discovery_path(home or default_home())
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EngineUnavailable(
            f"the engine is not running (no {path}); start it with: vmb engine start"
        ) from None
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(f"cannot read {path}: {exc}") from None
    try:
        return Discovery(**{k: data.get(k) for k in Discovery.__dataclass_fields__ if k in data})
    except TypeError as exc:
        raise EngineUnavailable(f"{path} is incomplete: {exc}") from None


def write_discovery(home: Path, disc: Discovery) -> Path:
    """Publish atomically with mode 0600 (it holds the token)."""
    path = discovery_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(disc.to_json(), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
