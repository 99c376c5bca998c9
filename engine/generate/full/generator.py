"""Full generator: explicitly conditioned music generation with SAO + ControlFormer + Stylization.

One cue = the description's sentence with the targeted attribute appended (text), the broad
reference's VAE latent (ControlFormer), the targeted reference's CLAP embedding
(Stylization), and the cue's exact length. Cues up to one model window (47.55 s for SAO 1.0)
are one sampling run conditioned on ``seconds_total`` and trimmed; longer cues are generated
window by window, each window continuing the previous one (its first latents are held to the
previous window's last ones during sampling) and crossfaded over that overlap.

Models are loaded once and stay resident; everything request-specific is passed per call.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bridge.errors import (
    InvalidRequest,
    OutOfMemory,
    WeightsError,
)
from engine import weights
from engine.config import Settings
from engine.generate.full import conditioning as cond
from engine.generate.full import sampling
from engine.generate.full.audio import (
    Window,
    assemble,
    load_audio,
    loop_to,
    plan_windows,
    resample,
    write_wav_atomic,
)
from engine.generate.full.availability import check_config, pick_device, pick_dtype, weights_label
from engine.generate.full.ecmg import ECMG, check_adapter_folder
from engine.generate.full.sao import load_sao
from engine.types import (
    GeneratedAudio,
    GenerationRequest,
    ProgressFn,
    Reference,
    Weights,
    no_progress,
)

ClapEmbed = Callable[[Reference], np.ndarray]
"""Returns the CLAP audio embedding of a library piece, for references that do not carry the
one the library stores (``Reference.clap``)."""


@contextlib.contextmanager
def _visiting(module: torch.nn.Module, device: torch.device) -> Iterator[None]:
    module.to(device)
    try:
        yield
    finally:
        module.to("cpu")


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate" in text)


# ---- the generator ----


@dataclass
class _Loaded:
    ecmg: ECMG
    weights: Weights  # "real" | "base" (no vmb-ecmg) | "random"
    adapters_installed: bool
    device: torch.device
    dtype: torch.dtype


class FullGenerator:
    """engine.types.Generator for backend "full".

    The Stylization input is the targeted reference's CLAP embedding as the library stores it
    (``Reference.clap``); ``clap_embed`` gives it for references without one. Without either,
    or without a targeted reference, Stylization is off (said in ``conditioning``).
    ``model_dir`` overrides the settings' model folder (tests, benchmarks).
    """

    def __init__(
        self, settings: Settings, clap_embed: ClapEmbed | None = None, model_dir: Path | None = None
    ) -> None:
        check_config(settings.generate)
        self.settings = settings
        self.config = settings.generate
        self.clap_embed = clap_embed
        self.model_dir = model_dir or settings.model_dir
        self.offload = settings.generate.offload
        self._loaded: _Loaded | None = None

    @classmethod
    def with_network(
        cls,
        settings: Settings,
        ecmg: ECMG,
        weights_kind: Weights,
        adapters_installed: bool = True,
        clap_embed: ClapEmbed | None = None,
    ) -> FullGenerator:
        """A generator around an already built network (benchmarks of the full-size model
        with random weights, which are never written to disk)."""
        gen = cls(settings, clap_embed=clap_embed)
        device = pick_device(settings.models.device)
        dtype = pick_dtype(settings.generate.dtype, device)
        ecmg.to(device, dtype)
        gen._loaded = _Loaded(ecmg, weights_kind, adapters_installed, device, dtype)
        gen._place_helpers()
        return gen

    # -- loading --

    def load(self, progress: ProgressFn = no_progress) -> _Loaded:
        """Load SAO, T5 and the adapters once; they stay resident for later requests."""
        if self._loaded is not None:
            return self._loaded
        cfg = self.config
        progress("load", 0, 1)
        base = weights.resolve(cfg.model, self.model_dir)
        text = weights.resolve(cfg.text_encoder, self.model_dir)
        try:
            adapters = weights.resolve(cfg.adapters, self.model_dir)
        except WeightsError:
            adapters = None
        sao = load_sao(base.path, text.path)
        if adapters is not None:
            check_adapter_folder(adapters.path)
            ecmg = ECMG.load(sao, adapters.path)
        else:
            ecmg = ECMG.base(sao)  # no block copies: nothing would feed them
        device = pick_device(self.settings.models.device)
        dtype = pick_dtype(cfg.dtype, device)
        ecmg.to(device, dtype)
        self._loaded = _Loaded(
            ecmg=ecmg,
            weights=weights_label(
                [base.weights, text.weights], adapters.weights if adapters else None
            ),
            adapters_installed=adapters is not None,
            device=device,
            dtype=dtype,
        )
        self._place_helpers()
        progress("load", 1, 1)
        return self._loaded

    def _place_helpers(self) -> None:
        """T5 and VAE on the GPU, or on the CPU when offloading (moved in only for their turn)."""
        loaded = self._loaded
        assert loaded is not None
        home = torch.device("cpu") if self.offload else loaded.device
        t5_dtype = torch.float32 if home.type == "cpu" else loaded.dtype
        prompt = loaded.ecmg.sao.prompt
        if prompt.loaded:
            prompt.move_encoder(home)
            prompt.__dict__["t5"].to(t5_dtype)
        loaded.ecmg.sao.model.pretransform.to(home)

    def enable_offload(self) -> None:
        """Sequential offload after an out-of-memory (the daemon may also call it)."""
        self.offload = True
        if self._loaded is not None:
            self._place_helpers()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- requests --

    def generate(
        self, request: GenerationRequest, progress: ProgressFn = no_progress
    ) -> GeneratedAudio:
        return self.generate_variations(request, [request.seed], progress)[0]

    def generate_variations(
        self,
        request: GenerationRequest,
        seeds: Sequence[int],
        progress: ProgressFn = no_progress,
        names: Sequence[str] | None = None,
    ) -> list[GeneratedAudio]:
        """K variations of one cue in one batch (one seed each); files are ``names`` or
        ``<name>.wav`` for one seed, ``<name>-<seed>.wav`` for several."""
        self._validate(request, seeds)
        if names is not None and len(names) != len(seeds):
            raise InvalidRequest(f"{len(names)} names for {len(seeds)} seeds")
        try:
            audio, extra = self._run(request, seeds, progress)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if self.offload or not self.config.oom_retry_offload:
                raise OutOfMemory(
                    f"out of memory generating a {request.duration_s:.1f} s cue "
                    f"(offload {'on' if self.offload else 'off'}); shorten the cue, lower "
                    "the variation count or free GPU memory",
                    retry_with_offload=not self.offload,
                ) from None
            self.enable_offload()
            try:
                audio, extra = self._run(request, seeds, progress)
            except Exception as exc2:
                if _is_oom(exc2):
                    raise OutOfMemory(
                        f"out of memory generating a {request.duration_s:.1f} s cue even with "
                        "offload; shorten the cue or free GPU memory"
                    ) from None
                raise
            extra["notes"].append("retried with offload after running out of GPU memory")
        return self._write(request, seeds, audio, extra, progress, names)

    def _validate(self, request: GenerationRequest, seeds: Sequence[int]) -> None:
        limit = min(self.config.max_cue_s, self.settings.pipeline.max_cue_s)
        if not request.duration_s > 0:
            raise InvalidRequest(f"cue duration must be > 0 s, got {request.duration_s}")
        if request.duration_s > limit:
            raise InvalidRequest(
                f"cue of {request.duration_s:.1f} s is longer than the maximum {limit:.0f} s "
                "(generate.max_cue_s / pipeline.max_cue_s)"
            )
        if not 8000 <= request.sample_rate <= 192000:
            raise InvalidRequest(f"sample rate {request.sample_rate} is not supported")
        if not seeds:
            raise InvalidRequest("at least one seed is needed")

    def _run(
        self, request: GenerationRequest, seeds: Sequence[int], progress: ProgressFn
    ) -> tuple[np.ndarray, dict[str, Any]]:
        loaded = self.load(progress)
        ecmg, cfg = loaded.ecmg, self.config
        sao = ecmg.sao
        sr, ratio = sao.sample_rate, sao.downsampling_ratio
        n_model = math.ceil(request.duration_s * sr)
        total_latents = math.ceil(n_model / ratio)
        overlap = math.ceil(cfg.overlap_s * sr / ratio)
        windows = plan_windows(total_latents, sao.window_latents, overlap, cfg.crop_to_cue)
        notes: list[str] = []
        k = len(seeds)

        prompt, conditioning = cond.describe_conditioning(
            request, sao.prompt, cfg.adapters, loaded.adapters_installed, loaded.weights, notes
        )
        control_full, style = None, None
        if loaded.adapters_installed:
            control_full = self._reference_latent(request, total_latents, loaded, notes, progress)
            emb = cond.style_embedding(
                request.retrieval.targeted,
                self.clap_embed,
                loaded.ecmg.stylization.config.clap_dim,
                cfg.adapters,
                notes,
            )
            if emb is not None:
                style = torch.from_numpy(emb)[None].repeat(k, 1).to(loaded.device)
        cond.mark_used(conditioning, control=control_full is not None, style=style is not None)

        chunks = self._sample_windows(
            windows, prompt, seeds, n_model, control_full, style, progress
        )
        audio = assemble(chunks, windows, ratio, n_model)
        extra: dict[str, Any] = {
            "prompt": prompt,
            "windows": len(windows),
            "steps": cfg.steps,
            "cfg_scale": cfg.cfg_scale,
            "sampler": cfg.sampler,
            "sigma": [cfg.sigma_min, cfg.sigma_max],
            "device": loaded.device.type,
            "dtype": str(loaded.dtype).replace("torch.", ""),
            "seeds": [int(s) for s in seeds],
            "conditioning": conditioning,
            "notes": notes,
        }
        return audio, extra

    def _sample_windows(
        self,
        windows: list[Window],
        prompt: str,
        seeds: Sequence[int],
        n_model: int,
        control_full: torch.Tensor | None,
        style: torch.Tensor | None,
        progress: ProgressFn,
    ) -> list[np.ndarray]:
        """Sample and decode window by window, each continuing the previous one."""
        loaded = self._loaded
        assert loaded is not None
        cfg = self.config
        sigmas = sampling.sigma_schedule(
            cfg.steps, cfg.sigma_min, cfg.sigma_max, cfg.rho, loaded.device
        )
        total_steps = len(windows) * cfg.steps
        chunks: list[np.ndarray] = []
        previous: torch.Tensor | None = None
        for w in windows:
            with torch.inference_mode():
                latents = self._sample_window(
                    w,
                    prompt,
                    seeds,
                    n_model,
                    control_full,
                    style,
                    previous,
                    sigmas,
                    lambda i, done=w.index * cfg.steps: progress(
                        "generate", done + i + 1, total_steps
                    ),
                )
            previous = latents
            progress("decode", w.index, len(windows))
            chunks.append(self._decode(latents))
            progress("decode", w.index + 1, len(windows))
        return chunks

    def _reference_latent(
        self,
        request: GenerationRequest,
        total_latents: int,
        loaded: _Loaded,
        notes: list[str],
        progress: ProgressFn,
    ) -> torch.Tensor | None:
        """The broad reference's latent, one window long at most, looped if shorter."""
        if not request.retrieval.broad:
            notes.append("no broad reference: ControlFormer off")
            return None
        sao = loaded.ecmg.sao
        ref = request.retrieval.broad[0]
        ratio = sao.downsampling_ratio
        n = min(total_latents, sao.window_latents) * ratio
        progress("encode", 0, 1)
        audio = load_audio(ref.path, sao.sample_rate, sao.audio_channels, max_samples=n)
        if audio.shape[-1] < n:
            notes.append(f"broad reference {ref.piece_id} shorter than needed: looped")
        audio = loop_to(audio, n)
        with self._helper_on_device(loaded, sao.model.pretransform):
            latent = loaded.ecmg.encode(torch.from_numpy(audio)[None])[0]
        progress("encode", 1, 1)
        return latent.to(loaded.device)

    def _sample_window(
        self,
        w: Window,
        prompt: str,
        seeds: Sequence[int],
        n_model: int,
        control_full: torch.Tensor | None,
        style: torch.Tensor | None,
        previous: torch.Tensor | None,
        sigmas: torch.Tensor,
        step_progress: Callable[[int], None],
    ) -> torch.Tensor:
        loaded = self._loaded
        assert loaded is not None
        ecmg, cfg = loaded.ecmg, self.config
        sao = ecmg.sao
        sr, ratio = sao.sample_rate, sao.downsampling_ratio
        k = len(seeds)
        cond = ecmg.conditioning([prompt] * k, w.start * ratio / sr, n_model / sr)
        control = None
        if control_full is not None:
            idx = torch.arange(w.start, w.start + w.length, device=control_full.device)
            control = control_full[:, idx % control_full.shape[-1]][None].repeat(k, 1, 1)
        window_seeds = [
            int(np.random.SeedSequence([int(s) & 0xFFFF_FFFF, w.index]).generate_state(1)[0])
            for s in seeds
        ]
        noise = sampling.SeededNoise(window_seeds, (sao.latent_channels, w.length), loaded.device)
        x = noise() * sigmas[0]

        def v_model(x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return ecmg.v_prediction(x_in, t, cond, control, style, cfg.cfg_scale).float()

        denoise = sampling.v_denoiser(v_model)
        if w.known and previous is not None:
            known = previous[..., -w.known :]
            base_denoise = denoise

            def denoise(x_in: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
                out = base_denoise(x_in, sigma)
                out[..., : w.known] = known  # continuation: hold the overlap to what exists
                return out

        def on_step(i: int, x_i: torch.Tensor, denoised: torch.Tensor) -> None:
            sampling.check_finite(i, x_i, denoised)
            step_progress(i)

        return sampling.sample(denoise, x, sigmas, noise, cfg.sampler, on_step=on_step)

    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        loaded = self._loaded
        assert loaded is not None
        with self._helper_on_device(loaded, loaded.ecmg.sao.model.pretransform):
            # SAT's chunked decode (128-frame chunks) saves memory on long windows only
            audio = loaded.ecmg.decode(latents, chunked=self.offload and latents.shape[-1] > 256)
        if not torch.isfinite(audio).all():
            from bridge.errors import NumericalError

            raise NumericalError("the VAE decoded NaN or infinite samples")
        return audio.cpu().numpy()

    def _helper_on_device(
        self, loaded: _Loaded, module: torch.nn.Module
    ) -> contextlib.AbstractContextManager[None]:
        """With offload on a GPU, a helper (the VAE) visits the GPU only for its own work."""
        if not (self.offload and loaded.device.type != "cpu"):
            return contextlib.nullcontext()
        return _visiting(module, loaded.device)

    def _write(
        self,
        request: GenerationRequest,
        seeds: Sequence[int],
        audio: np.ndarray,
        extra: dict[str, Any],
        progress: ProgressFn,
        names: Sequence[str] | None = None,
    ) -> list[GeneratedAudio]:
        loaded = self._loaded
        assert loaded is not None
        n_out = round(request.duration_s * request.sample_rate)
        results = []
        for i, seed in enumerate(seeds):
            out = resample(audio[i], loaded.ecmg.sao.sample_rate, request.sample_rate)
            if out.shape[-1] < n_out:
                out = np.pad(out, ((0, 0), (0, n_out - out.shape[-1])))
            out = out[:, :n_out]
            notes = list(extra["notes"])
            peak = float(np.abs(out).max()) if out.size else 0.0
            if peak > 1.0:  # SAO's decoder is not bounded (final_tanh false): avoid clipping
                out = out * (0.98 / peak)
                notes.append(f"peak {peak:.2f} scaled to -0.2 dBFS")
            name = request.name if len(seeds) == 1 else f"{request.name}-{seed}"
            path = Path(request.out_dir) / f"{names[i] if names else name}.wav"
            write_wav_atomic(path, out, request.sample_rate)
            played = cond.measure_played(out, request.sample_rate)
            results.append(
                GeneratedAudio(
                    audio_path=path,
                    num_samples=n_out,
                    sample_rate=request.sample_rate,
                    backend="full",
                    weights=loaded.weights,  # type: ignore[arg-type]
                    extra={**extra, **played, "seed": int(seed), "notes": notes},
                )
            )
        progress("write", 1, 1)
        return results
