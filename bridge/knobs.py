"""The knob table: every knob and request option a user sets, in one place.

Each row says its name, panel label, type, where it goes in a request (`group`), its values
or limits and its help. Everything else is built from `KNOBS`: the capabilities the daemon's
`hello` and the gateway's `/v1/capabilities` serve (`knob_definitions`; host panels and the
plugins' request building read them), the engine's parser (`engine.score.cue_spec.parse_knobs`)
and the `vmb generate`/`describe`/`render` options (`engine.commands.generate`). Tag
vocabularies come from the engine's taxonomy, passed in when the capabilities are built,
because bridge must not import engine. "auto" means "let the picture decide": the engine's
knob parser drops it with `clean_knobs`, whichever path (HTTP or ZeroMQ) the request took.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

KNOBS_VERSION = 1
AUTO = "auto"
NONE = "none"  # an empty instrument slot in a panel
MAX_INSTRUMENT_SLOTS = 3
MAX_SEED = 2**31 - 1
"""The one seed limit (the wire's too): a JSFX slider and a Resolve spin box hold it, the
daemon draws seeds below it, and seed+k (variations) stays inside numpy's 0..2^32-1."""
ENDINGS = ("ring", "button", "fade", "cut", "none")
"""How a cue ends (the `ending` row's values; engine.types re-exports it for the backends)."""
MAX_TEXT_CHARS = 1000
"""The `text` row's limit, and the one limit on a description everywhere (the describers'
parser reads it): a description is one or two sentences; longer text is almost surely a
paste mistake (and T5 reads only 128 tokens of it)."""


@dataclass(frozen=True)
class Knob:
    """One row of the knob table.

    type: "choice" (one of `values`, or the vocabulary's), "multi" (a list of them, at most
    `max_items` panel slots), "integer" (lo..hi), "text" (at most `max_length` characters),
    "boolean" (true or false; off unless set).
    group: "knobs" rows go in a request's `knobs` map; "options" rows are fields of their own
    (a CueSpec / SoundtrackSpec field of the same name, or a submit field such as `seed`).
    vocabulary: the engine's tag facet (or "backend") whose names are the values, passed to
    `knob_definitions`; `values` are fixed ones. `bpm`: a tempo, also taking a BPM.
    kinds: the request kinds ("cue", "describe", "soundtrack") that take an option row (empty:
    all); the CLI commands offer a row only where their request takes it.
    """

    name: str
    label: str
    type: Literal["choice", "multi", "integer", "text", "boolean"]
    group: Literal["knobs", "options"]
    help: str
    vocabulary: str = ""
    values: tuple[str, ...] = ()
    bpm: bool = False
    max_items: int = 0
    lo: int = 0
    hi: int = 0
    max_length: int = 0
    kinds: tuple[str, ...] = ()


KNOBS: tuple[Knob, ...] = (
    Knob("mood", "Mood", "choice", "knobs", "the feel of the music", vocabulary="mood"),
    Knob("genre", "Genre", "choice", "knobs", "the style of the music", vocabulary="genre"),
    Knob(
        "tempo",
        "Tempo",
        "choice",
        "knobs",
        "a tempo bucket (slow | medium | fast) or a BPM",
        vocabulary="tempo",
        bpm=True,
    ),
    Knob("energy", "Energy", "choice", "knobs", "how intense the music is", vocabulary="energy"),
    Knob(
        "instruments",
        "Instruments",
        "multi",
        "knobs",
        "the instruments to feature",
        vocabulary="instrument",
        max_items=MAX_INSTRUMENT_SLOTS,
    ),
    Knob(
        "backend",
        "Backend",
        "choice",
        "options",
        "auto picks full where its weights are installed, else draft",
        vocabulary="backend",
    ),
    Knob(
        "seed",
        "Seed",
        "integer",
        "options",
        "empty or 0: a new random seed each time",
        lo=0,
        hi=MAX_SEED,
    ),
    Knob(
        "text",
        "Describe the music (optional)",
        "text",
        "options",
        "describe the music in words (replaces or steers the picture)",
        max_length=MAX_TEXT_CHARS,
        kinds=("cue", "describe"),
    ),
    # stems before ending and loop: REAPER keeps a JSFX's slider values by position
    Knob(
        "stems",
        "Stems (one track per instrument)",
        "boolean",
        "options",
        "one WAV per part as well (draft backend); the plugins place one track per instrument",
        kinds=("cue", "soundtrack"),
    ),
    Knob(
        "ending",
        "Ending",
        "choice",
        "options",
        "ring-out, a button hit or a hard cut on the last frame, a fade, or none (the music "
        "plays on into the next cue); default: by the cue's place in the run",
        values=ENDINGS,
        kinds=("cue", "soundtrack"),
    ),
    Knob(
        "loop",
        "Loop",
        "boolean",
        "options",
        "whole bars that loop seamlessly (one cue; it has no ending)",
        kinds=("cue",),
    ),
)


def knob_rows(group: str | None = None, kind: str | None = None) -> tuple[Knob, ...]:
    """The table's rows (of one group, taken by one request kind); read at call time, so a
    new row shows everywhere."""
    return tuple(
        k
        for k in KNOBS
        if (group is None or k.group == group) and (kind is None or not k.kinds or kind in k.kinds)
    )


def row_values(knob: Knob, vocabularies: Mapping[str, Sequence[str]]) -> list[str]:
    """A row's allowed names: its vocabulary's (passed in by the engine) or its fixed ones."""
    if knob.vocabulary:
        return list(vocabularies.get(knob.vocabulary, ()))
    return list(knob.values)


def _definition(knob: Knob, vocab: Mapping[str, Sequence[str]], bpm: tuple[float, float]) -> dict:
    out: dict[str, Any] = {"name": knob.name, "label": knob.label, "type": knob.type}
    values = row_values(knob, vocab)
    if knob.type == "choice" and knob.group == "knobs":
        out.update(values=[AUTO, *values], default=AUTO)
    elif knob.type == "choice" and AUTO in values:
        out.update(values=values, default=AUTO)
    elif knob.type == "choice":  # "auto" (the default) is the empty word: not sent
        out.update(values=[AUTO, *values], default=AUTO, empty=AUTO)
    elif knob.type == "multi":
        out.update(values=values, default=[], max=knob.max_items, empty=NONE)
    elif knob.type == "integer":
        out.update(min=knob.lo, max=knob.hi, default=None)
    elif knob.type == "boolean":
        out.update(default=False)
    else:
        out.update(default="", max_length=knob.max_length)
    if knob.bpm:
        out["bpm"] = {"min": bpm[0], "max": bpm[1]}
        out["help"] = f"{knob.help}; a BPM between {bpm[0]:g} and {bpm[1]:g} is sent as a string"
    else:
        out["help"] = knob.help
    if knob.kinds:
        out["kinds"] = list(knob.kinds)
    return out


def knob_definitions(
    tags: Mapping[str, Sequence[str]],
    bpm_range: tuple[float, float] = (40.0, 220.0),
    *,
    backends: Sequence[str],
) -> dict[str, Any]:
    """The JSON the capabilities serve; `tags` is engine.taxonomy.all_tags() and `backends`
    engine.backends.CHOICES (the registry's names). Hosts build their panels from it and their
    requests from its two lists (vmb_client.split_options)."""
    vocab = {**tags, "backend": tuple(backends)}
    bpm = (float(bpm_range[0]), float(bpm_range[1]))
    return {
        "version": KNOBS_VERSION,
        "auto": AUTO,
        "knobs": [_definition(k, vocab, bpm) for k in knob_rows("knobs")],
        "options": [_definition(k, vocab, bpm) for k in knob_rows("options")],
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
