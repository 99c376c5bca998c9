"""The MMDM LoRA adapter: attach a fresh one for training, save it with our vmb-mmdm.json
(the base signature, prompt and settings it was trained with), and load it strictly (another
base, another prompt or a missing or mis-shaped tensor is an error)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from bridge.errors import WeightsError
from engine.describe.full.internvl import (
    MMDM,
    NUM_FRAMES,
    PROMPT,
    BaseSignature,
    Kind,
    read_json,
    seeded,
)

LORA_RANK, LORA_ALPHA, LORA_DROPOUT = 16, 32, 0.05
ADAPTER_INFO = "vmb-mmdm.json"
ADAPTER_FORMAT = 1

# LoRA on the language model's attention projections only (Qwen2/Llama names; InternLM2's
# fused wqkv/wo for remote-code InternVL2). The vision tower and projector stay frozen.
LORA_TARGETS = {
    "native": r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)",
    "remote": r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|wqkv|wo)",
}


@dataclass(frozen=True)
class AdapterInfo:
    """vmb-mmdm.json beside the peft files: what the adapter was trained for and how."""

    format: int
    base: BaseSignature
    prompt: str
    num_frames: int
    rank: int
    alpha: int
    dropout: float
    target_modules: str
    training: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> AdapterInfo:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise WeightsError(f"{where}: unknown keys {sorted(unknown)}")
        missing = known - set(data) - {"training"}
        if missing:
            raise WeightsError(f"{where}: missing keys {sorted(missing)}")
        if data["format"] != ADAPTER_FORMAT:
            raise WeightsError(f"{where}: adapter format {data['format']} is not supported")
        base = data["base"]
        base_known = {f.name for f in fields(BaseSignature)}
        if not isinstance(base, dict) or set(base) != base_known:
            raise WeightsError(f"{where}: 'base' must have exactly {sorted(base_known)}")
        return cls(**{**data, "base": BaseSignature(**base)})


def lora_config(
    kind: Kind, rank: int = LORA_RANK, alpha: int = LORA_ALPHA, dropout: float = LORA_DROPOUT
) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGETS[kind],
        bias="none",
    )


def attach_lora(
    mmdm: MMDM,
    rank: int = LORA_RANK,
    alpha: int = LORA_ALPHA,
    dropout: float = LORA_DROPOUT,
    seed: int = 0,
) -> None:
    """Wrap the language model's attention projections with a fresh trainable adapter
    (lora_A initialised from `seed`, lora_B zero: the wrapped model starts as the base)."""
    with seeded(mmdm.device, seed):
        mmdm.model = _wrap(mmdm.model, lora_config(mmdm.kind, rank, alpha, dropout))
    trainable = [n for n, p in mmdm.model.named_parameters() if p.requires_grad]
    outside = [n for n in trainable if "language_model" not in n]
    if outside:
        raise WeightsError(f"LoRA reached modules outside the language model: {outside[:3]}")


def _wrap(model: torch.nn.Module, config: Any) -> Any:
    """get_peft_model without its noise (a renamed-base warning, a deprecation)."""
    import warnings

    from peft import get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def lora_parameters(mmdm: MMDM) -> dict[str, torch.Tensor]:
    return {n: p for n, p in mmdm.model.named_parameters() if p.requires_grad}


def save_adapter(mmdm: MMDM, out_dir: Path, training: dict[str, Any] | None = None) -> None:
    """adapter_config.json + adapter_model.safetensors (peft) + vmb-mmdm.json (ours)."""
    from peft import PeftModel

    if not isinstance(mmdm.model, PeftModel):
        raise WeightsError("this model has no adapter to save")
    out_dir.mkdir(parents=True, exist_ok=True)
    mmdm.model.peft_config["default"].base_model_name_or_path = mmdm.base_name
    mmdm.model.save_pretrained(str(out_dir), safe_serialization=True, save_embedding_layers=False)
    (out_dir / "README.md").unlink(missing_ok=True)  # peft's model-card stub
    cfg = mmdm.model.peft_config["default"]
    info = AdapterInfo(
        format=ADAPTER_FORMAT,
        base=mmdm.signature,
        prompt=PROMPT,
        num_frames=NUM_FRAMES,
        rank=int(cfg.r),
        alpha=int(cfg.lora_alpha),
        dropout=float(cfg.lora_dropout),
        target_modules=str(cfg.target_modules),
        training=training,
    )
    (out_dir / ADAPTER_INFO).write_text(json.dumps(info.to_json(), indent=2))


def read_adapter_info(adapter_dir: Path) -> AdapterInfo:
    path = adapter_dir / ADAPTER_INFO
    return AdapterInfo.from_json(read_json(path), str(path))


def load_adapter(mmdm: MMDM, adapter_dir: Path, merge: bool = False) -> AdapterInfo:
    """Attach a saved adapter strictly: the base must match the one it was trained on and
    every adapter tensor must exist with the same shape; optionally merge it in."""
    from peft import LoraConfig, get_peft_model_state_dict
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    info = read_adapter_info(adapter_dir)
    if info.base != mmdm.signature:
        diff = {
            k: (v, getattr(mmdm.signature, k))
            for k, v in asdict(info.base).items()
            if getattr(mmdm.signature, k) != v
        }
        raise WeightsError(
            f"the adapter in {adapter_dir} was trained on another base model "
            f"(adapter vs base: {diff})"
        )
    if info.prompt != PROMPT:
        raise WeightsError(f"the adapter in {adapter_dir} was trained with another prompt")
    try:
        cfg = LoraConfig.from_pretrained(str(adapter_dir))
    except (OSError, ValueError, TypeError) as exc:
        raise WeightsError(
            f"{adapter_dir}/adapter_config.json is not a LoRA config: {exc}"
        ) from None
    cfg.inference_mode = True
    model = _wrap(mmdm.model, cfg)
    path = adapter_dir / "adapter_model.safetensors"
    if not path.exists():
        raise WeightsError(f"{path} is missing")
    state = load_file(str(path))
    expected = {k: v.shape for k, v in get_peft_model_state_dict(model).items()}
    got = {k: v.shape for k, v in state.items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or unexpected or mismatched:
        raise WeightsError(
            f"the adapter in {adapter_dir} does not fit the base model: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {mismatched[:3]}"
        )
    set_peft_model_state_dict(model, state)
    model.to(mmdm.device)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    mmdm.model = model.merge_and_unload() if merge else model
    return info
