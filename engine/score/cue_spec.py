"""A cue request, checked before the job is acknowledged: `CueSpec` (the wire's parameters,
loaded by the config's strict loader) and its parsers (the knobs against the knob table, the
previous cue's carry, markers, lengths and names). The pipeline (engine/score/cue.py) runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, quote, quote_names
from bridge.hits import HITS, parse_hits, parse_markers
from bridge.knobs import MAX_TEXT_CHARS, Knob, clean_knobs, knob_rows, row_values
from engine import backends, taxonomy
from engine.config import Settings, load_frozen
from engine.score.finishing import parse_finish_params
from engine.types import Knobs

MAX_VARIATIONS = 8
MAX_NAME_CHARS = 128  # an output name (the generators take 1-128 chars)
MAX_KNOB_CHARS = 64  # a knob value: a tag name or a BPM
MAX_INSTRUMENTS = 16
MAX_CARRY_CHARS = 8000  # a carry is a few hundred bytes of JSON (form position, 2-3 motifs)


@dataclass(frozen=True)
class Carried:
    """What the previous cue of a run passes on (`continue_from`, a map on the wire): tempo,
    key, mode, the genre's groove and the draft's form position and motifs ("carry", checked
    field by field by the draft generator). Its fields are the keys the strict loader takes."""

    bpm: float | None = None
    key: str | None = None
    mode: str | None = None
    genre: str | None = None
    carry: dict[str, Any] | None = None


@dataclass(frozen=True)
class CueSpec:
    """A validated cue request (the `cue` and `describe` job kinds' params): its fields are
    the wire's parameters (WIRE_NAMES where the wire says otherwise), loaded by the config's
    strict loader (unknown keys refused)."""

    media: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    text: str | None = None
    duration_s: float | None = None  # None: the media range's length, known after probing
    knobs: Knobs = field(default_factory=Knobs)
    backend: str = "auto"
    name: str = "cue"
    variations: int = 1
    cut_times_s: tuple[float, ...] | None = None
    continue_from: dict[str, Any] | None = None  # the previous cue's Carried fields
    duck: bool = True  # lower the music under dialogue found in the media's audio
    position_s: float = 0.0  # record-in on the timeline clock (BWF: since midnight)
    project: str = ""  # the production's title, written into the WAV's iXML
    marker_times_s: tuple[float, ...] = ()  # hit points (editor's markers), seconds from start
    hits: tuple[str, ...] = HITS  # what the music hits: "cuts", "markers", both or neither
    ending: str | None = None  # ring | button | fade | cut | none; None: the backend's default
    loop: bool = False  # whole bars that loop seamlessly (length rounded to bars)
    stems: bool = False  # one WAV per part as well (draft backend)
    frame_rate: float | None = None  # picture rate for button/cut endings (None: the media's)

    def to_params(self) -> dict[str, Any]:
        """The params this spec parses from (normalised): the job's stored parameters."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            to_wire = _TO_WIRE.get(f.name, _wire)
            out[WIRE_NAMES.get(f.name, f.name)] = to_wire(value)
        return out


WIRE_NAMES = {"marker_times_s": "markers"}  # a CueSpec field -> its parameter on the wire
_TO_WIRE: dict[str, Callable[[Any], Any]] = {
    "marker_times_s": lambda times: [{"time_s": t} for t in times],
    "hits": lambda hits: ",".join(hits) or "none",
}


def _wire(value: Any) -> Any:
    if isinstance(value, Knobs):
        return value.to_json()
    return list(value) if isinstance(value, tuple) else value


def _names(knob: Knob, value: str) -> str:
    """One name of a knob's vocabulary, in taxonomy form (errors list the valid names)."""
    if knob.vocabulary in taxonomy.all_tags():
        return taxonomy.normalise_tag(knob.vocabulary, value)
    valid = row_values(knob, {"backend": backends.CHOICES})
    name = value.strip().lower()
    if name not in valid:
        raise InvalidRequest(
            f"knob '{knob.name}' is {quote(value)}; one of {', '.join(valid)} is needed"
        )
    return name


def _knob_value(knob: Knob, value: Any) -> Any:
    """A knob's value checked against its row of the knob table, in taxonomy form."""
    where = f"knob '{knob.name}'"
    if knob.type == "multi":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise InvalidRequest(f"{where} must be a list of {knob.vocabulary or 'value'} names")
        return tuple(dict.fromkeys(_names(knob, i) for i in items if i.strip()))
    if knob.type == "boolean":
        if not isinstance(value, bool):
            raise InvalidRequest(f"{where} must be true or false")
        return value
    if knob.bpm:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidRequest(f"{where} must be a tempo name or a BPM")
        taxonomy.normalise_tempo(value if isinstance(value, str) else float(value))
        return str(value).strip().lower()
    if knob.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or not knob.lo <= value <= knob.hi:
            raise InvalidRequest(f"{where} must be an integer {knob.lo}-{knob.hi}")
        return value
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a string")
    if knob.type == "text":
        if len(value) > knob.max_length:
            raise InvalidRequest(
                f"{where} is {len(value)} characters; the limit is {knob.max_length}"
            )
        return value
    return _names(knob, value)


def _check_knob_lengths(raw: dict[str, Any], rows: dict[str, Knob]) -> None:
    """Bounds before the taxonomy looks: names are short, lists are short (text: its row)."""
    for name, value in raw.items():
        row = rows[name]
        if row.type == "text":
            continue
        items = value.split(",") if row.type == "multi" and isinstance(value, str) else value
        items = items if isinstance(items, list) else [items]
        if row.type == "multi" and len(items) > MAX_INSTRUMENTS:
            raise InvalidRequest(f"knob '{name}' lists more than {MAX_INSTRUMENTS}")
        if any(isinstance(v, str) and len(v) > MAX_KNOB_CHARS for v in items):
            raise InvalidRequest(f"knob '{name}': a knob value is over {MAX_KNOB_CHARS} chars")


def parse_knobs(raw: Any) -> Knobs:
    """The `knobs` map, checked row by row against the knob table (bridge/knobs.py). "auto",
    "" and null mean unset, as in the host panels (bridge.knobs.clean_knobs), on every path.
    `text` (an option row) is taken here too: a soundtrack's words for its cues."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidRequest("'knobs' must be a map")
    raw = clean_knobs(raw)
    rows = {k.name: k for k in knob_rows() if k.group == "knobs" or k.name == "text"}
    unknown = set(raw) - set(rows)
    if unknown:
        raise InvalidRequest(f"unknown knob(s) {quote_names(unknown)}; knobs: {', '.join(rows)}")
    _check_knob_lengths(raw, rows)
    values = {n: _knob_value(rows[n], v) for n, v in raw.items()}
    typed = {f.name for f in fields(Knobs)} - {"extra"}
    knobs = load_frozen(
        Knobs,
        {n: v for n, v in values.items() if n in typed and v != ()},
        "knobs",
        InvalidRequest,
        "knob",
    )
    return replace(knobs, extra=tuple(sorted((n, v) for n, v in values.items() if n not in typed)))


def _continue_from(raw: Any) -> dict[str, Any] | None:
    """The previous cue's `Carried` map (a soundtrack passes it on), or None: keys and types
    by the strict loader, then the lengths."""
    if raw is None:
        return None
    carried = load_frozen(Carried, raw, "continue_from", InvalidRequest, "continue_from key")
    for f in fields(Carried):
        value = getattr(carried, f.name)
        if isinstance(value, str) and len(value) > MAX_KNOB_CHARS:
            raise InvalidRequest(f"'continue_from.{f.name}' is over {MAX_KNOB_CHARS} characters")
    if carried.carry is not None and len(json.dumps(carried.carry, default=str)) > MAX_CARRY_CHARS:
        raise InvalidRequest(f"'continue_from.carry' is over {MAX_CARRY_CHARS} characters")
    return raw


def _marker_times(raw: Any) -> tuple[float, ...]:
    """A host's markers ([{"time_s", "name"?, "comment"?}]) as hit times, "no hit" ones out."""
    return tuple(m.time_s for m in parse_markers(raw) if m.wanted)


# The parameters whose wire form is richer than their field (keyed by the wire's name).
_FROM_WIRE: dict[str, Callable[[Any], Any]] = {
    "knobs": parse_knobs,
    "continue_from": _continue_from,
    "markers": _marker_times,
    "hits": parse_hits,
}


def _seconds(spec: CueSpec) -> None:
    for key in ("start_s", "end_s", "duration_s", "position_s"):
        v = getattr(spec, key)
        if v is not None and v < 0:
            raise InvalidRequest(f"'{key}' must be >= 0, got {v:g}")


def _is_file_path(path: str) -> bool:
    """Whether a client's path names an existing file (a name too long, a NUL or an
    unknown ~user is a wrong path, not a server fault)."""
    try:
        return Path(path).expanduser().exists()
    except (OSError, ValueError, RuntimeError):
        return False


def _check_text_and_media(spec: CueSpec) -> None:
    media, text = spec.media, spec.text
    if text is not None and not text.strip():
        raise InvalidRequest("'text' must be a non-empty string")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"'text' is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    if media is None and text is None:
        raise InvalidRequest("a cue needs 'media' (a video or image) or 'text'")
    if media is not None and not _is_file_path(media):
        raise InvalidRequest(f"media file not found: {quote(media, PATH_QUOTE_CHARS)}")


def _check_names(spec: CueSpec) -> None:
    if not 1 <= spec.variations <= MAX_VARIATIONS:
        raise InvalidRequest(f"'variations' must be an integer 1-{MAX_VARIATIONS}")
    name = spec.name or "cue"
    if len(name) > MAX_NAME_CHARS or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest(f"'name' may use 1-{MAX_NAME_CHARS} letters, digits, '-' and '_' only")
    if len(spec.project) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"'project' must be a title of at most {MAX_TEXT_CHARS} characters")


