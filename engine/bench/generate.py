"""`vmb bench generate [--size tiny|full] [--quick] [--json]`: one 30 s cue at the paper's
settings (DPM++ 3M SDE, CFG 7, 100 steps, sigma 0.03-1000) through the full generator.

tiny: the tiny SAO-shaped model with random weights, end to end on any machine.
full: SAO 1.0 + ControlFormer + Stylization at full size with random weights (speed does not
depend on the values). On CUDA the whole cue is generated (after one warm-up cue), with the
peak GPU memory. On the CPU that would take hours, so one CFG denoiser step at the cue's
latent length and one VAE decode of a short span are measured and the cue's time is
extrapolated from them; such figures say "extrapolated".

--dtype, --offload, --steps and --cue-seconds change the run (tests/gpu/check.sh uses them:
bf16 with and without offload on a GPU, a 2-step 2 s cue in its CPU dry run); figures are
checked against their targets only at the paper's settings.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.bench import figure, machine
from engine.config import settings_from_dict
from engine.types import (
    Attributes,
    GenerationRequest,
    MusicDescription,
    Reference,
    Retrieval,
)

CUE_S = 30.0
PAPER_STEPS = 100
PAPER_SECONDS_A100 = 20.0  # the paper: ~20 s per 30 s clip on an A100 (whole VMB pipeline)
HOPPER_SECONDS = 2.0  # the project's target for one H100/H200
OFFLOAD_PEAK_BYTES = 12e9  # the generator alone, with offload


@dataclass(frozen=True)
class Run:
    """What one bench run generates, from the command line."""

    cue_s: float = CUE_S
    steps: int | None = None  # None: the settings' (100), or 10 with --quick
    dtype: str = "auto"
    offload: bool = False
    quick: bool = False

    @classmethod
    def from_opts(cls, opts: argparse.Namespace) -> Run:
        quick = bool(getattr(opts, "quick", False))
        steps = getattr(opts, "steps", None) or (10 if quick else None)
        return cls(
            cue_s=float(getattr(opts, "cue_seconds", None) or CUE_S),
            steps=steps,
            dtype=getattr(opts, "dtype", None) or "auto",
            offload=bool(getattr(opts, "offload", False)),
            quick=quick,
        )

    @property
    def paper(self) -> bool:
        """At the paper's settings: only then are figures checked against targets."""
        return self.cue_s == CUE_S and self.steps in (None, PAPER_STEPS)

    def notes(self) -> list[str]:
        out = []
        if self.steps is not None and self.steps != PAPER_STEPS:
            out.append(f"{self.steps} steps instead of {PAPER_STEPS}")
        if self.cue_s != CUE_S:
            out.append(f"a {self.cue_s:g} s cue instead of {CUE_S:g} s")
        return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _request(folder: Path, cue_s: float = CUE_S, seed: int = 0) -> GenerationRequest:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(44100 * 10) / 44100
    tone = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
    ref = folder / "reference.wav"
    sf.write(ref, np.stack([tone, tone], axis=1).astype(np.float32), 44100)
    description = MusicDescription(
        text="A calm cinematic piano piece with soft strings.",
        attributes=Attributes("calm", "cinematic", "slow", "low", ("piano", "strings")),
        source="text",
        backend="full",
        weights="random",
    )
    retrieval = Retrieval(  # stand-in references: no model ranked them
        backend="full",
        weights="none",
        broad=(Reference("ref-broad", "reference", str(ref), 0.9),),
        targeted=(Reference("ref-targeted", "reference", str(ref), 0.8, partition="tempo:slow"),),
    )
    return GenerationRequest(description, retrieval, cue_s, seed, folder / "out", name="bench")


def _clap(_: Reference | None, dim: int) -> np.ndarray:
    """A fixed style vector as wide as the Stylization module expects (its config)."""
    v = np.random.default_rng(1).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _settings(home: Path, model_dir: Path, run: Run) -> Any:
    generate: dict[str, Any] = {"dtype": run.dtype, "offload": run.offload}
    if run.steps is not None:
        generate["steps"] = run.steps
    return settings_from_dict(home, {"models": {"model_dir": str(model_dir)}, "generate": generate})


def _timed_generate(gen: Any, request: GenerationRequest) -> dict[str, Any]:
    """Generate once; steps/s from the time between consecutive denoiser steps of a window
    (VAE decode and conditioning between windows excluded)."""
    marks: list[tuple[int, int, float]] = []

    def progress(stage: str, step: int, of: int) -> None:
        if stage == "generate":
            marks.append((step, of, time.perf_counter()))

    t0 = time.perf_counter()
    out = gen.generate(request, progress)
    total = time.perf_counter() - t0
    per_window = int(out.extra["steps"])
    deltas = [
        b[2] - a[2] for a, b in zip(marks, marks[1:], strict=False) if (b[0] - 1) % per_window
    ]
    rate = len(deltas) / sum(deltas) if deltas and sum(deltas) > 0 else float("nan")
    return {"out": out, "total_s": total, "steps": len(marks), "steps_per_s": rate}


