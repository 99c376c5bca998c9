"""Import stable-audio-tools (SAT 0.0.19) and k-diffusion without torchaudio/torchvision.

Why: on CPU (and on many GPU boxes) torchaudio/torchvision wheels are CUDA-linked and fail to
import, yet SAT and k-diffusion import them at module level for code the SAO path never runs.
We put small stand-ins in ``sys.modules`` only while those imports run, then remove them, so
nothing else in the process ever sees a fake torchaudio. A real torchaudio is used if it
imports. Import this module (``load_sat()``) before any ``stable_audio_tools.models.*``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import sys
import types
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine.util.stubs import stub_module, temporary_modules

_LOADED: dict[str, Any] = {}


def _prime_transformers() -> None:
    """transformers caches these probes; run them before any stub exists (a stub without
    ``__spec__`` otherwise breaks later transformers imports)."""
    with contextlib.suppress(Exception):
        from transformers.utils import import_utils

        import_utils.is_torchvision_available()
        import_utils.is_torchaudio_available()


def _real_torchaudio_works() -> bool:
    if "torchaudio" in sys.modules and not getattr(sys.modules["torchaudio"], "_vmb_stub", False):
        return True
    if importlib.util.find_spec("torchaudio") is None:
        return False
    try:
        import torchaudio  # noqa: F401
        import torchaudio.transforms  # noqa: F401
    except Exception:
        sys.modules.pop("torchaudio", None)
        return False
    return True


class Resample(torch.nn.Module):
    """Plain-torch port of torchaudio's ``Resample`` (sinc_interp_hann, width 6, rolloff 0.99)."""

    def __init__(
        self,
        orig_freq: int = 16000,
        new_freq: int = 16000,
        lowpass_filter_width: int = 6,
        rolloff: float = 0.99,
        **unused: Any,
    ) -> None:
        super().__init__()
        if unused.get("resampling_method", "sinc_interp_hann") != "sinc_interp_hann":
            raise NotImplementedError(
                "only sinc_interp_hann resampling is available without torchaudio"
            )
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)
        self.gcd = math.gcd(self.orig_freq, self.new_freq)
        self.width_param = lowpass_filter_width
        self.rolloff = rolloff
        if self.orig_freq != self.new_freq:
            kernel, self.width = self._kernel()
            self.register_buffer("kernel", kernel, persistent=False)

    def _kernel(self) -> tuple[torch.Tensor, int]:
        orig, new = self.orig_freq // self.gcd, self.new_freq // self.gcd
        base_freq = min(orig, new) * self.rolloff
        width = math.ceil(self.width_param * orig / base_freq)
        idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
        t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
        t = (t * base_freq).clamp(-self.width_param, self.width_param)
        window = torch.cos(t * math.pi / self.width_param / 2) ** 2
        t = t * math.pi
        kernels = torch.where(t == 0, torch.ones_like(t), t.sin() / t)
        kernels = kernels * window * (base_freq / orig)
        return kernels.to(torch.float32), width

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.orig_freq == self.new_freq:
            return waveform
        orig, new = self.orig_freq // self.gcd, self.new_freq // self.gcd
        shape = waveform.shape
        wav = waveform.reshape(-1, shape[-1])
        length = wav.shape[-1]
        wav = F.pad(wav, (self.width, self.width + orig))
        out = F.conv1d(wav[:, None], self.kernel.to(wav.dtype), stride=orig)
        out = out.transpose(1, 2).reshape(wav.shape[0], -1)
        out = out[..., : math.ceil(new * length / orig)]
        return out.reshape(*shape[:-1], out.shape[-1])


def _unavailable(name: str) -> type:
    class _Missing:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError(f"{name} is not available (torchaudio/torchvision missing)")

    _Missing.__name__ = name
    return _Missing


def _torchaudio_stubs() -> dict[str, types.ModuleType]:
    names = ("Spectrogram", "MelSpectrogram", "InverseSpectrogram", "MFCC")
    transforms = stub_module(
        "torchaudio.transforms", Resample=Resample, **{n: _unavailable(n) for n in names}
    )
    root = stub_module("torchaudio", transforms=transforms)
    return {"torchaudio": root, "torchaudio.transforms": transforms}


def _torchvision_stubs() -> dict[str, types.ModuleType]:
    functional = stub_module("torchvision.transforms.functional")
    transforms = stub_module("torchvision.transforms", functional=functional)
    root = stub_module("torchvision", transforms=transforms)
    return {
        "torchvision": root,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": functional,
    }


def _load_k_diffusion() -> types.ModuleType:
    """A bare ``k_diffusion`` package with only utils, sampling and external (what SAT uses);
    its ``__init__`` would import torchvision-dependent training code."""
    existing = sys.modules.get("k_diffusion")
    if existing is not None and hasattr(existing, "external"):
        return existing
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed (requirements/nodeps.txt)")
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = list(spec.submodule_search_locations)  # type: ignore[attr-defined]
    pkg.__file__ = str(Path(pkg.__path__[0]) / "__init__.py")
    sys.modules["k_diffusion"] = pkg
    try:
        with temporary_modules(_torchvision_stubs()):
            pkg.utils = importlib.import_module("k_diffusion.utils")  # type: ignore[attr-defined]
        pkg.sampling = importlib.import_module("k_diffusion.sampling")  # type: ignore[attr-defined]
        pkg.external = importlib.import_module("k_diffusion.external")  # type: ignore[attr-defined]
    except Exception:
        for name in [n for n in sys.modules if n == "k_diffusion" or n.startswith("k_diffusion.")]:
            del sys.modules[name]
        raise
    return pkg


def load_sat() -> types.SimpleNamespace:
    """Import the SAT modules the SAO path needs; returns them as one namespace (cached)."""
    if "sat" in _LOADED:
        return _LOADED["sat"]
    _prime_transformers()
    _load_k_diffusion()
    stubs = {} if _real_torchaudio_works() else _torchaudio_stubs()
    # SAT prints ("flash_attn not installed ...") at import: keep stdout for protocol traffic.
    with temporary_modules(stubs), contextlib.redirect_stdout(sys.stderr):
        diffusion = importlib.import_module("stable_audio_tools.models.diffusion")
        conditioners = importlib.import_module("stable_audio_tools.models.conditioners")
        transformer = importlib.import_module("stable_audio_tools.models.transformer")
        dit = importlib.import_module("stable_audio_tools.models.dit")
        factory = importlib.import_module("stable_audio_tools.models.factory")
        pretransforms = importlib.import_module("stable_audio_tools.models.pretransforms")
        autoencoders = importlib.import_module("stable_audio_tools.models.autoencoders")
    sat = types.SimpleNamespace(
        diffusion=diffusion,
        conditioners=conditioners,
        transformer=transformer,
        dit=dit,
        factory=factory,
        pretransforms=pretransforms,
        autoencoders=autoencoders,
    )
    _LOADED["sat"] = sat
    return sat
