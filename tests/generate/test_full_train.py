"""ECMG training at tiny size: the loss goes down on a tiny overfit set, checkpoints are
safetensors + JSON, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bridge.errors import InvalidRequest
from engine import weights
from engine.generate.full.ecmg import ECMG
from engine.generate.full.sao import load_sao
from engine.train.ecmg import (
    ECMGTrainConfig,
    evaluation_loss,
    examples_for,
    read_records,
    train_ecmg,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ecmg-train")
    weights.write_tiny(root / "models", ["sao-1.0", "t5-base"], seed=0)
    rng = np.random.default_rng(0)
    t = np.arange(44100) / 44100
    for name, freq in (("a", 220.0), ("b", 440.0)):
        tone = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(root / f"{name}.wav", np.stack([tone, tone], 1).astype(np.float32), 44100)
    np.save(root / "style_b.npy", rng.standard_normal(512).astype(np.float32))
    records = [
        {
            "audio": "a.wav",
            "reference": "b.wav",
            "description": "A calm piano piece",
            "attribute": "tempo: slow",
            "targeted_embedding": rng.standard_normal(512).tolist(),
        },
        {
            "audio": "b.wav",
            "reference": "a.wav",
            "description": "Fast drums",
            "attribute": "tempo: fast",
            "targeted_embedding_path": "style_b.npy",
            "meta": {"src": "x"},
        },
    ]
    (root / "records.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return root, root / "records.jsonl"


def _config(root: Path, records: Path, out: str, **kw: object) -> ECMGTrainConfig:
    base = dict(
        records=records,
        out=root / out,
        model_dir=root / "models",
        steps=2,
        batch_size=2,
        grad_accum=2,
        lr=3e-4,
        warmup=0.0,
        cfg_dropout=0.0,
        control_depth=2,
        clip_seconds=0.5,
        save_every=1,
        device="cpu",
    )
    return ECMGTrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_two_steps_reduce_the_loss(setup: tuple[Path, Path]) -> None:
    root, records = setup
    sao = load_sao(root / "models" / "sao-1.0", root / "models" / "t5-base")
    fresh = ECMG.fresh(sao, control_depth=2)  # no clap-music installed: the full CLAP's 512
    before = evaluation_loss(fresh, examples_for(fresh, read_records(records, 512), 0.5), seed=0)
    fresh.close()

    result = train_ecmg(_config(root, records, "run"))
    assert len(result.losses) == 2 and result.weights == "random"
    trained = ECMG.load(sao, result.adapters)
    after = evaluation_loss(trained, examples_for(trained, read_records(records, 512), 0.5), seed=0)
    trained.close()
    assert after < before

    marker = json.loads((result.adapters / weights.MARKER).read_text())
    assert marker["name"] == "vmb-ecmg" and marker["weights"] == "random"
    ckpt = root / "run" / "checkpoints" / "step-0000002"
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "controlformer.json",
        "controlformer.safetensors",
        "optimizer.safetensors",
        "stylization.json",
        "stylization.safetensors",
        "trainer.json",
    ]
    log = [json.loads(x) for x in (root / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2]


def test_resume_continues_exactly(setup: tuple[Path, Path]) -> None:
    from safetensors.torch import load_file

    root, records = setup
    straight = train_ecmg(_config(root, records, "straight", steps=3, grad_accum=1))
    cut = _config(root, records, "cut", steps=2, grad_accum=1)
    train_ecmg(cut)
    resumed = train_ecmg(dataclasses.replace(cut, steps=3, resume=True))
    assert resumed.losses == straight.losses
    for stem in ("controlformer", "stylization"):
        a = load_file(str(straight.adapters / f"{stem}.safetensors"))
        b = load_file(str(resumed.adapters / f"{stem}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_records_are_rejected_with_their_line(setup: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = setup
    bad = tmp_path / "bad.jsonl"
    good = {
        "audio": str(root / "a.wav"),
        "reference": str(root / "b.wav"),
        "description": "x",
        "attribute": "y",
        "targeted_embedding": [0.0] * 512,
    }
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "tempo": 120}) + "\n")
    with pytest.raises(InvalidRequest, match="line 2: unknown keys tempo"):
        read_records(bad, 512)
    bad.write_text(json.dumps({**good, "targeted_embedding": [0.0] * 3}))
    with pytest.raises(InvalidRequest, match="512 finite values"):
        read_records(bad, 512)


def test_cli_trains_and_installs(setup: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    from engine.cli import main

    root, records = setup
    code = main(
        [
            "train",
            "ecmg",
            "--records",
            str(records),
            "--out",
            str(root / "cli"),
            "--model-dir",
            str(root / "models"),
            "--steps",
            "1",
            "--grad-accum",
            "1",
            "--control-depth",
            "2",
            "--clip-seconds",
            "0.5",
            "--device",
            "cpu",
            "--install",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 1 and report["installed"] == str(root / "models" / "vmb-ecmg")
    assert weights.resolve("vmb-ecmg", root / "models").weights == "random"
