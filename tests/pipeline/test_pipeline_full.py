"""The full (neural) backend inside the daemon, on tiny random weights: describe, retrieve
and generate all run, and every output says it came from random weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import soundfile as sf

from engine import weights
from support import riff
from support.engine import engine_env, start_engine
from support.media import click_loop, color_clip


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-models")
    weights.write_tiny(root, seed=0)
    return root


@pytest.fixture
def full_engine(
    vmb_home: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    from engine.cli import main

    (vmb_home / "config.toml").write_text(
        f'[models]\nmodel_dir = "{tiny_model_dir}"\ndevice = "cpu"\n[generate]\nsteps = 4\n'
    )
    music = tmp_path / "music"
    music.mkdir()
    for bpm in (90, 150):
        click_loop(music / f"loop_{bpm}.wav", bpm)
    assert main(["library", "add", str(music)]) == 0
    capsys.readouterr()
    env = engine_env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    eng = start_engine(vmb_home, env)
    try:
        yield eng
    finally:
        eng.stop()


def test_full_backend_runs_in_daemon_labelled_random(
    full_engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    clip = color_clip(tmp_path / "clip.mp4", [("navy", 1.0), ("orange", 1.0)])
    assert main(["describe", str(clip), "--backend", "full", "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["backend"] == "full" and desc["weights"] == "random"  # InternVL ran
    assert desc["description"]

    out = tmp_path / "out"
    assert (
        main(
            [
                "generate",
                "--text",
                "calm piano",
                "--duration",
                "2.5",
                "--backend",
                "full",
                "--seed",
                "3",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    (cue,) = json.loads(capsys.readouterr().out)["cues"]
    assert cue["backend"] == "full" and cue["weights"] == "random"
    # what it ran on: models.device = "cpu" -> fp32; CLAP on torch (no ONNX export here)
    assert cue["compute"] == {
        "device": "cpu",
        "dtype": "float32",
        "encoders": {"clap": "torch cpu"},
    }
    assert sf.info(cue["audio"]).frames == round(2.5 * 44100)
    assert cue["references"]["broad"], "the full library was not consulted"
    assert os.path.dirname(cue["audio"]) == str(out)
    # the licence follows the installed (tiny) weights and names the library track adapted
    assert "sao-1.0: random test weights" in cue["licence"]
    assert cue["references"]["broad"][0]["title"] in cue["licence"]
    block = riff.ixml(Path(cue["audio"])).find("VMB_SCORE")
    assert block is not None and block.findtext("LICENCE") == cue["licence"]
    assert block.findtext("BACKEND") == "full" and block.findtext("WEIGHTS") == "random"


def test_auto_without_weights_says_why_it_picked_draft(vmb_home: Path) -> None:
    from engine.backends import select
    from engine.config import load_settings

    backend, why = select("auto", load_settings())
    assert backend == "draft" and "full unavailable" in why and "not installed" in why
