"""Whether the full generator can run here: configuration checks, device and dtype choice,
and a DiT size estimate (from the config alone) that keeps backend=auto off slow CPUs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from bridge.errors import ConfigError, WeightsError
from engine import weights
from engine.config import GenerateConfig, Settings
from engine.generate.full import sampling
from engine.generate.full.sao import read_config
from engine.types import Weights

CPU_MAX_DIT_PARAMS = 100_000_000  # above this, backend=auto does not pick the CPU


def check_config(cfg: GenerateConfig) -> None:
    if cfg.sampler not in sampling.SAMPLERS:
        raise ConfigError(f"generate.sampler must be one of {', '.join(sampling.SAMPLERS)}")
    if cfg.steps < 1 or cfg.cfg_scale < 0:
        raise ConfigError("generate.steps must be >= 1 and generate.cfg_scale >= 0")
    if not 0 < cfg.sigma_min < cfg.sigma_max:
        raise ConfigError("generate.sigma_min must be > 0 and below generate.sigma_max")
    if cfg.dtype not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"generate.dtype must be auto, fp32, bf16 or fp16, not {cfg.dtype!r}")
    if cfg.max_cue_s <= 0 or cfg.overlap_s <= 0:
        raise ConfigError("generate.max_cue_s and generate.overlap_s must be > 0")


def pick_device(preference: str) -> torch.device:
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("models.device is cuda but no CUDA device is available")
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if preference == "mps" or (preference == "auto" and mps is not None and mps.is_available()):
        if mps is None or not mps.is_available():
            raise ConfigError("models.device is mps but MPS is not available")
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(preference: str, device: torch.device) -> torch.dtype:
    """bf16 where the GPU has it, else fp16; fp32 on the CPU (16-bit matmuls are slow there)."""
    if preference == "fp32" or (preference == "auto" and device.type == "cpu"):
        return torch.float32
    if preference == "bf16":
        return torch.bfloat16
    if preference == "fp16":
        return torch.float16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def estimate_dit_parameters(config: dict[str, Any]) -> int:
    """From the config alone (no SAT import): attention, cross-attention and SwiGLU per block."""
    dit = config["model"]["diffusion"]["config"]
    d, depth, c = int(dit["embed_dim"]), int(dit["depth"]), int(dit.get("cond_token_dim", 0))
    per_block = 4 * d * d + (2 * d * d + 2 * c * c) + 12 * d * d
    return depth * per_block


def full_available(settings: Settings) -> tuple[bool, str]:
    """Whether the full generator's weights are installed and this device can run it."""
    cfg = settings.generate
    try:
        check_config(cfg)
        base = weights.resolve(cfg.model, settings.model_dir)
        text = weights.resolve(cfg.text_encoder, settings.model_dir)
        device = pick_device(settings.models.device)
        params = estimate_dit_parameters(read_config(base.path))
    except (ConfigError, WeightsError) as exc:
        return False, exc.message
    try:
        adapters = weights.resolve(cfg.adapters, settings.model_dir)
        adapter_note = f"{cfg.adapters} {adapters.weights} weights"
    except WeightsError:
        adapters = None
        adapter_note = f"{cfg.adapters} not installed: plain SAO, references unused"
    label = weights_label([base.weights, text.weights], adapters.weights if adapters else None)
    if device.type == "cpu" and params > CPU_MAX_DIT_PARAMS and settings.models.device != "cpu":
        return False, (
            f"no GPU: the full model ({params / 1e9:.2f} B DiT parameters) takes many minutes "
            'per cue on the CPU; set models.device = "cpu" to use it anyway'
        )
    return True, f"SAO on {device.type} ({label} weights; {adapter_note})"


def weights_label(base: Sequence[str], adapters: str | None) -> Weights:
    """random if anything is; base when VMB's adapters are missing; else real."""
    if "random" in base or adapters == "random":
        return "random"
    return "real" if adapters is not None else "base"
