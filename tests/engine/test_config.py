"""Settings: TOML + environment, unknown keys named, VMB_HOME moves everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError
from engine.config import load_settings


def test_defaults_follow_vmb_home(vmb_home: Path) -> None:
    s = load_settings()
    assert s.home == vmb_home.resolve()
    assert s.jobs_db.parent == s.outputs_dir.parent == s.model_dir.parent == s.home
    assert s.server.host == "127.0.0.1"


def test_toml_values_and_env_overrides(vmb_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (vmb_home / "config.toml").write_text(
        '[server]\nport = 5599\n[jobs]\nkind_modules = ["a.b"]\ncancel_grace_s = 1\n'
    )
    s = load_settings()
    assert s.server.port == 5599 and s.jobs.kind_modules == ("a.b",)
    assert s.jobs.cancel_grace_s == 1.0
    monkeypatch.setenv("VMB_MODEL_DIR", "/models")
    monkeypatch.setenv("VMB_BACKEND", "draft")
    s = load_settings()
    assert s.model_dir == Path("/models") and s.pipeline.backend == "draft"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nprot = 1\n", "unknown setting 'server.prot'"),
        ("[sever]\nport = 1\n", "unknown section 'sever'"),
        ("[server]\nport = 'x'\n", "'server.port' must be an integer"),
        ("[server]\nport = true\n", "'server.port' must be an integer"),
        ("[pipeline]\nbackend = 'gpu'\n", "pipeline.backend"),
        ("[server]\nhost = '0.0.0.0'\n", "CURVE"),
        ("[server\n", "cannot read"),
    ],
)
def test_bad_settings_name_the_problem(vmb_home: Path, toml: str, message: str) -> None:
    (vmb_home / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings()
