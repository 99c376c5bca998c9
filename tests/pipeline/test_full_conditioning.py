"""The full path wired as VMB wires it, in process on tiny random weights: the targeted
reference's stored CLAP embedding styles the music, every knob is in the text sent to the
model, the labels (JSON and cue sheet) say which weights each stage ran, variations run as
one batch, and no library is no obstacle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import weights
from engine.config import Settings, load_settings
from engine.types import no_progress
from support.media import click_loop


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-models")
    weights.write_tiny(root, seed=0)
    return root


def _home(root: Path, models: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(
        f'[models]\nmodel_dir = "{models}"\ndevice = "cpu"\n[generate]\nsteps = 2\n'
    )
    return root


@pytest.fixture(scope="module")
def library_home(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Path:
    """A home whose full library holds two click loops (tempo:slow and tempo:fast)."""
    from engine.cli import main

    home = _home(tmp_path_factory.mktemp("home-lib"), models)
    music = home / "music"
    music.mkdir()
    for bpm in (90, 150):
        click_loop(music / f"loop_{bpm}.wav", bpm)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VMB_HOME", str(home))
        assert main(["library", "add", str(music)]) == 0
    return home


def _settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VMB_HOME", str(home))
    return load_settings()


def _cue(settings: Settings, out: Path, knobs: dict, variations: int = 1, seed: int = 5):
    from engine.score.cue import run_cue
    from engine.score.cue_spec import parse_cue_params

    spec = parse_cue_params(
        {
            "text": "music for a night drive",
            "duration_s": 1.0,
            "knobs": knobs,
            "backend": "full",
            "variations": variations,
        },
        settings,
    )
    return run_cue(spec, settings, seed, out, no_progress)


KNOBS = {
    "tempo": "slow",
    "genre": "rock",
    "mood": "sad",
    "energy": "high",
    "instruments": ["guitar", "drums"],
}


def test_full_cue_says_what_conditioned_it(
    library_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.retrieve.dsp import analyse_audio
    from engine.retrieve.full.library import MusicLibrary
    from engine.retrieve.full.retriever import library_root
    from engine.score.deliver import PlacedCue, cue_sheet

    settings = _settings(library_home, monkeypatch)
    (cue,) = _cue(settings, tmp_path, KNOBS)
    out = cue.to_json()
    cond = out["conditioning"]
    assert cond["text"].lower().startswith("music for a night drive.")
    for part in ("tempo: slow", "genre: rock", "mood: sad", "energy: high",
                 "instruments: guitar, drums"):  # fmt: skip
        assert part in cond["attribute_text"] and part in cond["text"]
    targeted = out["references"]["targeted"]
    assert cond["style"] is True and cond["style_from"] == targeted[0]["id"]
    assert cond["control"] is True and cond["control_from"] == out["references"]["broad"][0]["id"]
    assert cond["broad"] == [r["id"] for r in out["references"]["broad"]]
    assert cond["weights"] == {"describe": "none", "retrieve": "random", "generate": "random"}
    assert out["weights"] == "random"
    # the style input is the embedding the library stores for the targeted piece
    with MusicLibrary.open(library_root(settings)) as lib:
        stored = lib.audio_embedding(targeted[0]["id"])
    assert cue.retrieval.targeted[0].clap is not None
    assert np.array_equal(cue.retrieval.targeted[0].clap, stored) and np.any(stored)
    # tempo and key reported are the ones measured on the cue's own audio
    audio, sr = sf.read(cue.audio, always_2d=True)
    f = analyse_audio(audio, sr)
    measured = out["extra"]["measured"]
    # floats that are never None, so a copied or fixed value cannot pass as None == None
    assert measured["tempo_confidence"] == round(f.tempo_confidence, 3)
    assert measured["key_strength"] == round(f.key_strength, 3) and f.key_strength != 0
    assert out["attributes"]["bpm"] == f.bpm == measured["bpm"]
    if f.bpm is None:  # no steady pulse in a 1 s cue: nothing asked may be reported instead
        assert out["attributes"]["tempo"] == "slow" and "BPM" not in cond["attribute_text"]
    # and the cue sheet's row says the same
    placed = PlacedCue("cue", cue.audio, 0.0, 0.0, 1.0, out)
    page = cue_sheet([placed], "t", tmp_path / "sheet.html").read_text()
    assert f"model text: {cond['text']}" in page
    assert f"style from {cond['style_from']}" in page
    assert "weights: describe none, retrieve random, generate random" in page
    broad_ids = ", ".join(cond["broad"])
    assert f"broad references: {broad_ids}; targeted: {cond['style_from']}" in page
    # the standard CSV cue sheet says the same, compactly
    import csv

    from engine.score.deliver import music_cue_sheet

    sheet = music_cue_sheet([placed], "t", 24.0, tmp_path / "sheet.csv")
    with open(sheet, newline="", encoding="utf-8-sig") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["Weights"] == "describe none, retrieve random, generate random"
    assert row["Conditioning"].startswith(
        f"ControlFormer from {cond['control_from']}; style from {cond['style_from']}; "
        f"broad references: {broad_ids}"
    )


def test_fallback_partition_keeps_what_was_asked(
    library_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _settings(library_home, monkeypatch)
    (cue,) = _cue(settings, tmp_path, {"tempo": "128"})  # medium: no such piece
    cond = cue.conditioning
    assert cond is not None
    assert "tempo: medium (128 BPM)" in cond["text"]
    assert "slow" not in cond["text"] and "tempo: fast" not in cond["text"]
    assert any("tempo:medium is empty; used tempo:" in n for n in cue.extra["notes"])


def test_variations_run_as_one_batch(
    library_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time

    from engine.generate.full.generator import FullGenerator

    calls: list[int] = []
    took: list[float] = []
    original = FullGenerator.generate_variations

    def counting(self, request, seeds, progress=no_progress, names=None):  # noqa: ANN001, ANN202
        calls.append(len(seeds))
        t0 = time.perf_counter()
        out = original(self, request, seeds, progress, names=names)
        took.append(time.perf_counter() - t0)
        return out

    monkeypatch.setattr(FullGenerator, "generate_variations", counting)
    settings = _settings(library_home, monkeypatch)
    cues = _cue(settings, tmp_path, {"tempo": "fast"}, variations=3)
    assert calls == [3]
    assert [c.audio.name for c in cues] == ["cue-v1.wav", "cue-v2.wav", "cue-v3.wav"]
    assert [c.seed for c in cues] == [5, 6, 7]
    # each variation reports its share of the one batch, not the whole batch time
    shares = [c.timings["generate_s"] for c in cues]
    assert sum(shares) == pytest.approx(took[0], rel=0.05)
    assert all(c.timings.get("generate_batch_of") == 3 for c in cues)
    a, _ = sf.read(cues[0].audio)
    b, _ = sf.read(cues[1].audio)
    assert not np.allclose(a, b, atol=1e-3)


def test_no_library_describes_and_generates_from_the_description(
    models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.backends import select
    from engine.score.cue import describe
    from engine.score.cue_spec import parse_cue_params

    settings = _settings(_home(tmp_path / "home", models), monkeypatch)
    backend, why = select("auto", settings)
    assert backend == "full" and "no music library" in why
    spec = parse_cue_params({"text": "calm piano", "backend": "full"}, settings, False)
    assert describe(spec, settings, 0, no_progress)[0] == "full"
    (cue,) = _cue(settings, tmp_path / "out", KNOBS)
    cond = cue.conditioning
    assert cond is not None and not cond["control"] and not cond["style"]
    assert cond["broad"] == [] and cond["targeted"] == []
    assert cond["weights"]["retrieve"] == "none"
    assert any("description alone" in n for n in cue.extra["notes"])
    assert "energy: high" in cond["text"]
