"""The full generator on a GPU: bf16 and fp16 paths, cond + uncond in one batch, one
full-size step end to end, and peak memory with offload. Full size, random weights.

Marked `gpu`: skipped without CUDA (tests/conftest.py). tests/gpu/check.sh runs them on a lent
GPU; its CPU dry run (VMB_GPU_CHECK_DRY_RUN=1) runs the same checks on the CPU with the tiny
weights of `vmb models tiny` (folder in VMB_GPU_CHECK_MODELS), so CI keeps them working.
Figures go to the JSON-lines file named by VMB_GPU_CHECK_FIGURES (the check's report).
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

DRY = os.environ.get("VMB_GPU_CHECK_DRY_RUN") == "1"
DEVICE = torch.device("cpu" if DRY else "cuda")
pytestmark = [] if DRY else [pytest.mark.gpu]
OFFLOAD_PEAK_BYTES = 12e9  # the generator alone, with offload (issue 17)
# one model window: 10 s / 30 s of SAO 1.0's 47.55 s; the tiny model's window is 2.97 s
SHORT_S, CUE_S = (2.0, 2.0) if DRY else (10.0, 30.0)


def _record(name: str, value: float, unit: str, **extra: Any) -> None:
    path = os.environ.get("VMB_GPU_CHECK_FIGURES")
    if path:
        row = {"name": name, "value": value, "unit": unit, "device": DEVICE.type, **extra}
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """ECMG (SAO + ControlFormer + Stylization): tiny on the CPU dry run, else full size."""
    folder = tmp_path_factory.mktemp("gpu-network")
    if DRY:
        from engine import weights
        from engine.generate.full.ecmg import ECMG
        from engine.generate.full.sao import load_sao

        models = Path(os.environ.get("VMB_GPU_CHECK_MODELS") or folder / "models")
        if not (models / "vmb-ecmg").is_dir():
            weights.write_tiny(models, ["sao-1.0", "t5-base", "vmb-ecmg"], seed=0)
        sao = load_sao(models / "sao-1.0", models / "t5-base")
        return ECMG.load(sao, models / "vmb-ecmg")
    from engine.bench.generate import _full_network

    t0 = time.perf_counter()
    ecmg = _full_network(folder)
    _record("build full network (random weights, CPU)", time.perf_counter() - t0, "s")
    return ecmg


def _inputs(ecmg: Any, k: int, dtype: torch.dtype) -> tuple[Any, ...]:
    sao = ecmg.sao
    g = torch.Generator().manual_seed(0)
    shape = (k, sao.latent_channels, sao.window_latents)  # one whole model window
    x = torch.randn(shape, generator=g).to(DEVICE, dtype)
    control = torch.randn(shape, generator=g).to(DEVICE, dtype)
    style = torch.randn((k, ecmg.stylization.config.clap_dim), generator=g).to(DEVICE, dtype)
    cond = ecmg.conditioning(["a calm piano piece. tempo: slow"] * k, 0.0, 30.0)
    return x, cond, control, style


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_cfg_step_is_finite(network: Any, dtype: torch.dtype) -> None:
    ecmg = network.to(DEVICE, dtype)
    assert ecmg.dtype == dtype and ecmg.device.type == DEVICE.type
    x, cond, control, style = _inputs(ecmg, 1, dtype)
    t = torch.full((1,), 0.5, device=DEVICE)
    with torch.inference_mode():
        ecmg.v_prediction(x, t, cond, control, style, 7.0)  # warm-up
        _sync()
        t0 = time.perf_counter()
        v = ecmg.v_prediction(x, t, cond, control, style, 7.0)
        _sync()
        step_s = time.perf_counter() - t0
    assert v.shape == x.shape and v.dtype == dtype
    assert torch.isfinite(v).all(), f"{dtype} produced NaN/inf"
    assert v.float().abs().max() > 0
    name = str(dtype).replace("torch.", "")
    _record(f"one CFG step ({name}, {x.shape[-1]} latents)", step_s, "s", dtype=name)


def test_cond_and_uncond_share_one_batch(network: Any) -> None:
    """CFG doubles the batch (cond rows + uncond rows) in one transformer pass per step:
    never two passes."""
    ecmg = network.to(DEVICE, torch.bfloat16)
    x, cond, control, style = _inputs(ecmg, 2, torch.bfloat16)
    batches: list[int] = []

    def seen(module: Any, args: tuple, kwargs: dict) -> None:
        batches.append((args[0] if args else kwargs["x"]).shape[0])

    hook = ecmg.sao.transformer.register_forward_pre_hook(seen, with_kwargs=True)
    try:
        with torch.inference_mode():
            guided = ecmg.v_prediction(x, torch.full((2,), 0.5, device=DEVICE), cond, control,
                                       style, 7.0)  # fmt: skip
            assert batches == [4], f"cfg 7 with 2 items ran the transformer on {batches}"
            batches.clear()
            plain = ecmg.v_prediction(x, torch.full((2,), 0.5, device=DEVICE), cond, control,
                                      style, 1.0)  # fmt: skip
            assert batches == [2]
    finally:
        hook.remove()
    assert torch.isfinite(guided).all() and not torch.equal(guided, plain)


def _generator(network: Any, tmp: Path, **generate: Any) -> Any:
    from engine.config import settings_from_dict
    from engine.generate.full.generator import FullGenerator

    raw = {"models": {"device": DEVICE.type}, "generate": {"dtype": "bf16", **generate}}
    settings = settings_from_dict(tmp / "home", raw)
    dim = network.stylization.config.clap_dim  # the CLAP width the adapters were built for
    clap = np.random.default_rng(1).standard_normal(dim).astype(np.float32)
    return FullGenerator.with_network(settings, network, "random", clap_embed=lambda _: clap)


def _cue(tmp: Path, seconds: float) -> Any:
    from engine.bench.generate import _request

    return _request(tmp, seconds)


def test_one_full_size_step_end_to_end(network: Any, tmp_path: Path) -> None:
    """T5, the reference's VAE encode, one bf16 sampler step over a whole window, VAE decode,
    WAV written: every stage of a cue on the device."""
    gen = _generator(network, tmp_path, steps=1)
    request = _cue(tmp_path, SHORT_S)
    gen.generate(request)  # warm-up
    _sync()
    t0 = time.perf_counter()
    out = gen.generate(request)
    _sync()
    seconds = time.perf_counter() - t0
    assert out.extra["device"] == DEVICE.type and out.extra["dtype"] == "bfloat16"
    assert out.extra["steps"] == 1 and out.extra["cfg_scale"] == 7.0
    audio, sr = sf.read(out.audio_path, dtype="float32")
    assert sr == 44100 and len(audio) == round(SHORT_S * 44100) and np.isfinite(audio).all()
    _record(f"{SHORT_S:g} s cue, 1 step, end to end (bf16)", seconds, "s")


def test_peak_memory_with_offload(network: Any, tmp_path: Path) -> None:
    """With offload, T5 and the VAE wait on the CPU; the generator alone stays under 12 GB."""
    gen = _generator(network, tmp_path, steps=2, offload=True)
    sao = network.sao
    assert next(sao.model.pretransform.parameters()).device.type == "cpu"
    assert all(p.device.type == "cpu" for p in sao.prompt.__dict__["t5"].parameters())
    assert next(sao.dit.parameters()).device.type == DEVICE.type
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    out = gen.generate(_cue(tmp_path, CUE_S))
    assert "offload" not in " ".join(out.extra["notes"])  # no out-of-memory retry was needed
    if DEVICE.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
        _record(f"peak GPU memory, {CUE_S:g} s cue with offload (bf16)", peak / 2**20, "MB")
        assert peak <= OFFLOAD_PEAK_BYTES, f"peak {peak / 1e9:.1f} GB"
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        _record(f"peak memory (RSS), {CUE_S:g} s cue with offload", rss, "MB")
    # the helpers are back on the CPU after their turn
    assert next(sao.model.pretransform.parameters()).device.type == "cpu"
