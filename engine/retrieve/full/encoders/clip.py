"""CLIP (transformers' CLIPModel): images and text into one space, for visual -> library
retrieval (paper eq. 3: CLIP text/visual embeddings at inference).

Why not open_clip or CLIPProcessor: both need torchvision, which cannot import on CPU wheels
(dependencies.md §1). Image pre-processing (resize shortest side, centre crop, normalise) is a
few lines of PIL + numpy, shared by the torch and ONNX runtimes.

Folder ``<model_dir>/clip/``: ``config.json``, ``model.safetensors``, ``tokenizer.json`` (+
``tokenizer_config.json``), ``preprocessor_config.json`` (optional: size, mean, std).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import WeightsError

MODEL_NAME = "clip"
# Non-persistent buffers that older exports still carry; transformers recomputes them.
OBSOLETE_SUFFIXES = ("embeddings.position_ids",)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _eager(config: Any) -> Any:
    """Plain attention: identical maths, and it exports to ONNX without special ops."""
    config._attn_implementation = "eager"
    for sub in ("text_config", "vision_config"):
        getattr(config, sub)._attn_implementation = "eager"
    return config


def build_model(config: Any) -> Any:
    import torch
    from torch import nn
    from transformers import CLIPModel

    class ClipModel(CLIPModel):
        """CLIPModel plus the two calls we use, returning unit vectors (not output objects)."""

        def embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
            pooled = self.vision_model(pixel_values=pixel_values).pooler_output
            return nn.functional.normalize(self.visual_projection(pooled), dim=-1)

        def embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            pooled = self.text_model(
                input_ids=input_ids, attention_mask=attention_mask
            ).pooler_output
            return nn.functional.normalize(self.text_projection(pooled), dim=-1)

    return ClipModel(_eager(config))


def load_torch_model(folder: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, preprocessing settings), strictly from the folder."""
    from safetensors.torch import load_file
    from transformers import CLIPConfig, CLIPTokenizer

    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise WeightsError(f"{folder} is missing {name}")
    config = CLIPConfig.from_pretrained(str(folder))
    model = build_model(config)
    sd = {
        k: v for k, v in load_file(str(folder / "model.safetensors")).items()
        if not k.endswith(OBSOLETE_SUFFIXES)
    }  # fmt: skip
    result = model.load_state_dict(sd, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{folder / 'model.safetensors'} does not match the CLIP config: "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    model.eval()
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    if len(tokenizer) < 100:  # transformers 5 returns an empty tokenizer for missing files
        raise WeightsError(f"{folder}: the CLIP tokenizer is missing or empty")
    return model, tokenizer, preprocessing(folder, config)


def preprocessing(folder: Path, config: Any) -> dict[str, Any]:
    size = int(config.vision_config.image_size)
    out: dict[str, Any] = {"size": size, "mean": OPENAI_MEAN, "std": OPENAI_STD}
    path = folder / "preprocessor_config.json"
    if path.is_file():
        data = json.loads(path.read_text())
        out["mean"] = tuple(data.get("image_mean", OPENAI_MEAN))
        out["std"] = tuple(data.get("image_std", OPENAI_STD))
    out["max_tokens"] = int(config.text_config.max_position_embeddings)
    return out


def pixel_values(frames: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, 3, S, S) float32: shortest side to S (bicubic), centre
    crop, scale to 0..1, normalise (what CLIPImageProcessor does)."""
    from PIL import Image

    size = prep["size"]
    mean = np.asarray(prep["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(prep["std"], dtype=np.float32)[:, None, None]
    out = np.empty((len(frames), 3, size, size), dtype=np.float32)
    for i, frame in enumerate(np.asarray(frames, dtype=np.uint8)):
        img = Image.fromarray(frame, "RGB")
        w, h = img.size
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
        arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
        out[i] = (arr - mean) / std
    return out


def tokenize(tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, np.ndarray]:
    enc = tokenizer(
        list(texts), padding="max_length", truncation=True, max_length=max_tokens,
        return_tensors="np",
    )  # fmt: skip
    return {
        "input_ids": enc["input_ids"].astype(np.int64),
        "attention_mask": enc["attention_mask"].astype(np.int64),
    }


def build_tiny(out_dir: Path, seed: int) -> None:
    """Write a tiny random-weight clip folder in the production layout."""
    import torch
    from safetensors.torch import save_file
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPTokenizer

    out_dir = Path(out_dir)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    tok.save_pretrained(str(out_dir))
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 77,
            "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "image_size": 32, "patch_size": 8,
        },
        projection_dim=24,
    )  # fmt: skip
    config.save_pretrained(str(out_dir))
    (out_dir / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "crop_size": {"height": 32, "width": 32},
                "size": {"shortest_edge": 32},
                "image_mean": list(OPENAI_MEAN),
                "image_std": list(OPENAI_STD),
            },
            indent=2,
        )  # fmt: skip
    )
    torch.manual_seed(seed)
    model = build_model(config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(out_dir / "model.safetensors"))  # fmt: skip
