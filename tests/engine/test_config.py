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


def test_backend_names_come_from_the_registry(
    vmb_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend added to engine/backends.py is accepted by the config and offered by the
    commands without another list to edit; each registered backend has a licence statement."""
    import argparse

    from engine import backends
    from engine.commands import demo
    from engine.commands import eval as eval_cmd
    from engine.score.licence import STATEMENTS

    assert set(STATEMENTS) == set(backends.BACKENDS)
    monkeypatch.setattr(backends, "CHOICES", (*backends.CHOICES, "tiny"))
    monkeypatch.setattr(backends, "BACKENDS", {**backends.BACKENDS, "tiny": None})
    (vmb_home / "config.toml").write_text("[pipeline]\nbackend = 'tiny'\n")
    assert load_settings().pipeline.backend == "tiny"
    (vmb_home / "config.toml").write_text("[pipeline]\nbackend = 'huge'\n")
    with pytest.raises(ConfigError, match="pipeline.backend must be auto, draft, full, tiny"):
        load_settings()
    for module, argv in ((demo, ["demo"]), (eval_cmd, ["eval", "tempo"])):
        parser = argparse.ArgumentParser()
        module.register(parser.add_subparsers())
        action = next(
            a
            for sub in parser._subparsers._group_actions  # noqa: SLF001 - argparse's own
            for a in sub.choices[argv[0]]._actions
            if a.dest == "backend"
        )
        assert "tiny" in action.choices, argv
