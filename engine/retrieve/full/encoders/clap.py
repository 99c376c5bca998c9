"""CLAP (LAION-CLAP, music checkpoint): audio and text into one 512-d space (eqs. 2-4).

Why our own wrapper instead of ``laion_clap.CLAP_Module``: importing ``laion_clap`` loads three
tokenizers from the hub and building it downloads roberta-base (dependencies.md §4). We import
only laion_clap's HTSAT audio branch and MLP layers (under a temporary torchvision stand-in),
build the roberta text branch from a local config, and keep laion_clap's parameter names, so
the released checkpoint loads strictly into the same module tree.

Folder ``<model_dir>/clap-music/``: the checkpoint (name in ``ClapConfig.checkpoint``), the
roberta tokenizer and config under ``roberta/``, and an optional ``vmb-clap.json`` that
overrides the default (HTSAT-base) architecture; tiny test folders use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import json
import logging
import sys
import threading
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import WeightsError
from engine import weights
from engine.util.stubs import stub_module, temporary_modules

log = logging.getLogger(__name__)

MODEL_NAME = "clap-music"
CONFIG_FILE = "vmb-clap.json"
# laion_clap's released checkpoints carry this buffer; transformers >= 4.31 recomputes it
# (laion_clap's own loader deletes it too). Nothing else may be missing or unexpected.
OBSOLETE_KEYS = frozenset({"text_branch.embeddings.position_ids"})


@dataclass(frozen=True)
class ClapConfig:
    """Architecture of the CLAP model; the defaults are the music checkpoint (HTSAT-base)."""

    checkpoint: str = "music_audioset_epoch_15_esc_90.14.pt"
    text_dir: str = "roberta"
    sample_rate: int = 48000
    clip_samples: int = 480000  # 10 s windows
    mel_bins: int = 64
    window_size: int = 1024
    hop_size: int = 480
    fmin: int = 50
    fmax: int = 14000
    class_num: int = 527
    spec_size: int = 256
    htsat_embed_dim: int = 128
    htsat_depths: tuple[int, ...] = (2, 2, 12, 2)
    htsat_heads: tuple[int, ...] = (4, 8, 16, 32)
    htsat_window: int = 8
    joint_dim: int = 512
    max_text_tokens: int = 77

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClapConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeightsError(f"{CONFIG_FILE}: unknown keys {', '.join(unknown)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)

    def to_json(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def read_config(folder: Path) -> ClapConfig:
    path = folder / CONFIG_FILE
    if not path.is_file():
        return ClapConfig()
    try:
        return ClapConfig.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path} is invalid: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Importing laion_clap's building blocks without its package __init__ (which hits the hub).

_IMPORT_LOCK = threading.Lock()
_LAION: dict[str, types.ModuleType] = {}


def laion_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """laion_clap's ``clap_module.htsat`` and ``clap_module.model`` (cached per process)."""
    with _IMPORT_LOCK:
        if not _LAION:
            _LAION.update(_import_laion())
    return _LAION["htsat"], _LAION["model"]


def _import_laion() -> dict[str, types.ModuleType]:
    with contextlib.suppress(Exception):  # transformers caches these probes: run them first
        from transformers.utils import import_utils

        import_utils.is_torchvision_available()
        import_utils.is_torchaudio_available()
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("laion-clap is not installed (requirements/nodeps.txt)")
    root = Path(list(spec.submodule_search_locations)[0])
    mods: dict[str, types.ModuleType] = {}
    if "laion_clap" not in sys.modules:
        # Bare packages: their __init__ files import hook.py -> training/data.py -> hub.
        pkg = stub_module("laion_clap")
        pkg.__path__ = [str(root)]  # type: ignore[attr-defined]
        sub = stub_module("laion_clap.clap_module")
        sub.__path__ = [str(root / "clap_module")]  # type: ignore[attr-defined]
        mods.update({"laion_clap": pkg, "laion_clap.clap_module": sub})

    class FrozenBatchNorm2d:  # only named by laion_clap's utils; never used on our path
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError("torchvision is not available")

    misc = stub_module("torchvision.ops.misc", FrozenBatchNorm2d=FrozenBatchNorm2d)
    ops = stub_module("torchvision.ops", misc=misc)
    mods.update(
        {"torchvision": stub_module("torchvision", ops=ops), "torchvision.ops": ops,
         "torchvision.ops.misc": misc}
    )  # fmt: skip
    with temporary_modules(mods):
        htsat = importlib.import_module("laion_clap.clap_module.htsat")
        model = importlib.import_module("laion_clap.clap_module.model")
    return {"htsat": htsat, "model": model}


