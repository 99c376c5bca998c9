"""`vmb bench describe`: 10 frames -> one description, through FullDescriber.

Tiny random-weight InternVL + adapter on the CPU always (load, latency, memory). On a CUDA
machine, also full-size random-init InternVL of the 2B and 8B classes (InternViT-300M +
Qwen2.5-1.5B / -7B shapes, bf16): latency of 10 frames -> 64 tokens and peak GPU memory.
Speed does not depend on the weights' values; every figure says its weights are random.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import weights
from engine.bench import figure
from engine.config import settings_from_dict
from engine.describe.full import internvl
from engine.describe.full.describer import ADAPTER_MODEL, BASE_MODEL, FullDescriber
from engine.describe.full.tiny import tiny_tokenizer
from engine.types import Knobs, VisualInput, no_progress

FULL_NEW_TOKENS = 64
# InternVL3-hf shapes: InternViT-300M (448 px, 256 tokens per frame) + a Qwen2.5 LM.
FULL_VISION = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    image_size=448, patch_size=14, attention_bias=True,
)  # fmt: skip
FULL_TEXT = {
    "2B": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
               num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
    "8B": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
               num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False),
}  # fmt: skip
FULL_VOCAB = 151674


def full_config(size: str, image_token_id: int) -> Any:
    """A full-size InternVL config of the 2B or 8B class (ids of our tiny tokenizer fit)."""
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    text = FULL_TEXT[size]
    return InternVLConfig(
        vision_config=InternVLVisionConfig(**FULL_VISION).to_dict(),
        text_config=Qwen2Config(vocab_size=FULL_VOCAB, **text).to_dict(),
        image_token_id=image_token_id,
        image_seq_length=256,
        tie_word_embeddings=text["tie_word_embeddings"],
    )


def full_parameters(size: str) -> int:
    """Parameter count of a full-size class, built on the meta device (no memory)."""
    from transformers import InternVLForConditionalGeneration

    with torch.device("meta"):
        model = InternVLForConditionalGeneration(full_config(size, 5))
    return internvl.count_parameters(model)


def _frames(n: int = 30, seed: int = 0) -> VisualInput:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(n, 360, 640, 3), dtype=np.uint8)
    return VisualInput(frames, tuple(i / 3 for i in range(n)), n / 3)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_random_model(
    config: Any, device: torch.device, dtype: torch.dtype, new_tokens: int, repeats: int
) -> dict[str, float]:
    """Random-init InternVL from `config` on `device`: build time, and the latency of 10
    frames -> exactly `new_tokens` sampled tokens (median of `repeats`), peak memory."""
    from transformers import GenerationConfig, InternVLForConditionalGeneration

    tokenizer = tiny_tokenizer()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    with torch.device(device):
        model = InternVLForConditionalGeneration(config).to(dtype).eval()
    build_s = time.perf_counter() - t0
    vision = config.vision_config
    spec = internvl.VisionSpec(
        image_size=internvl._first(vision.image_size),
        tokens_per_image=config.image_seq_length,
        image_token_id=config.image_token_id,
        mean=internvl.IMAGENET_MEAN,
        std=internvl.IMAGENET_STD,
    )
    sig = internvl.BaseSignature("native", "qwen2", 0, 0, 0, 0, 0, spec.image_size, 0)
    mmdm = internvl.MMDM(model, tokenizer, spec, sig, "native", device, dtype)
    frames = _frames().frames[internvl.sample_indices(30)]
    gen = GenerationConfig(
        do_sample=True, top_k=internvl.TOP_K, top_p=internvl.TOP_P,
        temperature=internvl.TEMPERATURE, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
        pad_token_id=0,
    )  # fmt: skip
    times = []
    for i in range(repeats + 1):  # the first run warms kernels and allocators up
        batch = mmdm.encode(frames, "video")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        with torch.inference_mode():
            torch.manual_seed(i)
            model.generate(**batch, generation_config=gen)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t)
    out = {
        "params": float(internvl.count_parameters(model)),
        "build_s": build_s,
        "latency_s": statistics.median(times),
        "prompt_tokens": float(batch["input_ids"].shape[1]),
    }
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    del model, mmdm
    return out


def _bench_tiny(repeats: int, figures: list[dict[str, Any]], notes: list[str]) -> str:
    """Tiny base + adapter written to a temp folder, loaded by FullDescriber on the CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "models"
        t0 = time.perf_counter()
        weights.write_tiny(model_dir, [BASE_MODEL, ADAPTER_MODEL], seed=0)
        figures.append(figure("tiny: write base + adapter (random)", time.perf_counter() - t0, "s"))
        settings = settings_from_dict(
            Path(tmp), {"models": {"model_dir": str(model_dir), "device": "cpu"}}
        )
        t0 = time.perf_counter()
        describer = FullDescriber(settings)
        figures.append(figure("tiny: load base + adapter (random)", time.perf_counter() - t0, "s"))
        visual = _frames()
        rng = np.random.default_rng(0)
        times = []
        for i in range(repeats + 1):  # the first call warms up
            t = time.perf_counter()
            desc = describer.describe(visual, Knobs(), rng, no_progress)
            if i:
                times.append(time.perf_counter() - t)
        figures.append(
            figure("tiny: 10 frames -> description (cpu)", statistics.median(times) * 1000, "ms")
        )
        figures.append(figure("tiny: peak RSS of the process", _rss_mb(), "MB"))
    return f"output ({desc.weights} weights): {desc.text[:50]!r}"


def bench_describe(opts: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(opts, "quick", False))
    repeats = 2 if quick else 5
    figures: list[dict[str, Any]] = []
    notes: list[str] = []
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # toy matrices: thread hand-offs cost more than they save
    try:
        tiny = _bench_tiny(repeats, figures, notes)
    finally:
        torch.set_num_threads(torch_threads)
    notes.append(f"tiny: 1 torch thread (process default {torch_threads}); {tiny}")
    for size in FULL_TEXT:
        notes.append(f"full {size}-class InternVL: {full_parameters(size) / 1e9:.2f} B parameters")
    if torch.cuda.is_available():
        device = torch.device("cuda")
        for size in FULL_TEXT:
            cfg = full_config(size, tiny_tokenizer().convert_tokens_to_ids("<IMG_CONTEXT>"))
            r = measure_random_model(cfg, device, torch.bfloat16, FULL_NEW_TOKENS, repeats)
            label = f"full {size} bf16 (random init)"
            figures.append(
                figure(f"{label}: 10 frames -> {FULL_NEW_TOKENS} tokens", r["latency_s"], "s")
            )
            figures.append(figure(f"{label}: peak GPU memory", r["peak_gib"], "GiB"))
            torch.cuda.empty_cache()
        notes.append(f"GPU: {torch.cuda.get_device_name(device)}")
    else:
        notes.append(
            "no GPU on this machine: full-size InternVL 2B/8B-class latency and memory "
            "were not measured (run `vmb bench describe` on a CUDA machine)"
        )
    return {"name": "describe", "figures": figures, "notes": notes, "weights": "random"}
