"""CLAP and CLIP encoders at tiny sizes (random weights): shapes, determinism, strict loading,
and torch vs ONNX parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.errors import WeightsError
from engine import weights
from engine.retrieve.full.encoders import clap, clip
from engine.retrieve.full.encoders.runtime import (
    ClapEncoder,
    ClipEncoder,
    export_onnx,
    model_identity,
)
from support.full_retrieve import click_track, tiny_models


def _resample48(x: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(x, 160, 147).astype(np.float32)


def test_tiny_clap_shapes_and_unit_vectors() -> None:
    enc = ClapEncoder(tiny_models(), runtime="torch")
    assert enc.info.weights == "random" and enc.info.runtime == "torch"
    wave = _resample48(click_track(120, 25.0))
    windows = clap.audio_windows(wave, enc.cfg, max_windows=12)
    assert windows.shape == (3, enc.cfg.clip_samples)  # 25 s -> three 10 s windows
    emb = enc.embed_audio(wave)
    assert emb.shape == (enc.dim,) and emb.dtype == np.float32
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    text = enc.embed_text(["This is rock music.", "a calm piano piece", ""])
    assert text.shape == (3, enc.dim)
    assert np.allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    # short audio is repeated to fill one window, not zero-padded
    short = clap.audio_windows(wave[:48000], enc.cfg, 12)
    assert short.shape == (1, enc.cfg.clip_samples) and np.abs(short[0, -48000:]).max() > 0


def test_tiny_clip_shapes_and_unit_vectors() -> None:
    enc = ClipEncoder(tiny_models(), runtime="torch")
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 70, 3), dtype=np.uint8)
    img = enc.embed_images(frames)
    assert img.shape == (3, enc.dim)
    assert np.allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    assert enc.embed_images(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, enc.dim)
    assert enc.embed_text(["a city at night", "a beach"]).shape == (2, enc.dim)


def test_determinism_same_seed_same_weights_same_outputs(tmp_path: Path) -> None:
    weights.write_tiny(tmp_path, ["clap-music", "clip"], seed=0)
    # Same seed -> byte-identical weights -> the same identity (libraries stay valid).
    assert model_identity(tmp_path / "clip") == model_identity(tiny_models() / "clip")
    a = ClapEncoder(tiny_models(), runtime="torch")
    b = ClapEncoder(tmp_path, runtime="torch")
    wave = _resample48(click_track(100, 12.0, seed=3))
    assert np.array_equal(a.embed_audio(wave), a.embed_audio(wave))
    assert np.allclose(a.embed_audio(wave), b.embed_audio(wave), atol=1e-6)
    assert np.allclose(a.embed_text(["happy pop"]), b.embed_text(["happy pop"]), atol=1e-6)
    c = ClipEncoder(tmp_path, runtime="torch")
    frames = np.full((1, 32, 32, 3), 90, np.uint8)
    assert np.allclose(
        c.embed_images(frames),
        ClipEncoder(tiny_models(), runtime="torch").embed_images(frames),
        atol=1e-6,
    )
    weights.write_tiny(tmp_path / "other", ["clip"], seed=1)
    assert model_identity(tmp_path / "other" / "clip") != model_identity(tmp_path / "clip")


def test_strict_loading_rejects_unexpected_and_missing_keys(tmp_path: Path) -> None:
    shutil.copytree(tiny_models() / "clap-music", tmp_path / "clap-music")
    ckpt = tmp_path / "clap-music" / clap.ClapConfig().checkpoint
    sd = torch.load(ckpt, weights_only=True)["state_dict"]
    sd["audio_branch.surprise"] = torch.zeros(1)
    torch.save({"state_dict": sd}, ckpt)
    with pytest.raises(WeightsError, match="unexpected"):
        clap.load_torch_model(tmp_path / "clap-music")
    del sd["audio_branch.surprise"]
    del sd["text_projection.0.weight"]
    torch.save({"state_dict": sd}, ckpt)
    with pytest.raises(WeightsError, match="missing"):
        clap.load_torch_model(tmp_path / "clap-music")
    # The one buffer released LAION checkpoints carry and transformers recomputes is accepted.
    shutil.copy(tiny_models() / "clap-music" / ckpt.name, ckpt)
    sd = torch.load(ckpt, weights_only=True)["state_dict"]
    sd = {"module." + k: v for k, v in sd.items()}
    sd["module.text_branch.embeddings.position_ids"] = torch.arange(80)[None]
    torch.save({"state_dict": sd}, ckpt)
    clap.load_torch_model(tmp_path / "clap-music")
    with pytest.raises(WeightsError, match="unknown keys"):
        clap.ClapConfig.from_json({"joint_dim": 8, "typo": 1})


def test_missing_model_folder_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="vmb models"):
        ClapEncoder(tmp_path)


def test_onnx_parity_and_auto_runtime(tmp_path: Path) -> None:
    for name in ("clap-music", "clip"):
        shutil.copytree(tiny_models() / name, tmp_path / name)
    written = export_onnx(tmp_path)
    assert {p.name for p in written} == {"clap-music", "clip"}
    t_clap = ClapEncoder(tmp_path, runtime="torch")
    o_clap = ClapEncoder(tmp_path)  # auto picks the export made for these exact weights
    assert o_clap.info.runtime == "onnx"
    rng = np.random.default_rng(0)
    windows = (rng.standard_normal((3, t_clap.cfg.clip_samples)) * [[0.05], [0.2], [0.5]]).astype(
        np.float32
    )
    assert np.abs(t_clap.embed_windows(windows) - o_clap.embed_windows(windows)).max() < 1e-4
    texts = ["a", "This is rock music.", "calm " * 40]
    assert np.abs(t_clap.embed_text(texts) - o_clap.embed_text(texts)).max() < 1e-5
    t_clip = ClipEncoder(tmp_path, runtime="torch")
    o_clip = ClipEncoder(tmp_path, runtime="onnx")
    frames = rng.integers(0, 255, (5, 40, 50, 3), dtype=np.uint8)  # batch differs from export
    assert np.abs(t_clip.embed_images(frames) - o_clip.embed_images(frames)).max() < 1e-5
    assert np.abs(t_clip.embed_text(texts) - o_clip.embed_text(texts)).max() < 1e-5
    # An export made for other weights is ignored.
    meta = tmp_path / "onnx" / "clip" / "export.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "identity": "stale"}))
    assert ClipEncoder(tmp_path).info.runtime == "torch"
    with pytest.raises(WeightsError, match="export-onnx"):
        ClipEncoder(tmp_path, runtime="onnx")


def test_image_preprocessing_matches_clip_conventions() -> None:
    prep = {"size": 32, "mean": clip.OPENAI_MEAN, "std": clip.OPENAI_STD}
    frames = np.zeros((1, 48, 96, 3), np.uint8)
    frames[:, :, :48] = 255  # left half white: the centre crop keeps both halves
    px = clip.pixel_values(frames, prep)
    assert px.shape == (1, 3, 32, 32) and px.dtype == np.float32
    assert px[0, 0, 16, 2] > 1.5 and px[0, 0, 16, 29] < -1.5
