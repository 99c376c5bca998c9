"""MMDM LoRA training on a tiny random InternVL: loss goes down, adapters round-trip,
resume continues, bad JSONL lines are reported by line number, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bridge.errors import InvalidRequest, MediaError
from engine import weights
from engine.bench.clips import synthetic_video
from engine.cli import main
from engine.config import settings_from_dict
from engine.describe.full import internvl, lora
from engine.describe.full.describer import FullDescriber
from engine.train import mmdm as train
from engine.types import Knobs, VisualInput, no_progress

TARGETS = ("A calm ambient piece with soft piano.", "A fast rock song with loud drums.")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    weights.write_tiny(out, ["internvl"], seed=0)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clips as frames folders, one still image; train.jsonl uses all three."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    lines = []
    for k, text in enumerate(TARGETS):
        folder = root / f"clip{k}"
        folder.mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(
                folder / f"{i:03d}.png"
            )
        lines.append({"frames": f"clip{k}", "description": text})
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / "still.png")
    lines.append({"image": "still.png", "description": "A dreamy harp melody.", "meta": {}})
    (root / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def _config(model_dir: Path, data: Path, out: Path, **kw: object) -> train.TrainConfig:
    base = dict(train=data / "train.jsonl", val=data / "train.jsonl", out=out,
                model_dir=model_dir, lr=1e-2, grad_accum=3, dropout=0.0, device="cpu",
                max_steps=2, save_every=1)  # fmt: skip
    return train.TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_two_steps_reduce_the_loss_and_the_adapter_reloads_identically(
    model_dir: Path, data: Path, tmp_path: Path
) -> None:
    # the validation loss before training: the same examples through the bare base
    mmdm = internvl.load_base(model_dir / "internvl", torch.device("cpu"))
    examples, _ = train.read_examples(data / "train.jsonl")
    before = train.evaluate(mmdm, examples, lambda: torch.autocast("cpu", enabled=False))

    result = train.train_mmdm(_config(model_dir, data, tmp_path / "run"))
    assert result.steps == 2 and result.examples == 3
    assert result.val_loss is not None and result.val_loss < before - 0.05
    assert result.train_losses[1] < result.train_losses[0]
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2]
    lrs = [r["lr"] for r in log if "lr" in r]
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)  # cosine decays to zero at the end

    adapter = result.adapter_dir
    assert weights.verify(adapter.name, adapter.parent).ok  # hashes recorded and matching
    marker = json.loads((adapter / weights.MARKER).read_text())
    assert marker["name"] == "vmb-mmdm-lora" and marker["weights"] == "random"
    info = lora.read_adapter_info(adapter)
    assert info.rank == 16 and info.training and info.training["val_loss"] == result.val_loss

    # save -> reload: identical logits and identical sampled text
    trained = internvl.load_base(model_dir / "internvl", torch.device("cpu"))
    lora.attach_lora(trained)
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(trained.model, load_file(str(adapter / "adapter_model.safetensors")))
    reloaded = internvl.load_base(model_dir / "internvl", torch.device("cpu"))
    lora.load_adapter(reloaded, adapter)
    frames = train.example_frames(examples[0])
    trained.model.eval()
    with torch.no_grad():
        a = trained.model(**trained.encode(frames, "video")).logits
        b = reloaded.model(**reloaded.encode(frames, "video")).logits
    assert torch.equal(a, b)
    assert trained.generate(frames, "video", 5, no_progress) == reloaded.generate(
        frames, "video", 5, no_progress
    )

    # installed into a model dir, the describer uses it
    train.install_adapter(adapter, model_dir)
    settings = settings_from_dict(tmp_path, {"models": {"model_dir": str(model_dir),
                                                        "device": "cpu"}})  # fmt: skip
    describer = FullDescriber(settings)
    assert describer.adapter_used and describer.weights == "random"
    d = describer.describe(VisualInput(frames, (), 1.0), Knobs(), np.random.default_rng(0),
                           no_progress)  # fmt: skip
    assert d.text
    (model_dir / "vmb-mmdm-lora").rename(tmp_path / "moved")  # leave the module's dir clean


def test_resume_continues_from_the_last_checkpoint(
    model_dir: Path, data: Path, tmp_path: Path
) -> None:
    # the uninterrupted run also checks that activation checkpointing changes nothing
    full = train.train_mmdm(_config(model_dir, data, tmp_path / "full", max_steps=3, val=None,
                                    gradient_checkpointing=True))  # fmt: skip
    first = train.train_mmdm(_config(model_dir, data, tmp_path / "split", max_steps=3,
                                     val=None, save_every=2))  # fmt: skip
    assert first.train_losses == pytest.approx(full.train_losses, rel=1e-5)
    # pretend the run died after step 2: drop the final checkpoint, resume
    ckpts = sorted((tmp_path / "split" / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == ["step-000002", "step-000003"]
    import shutil

    shutil.rmtree(ckpts[-1])
    resumed = train.train_mmdm(
        _config(model_dir, data, tmp_path / "split", max_steps=3, val=None, resume=True)
    )
    assert resumed.train_losses == pytest.approx(full.train_losses[2:], rel=1e-5)
    with pytest.raises(InvalidRequest, match="--resume"):
        train.train_mmdm(_config(model_dir, data, tmp_path / "split", max_steps=3, val=None))
    with pytest.raises(InvalidRequest, match="other settings"):
        train.train_mmdm(_config(model_dir, data, tmp_path / "split", max_steps=4, val=None,
                                 resume=True, rank=8))  # fmt: skip


def test_corrupt_jsonl_lines_are_reported_with_their_number(data: Path, tmp_path: Path) -> None:
    lines = [
        json.dumps({"frames": str(data / "clip0"), "description": "Fine."}),
        "",
        "{not json",
        json.dumps({"frames": str(data / "clip0"), "description": "x", "mood": "sad"}),
        json.dumps({"frames": str(data / "missing"), "description": "x"}),
        json.dumps({"image": str(data / "still.png"), "video": "a.mp4", "description": "x"}),
        json.dumps({"image": str(data / "still.png"), "description": "word " * 400}),
        json.dumps({"image": str(data / "still.png"), "start": 1, "description": "x"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidRequest, match=r"bad\.jsonl:3: not valid JSON"):
        train.read_examples(path)
    examples, skipped = train.read_examples(path, on_error="skip")
    assert [e.line for e in examples] == [1]
    assert [m.split(": ")[0].rsplit(":", 1)[1] for m in skipped] == ["3", "4", "5", "6", "7", "8"]
    assert "unknown keys ['mood']" in skipped[1] and "does not exist" in skipped[2]
    assert "exactly one of" in skipped[3] and "limit" in skipped[4] and "video only" in skipped[5]


def _write_video(path: Path, seconds: float = 3.0, fps: int = 10) -> None:
    """A grey ramp, 8 levels brighter each frame (0, 8, 16, ...), by the one clip generator."""
    ramp = ("color=c=black", seconds, "format=rgb24,geq=r=N*8:g=N*8:b=N*8")
    synthetic_video(path, [ramp], size=(64, 48), rate=fps)


def test_video_examples_sample_ten_frames_in_range(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    _write_video(video)
    frames = train.video_frames(video, 1.0, 2.0, 10)  # engine.media: analysis-size frames
    assert frames.shape[0] == 10 and frames.shape[-1] == 3 and frames.dtype == np.uint8
    levels = frames[:, frames.shape[1] // 2, frames.shape[2] // 2, 0].astype(int)
    assert levels[0] >= 75 and levels[-1] <= 165 and all(np.diff(levels) >= -8)  # the ramp
    assert train.video_frames(video, None, None).shape[0] == 10
    with pytest.raises(InvalidRequest, match="outside the media"):
        train.video_frames(video, 50.0, 60.0)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(MediaError):
        train.video_frames(bad, 0.0, 1.0)
    fake = tmp_path / "still.png"
    fake.write_text("this is not a picture")
    (tmp_path / "i.jsonl").write_text(json.dumps({"image": "still.png", "description": "x"}))
    (example,), _ = train.read_examples(tmp_path / "i.jsonl")
    with pytest.raises(MediaError, match="not a readable picture"):
        train.example_frames(example)
    (tmp_path / "v.jsonl").write_text(
        json.dumps({"video": "clip.mp4", "start": 0.5, "end": 2.5, "description": "Calm."}) + "\n"
    )
    (example,), _ = train.read_examples(tmp_path / "v.jsonl")
    assert train.example_frames(example).shape[0] == 10


def test_cli_train_mmdm(model_dir: Path, data: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code = main([
        "train", "mmdm", "--train", str(data / "train.jsonl"), "--out", str(tmp_path / "run"),
        "--model-dir", str(model_dir), "--device", "cpu", "--max-steps", "1",
        "--grad-accum", "1", "--lr", "1e-3", "--json",
    ])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 1 and out["base_weights"] == "random" and out["installed"] is None
    assert Path(out["adapter"], "adapter_model.safetensors").is_file()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[]\n")
    code = main(["train", "mmdm", "--train", str(bad), "--out", str(tmp_path / "r2"),
                 "--model-dir", str(model_dir)])  # fmt: skip
    assert code == 2 and "bad.jsonl:1: each line must be a JSON object" in capsys.readouterr().err
