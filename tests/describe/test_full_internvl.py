"""MMDM on a tiny random InternVL (+ adapter): prompt, pixels, sampling, LoRA, bad input.

Random weights: the sentences are noise; these tests check plumbing, not quality.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.errors import InvalidRequest, JobCancelled, MediaError, WeightsError
from engine import weights
from engine.config import Settings, settings_from_dict
from engine.describe.full import internvl, lora, tiny
from engine.describe.full.describer import FullDescriber, full_describe_available
from engine.types import Knobs, VisualInput, no_progress


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Toy matrices run faster on one thread, and the test machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    weights.write_tiny(out, ["internvl", "vmb-mmdm-lora"], seed=0)
    return out


@pytest.fixture(scope="module")
def describer(model_dir: Path) -> FullDescriber:
    return FullDescriber(_settings(model_dir))


def _settings(model_dir: Path) -> Settings:
    return settings_from_dict(
        model_dir.parent, {"models": {"model_dir": str(model_dir), "device": "cpu"}}
    )


def _video(n: int = 24, seed: int = 0) -> VisualInput:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(n, 36, 64, 3), dtype=np.uint8)
    return VisualInput(frames, tuple(i * 0.5 for i in range(n)), n * 0.5)


def test_prompt_golden() -> None:
    expected = (
        "<|im_start|>user\n"
        "Frame1: <img><IMG_CONTEXT><IMG_CONTEXT></img>\n"
        "Frame2: <img><IMG_CONTEXT><IMG_CONTEXT></img>\n"
        "Based on the emotional tone, pacing, and visuals of this video, how would you compose "
        "the music? Provide a one-sentence summary of the key musical elements that you use."
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert internvl.build_prompt(2, 2, "video") == expected
    image = internvl.build_prompt(1, 3, "image")
    assert image.startswith("<|im_start|>user\n<img>" + "<IMG_CONTEXT>" * 3 + "</img>\nBased")
    assert "visuals of this image" in image


def test_encoded_ids_hold_one_slot_per_frame(describer: FullDescriber) -> None:
    mmdm = describer._mmdm
    frames = _video().frames[:10]
    batch = mmdm.encode(frames, "video", answer="A calm piano piece.")
    ids = batch["input_ids"][0].tolist()
    tok = mmdm.tokenizer
    start, end = tok.convert_tokens_to_ids(["<img>", "</img>"])
    assert ids.count(start) == ids.count(end) == 10
    assert ids.count(mmdm.spec.image_token_id) == 10 * mmdm.spec.tokens_per_image == 40
    assert batch["pixel_values"].shape == (10, 3, 56, 56)
    labels = batch["labels"][0].tolist()
    answer = [t for t in labels if t != -100]
    assert tok.decode(answer) == "A calm piano piece.<|im_end|>"
    assert len(labels) == len(ids) and labels[: len(ids) - len(answer)] == [-100] * (
        len(ids) - len(answer)
    )


def test_pixels_match_the_reference_processor() -> None:
    from PIL import Image
    from transformers import GotOcr2ImageProcessorPil

    frame = np.random.default_rng(1).integers(0, 256, size=(1, 90, 120, 3), dtype=np.uint8)
    spec = internvl.VisionSpec(56, 4, 5, internvl.IMAGENET_MEAN, internvl.IMAGENET_STD)
    ours = internvl.pixel_values(frame, spec)
    ref = GotOcr2ImageProcessorPil(
        size={"height": 56, "width": 56}, crop_to_patches=False,
        image_mean=list(internvl.IMAGENET_MEAN), image_std=list(internvl.IMAGENET_STD),
    )(images=[Image.fromarray(frame[0])], return_tensors="pt")["pixel_values"]  # fmt: skip
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_uniform_frame_sampling() -> None:
    assert internvl.sample_indices(100) == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    assert internvl.sample_indices(4) == [0, 1, 2, 3]
    assert len(set(internvl.sample_indices(11))) == 10


def test_describe_returns_a_parsed_description_seeded_per_request(
    describer: FullDescriber,
) -> None:
    steps: list[tuple[str, int, int]] = []
    a = describer.describe(_video(), Knobs(), np.random.default_rng(7), lambda *s: steps.append(s))
    b = describer.describe(_video(), Knobs(), np.random.default_rng(7), no_progress)
    c = describer.describe(_video(), Knobs(), np.random.default_rng(8), no_progress)
    assert a.text and a.text == b.text and a.attributes == b.attributes
    assert c.text != a.text
    assert (a.backend, a.weights, a.source) == ("full", "random", "video")
    assert describer.adapter_used
    assert steps[0] == ("describe", 0, internvl.MAX_NEW_TOKENS)
    assert steps[-1] == ("describe", internvl.MAX_NEW_TOKENS, internvl.MAX_NEW_TOKENS)
    assert all(s[0] == "describe" for s in steps) and len(steps) > 3


def test_knobs_win_and_image_input(describer: FullDescriber) -> None:
    img = VisualInput(_video().frames[:1], (0.0,), 0.0, source="image")
    d = describer.describe(img, Knobs(mood="epic", genre="rock"), np.random.default_rng(1),
                           no_progress)  # fmt: skip
    assert d.source == "image" and (d.attributes.mood, d.attributes.genre) == ("epic", "rock")


def test_text_passes_through_without_the_model(describer: FullDescriber) -> None:
    text = VisualInput(np.zeros((0, 1, 1, 3), np.uint8), (), 0.0, source="text")
    d = describer.describe(
        text, Knobs(text="  A slow sad cello elegy. ", tempo="slow"), np.random.default_rng(0),
        no_progress,
    )  # fmt: skip
    assert d.text == "A slow sad cello elegy."
    assert (d.source, d.weights, d.attributes.mood) == ("text", "none", "sad")
    with pytest.raises(InvalidRequest, match="limit"):
        describer.describe(text, Knobs(text="la " * 400), np.random.default_rng(0), no_progress)
    with pytest.raises(InvalidRequest, match="needs the text"):
        describer.describe(text, Knobs(), np.random.default_rng(0), no_progress)


def test_bad_visual_input(describer: FullDescriber) -> None:
    empty = VisualInput(np.zeros((0, 36, 64, 3), np.uint8), (), 1.0)
    with pytest.raises(MediaError, match="no frames"):
        describer.describe(empty, Knobs(), np.random.default_rng(0), no_progress)
    floats = VisualInput(np.zeros((3, 36, 64, 3), np.float32), (0, 1, 2), 3.0)
    with pytest.raises(InvalidRequest, match="uint8"):
        describer.describe(floats, Knobs(), np.random.default_rng(0), no_progress)
    gray = VisualInput(np.zeros((3, 36, 64), np.uint8), (0, 1, 2), 3.0)
    with pytest.raises(InvalidRequest, match=r"\(N, H, W, 3\)"):
        describer.describe(gray, Knobs(), np.random.default_rng(0), no_progress)


def test_cancel_stops_generation(describer: FullDescriber) -> None:
    def progress(stage: str, step: int, of: int) -> None:
        if step >= 2:
            raise JobCancelled("cancelled")

    with pytest.raises(JobCancelled):
        describer.describe(_video(), Knobs(), np.random.default_rng(0), progress)
    # the global RNG is untouched by requests (forked per call)
    state = torch.get_rng_state()
    describer.describe(_video(), Knobs(), np.random.default_rng(3), no_progress)
    assert torch.equal(state, torch.get_rng_state())


def test_lora_only_on_the_language_model(model_dir: Path) -> None:
    mmdm = internvl.load_base(model_dir / "internvl", torch.device("cpu"))
    assert any(n.endswith("vision_tower.encoder.layer.0.attention.q_proj") for n, _ in
               mmdm.model.named_modules())  # fmt: skip
    lora.attach_lora(mmdm)
    trainable = [n for n, p in mmdm.model.named_parameters() if p.requires_grad]
    assert trainable and all(".language_model." in n and ".lora_" in n for n in trainable)
    wrapped = [n for n, m in mmdm.model.named_modules() if hasattr(m, "lora_A")]
    assert len(wrapped) == 2 * 4  # 2 layers x q, k, v, o
    assert not [n for n in wrapped if "vision_tower" in n or "multi_modal_projector" in n]
    assert mmdm.model.peft_config["default"].r == 16


def test_adapter_that_does_not_match_the_base(model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(model_dir / "vmb-mmdm-lora", other)
    info = json.loads((other / "vmb-mmdm.json").read_text())
    info["base"]["text_hidden_size"] = 64
    (other / "vmb-mmdm.json").write_text(json.dumps(info))
    mmdm = internvl.load_base(model_dir / "internvl", torch.device("cpu"))
    with pytest.raises(WeightsError, match="another base model"):
        lora.load_adapter(mmdm, other)

    from safetensors.torch import load_file, save_file

    shutil.rmtree(other)
    shutil.copytree(model_dir / "vmb-mmdm-lora", other)
    state = load_file(str(other / "adapter_model.safetensors"))
    state.pop(sorted(state)[0])
    save_file(state, str(other / "adapter_model.safetensors"))
    mmdm = internvl.load_base(model_dir / "internvl", torch.device("cpu"))
    with pytest.raises(WeightsError, match="does not fit the base model"):
        lora.load_adapter(mmdm, other)


def test_merged_adapter_gives_the_same_logits(model_dir: Path) -> None:
    frames = _video().frames[:10]
    outs = []
    for merge in (False, True):
        mmdm = internvl.load_base(model_dir / "internvl", torch.device("cpu"))
        lora.load_adapter(mmdm, model_dir / "vmb-mmdm-lora", merge=merge)
        with torch.no_grad():
            outs.append(mmdm.model(**mmdm.encode(frames, "video")).logits)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)


def test_availability_and_missing_weights(model_dir: Path, tmp_path: Path) -> None:
    ok, why = full_describe_available(_settings(model_dir))
    assert ok and "random weights" in why and "MMDM adapter" in why
    bare = tmp_path / "models"
    bare.mkdir()
    ok, why = full_describe_available(_settings(bare))
    assert not ok and "vmb models download internvl" in why
    with pytest.raises(WeightsError):
        FullDescriber(_settings(bare))
    shutil.copytree(model_dir / "internvl", bare / "internvl")
    ok, why = full_describe_available(_settings(bare))
    assert ok and "without the MMDM adapter" in why
    with pytest.raises(WeightsError, match="vmb-mmdm-lora"):
        FullDescriber(_settings(bare), require_adapter=True)
    weights.finalize_folder(bare / "internvl", "internvl", "real")  # as if downloaded
    zero_shot = FullDescriber(_settings(bare))
    assert zero_shot.weights == "base" and not zero_shot.adapter_used  # not "real": no MMDM


def test_corrupt_base_weights_are_refused(model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "internvl"
    shutil.copytree(model_dir / "internvl", broken)
    state = load_file(str(broken / "model.safetensors"))
    state["model.extra.weight"] = torch.zeros(2)
    save_file(state, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(WeightsError, match="do not match"):
        internvl.load_base(broken, torch.device("cpu"))


def test_bench_runs_the_full_size_code_path_on_a_tiny_config() -> None:
    """The GPU benchmark's function, on the CPU with the tiny config (same code path)."""
    from engine.bench.describe import FULL_TEXT, full_parameters, measure_random_model

    tok = tiny.tiny_tokenizer()
    r = measure_random_model(tiny.tiny_config(tok), torch.device("cpu"), torch.float32, 4, 1)
    assert r["latency_s"] > 0 and r["prompt_tokens"] > 40
    assert set(FULL_TEXT) == {"2B", "8B"}
    assert 7.5e9 < full_parameters("8B") < 8.5e9
