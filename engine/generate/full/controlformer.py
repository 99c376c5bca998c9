"""Music ControlFormer: a ControlNet-style branch that feeds the broad reference into SAO's DiT.

The branch is a trainable copy of the first N DiT blocks. Its input is the main branch's
hidden state plus a zero-initialised projection of the reference's VAE latent; after each of
its blocks a zero-initialised projection is added to the main branch's hidden state at the
same layer. At initialisation the model is therefore exactly the base model.

It plugs into stable-audio-tools through forward hooks (no fork): the caller passes
``control_cond=<latent [B, C, T]>`` to the DiT; a pre-hook on the ContinuousTransformer takes
it out of the kwargs (SAT forwards unknown kwargs down to every block), a pre-hook on layer 0
runs the branch with the same rotary embedding, context and global conditioning as the main
blocks, and forward hooks on layers 0..N-1 add the residuals. Per-layer gradient
checkpointing is switched off while hooked: SAT re-runs checkpointed layers in backward,
which would re-run the hooks and break the saved-tensor count.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from bridge.errors import WeightsError

STEM = "controlformer"


@dataclass(frozen=True)
class ControlFormerConfig:
    depth: int  # how many early DiT blocks are copied (N)
    dim: int  # DiT width
    latent_channels: int  # VAE latent channels of the reference


def _zero_linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def align_control(control: torch.Tensor, batch: int, length: int) -> torch.Tensor:
    """[B, C, T] latent -> [batch, length, C] tokens; repeats the batch under CFG (the
    reference conditions both the conditional and the unconditional half)."""
    if control.ndim != 3:
        raise ValueError(f"control latent must be [B, C, T], got {tuple(control.shape)}")
    if control.shape[-1] != length:
        control = F.interpolate(control, size=(length,), mode="nearest")
    if control.shape[0] != batch:
        if batch % control.shape[0]:
            raise ValueError(f"control batch {control.shape[0]} does not divide {batch}")
        control = control.repeat(batch // control.shape[0], 1, 1)
    return control.transpose(1, 2)


class ControlFormer(nn.Module):
    """Trainable copy of the first ``depth`` DiT blocks with zero-initialised in/out projections."""

    def __init__(self, config: ControlFormerConfig, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(blocks) != config.depth or config.depth < 1:
            raise WeightsError(f"ControlFormer needs {config.depth} blocks, got {len(blocks)}")
        self.config = config
        self.control_in = _zero_linear(config.latent_channels, config.dim)
        self.blocks = nn.ModuleList(blocks)
        self.zero_outs = nn.ModuleList(_zero_linear(config.dim, config.dim) for _ in blocks)

    @classmethod
    def from_base(cls, transformer: nn.Module, config: ControlFormerConfig) -> ControlFormer:
        """Copy the base's first blocks (weights included) so training starts from them."""
        layers = transformer.layers
        if config.dim != transformer.dim:
            raise WeightsError(f"ControlFormer width {config.dim} != DiT width {transformer.dim}")
        if not 1 <= config.depth <= len(layers):
            raise WeightsError(f"ControlFormer depth {config.depth} not in 1..{len(layers)}")
        if config.latent_channels != transformer.project_in.in_features:
            raise WeightsError(
                f"ControlFormer latent channels {config.latent_channels} != "
                f"DiT input channels {transformer.project_in.in_features}"
            )
        blocks = [copy.deepcopy(layers[i]).requires_grad_(True) for i in range(config.depth)]
        return cls(config, blocks).to(next(transformer.parameters()).dtype)

    def residuals(
        self, x: torch.Tensor, control: torch.Tensor, prefix: int, layer_kwargs: dict[str, Any]
    ) -> list[torch.Tensor]:
        """x: layer 0's input [B, prefix + T, dim]; control: [B, T, C] reference tokens."""
        c = self.control_in(control.to(self.control_in.weight.dtype))
        h = x + F.pad(c, (0, 0, prefix, 0))  # no control on the prepended/memory tokens
        out = []
        for block, proj in zip(self.blocks, self.zero_outs, strict=True):
            h = block(h, **layer_kwargs)
            out.append(proj(h))
        return out

    def attach(self, transformer: nn.Module) -> list[RemovableHandle]:
        """Hook this branch into ``transformer`` (SAT ContinuousTransformer); returns handles."""
        state: dict[str, Any] = {}

        def before_transformer(module: nn.Module, args: tuple, kwargs: dict) -> tuple:
            state.clear()
            control = kwargs.pop("control_cond", None)
            kwargs["use_checkpointing"] = False
            if control is not None:
                x = args[0]
                prepend = kwargs.get("prepend_embeds")
                state["prefix"] = (0 if prepend is None else prepend.shape[1]) + int(
                    module.num_memory_tokens
                )
                state["control"] = align_control(control, x.shape[0], x.shape[1])
            return args, kwargs

        def before_first_layer(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if "control" in state:
                state["residuals"] = self.residuals(
                    args[0], state.pop("control"), state["prefix"], dict(kwargs)
                )

        def after_layer(index: int):
            def hook(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor):
                residuals = state.get("residuals")
                return None if residuals is None else output + residuals[index]

            return hook

        def after_transformer(module: nn.Module, args: tuple, output: Any) -> None:
            state.clear()

        handles = [
            transformer.register_forward_pre_hook(before_transformer, with_kwargs=True),
            transformer.layers[0].register_forward_pre_hook(before_first_layer, with_kwargs=True),
        ]
        for i in range(self.config.depth):
            handles.append(
                transformer.layers[i].register_forward_hook(after_layer(i), with_kwargs=True)
            )
        handles.append(transformer.register_forward_hook(after_transformer))
        return handles
