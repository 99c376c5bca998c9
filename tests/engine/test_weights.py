"""Model registry: tiny folders in the production layout, verify, resolve, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.errors import InvalidRequest, WeightsError
from engine import weights


def test_manifest_names_every_component_with_licence() -> None:
    specs = weights.load_manifest()
    assert {"sao-1.0", "t5-base", "clap-music", "clip", "internvl"} <= set(specs)
    for s in specs.values():
        assert s.licence and s.files and s.component in {"generate", "retrieve", "describe"}
        assert s.tiny_builder, f"{s.name} cannot be built tiny"


def test_tiny_verify_resolve_and_corruption(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from engine.cli import main

    models = tmp_path / "models"
    assert main(["models", "tiny", "--out", str(models), "--only", "clip"]) == 0
    assert "random weights" in capsys.readouterr().out
    folder = weights.resolve("clip", models)
    assert folder.weights == "random"
    marker = json.loads((models / "clip" / weights.MARKER).read_text())
    assert marker["weights"] == "random" and "model.safetensors" in marker["files"]
    assert weights.verify("clip", models).ok
    assert main(["models", "list", "--model-dir", str(models), "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed["clip"]["installed"] and listed["clip"]["weights"] == "random"
    assert not listed["sao-1.0"]["installed"]
    with (models / "clip" / "model.safetensors").open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff\xfe\xfd")
    report = weights.verify("clip", models)
    assert not report.ok and any("sha256" in p for p in report.problems)
    assert main(["models", "verify", "clip", "--model-dir", str(models)]) == 1
    (models / "clip" / "config.json").unlink()
    with pytest.raises(WeightsError, match="missing files: config.json"):
        weights.resolve("clip", models)


def test_missing_and_unknown_models_are_clear(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="vmb models download sao-1.0"):
        weights.resolve("sao-1.0", tmp_path)
    (tmp_path / "clip").mkdir()
    with pytest.raises(WeightsError, match="not a complete model folder"):
        weights.resolve("clip", tmp_path)
    with pytest.raises(InvalidRequest, match="known models"):
        weights.spec("nope")
    with pytest.raises(WeightsError, match="accept-licence"):
        weights.download("sao-1.0", tmp_path)


def test_a_marker_without_a_weights_field_does_not_count_as_real(tmp_path: Path) -> None:
    folder = tmp_path / "t5-base"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    weights.finalize_folder(folder, "t5-base", "real")
    assert weights.resolve("t5-base", tmp_path).weights == "real"
    marker = json.loads((folder / weights.MARKER).read_text())
    del marker["weights"]
    (folder / weights.MARKER).write_text(json.dumps(marker))
    with pytest.raises(WeightsError, match="real or random"):
        weights.resolve("t5-base", tmp_path)
    assert "t5-base" not in weights.installed(tmp_path)
