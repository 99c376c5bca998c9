"""What conditions one full cue, built and reported in one place.

The prompt is the description's sentence with every attribute appended (the form the ECMG
training records use); the broad reference feeds the ControlFormer, the targeted one's CLAP
embedding (the one the library stores) the Stylization Module. ``conditioning`` in the
result says which of these reached the model, and the tempo and key it reports were
measured on the audio it made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest, WeightsError
from engine.generate.full.stylization import attribute_text, styled_prompt
from engine.types import GenerationRequest, Reference, Weights

MIN_KEY_STRENGTH = 0.5  # below this correlation with a key profile, no key is reported


def describe_conditioning(
    request: GenerationRequest,
    encoder: Any,
    adapters_name: str,
    adapters_installed: bool,
    weights: Weights,
    notes: list[str],
) -> tuple[str, dict[str, Any]]:
    """(prompt, conditioning): the text sent to the model and what else may condition it.
    ``encoder`` is the T5 prompt conditioner (its token limit is reported, never silent)."""
    description, retrieval = request.description, request.retrieval
    prompt = styled_prompt(description.text, description.attributes)
    cut = encoder.cut_words(prompt)
    if cut is not None:
        notes.append(
            f"prompt longer than the text encoder's {encoder.max_length} tokens: cut {cut!r}"
        )
    if not adapters_installed:
        notes.append(f"{adapters_name} not installed: plain SAO, references not used")
    elif not retrieval.broad and not retrieval.targeted:
        notes.append("no references: generated from the description alone")
    notes.extend(retrieval.notes)  # e.g. the partition a targeted search fell back to
    broad, targeted = retrieval.broad, retrieval.targeted
    return prompt, {
        "text": prompt,
        "attribute_text": attribute_text(description.attributes),
        "text_cut": cut,
        "broad": [r.piece_id for r in broad],
        "targeted": [{"id": r.piece_id, "partition": r.partition} for r in targeted],
        "control": False,
        "control_from": broad[0].piece_id if broad else None,
        "style": False,
        "style_from": targeted[0].piece_id if targeted else None,
        "weights": {"generate": weights},
    }


def mark_used(conditioning: dict[str, Any], control: bool, style: bool) -> None:
    """Record whether the ControlFormer and the Stylization inputs were really given."""
    conditioning["control"] = control
    conditioning["style"] = style
    if not control:
        conditioning["control_from"] = None
    if not style:
        conditioning["style_from"] = None


def style_embedding(
    targeted: Sequence[Reference],
    clap_embed: Callable[[Reference], np.ndarray] | None,
    dim: int,
    adapters_name: str,
    notes: list[str],
) -> np.ndarray | None:
    """The first targeted reference's CLAP embedding (the library's), or None: no style."""
    if not targeted:
        notes.append("no targeted reference: Stylization off")
        return None
    ref = targeted[0]
    if ref.clap is not None:
        emb = np.asarray(ref.clap, dtype=np.float32).reshape(-1)
    elif clap_embed is not None:
        emb = np.asarray(clap_embed(ref), dtype=np.float32).reshape(-1)
    else:
        notes.append(f"no CLAP embedding for {ref.piece_id}: Stylization off")
        return None
    if emb.shape != (dim,):
        raise WeightsError(
            f"the CLAP embedding of {ref.piece_id} has {emb.size} values but {adapters_name} "
            f"was trained for {dim}: the library and the adapters come from different CLAP "
            "models (re-embed the library or install matching adapters)"
        )
    if not np.isfinite(emb).all() or not np.any(emb):
        raise InvalidRequest(f"the CLAP embedding of {ref.piece_id} is not usable")
    return emb


def measure_played(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Tempo and key measured on the generated audio [C, S] (None where there is no steady
    pulse or no clear key): what the cue reports, never what was asked."""
    from engine.retrieve.dsp import analyse_audio

    f = analyse_audio(audio.T, sample_rate)
    tonal = f.key is not None and f.key_strength >= MIN_KEY_STRENGTH
    return {
        "bpm": f.bpm,
        "key": f.key if tonal else None,
        "mode": f.mode if tonal else None,
        "measured": {
            "bpm": f.bpm,
            "tempo_confidence": round(f.tempo_confidence, 3),
            "key": f"{f.key} {f.mode}" if f.key else None,
            "key_strength": round(f.key_strength, 3),
        },
    }
