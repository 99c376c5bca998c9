"""Stylization Module: steers SAO's DiT towards the targeted reference through cross-attention.

The attribute text is appended to the prompt (:func:`styled_prompt`), and the targeted
reference's CLAP audio embedding (as wide as the CLAP config's joint space) is concatenated
with each text token and the timestep embedding, projected to the text width, and added to
the text tokens the DiT cross-attends to. The projection starts at zero, so the base model
is unchanged until trained.

Plugged in with a forward pre-hook on SAT's ContinuousTransformer: the caller passes
``style_cond=<[B, clap_dim]>`` to the DiT; the hook removes it from the kwargs and rewrites
``context``. Under classifier-free guidance the unconditional half gets a zero embedding (the
same null the trainer uses when it drops the text), so guidance also amplifies the style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from bridge.errors import WeightsError
from engine.types import Attributes

STEM = "stylization"


@dataclass(frozen=True)
class StylizationConfig:
    context_dim: int  # width of the tokens the DiT cross-attends to (the text width)
    time_dim: int  # width of the DiT's timestep embedding
    clap_dim: int  # width of the CLAP audio embedding (the CLAP model config's joint_dim)


def attribute_text(attributes: Attributes) -> str:
    """Every attribute, in the form the ECMG training records use ("tempo: slow; genre: rock;
    mood: sad; energy: low; instruments: piano, strings; key: A minor"). Built from what the
    user set or the describer chose, never from the partition retrieval fell back to."""
    a = attributes
    tempo = a.tempo_bucket + (f" ({a.bpm:g} BPM)" if a.bpm else "")
    parts = [f"tempo: {tempo}", f"genre: {a.genre}", f"mood: {a.mood}", f"energy: {a.energy}"]
    if a.instruments:
        parts.append("instruments: " + ", ".join(i.replace("-", " ") for i in a.instruments))
    if a.key:
        parts.append(f"key: {a.key}" + (f" {a.mode}" if a.mode else ""))
    return "; ".join(parts)


def styled_prompt(description: str, attributes: Attributes) -> str:
    """The prompt with the attribute text appended (the text half of the Stylization input)."""
    text = description.strip().rstrip(".")
    return f"{text}. {attribute_text(attributes)}"


class Stylization(nn.Module):
    """[text token | CLAP | timestep] -> zero-initialised projection -> added to the text token."""

    def __init__(self, config: StylizationConfig) -> None:
        super().__init__()
        self.config = config
        width = config.context_dim + config.clap_dim + config.time_dim
        self.proj = nn.Linear(width, config.context_dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    @classmethod
    def for_base(cls, dit: nn.Module, clap_dim: int) -> Stylization:
        transformer = dit.transformer
        context_dim = transformer.layers[0].cross_attn.to_kv.in_features
        config = StylizationConfig(
            context_dim=context_dim, time_dim=transformer.dim, clap_dim=clap_dim
        )
        return cls(config).to(next(dit.parameters()).dtype)

    def check_base(self, dit: nn.Module) -> None:
        transformer = dit.transformer
        context_dim = transformer.layers[0].cross_attn.to_kv.in_features
        if (self.config.context_dim, self.config.time_dim) != (context_dim, transformer.dim):
            raise WeightsError(
                f"Stylization was built for text width {self.config.context_dim} and DiT width "
                f"{self.config.time_dim}; this DiT has {context_dim} and {transformer.dim}"
            )

    def styled_context(
        self, context: torch.Tensor, clap: torch.Tensor, time_embed: torch.Tensor
    ) -> torch.Tensor:
        n = context.shape[1]
        dtype = self.proj.weight.dtype
        feats = torch.cat(
            [
                context.to(dtype),
                clap.to(dtype)[:, None, :].expand(-1, n, -1),
                time_embed.to(dtype)[:, None, :].expand(-1, n, -1),
            ],
            dim=-1,
        )
        return context + self.proj(feats).to(context.dtype)

    def attach(self, transformer: nn.Module) -> list[RemovableHandle]:
        def before_transformer(module: nn.Module, args: tuple, kwargs: dict) -> tuple:
            style = kwargs.pop("style_cond", None)
            kwargs["use_checkpointing"] = False
            context = kwargs.get("context")
            if style is None or context is None:
                return args, kwargs
            batch = context.shape[0]
            if style.shape[0] != batch:  # CFG: [cond | uncond] halves, null style for uncond
                if batch != 2 * style.shape[0]:
                    raise ValueError(f"style batch {style.shape[0]} does not match {batch}")
                style = torch.cat([style, torch.zeros_like(style)], dim=0)
            time_embed = _time_embedding(kwargs, batch, module.dim, context)
            kwargs["context"] = self.styled_context(context, style, time_embed)
            return args, kwargs

        return [transformer.register_forward_pre_hook(before_transformer, with_kwargs=True)]


def _time_embedding(
    kwargs: dict[str, Any], batch: int, dim: int, like: torch.Tensor
) -> torch.Tensor:
    """SAO prepends its timestep (+ timing) embedding as the last prepended token; adaLN
    configurations pass it as ``global_cond`` instead."""
    prepend = kwargs.get("prepend_embeds")
    if prepend is not None:
        return prepend[:, -1, :]
    global_cond = kwargs.get("global_cond")
    if global_cond is not None:
        return global_cond
    return like.new_zeros(batch, dim)