# ---------------------------------------------------------------------------------------------
# The module tree (same parameter names as laion_clap's CLAP, non-fusion, roberta text).


def _audio_cfg(lmodel: Any, cfg: ClapConfig) -> Any:
    """LAION-CLAP's HTSAT audio settings from our config."""
    return lmodel.CLAPAudioCfp(
        model_type="HTSAT",
        model_name="base",
        sample_rate=cfg.sample_rate,
        audio_length=1024,
        window_size=cfg.window_size,
        hop_size=cfg.hop_size,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        class_num=cfg.class_num,
        mel_bins=cfg.mel_bins,
        clip_samples=cfg.clip_samples,
    )


def build_model(cfg: ClapConfig, text_config: Any) -> Any:
    import torch
    from torch import nn
    from transformers import RobertaModel

    htsat, lmodel = laion_modules()
    audio_cfg = _audio_cfg(lmodel, cfg)

    class ClapModel(nn.Module):
        """LAION-CLAP without the training-time parts: embed audio windows and text."""

        def __init__(self) -> None:
            super().__init__()
            j = cfg.joint_dim
            self.audio_branch = htsat.HTSAT_Swin_Transformer(
                spec_size=cfg.spec_size,
                patch_size=4,
                patch_stride=(4, 4),
                num_classes=cfg.class_num,
                embed_dim=cfg.htsat_embed_dim,
                depths=list(cfg.htsat_depths),
                num_heads=list(cfg.htsat_heads),
                window_size=cfg.htsat_window,
                config=audio_cfg,
                enable_fusion=False,
                fusion_type="None",
            )
            self.text_branch = RobertaModel(text_config)
            width = text_config.hidden_size
            self.text_transform = lmodel.MLPLayers(units=[j, j, j], dropout=0.1)
            self.text_projection = nn.Sequential(nn.Linear(width, j), nn.ReLU(), nn.Linear(j, j))
            self.audio_transform = lmodel.MLPLayers(units=[j, j, j], dropout=0.1)
            self.audio_projection = nn.Sequential(
                nn.Linear(self.audio_branch.num_features, j), nn.ReLU(), nn.Linear(j, j)
            )
            self.logit_scale_a = nn.Parameter(torch.ones([]) * float(np.log(1 / 0.07)))
            self.logit_scale_t = nn.Parameter(torch.ones([]) * float(np.log(1 / 0.07)))

        def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
            """(B, clip_samples) float32 at 48 kHz -> (B, joint) unit vectors."""
            out = self.audio_branch({"waveform": waveform}, device=waveform.device)
            return nn.functional.normalize(self.audio_projection(out["embedding"]), dim=-1)

        def embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.text_branch(input_ids=input_ids, attention_mask=attention_mask)
            return nn.functional.normalize(self.text_projection(out["pooler_output"]), dim=-1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # HTSAT's torch.meshgrid without indexing=
        return ClapModel()


def load_state_dict_file(path: Path, recorded_sha256: str | None) -> dict[str, Any]:
    """The checkpoint's state dict. Released LAION checkpoints need the full unpickler (numpy
    scalars, protocol 4): we allow it only for a file whose hash matches what `vmb models
    download` recorded, i.e. the file fetched from the manifest's repository."""
    import pickle

    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not recorded_sha256 or weights.sha256_file(path) != recorded_sha256:
            raise WeightsError(
                f"{path} needs the full unpickler and its hash does not match the recorded one; "
                "re-download it with `vmb models download clap-music`"
            ) from None
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(sd, dict):
        raise WeightsError(f"{path} holds no state dict")
    if next(iter(sd), "").startswith("module."):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if k not in OBSOLETE_KEYS}


