"""Knob definitions for host panels: names, labels, allowed values and ranges as plain JSON.

Panels (Resolve UIManager, REAPER JSFX) are generated from this, never hard-coded. The tag
lists come from the engine's taxonomy, passed in when the engine starts the gateway, because
bridge must not import engine. "auto" means "let the picture decide": the engine's knob parser
drops it with `clean_knobs`, whichever path (HTTP or ZeroMQ) the request took.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KNOBS_VERSION = 1
AUTO = "auto"
NONE = "none"  # an empty instrument slot in a panel
KNOB_NAMES = ("mood", "genre", "tempo", "energy", "instruments")
MAX_INSTRUMENT_SLOTS = 3
MAX_SEED = 2**31 - 1
MAX_TEXT_CHARS = 2000


def _choice(name: str, label: str, values: Sequence[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "choice",
        "values": [AUTO, *values],
        "default": AUTO,
        **extra,
    }


def knob_definitions(
    tags: Mapping[str, Sequence[str]],
    bpm_range: tuple[float, float] = (40.0, 220.0),
    backends: Sequence[str] = ("auto", "draft", "full"),
) -> dict[str, Any]:
    """The JSON the capabilities endpoint serves; `tags` is engine.taxonomy.all_tags()."""
    lo, hi = float(bpm_range[0]), float(bpm_range[1])
    return {
        "version": KNOBS_VERSION,
        "auto": AUTO,
        "knobs": [
            _choice("mood", "Mood", tags["mood"]),
            _choice("genre", "Genre", tags["genre"]),
            _choice(
                "tempo",
                "Tempo",
                tags["tempo"],
                bpm={"min": lo, "max": hi},
                help=f"a tempo bucket, or a BPM between {lo:g} and {hi:g} (sent as a string)",
            ),
            _choice("energy", "Energy", tags["energy"]),
            {
                "name": "instruments",
                "label": "Instruments",
                "type": "multi",
                "values": list(tags["instrument"]),
                "default": [],
                "max": MAX_INSTRUMENT_SLOTS,
                "empty": NONE,
            },
        ],
        "options": [
            {
                "name": "backend",
                "label": "Backend",
                "type": "choice",
                "values": list(backends),
                "default": backends[0] if backends else AUTO,
            },
            {
                "name": "seed",
                "label": "Seed",
                "type": "integer",
                "min": 0,
                "max": MAX_SEED,
                "default": None,
                "help": "empty or 0: a new random seed each time",
            },
            {
                "name": "text",
                "label": "Describe the music (optional)",
                "type": "text",
                "default": "",
                "max_length": MAX_TEXT_CHARS,
            },
        ],
    }


def clean_knobs(knobs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop "auto", empty values and empty instrument slots; the engine validates the rest."""
    out: dict[str, Any] = {}
    for name, value in (knobs or {}).items():
        if isinstance(value, list | tuple):
            items = [
                v for v in value if v is not None and str(v).strip().lower() not in ("", AUTO, NONE)
            ]
            if items:
                out[name] = items
        elif value is None or (isinstance(value, str) and value.strip().lower() in ("", AUTO)):
            continue
        else:
            out[name] = value
    return out
