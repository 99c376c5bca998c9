"""ONNX encoders by device: CUDAExecutionProvider first where the device is CUDA and this
onnxruntime offers it, the CPU as the fallback, and the encoder says which provider ran.
The provider list is replaced at the onnxruntime.get_available_providers boundary; the
sessions themselves are real (this onnxruntime has no CUDA, so they fall back to the CPU)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.retrieve.full.encoders.runtime import ClapEncoder, ClipEncoder, export_onnx
from engine.util.device import (
    CPU_EP,
    CUDA_EP,
    compute_report,
    describe,
    device_type,
    onnx_providers,
)
from support.full_retrieve import tiny_models

GPU_BUILD = ["TensorrtExecutionProvider", CUDA_EP, CPU_EP]  # what onnxruntime-gpu lists


@pytest.mark.parametrize(
    ("device", "available", "wanted"),
    [
        ("cuda", GPU_BUILD, [CUDA_EP, CPU_EP]),
        ("cuda", ["AzureExecutionProvider", CPU_EP], [CPU_EP]),  # CPU onnxruntime on a GPU box
        ("cpu", GPU_BUILD, [CPU_EP]),  # never CUDA when the device is the CPU
        ("cpu", [CPU_EP], [CPU_EP]),
    ],
)
def test_provider_choice(device: str, available: list[str], wanted: list[str]) -> None:
    assert onnx_providers(device, available) == wanted


def test_device_type_follows_models_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert device_type("cpu") == "cpu" and device_type("mps") == "cpu"
    assert device_type("cuda") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_type("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_type("auto") == "cpu"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("onnx-models")
    for name in ("clap-music", "clip"):
        shutil.copytree(tiny_models() / name, root / name)
    export_onnx(root)
    return root


class _SessionSpy:
    """Records the providers each real InferenceSession was asked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked: list[list[str]] = []
        real = ort.InferenceSession

        def make(path: str, sess_options=None, providers=None, **kw):  # noqa: ANN001, ANN202
            self.asked.append(list(providers))
            return real(path, sess_options=sess_options, providers=providers, **kw)

        monkeypatch.setattr(ort, "InferenceSession", make)


def test_cuda_device_asks_cuda_first_and_reports_the_cpu_fallback(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu_clap = ClapEncoder(exported, runtime="onnx", device="cpu")
    cpu_clip = ClipEncoder(exported, runtime="onnx", device="cpu")
    assert cpu_clap.info.provider == CPU_EP and cpu_clap.info.ran_on() == f"onnx {CPU_EP}"

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_BUILD))
    spy = _SessionSpy(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this CPU build warns that CUDA is not among its own
        clap = ClapEncoder(exported, runtime="onnx", device="cuda")
        clip = ClipEncoder(exported, runtime="onnx", device="cuda")
    assert spy.asked == [[CUDA_EP, CPU_EP]] * 4  # audio, text, image, text
    # no CUDA in this onnxruntime: the sessions run on the CPU, and the encoder says so
    assert clap.info.provider == CPU_EP and clip.info.provider == CPU_EP

    # ... and really run, with the same numbers as the CPU-only sessions
    rng = np.random.default_rng(0)
    windows = (rng.standard_normal((2, clap.cfg.clip_samples)) * 0.2).astype(np.float32)
    assert np.allclose(clap.embed_windows(windows), cpu_clap.embed_windows(windows), atol=1e-6)
    assert np.allclose(clap.embed_text(["calm piano"]), cpu_clap.embed_text(["calm piano"]))
    frames = rng.integers(0, 255, (2, 32, 48, 3), dtype=np.uint8)
    emb = clip.embed_images(frames)
    assert emb.shape == (2, clip.dim) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert np.allclose(emb, cpu_clip.embed_images(frames), atol=1e-6)


def test_cpu_device_never_asks_for_cuda(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_BUILD))
    spy = _SessionSpy(monkeypatch)
    enc = ClapEncoder(exported, runtime="onnx", device="cpu")
    assert spy.asked == [[CPU_EP], [CPU_EP]] and enc.info.provider == CPU_EP


def test_torch_runtime_says_it_ran_on_the_cpu(exported: Path) -> None:
    enc = ClapEncoder(exported, runtime="torch", device="cuda")
    assert enc.info.runtime == "torch" and enc.info.ran_on() == "torch cpu"


def test_compute_report_and_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.config import settings_from_dict

    home = Path("/nonexistent-home")
    report = compute_report(settings_from_dict(home, {"models": {"device": "cpu"}}))
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["onnx_providers"] == [CPU_EP] and report["torch"] == torch.__version__
    assert describe(report) == f"cpu (CPU), float32; ONNX encoders: {CPU_EP}"
    report = compute_report(settings_from_dict(home, {"generate": {"dtype": "bf16"}}))
    assert report["dtype"] == "bfloat16"  # an explicit generate.dtype is what runs

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    report = compute_report(settings_from_dict(home, {"models": {"device": "cuda"}}))
    assert report["device"] is None and "no CUDA device" in report["error"]
    assert describe(report).startswith("unavailable (models.device is cuda but no CUDA")