def load_torch_model(folder: Path) -> tuple[Any, Any, ClapConfig]:
    """(model in eval mode, tokenizer, config), loaded strictly from the local folder."""
    from transformers import RobertaConfig, RobertaTokenizer

    cfg = read_config(folder)
    text_dir = folder / cfg.text_dir
    if not (text_dir / "config.json").is_file():
        raise WeightsError(f"{text_dir} has no config.json (roberta tokenizer and config)")
    tokenizer = RobertaTokenizer.from_pretrained(str(text_dir))
    if len(tokenizer) < 100:  # transformers 5 returns an empty tokenizer for missing files
        raise WeightsError(f"{text_dir}: the roberta tokenizer is missing or empty")
    text_config = RobertaConfig.from_pretrained(str(text_dir))
    model = build_model(cfg, text_config)
    marker = (
        json.loads((folder / weights.MARKER).read_text())
        if (folder / weights.MARKER).is_file()
        else {}
    )
    recorded = (marker.get("files", {}).get(cfg.checkpoint) or {}).get("sha256")
    sd = load_state_dict_file(folder / cfg.checkpoint, recorded)
    result = model.load_state_dict(sd, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{folder / cfg.checkpoint} does not match the CLAP architecture: "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    model.eval()
    return model, tokenizer, cfg


# ---------------------------------------------------------------------------------------------
# Pre-processing shared by the torch and ONNX runtimes.


def audio_windows(waveform: np.ndarray, cfg: ClapConfig, max_windows: int) -> np.ndarray:
    """Mono 48 kHz audio -> (W, clip_samples) windows. Short audio is repeated then zero-padded
    (laion_clap's "repeatpad"); long audio is cut into 10 s windows spread evenly over the
    piece (at most max_windows), so the average describes the whole piece."""
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    # The checkpoints were trained on int16 audio: quantise the same way.
    x = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0
    n = cfg.clip_samples
    if x.size == 0:
        raise ValueError("empty audio")
    if x.size <= n:
        reps = n // x.size
        out = np.zeros(n, dtype=np.float32)
        tiled = np.tile(x, reps)
        out[: tiled.size] = tiled
        return out[None]
    count = min(max_windows, int(np.ceil(x.size / n)))
    starts = np.linspace(0, x.size - n, count).round().astype(np.int64)
    return np.stack([x[s : s + n] for s in starts])


def tokenize(tokenizer: Any, texts: list[str], cfg: ClapConfig) -> dict[str, np.ndarray]:
    enc = tokenizer(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=cfg.max_text_tokens,
        return_tensors="np",
    )
    return {
        "input_ids": enc["input_ids"].astype(np.int64),
        "attention_mask": enc["attention_mask"].astype(np.int64),
    }


# ---------------------------------------------------------------------------------------------
# Tiny random-weight folder (manifest tiny_builder).


def _tiny_roberta_files(text_dir: Path, hidden: int, seed: int) -> Any:
    """A byte-level roberta tokenizer (one token per byte, no merges) and a small config."""
    from tokenizers import pre_tokenizers
    from transformers import RobertaConfig

    text_dir.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    vocab["<mask>"] = len(vocab)
    (text_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (text_dir / "merges.txt").write_text("#version: 0.2\n")
    config = RobertaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=80,  # 77 tokens + roberta's padding offset
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    config.save_pretrained(str(text_dir))
    return config


TINY_CONFIG = ClapConfig(
    class_num=8,
    htsat_embed_dim=8,
    htsat_depths=(1, 1, 1, 1),
    htsat_heads=(1, 1, 2, 2),
    joint_dim=32,
)


def build_tiny(out_dir: Path, seed: int) -> None:
    """Write a tiny random-weight clap-music folder in the production layout."""
    import torch

    cfg = TINY_CONFIG
    out_dir = Path(out_dir)
    (out_dir / CONFIG_FILE).write_text(json.dumps(cfg.to_json(), indent=2))
    text_config = _tiny_roberta_files(out_dir / cfg.text_dir, hidden=32, seed=seed)
    torch.manual_seed(seed)
    model = build_model(cfg, text_config)
    # Random BatchNorm statistics, so the tiny audio branch is not a near-constant function.
    gen = torch.Generator().manual_seed(seed)
    bn = model.audio_branch.bn0
    bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=gen) * 2 - 10)
    bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=gen) * 20 + 5)
    torch.save({"state_dict": model.state_dict()}, out_dir / cfg.checkpoint)