def bench_generate(opts: argparse.Namespace) -> dict[str, Any]:
    size = getattr(opts, "size", "tiny") or "tiny"
    run = Run.from_opts(opts)
    cuda = torch.cuda.is_available()
    notes = run.notes() if size == "tiny" or cuda else []  # the CPU extrapolates the paper's
    if not cuda:
        notes.append("no GPU in this session: CPU only; the paper's figure is for an A100")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        notes.append(
            f"machine busy (load average {load:.1f} on {os.cpu_count()} cores): wall times "
            "are inflated"
        )
    with tempfile.TemporaryDirectory(prefix="vmb-bench-generate-") as tmp:
        folder = Path(tmp)
        if size == "tiny":
            result = _bench_tiny(folder, run, notes)
        elif cuda:
            result = _bench_full_gpu(folder, run, notes)
        else:
            result = _bench_full_cpu(folder, run, notes)
    result.update(name="generate", machine=machine(), notes=notes, size=size, cue_s=run.cue_s)
    return result


def _bench_tiny(folder: Path, run: Run, notes: list[str]) -> dict[str, Any]:
    from engine import weights
    from engine.generate.full.generator import FullGenerator

    t0 = time.perf_counter()
    model_dir = folder / "models"
    weights.write_tiny(model_dir, ["sao-1.0", "t5-base", "vmb-ecmg"], seed=0)
    settings = _settings(folder / "home", model_dir, run)
    gen = FullGenerator(settings)
    dim = gen.load().ecmg.stylization.config.clap_dim
    gen.clap_embed = lambda ref: _clap(ref, dim)
    build_s = time.perf_counter() - t0
    timed = _timed_generate(gen, _request(folder, run.cue_s))
    out = timed["out"]
    notes.append(
        f"tiny SAO-shaped model, random weights; {out.extra['windows']} windows of "
        f"{gen.load().ecmg.sao.sample_size / 44100:.2f} s, {out.extra['steps']} steps each"
    )
    return {
        "figures": [
            figure("build tiny model (random weights)", build_s, "s"),
            figure(f"{run.cue_s:g} s cue, end to end", timed["total_s"], "s"),
            figure("denoiser steps per second", timed["steps_per_s"], "steps/s"),
            figure("realtime factor", run.cue_s / timed["total_s"], "x"),
            figure("peak memory (RSS)", _peak_rss_mb(), "MB"),
        ],
        "weights": out.weights,
        "device": out.extra["device"],
        "dtype": out.extra["dtype"],
        "steps": out.extra["steps"],
        "cfg_scale": out.extra["cfg_scale"],
    }


def _full_network(folder: Path) -> Any:
    """SAO 1.0 + adapters at full size with random weights, never written to disk."""
    from engine.generate.full.ecmg import ECMG
    from engine.generate.full.sao import (
        SAO_1_0_CONFIG,
        build_random_t5_base,
        build_sao,
        write_tiny_t5,
    )

    sao = build_sao(SAO_1_0_CONFIG)
    write_tiny_t5(folder / "tokenizer", 0)  # a small vocab: tokenisation cost is negligible
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
    sao.prompt.set_encoder(build_random_t5_base(), tokenizer)
    return ECMG.fresh(sao)


def _bench_full_gpu(folder: Path, run: Run, notes: list[str]) -> dict[str, Any]:
    from engine.generate.full.generator import FullGenerator

    t0 = time.perf_counter()
    settings = _settings(folder / "home", folder / "models", run)
    ecmg = _full_network(folder)
    dim = ecmg.stylization.config.clap_dim
    gen = FullGenerator.with_network(settings, ecmg, "random", clap_embed=lambda r: _clap(r, dim))
    build_s = time.perf_counter() - t0
    request = _request(folder, run.cue_s)
    torch.cuda.reset_peak_memory_stats()
    cold = _timed_generate(gen, request)  # first cue: cuBLAS/cuDNN set-up, kernel choice
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    timed = _timed_generate(gen, request)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    seconds = timed["total_s"]
    name = torch.cuda.get_device_name()
    hopper = "H100" in name or "H200" in name
    limit = HOPPER_SECONDS if hopper else PAPER_SECONDS_A100
    target = f"<= {limit:g} s ({'H100/H200' if hopper else 'A100'})"
    out = timed["out"]
    notes.append(
        f"SAO 1.0 size + ControlFormer ({ecmg.controlformer.config.depth} blocks), "
        f"random weights, {out.extra['dtype']} on {name}; offload "
        f"{'on' if run.offload else 'off'}; the second of two identical cues is timed"
    )
    return {
        "figures": [
            figure("build full model (random weights)", build_s, "s"),
            figure("first cue (cold), end to end", cold["total_s"], "s"),
            figure(
                f"{run.cue_s:g} s cue, end to end",
                seconds,
                "s",
                target,
                seconds <= limit if run.paper else None,
            ),
            figure("denoiser steps per second", timed["steps_per_s"], "steps/s"),
            figure(
                "peak GPU memory",
                peak / 2**20,
                "MB",
                "<= 12 GB (offload)" if run.offload else "",
                peak <= OFFLOAD_PEAK_BYTES if run.offload else None,
            ),
            figure("peak memory (RSS)", _peak_rss_mb(), "MB"),
        ],
        "weights": "random",
        "device": "cuda",
        "device_name": name,
        "dtype": out.extra["dtype"],
        "offload": run.offload,
        "steps": out.extra["steps"],
        "cfg_scale": out.extra["cfg_scale"],
        "peak_gpu_bytes": peak,
    }


