"""ECMG network: SAO + Music ControlFormer + Stylization Module, and its adapter folder.

The adapters live in their own model folder (``vmb-ecmg``): ``controlformer.{json,safetensors}``
and ``stylization.{json,safetensors}``; the base SAO weights are never rewritten. Everything
request-specific (prompt, reference latent, CLAP embedding, seeds) is passed per call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bridge.errors import WeightsError
from engine.generate.full import controlformer as cf
from engine.generate.full import stylization as st
from engine.generate.full.controlformer import ControlFormer, ControlFormerConfig
from engine.generate.full.sao import SAO, build_sao, randomize_zero_parameters, tiny_sao_config
from engine.generate.full.serialize import load_config, load_module_weights, save_module
from engine.generate.full.stylization import Stylization, StylizationConfig

DEFAULT_CONTROL_DEPTH = 12  # half of SAO's 24 blocks: "a copy of the early DiT blocks"
ADAPTER_FILES = (
    f"{cf.STEM}.json",
    f"{cf.STEM}.safetensors",
    f"{st.STEM}.json",
    f"{st.STEM}.safetensors",
)


class ECMG:
    """The conditioned generator's network; adapters are hooked into the SAO DiT while alive.
    Without adapters (:meth:`base`) it is the plain SAO: no block copies are built."""

    def __init__(
        self, sao: SAO, controlformer: ControlFormer | None, stylization: Stylization | None
    ) -> None:
        self.sao = sao
        self.adapters = nn.ModuleDict()  # this order is the optimizer's parameter order
        if controlformer is not None:
            self.adapters["controlformer"] = controlformer
        if stylization is not None:
            stylization.check_base(sao.dit)
            self.adapters["stylization"] = stylization
        self._handles: list[Any] = []
        if stylization is not None:  # its pre-hook runs first: it rewrites the context
            self._handles += stylization.attach(sao.transformer)
        if controlformer is not None:
            self._handles += controlformer.attach(sao.transformer)

    # ---- construction ----

    @classmethod
    def base(cls, sao: SAO) -> ECMG:
        """The base SAO alone (VMB's adapters not installed): references cannot be used."""
        return cls(sao, None, None)

    @classmethod
    def fresh(
        cls, sao: SAO, control_depth: int = DEFAULT_CONTROL_DEPTH, clap_dim: int | None = None
    ) -> ECMG:
        """New adapters: branch copied from the base, every new projection at zero. The style
        width is the CLAP config's joint space (default: the full CLAP config)."""
        if clap_dim is None:
            from engine.retrieve.full.encoders.clap import ClapConfig

            clap_dim = ClapConfig().joint_dim
        depth = min(control_depth, len(sao.transformer.layers))
        config = ControlFormerConfig(
            depth=depth, dim=sao.transformer.dim, latent_channels=sao.latent_channels
        )
        control = ControlFormer.from_base(sao.transformer, config)
        return cls(sao, control, Stylization.for_base(sao.dit, clap_dim))

    @classmethod
    def load(cls, sao: SAO, folder: Path) -> ECMG:
        """Adapters from a ``vmb-ecmg`` folder, strictly (config keys and weights)."""
        c_config = load_config(ControlFormerConfig, folder, cf.STEM)
        s_config = load_config(StylizationConfig, folder, st.STEM)
        control = ControlFormer.from_base(sao.transformer, c_config)
        load_module_weights(control, folder, cf.STEM)
        style = Stylization(s_config)
        load_module_weights(style, folder, st.STEM)
        return cls(sao, control, style.to(next(sao.dit.parameters()).dtype))

    def save_adapters(self, folder: Path) -> None:
        if not self.has_adapters:
            raise WeightsError("this network has no adapters to save (base SAO only)")
        save_module(self.controlformer, self.controlformer.config, folder, cf.STEM)
        save_module(self.stylization, self.stylization.config, folder, st.STEM)

    def close(self) -> None:
        """Unhook the adapters (the SAO model is then the plain base model again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def has_adapters(self) -> bool:
        return "controlformer" in self.adapters and "stylization" in self.adapters

    @property
    def controlformer(self) -> ControlFormer:
        return self.adapters["controlformer"]  # type: ignore[return-value]

    @property
    def stylization(self) -> Stylization:
        return self.adapters["stylization"]  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return next(self.sao.dit.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.sao.dit.parameters()).dtype

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ECMG:
        """DiT and adapters to (device, dtype); the VAE and the timing conditioners to device
        in fp32 (the VAE decodes in fp32 for quality)."""
        self.sao.model.to(device)
        self.sao.dit.to(device=device, dtype=dtype)
        self.adapters.to(device=device, dtype=dtype)
        return self

    def parameter_counts(self) -> dict[str, int]:
        counts = self.sao.parameter_counts()
        for name, module in self.adapters.items():
            counts[name] = sum(p.numel() for p in module.parameters())
        return counts

    # ---- conditioning and the DiT ----

    def conditioning(
        self,
        prompts: Sequence[str],
        seconds_start: float | Sequence[float],
        seconds_total: float | Sequence[float],
    ) -> dict[str, Any]:
        """SAT conditioning inputs (cross-attention + global) for a batch of prompts; timing
        per item or one value for all."""
        n = len(prompts)
        starts = [float(seconds_start)] * n if np.isscalar(seconds_start) else list(seconds_start)
        totals = [float(seconds_total)] * n if np.isscalar(seconds_total) else list(seconds_total)
        meta = [
            {"prompt": p, "seconds_start": float(a), "seconds_total": float(b)}
            for p, a, b in zip(prompts, starts, totals, strict=True)
        ]
        with torch.no_grad():
            tensors = self.sao.model.conditioner(meta, self.device)
            inputs = self.sao.model.get_conditioning_inputs(tensors)
        dtype = self.dtype
        return {
            k: (v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v)
            for k, v in inputs.items()
        }

    def v_prediction(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: dict[str, Any],
        control: torch.Tensor | None,
        style: torch.Tensor | None,
        cfg_scale: float = 1.0,
    ) -> torch.Tensor:
        """The DiT's v output; with cfg_scale != 1 SAT batches cond and uncond together."""
        extra: dict[str, torch.Tensor] = {}
        for key, value, module in (
            ("control_cond", control, "controlformer"),
            ("style_cond", style, "stylization"),
        ):
            if value is not None:
                if module not in self.adapters:  # SAT would hand the kwarg to every block
                    raise WeightsError(f"a {key} input needs the {module} (vmb-ecmg)")
                extra[key] = value
        return self.sao.model.model(
            x, t, **cond, cfg_scale=cfg_scale, cfg_dropout_prob=0.0, batch_cfg=True, **extra
        )

    def v_loss(
        self,
        latents: torch.Tensor,
        cond: dict[str, Any],
        control: torch.Tensor | None,
        style: torch.Tensor | None,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """v-objective MSE as SAT trains SAO: x_t = a x + s n, target v = a n - s x."""
        alpha = torch.cos(t * math.pi / 2)[:, None, None]
        sigma = torch.sin(t * math.pi / 2)[:, None, None]
        noised = latents * alpha + noise * sigma
        target = noise * alpha - latents * sigma
        out = self.v_prediction(noised, t, cond, control, style, cfg_scale=1.0)
        return torch.nn.functional.mse_loss(out.float(), target.float())

    # ---- VAE ----

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio [B, 2, S] -> the VAE posterior mean [B, C, S / 2048] (deterministic: no
        sampling noise in a conditioning signal)."""
        pre = self.sao.model.pretransform
        vae = pre.model
        x = audio.to(next(vae.parameters()).device, next(vae.parameters()).dtype)
        with torch.no_grad():
            moments = vae.encode(x, skip_bottleneck=True)
        mean, _ = moments.chunk(2, dim=1)
        return mean / pre.scale

    def decode(self, latents: torch.Tensor, chunked: bool = False) -> torch.Tensor:
        pre = self.sao.model.pretransform
        vae = pre.model
        z = latents.to(next(vae.parameters()).device, next(vae.parameters()).dtype)
        with torch.no_grad():
            return vae.decode_audio(z * pre.scale, chunked=chunked, iterate_batch=True).float()


# ---- tiny builder (engine/models.json "vmb-ecmg") ----


def write_tiny_ecmg(out_dir: Path, seed: int) -> None:
    """Adapters for the tiny SAO with small random (non-zero) projections, so they change the
    output: tests of the full path then exercise every branch. The style width is the tiny
    CLAP config's, so the tiny library's embeddings feed the tiny Stylization."""
    from engine.retrieve.full.encoders.clap import TINY_CONFIG

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sao = build_sao(tiny_sao_config())
        ecmg = ECMG.fresh(sao, control_depth=2, clap_dim=TINY_CONFIG.joint_dim)
    randomize_zero_parameters(ecmg.adapters, torch.Generator().manual_seed(seed + 2))
    ecmg.save_adapters(out_dir)
    ecmg.close()


def check_adapter_folder(folder: Path) -> None:
    missing = [f for f in ADAPTER_FILES if not (folder / f).is_file()]
    if missing:
        raise WeightsError(f"{folder} is missing {', '.join(missing)}")
