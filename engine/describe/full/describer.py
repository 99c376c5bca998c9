"""The full text bridge: MMDM (InternVL + our LoRA adapter) behind engine.types.Describer.

Frames (10 sampled uniformly from the cue's source range) or one image go through the model;
free text (knobs.text: a typed or edited sentence) passes through without it. Either way
the sentence is parsed against the tag taxonomy (engine.describe.full.parse) and the user's
knobs win, so the full and draft describers feed the retrieve stage the same Attributes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from bridge.errors import InvalidRequest, JobError, WeightsError
from bridge.knobs import MAX_TEXT_CHARS
from engine import weights
from engine.config import Settings
from engine.describe.full.parse import (
    apply_knobs,
    clean_text,
    describe_text,
    parse_description,
)
from engine.types import Knobs, MusicDescription, ProgressFn, VisualInput, Weights

BASE_MODEL = "internvl"
ADAPTER_MODEL = "vmb-mmdm-lora"
_NEEDS = ("torch", "transformers", "peft", "safetensors", "PIL")


def full_describe_available(settings: Settings) -> tuple[bool, str]:
    """Whether FullDescriber(settings) can load, and in words why (not), without loading."""
    missing = [m for m in _NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"the full describe backend needs {', '.join(missing)} (full install)"
    try:
        base = weights.resolve(BASE_MODEL, settings.model_dir)
    except WeightsError as exc:
        return False, exc.message
    try:
        adapter = weights.resolve(ADAPTER_MODEL, settings.model_dir)
        with_adapter = f"+ MMDM adapter ({adapter.weights} weights)"
    except WeightsError:
        with_adapter = "without the MMDM adapter (base model, zero-shot)"
    from engine.describe.full.internvl import pick_device

    try:
        device = pick_device(settings.models.device)
    except WeightsError as exc:
        return False, exc.message
    return True, f"InternVL ({base.weights} weights) {with_adapter} on {device.type}"


def _first_line(raw: str) -> str:
    """The model's sentence: first non-empty line, cut to the text limit at a word."""
    for line in raw.splitlines():
        text = clean_text(line)
        if len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS].rsplit(" ", 1)[0]
        if text:
            return text
    return ""


class FullDescriber:
    """engine.types.Describer on InternVL + LoRA. Loads once; each call carries its own seed.

    The adapter is optional: without ``vmb-mmdm-lora`` the base answers the paper's prompt
    zero-shot (``adapter_used`` says which), unless ``require_adapter`` is set.
    """

    backend = "full"

    def __init__(
        self,
        settings: Settings,
        *,
        require_adapter: bool = False,
        merge_adapter: bool = False,
        max_new_tokens: int | None = None,
    ) -> None:
        from engine.describe.full import internvl, lora

        base = weights.resolve(BASE_MODEL, settings.model_dir)
        adapter: weights.ModelFolder | None
        try:
            adapter = weights.resolve(ADAPTER_MODEL, settings.model_dir)
        except WeightsError:
            if require_adapter:
                raise
            adapter = None
        self.device = internvl.pick_device(settings.models.device)
        self._mmdm = internvl.load_base(base.path, self.device)
        if adapter is not None:
            lora.load_adapter(self._mmdm, adapter.path, merge=merge_adapter)
        kinds = {base.weights} | ({adapter.weights} if adapter else set())
        # "base": zero-shot InternVL, without VMB's MMDM adapter
        self.weights: Weights = (
            "random" if "random" in kinds else "real" if adapter is not None else "base"
        )
        self.adapter_used = adapter is not None
        self.base_path: Path = base.path
        self.max_new_tokens = max_new_tokens or internvl.MAX_NEW_TOKENS
        self._num_frames = internvl.NUM_FRAMES

    def describe(
        self, visual: VisualInput, knobs: Knobs, rng: np.random.Generator, progress: ProgressFn
    ) -> MusicDescription:
        if knobs.text and knobs.text.strip():
            text, attributes = describe_text(knobs.text, knobs)
            progress("describe", 1, 1)
            return MusicDescription(text, attributes, "text", "full", "none")
        if visual.source == "text":
            raise InvalidRequest("a text request needs the text (knobs.text) to describe")
        from engine.describe.full.internvl import check_frames, sample_indices

        frames = check_frames(visual.frames)
        if visual.source == "image":
            frames = frames[:1]
        else:
            frames = frames[sample_indices(frames.shape[0], self._num_frames)]
        seed = int(rng.integers(0, 2**31 - 1))
        progress("describe", 0, self.max_new_tokens)
        raw = self._mmdm.generate(frames, visual.source, seed, progress, self.max_new_tokens)
        sentence = _first_line(raw)
        if not sentence:
            raise JobError("the description model returned no text; try another seed")
        attributes = apply_knobs(parse_description(sentence), knobs)
        progress("describe", self.max_new_tokens, self.max_new_tokens)
        return MusicDescription(sentence, attributes, visual.source, "full", self.weights)