def parse_cue_params(
    params: dict[str, Any], settings: Settings, need_duration: bool = True
) -> CueSpec:
    """Check everything that can be checked before a job is acknowledged (a null is the
    same as leaving the parameter out)."""
    given = {k: v for k, v in params.items() if v is not None}
    spec = load_frozen(
        CueSpec, given, "", InvalidRequest, "cue parameter", _FROM_WIRE, wire=WIRE_NAMES
    )
    _check_text_and_media(spec)
    parse_finish_params(given)  # ending values, loop xor ending, frame rate range
    _seconds(spec)
    start, end, duration = spec.start_s, spec.end_s, spec.duration_s
    if start is not None and end is not None and end <= start:
        raise InvalidRequest(f"end_s ({end:g}) must be after start_s ({start:g})")
    if duration is None and start is not None and end is not None:
        duration = end - start
    if duration is None and spec.media is None and need_duration:
        raise InvalidRequest("a text-only cue needs 'duration_s'")
    if duration is not None and duration <= 0:
        raise InvalidRequest(f"cue length must be positive, got {duration:g} s")
    if duration is not None and duration > settings.pipeline.max_cue_s:
        raise InvalidRequest(
            f"cue length {duration:g} s exceeds the maximum of {settings.pipeline.max_cue_s:g} s "
            "(pipeline.max_cue_s)"
        )
    backend = params.get("backend") or settings.pipeline.backend
    if backend not in backends.CHOICES:
        raise InvalidRequest(
            f"unknown backend {quote(backend)}; backends: {', '.join(backends.CHOICES)}"
        )
    _check_names(spec)
    return replace(
        spec,
        media=str(Path(spec.media).expanduser().resolve()) if spec.media else None,
        text=spec.text.strip() if spec.text else None,
        duration_s=duration,
        backend=backend,
        name=spec.name or "cue",
    )
