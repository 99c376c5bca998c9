"""`vmb bench generate [--size tiny|full] [--quick] [--json]`: one 30 s cue at the paper's
settings (DPM++ 3M SDE, CFG 7, 100 steps, sigma 0.03-1000) through the full generator.

tiny: the tiny SAO-shaped model with random weights, end to end on any machine.
full: SAO 1.0 + ControlFormer + Stylization at full size with random weights (speed does not
depend on the values). On CUDA the whole cue is generated. On the CPU that would take hours,
so one CFG denoiser step at the cue's latent length and one VAE decode of a short span are
measured and the cue's time is extrapolated from them; such figures say "extrapolated".
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.commands.bench import figure, machine
from engine.config import settings_from_dict
from engine.types import (
    Attributes,
    GenerationRequest,
    MusicDescription,
    Reference,
    Retrieval,
)

CUE_S = 30.0
PAPER_SECONDS_A100 = 20.0  # the paper: ~20 s per 30 s clip on an A100 (whole VMB pipeline)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _request(folder: Path, seed: int = 0) -> GenerationRequest:
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
    retrieval = Retrieval(
        broad=(Reference("ref-broad", "reference", str(ref), 0.9),),
        targeted=(Reference("ref-targeted", "reference", str(ref), 0.8, partition="tempo:slow"),),
    )
    return GenerationRequest(description, retrieval, CUE_S, seed, folder / "out", name="bench")


def _clap(_: Reference) -> np.ndarray:
    v = np.random.default_rng(1).standard_normal(512).astype(np.float32)
    return v / np.linalg.norm(v)


def _settings(home: Path, model_dir: Path, quick: bool) -> Any:
    generate: dict[str, Any] = {}
    if quick:
        generate["steps"] = 10
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
    quick = bool(getattr(opts, "quick", False))
    cuda = torch.cuda.is_available()
    notes = []
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
            result = _bench_tiny(folder, quick, notes)
        elif cuda:
            result = _bench_full_gpu(folder, quick, notes)
        else:
            result = _bench_full_cpu(folder, quick, notes)
    result.update(name="generate", machine=machine(), notes=notes, size=size)
    return result


def _bench_tiny(folder: Path, quick: bool, notes: list[str]) -> dict[str, Any]:
    from engine import weights
    from engine.generate.full.generator import FullGenerator

    t0 = time.perf_counter()
    model_dir = folder / "models"
    weights.write_tiny(model_dir, ["sao-1.0", "t5-base", "vmb-ecmg"], seed=0)
    settings = _settings(folder / "home", model_dir, quick)
    gen = FullGenerator(settings, clap_embed=_clap)
    gen.load()
    build_s = time.perf_counter() - t0
    run = _timed_generate(gen, _request(folder))
    out = run["out"]
    notes.append(
        f"tiny SAO-shaped model, random weights; {out.extra['windows']} windows of "
        f"{gen.load().ecmg.sao.sample_size / 44100:.2f} s, {out.extra['steps']} steps each"
    )
    if quick:
        notes.append("--quick: 10 steps instead of 100")
    return {
        "figures": [
            figure("build tiny model (random weights)", build_s, "s"),
            figure(f"{CUE_S:.0f} s cue, end to end", run["total_s"], "s"),
            figure("denoiser steps per second", run["steps_per_s"], "steps/s"),
            figure("realtime factor", CUE_S / run["total_s"], "x"),
            figure("peak memory (RSS)", _peak_rss_mb(), "MB"),
        ],
        "weights": out.weights,
        "device": out.extra["device"],
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


def _bench_full_gpu(folder: Path, quick: bool, notes: list[str]) -> dict[str, Any]:
    from engine.generate.full.generator import FullGenerator

    t0 = time.perf_counter()
    settings = _settings(folder / "home", folder / "models", quick)
    ecmg = _full_network(folder)
    gen = FullGenerator.with_network(settings, ecmg, "random", clap_embed=_clap)
    build_s = time.perf_counter() - t0
    torch.cuda.reset_peak_memory_stats()
    run = _timed_generate(gen, _request(folder))
    peak = torch.cuda.max_memory_allocated() / 2**20
    seconds = run["total_s"]
    notes.append(
        f"SAO 1.0 size + ControlFormer ({ecmg.controlformer.config.depth} blocks), "
        f"random weights, {run['out'].extra['dtype']} on {torch.cuda.get_device_name()}"
    )
    if quick:
        notes.append("--quick: 10 steps instead of 100")
    return {
        "figures": [
            figure("build full model (random weights)", build_s, "s"),
            figure(
                f"{CUE_S:.0f} s cue, end to end",
                seconds,
                "s",
                f"<= {PAPER_SECONDS_A100:.0f} s (A100)",
                None if quick else seconds <= PAPER_SECONDS_A100,
            ),
            figure("denoiser steps per second", run["steps_per_s"], "steps/s"),
            figure("peak GPU memory", peak, "MB"),
            figure("peak memory (RSS)", _peak_rss_mb(), "MB"),
        ],
        "weights": "random",
        "device": "cuda",
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
    style = torch.from_numpy(_clap(None))[None]  # type: ignore[arg-type]
    with torch.inference_mode():
        t1, c1 = time.perf_counter(), time.process_time()
        ecmg.v_prediction(x, torch.full((1,), 0.5), cond, control, style, cfg_scale)
        step_s = (time.perf_counter() - t1) * (length / measured)
        step_cpu_s = (time.process_time() - c1) * (length / measured)
        t2 = time.perf_counter()
        ecmg.decode(torch.randn(1, sao.latent_channels, decode_len))
        decode_s = (time.perf_counter() - t2) * (length / decode_len)
    return step_s, step_cpu_s, decode_s


def _bench_full_cpu(folder: Path, quick: bool, notes: list[str]) -> dict[str, Any]:
    from engine.generate.full.audio import plan_windows

    t0 = time.perf_counter()
    cfg = _settings(folder / "home", folder / "models", False).generate
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
