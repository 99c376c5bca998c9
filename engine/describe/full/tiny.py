"""Toy-size InternVL and MMDM adapter with random weights, in the production layout
(manifest ``tiny_builder``s), and the in-memory tokenizer they use. For tests and benchmarks;
no hub involved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from engine.describe.full.internvl import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    PROMPT,
    TURN_END,
    TURN_START,
    load_base,
    question_for,
    quiet_transformers,
    seeded,
)
from engine.describe.full.lora import attach_lora, lora_parameters, save_adapter

TINY_SPECIALS = ("<|endoftext|>", TURN_START, TURN_END, IMG_START, IMG_END, IMG_CONTEXT)
_TINY_CORPUS = (
    PROMPT,
    question_for("image"),
    "An uplifting and catchy pop track, blending bass, synthesizer, drums which is perfect "
    "for nostalgic and fun moments.",
    "A slow, dreamy ambient piece with soft piano, strings and pad in D minor.",
    "A fast-paced, energetic rock song driven by electric guitar, bass and drums at 150 BPM.",
    "A tense cinematic score with cello, percussion and brass building to an epic climax.",
    "A calm lofi hip-hop beat with electric piano, vinyl texture and mellow drums.",
    "Frame1: Frame2: Frame3: Frame4: Frame5: Frame6: Frame7: Frame8: Frame9: Frame10: user "
    "assistant system",
)


def tiny_tokenizer(vocab_size: int = 400) -> Any:
    """A byte-level BPE trained in memory on music sentences, with InternVL's special tokens
    (byte-level, so any text encodes). For tests and benchmarks; no hub involved."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from engine import taxonomy

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(TINY_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    words = " ".join(t for facet in taxonomy.all_tags().values() for t in facet)
    tok.train_from_iterator([*_TINY_CORPUS, words] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=TURN_END, pad_token="<|endoftext|>"
    )


def tiny_config(tokenizer: Any) -> Any:
    """Every InternVL part at toy size: 56 px frames, 14 px patches -> 4 tokens per frame."""
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    vision = InternVLVisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
        image_size=56, patch_size=14,
    )  # fmt: skip
    text = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=1024,
        tie_word_embeddings=True,
    )  # fmt: skip
    return InternVLConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_id=tokenizer.convert_tokens_to_ids(IMG_CONTEXT),
        image_seq_length=4,
    )


def write_tiny_internvl(out_dir: Path, seed: int) -> None:
    """tiny_builder of "internvl": the production layout with random weights."""
    from transformers import InternVLForConditionalGeneration

    quiet_transformers()
    tokenizer = tiny_tokenizer()
    with seeded(torch.device("cpu"), seed):
        model = InternVLForConditionalGeneration(tiny_config(tokenizer))
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    preprocessor = {
        "image_processor_type": "GotOcr2ImageProcessorPil",
        "size": {"height": 56, "width": 56},
        "crop_to_patches": False,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
    }
    (out_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))


def write_tiny_mmdm_adapter(out_dir: Path, seed: int) -> None:
    """tiny_builder of "vmb-mmdm-lora": a random adapter that fits the tiny base (its lora_B
    is non-zero, so unlike a fresh adapter it changes the output)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "internvl"
        base.mkdir()
        write_tiny_internvl(base, seed)
        mmdm = load_base(base, torch.device("cpu"))
        attach_lora(mmdm)
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in lora_parameters(mmdm).values():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        save_adapter(mmdm, out_dir, training=None)