def _time_step_and_decode(
    ecmg: Any, cfg_scale: float, measured: int, length: int, decode_len: int
) -> tuple[float, float, float]:
    """(wall s, CPU s) of one CFG denoiser step and the wall s of one VAE decode, timed on
    ``measured`` / ``decode_len`` latent frames and scaled to ``length``."""
    sao = ecmg.sao
    cond = ecmg.conditioning(["a calm piano piece. tempo: slow"], 0.0, CUE_S)
    x = torch.randn(1, sao.latent_channels, measured)
    control = torch.randn(1, sao.latent_channels, measured)
    style = torch.from_numpy(_clap(None, ecmg.stylization.config.clap_dim))[None]
    with torch.inference_mode():
        t1, c1 = time.perf_counter(), time.process_time()
        ecmg.v_prediction(x, torch.full((1,), 0.5), cond, control, style, cfg_scale)
        step_s = (time.perf_counter() - t1) * (length / measured)
        step_cpu_s = (time.process_time() - c1) * (length / measured)
        t2 = time.perf_counter()
        ecmg.decode(torch.randn(1, sao.latent_channels, decode_len))
        decode_s = (time.perf_counter() - t2) * (length / decode_len)
    return step_s, step_cpu_s, decode_s


def _bench_full_cpu(folder: Path, run: Run, notes: list[str]) -> dict[str, Any]:
    from engine.generate.full.audio import plan_windows

    quick = run.quick
    t0 = time.perf_counter()
    cfg = _settings(folder / "home", folder / "models", replace(run, steps=None)).generate
    ecmg = _full_network(folder)
    build_s = time.perf_counter() - t0
    sao = ecmg.sao
    ratio = sao.downsampling_ratio
    total_latents = math.ceil(CUE_S * sao.sample_rate / ratio)
    overlap = math.ceil(cfg.overlap_s * sao.sample_rate / ratio)
    windows = plan_windows(total_latents, sao.window_latents, overlap, cfg.crop_to_cue)
    length = windows[0].length
    measured = 64 if quick else length

    decode_len = 64
    step_s, step_cpu_s, decode_s = _time_step_and_decode(
        ecmg, cfg.cfg_scale, measured, length, decode_len
    )
    steps = cfg.steps * len(windows)
    total = steps * step_s + decode_s * len(windows)
    notes.append(
        f"extrapolated: one CFG step (cond+uncond batch, ControlFormer "
        f"{ecmg.controlformer.config.depth} blocks) measured at {measured} latent frames, "
        f"scaled to {length} frames x {steps} steps; VAE decode measured on {decode_len} frames, "
        f"scaled to {len(windows)} x {length}"
    )
    notes.append(
        f"latent length {length} frames = one {sao.sample_size / sao.sample_rate:.2f} s window "
        f"(generate.crop_to_cue = {str(cfg.crop_to_cue).lower()})"
    )
    return {
        "figures": [
            figure("build full model (random weights)", build_s, "s"),
            figure(
                "one CFG denoiser step (extrapolated)" if quick else "one CFG denoiser step",
                step_s,
                "s",
            ),
            figure("one CFG denoiser step, CPU time (all threads)", step_cpu_s, "s"),
            figure("VAE decode of one window (extrapolated)", decode_s, "s"),
            figure(
                f"{CUE_S:.0f} s cue, 100 steps (extrapolated)",
                total,
                "s",
                f"<= {PAPER_SECONDS_A100:.0f} s (A100)",
                None,
            ),
            figure("denoiser steps per second", 1.0 / step_s, "steps/s"),
            figure("peak memory (RSS)", _peak_rss_mb(), "MB"),
        ],
        "weights": "random",
        "device": "cpu",
        "extrapolated": True,
        "parameters": ecmg.parameter_counts(),
    }
