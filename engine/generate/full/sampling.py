"""Samplers for v-objective latent diffusion: DPM++ 3M SDE (the paper's) and DPM++ 2M SDE.

Kept apart from the denoiser: a sampler sees only ``denoise(x, sigma) -> x0`` and a noise
source. Each batch item has its own seeded generator, for the initial noise and for the SDE
noise of every step, so K variations run in one batch and each equals its single-seed run.
Progress, cancel and NaN checks happen in ``on_step`` between steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from bridge.errors import NumericalError

SAMPLERS = ("dpmpp-3m-sde", "dpmpp-2m-sde")

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OnStep = Callable[[int, torch.Tensor, torch.Tensor], None]


def sigma_schedule(
    steps: int,
    sigma_min: float,
    sigma_max: float,
    rho: float = 1.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Poly-exponential schedule from sigma_max down to sigma_min, then 0 (k-diffusion's,
    as stable-audio-tools uses it; rho=1 is log-linear)."""
    if steps < 1 or not 0 < sigma_min < sigma_max:
        raise ValueError(f"bad schedule: steps={steps}, sigma {sigma_min}..{sigma_max}")
    ramp = torch.linspace(1, 0, steps, dtype=torch.float64) ** rho
    log_min, log_max = math.log(sigma_min), math.log(sigma_max)
    sigmas = torch.exp(ramp * (log_max - log_min) + log_min)
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(device=device, dtype=torch.float32)


class SeededNoise:
    """Per-item generators (CPU, so a seed gives the same noise on every device)."""

    def __init__(
        self, seeds: Sequence[int], shape: tuple[int, ...], device: torch.device | str
    ) -> None:
        self.generators = [torch.Generator().manual_seed(int(s) & 0xFFFF_FFFF_FFFF) for s in seeds]
        self.shape = tuple(shape)
        self.device = device

    def __call__(self) -> torch.Tensor:
        return torch.stack([torch.randn(self.shape, generator=g) for g in self.generators]).to(
            self.device
        )


def v_denoiser(v_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Denoise:
    """Wrap a v-prediction model(x_scaled, t) into x0 = denoise(x, sigma) (sigma_data = 1)."""

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        c_skip = 1.0 / (s**2 + 1.0)
        c_out = -s / (s**2 + 1.0).sqrt()
        c_in = 1.0 / (s**2 + 1.0).sqrt()
        t = sigma.atan() / math.pi * 2
        v = v_model(x * c_in, t).to(x.dtype)
        return v * c_out + x * c_skip

    return denoise


def sample(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    noise: Callable[[], torch.Tensor],
    sampler: str = "dpmpp-3m-sde",
    eta: float = 1.0,
    s_noise: float = 1.0,
    on_step: OnStep | None = None,
) -> torch.Tensor:
    """Run the sampler from x (already scaled by sigmas[0]); returns the final x0."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    ones = x.new_ones(x.shape[0])
    denoised_1: torch.Tensor | None = None
    denoised_2: torch.Tensor | None = None
    h_1: torch.Tensor | None = None
    h_2: torch.Tensor | None = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma * ones)
        h = None
        if sigma_next == 0:
            x = denoised  # last step: the denoised estimate is the sample
        elif sampler == "dpmpp-3m-sde":
            h = sigma.log() - sigma_next.log()
            h_eta = h * (eta + 1)
            x = torch.exp(-h_eta) * x + (-h_eta).expm1().neg() * denoised
            phi_2 = h_eta.neg().expm1() / h_eta + 1
            if h_2 is not None:  # third order from the two previous estimates
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2
            elif h_1 is not None:  # second order on the second step
                x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
            if eta:
                x = x + noise() * sigma_next * (-2 * h * eta).expm1().neg().sqrt() * s_noise
        else:  # dpmpp-2m-sde, midpoint variant
            h = sigma.log() - sigma_next.log()
            eta_h = eta * h
            decay = (-h - eta_h).expm1().neg()
            x = sigma_next / sigma * (-eta_h).exp() * x + decay * denoised
            if h_1 is not None:
                x = x + 0.5 * decay * (h / h_1) * (denoised - denoised_1)
            if eta:
                x = x + noise() * sigma_next * (-2 * eta_h).expm1().neg().sqrt() * s_noise
        if on_step is not None:
            on_step(i, x, denoised)
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


def check_finite(i: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
    """Abort on NaN/inf: continuing would only waste the remaining steps."""
    if not (torch.isfinite(x).all() and torch.isfinite(denoised).all()):
        raise NumericalError(
            f"sampling diverged at step {i + 1} (NaN or infinite latents); try another seed, "
            'fp32 (generate.dtype = "fp32") or a lower guidance scale (generate.cfg_scale)'
        )
