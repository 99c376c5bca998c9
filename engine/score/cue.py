"""One cue: describe -> retrieve -> generate, with progress, cancel checks and timings.

Stages are chosen by backend from a table of import paths (draft needs no downloaded
weights; full needs the neural models). `backend="auto"` picks full where every stage's
weights are installed and the device can run it, else draft, and says why. Stage objects
are cached per process so models stay resident in the worker between jobs.
"""

from __future__ import annotations

import json
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, quote, quote_names
from bridge.hits import HITS, parse_hits, parse_markers
from bridge.knobs import MAX_TEXT_CHARS, Knob, clean_knobs, knob_rows, row_values
from engine import backends, taxonomy
from engine.backends import STAGES, StageName
from engine.config import Settings, load_frozen
from engine.score.finishing import frame_rate_of, parse_finish_params, say_unsupported
from engine.types import (
    GeneratedAudio,
    GenerationRequest,
    Knobs,
    MusicDescription,
    ProgressFn,
    Retrieval,
    VisualInput,
    Weights,
    overall_weights,
)
from engine.util import atomic

MAX_VARIATIONS = 8
MAX_NAME_CHARS = 128  # an output name (the generators take 1-128 chars)
MAX_KNOB_CHARS = 64  # a knob value: a tag name or a BPM
MAX_INSTRUMENTS = 16
# what a previous cue of a run carries: tempo, key, mode, the genre's groove and the draft's
# form position and motifs ("carry", checked field by field by the draft generator)
CONTINUE_KEYS = {
    "bpm": (numbers.Real,),
    "key": (str,),
    "mode": (str,),
    "genre": (str,),
    "carry": (dict,),
}
MAX_CARRY_CHARS = 8000  # a carry is a few hundred bytes of JSON (form position, 2-3 motifs)


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
    continue_from: dict[str, Any] | None = None  # {"bpm", "key", "mode"} of the previous cue
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


@dataclass(frozen=True)
class Cue:
    """What one generated cue is: files, description, references, seed, timings."""

    audio: Path
    midi: Path | None
    duration_s: float
    num_samples: int
    sample_rate: int
    backend: str
    backend_reason: str
    weights: str
    description: MusicDescription
    retrieval: Retrieval
    seed: int
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    compute: dict[str, Any] = field(default_factory=dict)  # see compute_of
    licence: str = ""  # what the user may do with this music (engine.score.licence)
    conditioning: dict[str, Any] | None = None  # full cues: what reached the model

    def to_json(self) -> dict[str, Any]:
        return {
            "audio": str(self.audio),
            "midi": str(self.midi) if self.midi else None,
            "duration_s": self.duration_s,
            "num_samples": self.num_samples,
            "sample_rate": self.sample_rate,
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "weights": self.weights,
            "description": self.description.text,
            "attributes": self.description.attributes.to_json(),
            "references": {
                "broad": [r.to_json() for r in self.retrieval.broad],
                "targeted": [r.to_json() for r in self.retrieval.targeted],
                "notes": list(self.retrieval.notes),
            },
            "seed": self.seed,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "conditioning": self.conditioning,
            "extra": self.extra,
            "compute": self.compute,
            "licence": self.licence,
        }


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
    """The previous cue's {"bpm", "key", "mode"} (a soundtrack passes it on), or None."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not set(raw) <= set(CONTINUE_KEYS):
        raise InvalidRequest(
            "'continue_from' must be a map of 'bpm', 'key', 'mode', 'genre' and 'carry'"
        )
    for key, value in raw.items():
        ok = value is None or (
            isinstance(value, CONTINUE_KEYS[key]) and not isinstance(value, bool)
        )
        if not ok or (isinstance(value, str) and len(value) > MAX_KNOB_CHARS):
            raise InvalidRequest(f"'continue_from.{key}' has the wrong type or length")
    carry = raw.get("carry")
    if carry is not None and len(json.dumps(carry, default=str)) > MAX_CARRY_CHARS:
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


_STAGE_CACHE: dict[tuple[str, str, Settings], Any] = {}


def stage(backend: str, name: StageName, settings: Settings) -> Any:
    """The stage object for this backend and these settings, built once per process (models
    stay resident); other settings (another model folder, another device) build anew."""
    key = (backend, name, settings)
    if key not in _STAGE_CACHE:
        _STAGE_CACHE[key] = backends.get(backend).build(name, settings)
    return _STAGE_CACHE[key]


def visual_for(spec: CueSpec, settings: Settings) -> VisualInput:
    """What the describe stage sees: frames of the media range, an image, or nothing."""
    if spec.media is None:  # text only, or a cue scored from the cut alone
        return VisualInput(
            frames=np.zeros((0, 1, 1, 3), np.uint8),
            frame_times_s=(),
            duration_s=spec.duration_s or 0.0,
            cut_times_s=spec.cut_times_s or (),
            source="text",
        )
    from engine import media

    visual = media.visual_input(Path(spec.media), spec.start_s, spec.end_s)
    if spec.cut_times_s is not None:
        visual = replace(visual, cut_times_s=spec.cut_times_s)
    return visual


def _continued(description: MusicDescription, spec: CueSpec) -> MusicDescription:
    """Keep tempo and tonic continuous with the previous cue when the plan asks for it.

    The mode still follows this cue's mood (a sad shot after a happy one moves to the
    parallel minor), unless the description fixed it.
    """
    prev = spec.continue_from or {}
    if not prev:
        return description
    attrs = description.attributes
    bpm = attrs.bpm if spec.knobs.tempo is not None else (prev.get("bpm") or attrs.bpm)
    if bpm != attrs.bpm:  # a carried BPM brings its bucket: never "slow (144 BPM)"
        attrs = replace(attrs, bpm=bpm, tempo_bucket=taxonomy.tempo_bucket(bpm))
    genre = prev.get("genre") if spec.knobs.genre is None else None
    attrs = replace(
        attrs,
        key=prev.get("key") or attrs.key,
        # one piece keeps its groove: the genre carries on unless the knobs change it
        genre=genre if isinstance(genre, str) and genre in taxonomy.GENRES else attrs.genre,
    )
    return replace(description, attributes=attrs)


def _speech_regions(spec: CueSpec) -> list[tuple[float, float]] | None:
    """Dialogue in the media's own audio (silero-vad); None where there is nothing to hear."""
    if not spec.duck or spec.media is None:
        return None
    from engine import media

    if media.is_image(spec.media) or not media.probe(spec.media).has_audio:
        return None
    from engine.generate.ducking import VAD_SR, speech_regions

    speech = media.decode_audio(spec.media, spec.start_s, spec.end_s, rate=VAD_SR, channels=1)
    return [(round(a, 3), round(b, 3)) for a, b in speech_regions(speech, VAD_SR)]


def _duck(path: Path, regions: list[tuple[float, float]]) -> None:
    """Lower the stem under speech, rewriting it atomically in its own format."""
    import soundfile as sf

    from engine.generate.ducking import ducking_gain
    from engine.score import wavchunks

    info = sf.info(path)
    music, sr = sf.read(path, dtype="float32", always_2d=True)
    gain = ducking_gain(len(music), sr, regions).astype(np.float32)
    smpl = wavchunks.read_chunk(path, b"smpl")  # a loop's points: libsndfile drops them
    tmp = atomic.temp_path(path)
    sf.write(tmp, music * gain[:, None], sr, subtype=info.subtype, format=info.format)
    if smpl is not None:
        wavchunks.append_chunk(tmp, b"smpl", smpl)
    atomic.publish(tmp, path)


def _played(description: MusicDescription, audio: GeneratedAudio) -> MusicDescription:
    """Report the tempo and key the generator actually played: the draft's arrangement says
    so; a full cue's are measured on its audio, or reported as unknown (never the request)."""
    x = audio.extra
    attrs = description.attributes
    if audio.backend == "full":
        bpm, key, mode = x.get("bpm"), x.get("key"), x.get("mode")
    else:
        bpm, key = x.get("bpm", attrs.bpm), x.get("key", attrs.key)
        mode = x.get("mode", attrs.mode)
    return replace(description, attributes=replace(attrs, bpm=bpm, key=key, mode=mode))


def _conditioning(
    audio: GeneratedAudio, description: MusicDescription, retriever: Any
) -> tuple[dict[str, Any] | None, Weights]:
    """A full cue's conditioning with the weights each stage ran on, and the cue's label."""
    given = audio.extra.get("conditioning")
    if audio.backend != "full" or not isinstance(given, dict):
        return None, audio.weights
    stages: dict[str, Weights] = {
        "describe": description.weights,
        "retrieve": getattr(retriever, "weights", "none"),
        "generate": audio.weights,
    }
    return {**given, "weights": stages}, overall_weights(stages)


def compute_of(audio: GeneratedAudio, retriever: Any) -> dict[str, Any]:
    """What the cue ran on: the generator's device and dtype (the full backend says; the draft
    backend renders on the CPU and has no dtype) and the encoders' ONNX provider or device."""
    ran_on = getattr(retriever, "ran_on", None)
    return {
        "device": audio.extra.get("device", "cpu"),
        "dtype": audio.extra.get("dtype"),
        "encoders": ran_on() if callable(ran_on) else {},
    }


def describe(
    spec: CueSpec,
    settings: Settings,
    seed: int,
    progress: ProgressFn,
    stages: tuple[StageName, ...] = ("describe",),
) -> tuple[str, str, VisualInput, MusicDescription, dict[str, float]]:
    """The describe stage alone needs no music library nor generator weights."""
    backend, reason = backends.select(spec.backend, settings, stages)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("media", 0, 1)
    visual = visual_for(spec, settings)
    timings["media_s"] = time.perf_counter() - t0
    knobs = replace(spec.knobs, text=spec.text) if spec.text else spec.knobs
    t0 = time.perf_counter()
    progress("describe", 0, 1)
    description = stage(backend, "describe", settings).describe(
        visual, knobs, np.random.default_rng(seed), progress
    )
    timings["describe_s"] = time.perf_counter() - t0
    return backend, reason, visual, _continued(description, spec), timings


@dataclass(frozen=True)
class Identity:
    """What keeps a re-fitted cue the same music (engine.score.conform): the description it
    played (tempo, key and mode included) and the references it was made from. With it,
    describe and retrieve are skipped; the length, cuts and markers are the spec's."""

    description: MusicDescription
    retrieval: Retrieval


def run_cue(
    spec: CueSpec,
    settings: Settings,
    seed: int,
    out_dir: Path,
    progress: ProgressFn,
    identity: Identity | None = None,
) -> list[Cue]:
    """describe -> retrieve -> generate; K variations share description and references
    and run as one batch where the generator has a batched path. With `identity` (a
    re-fit), the description and references are those, not looked for again."""
    if identity is None:
        backend, reason, visual, description, timings = describe(
            spec, settings, seed, progress, STAGES
        )
    else:  # no picture is looked at: the cut times are the spec's
        backend, reason = backends.select(spec.backend, settings, STAGES)
        visual, timings = visual_for(replace(spec, media=None), settings), {}
        description = _continued(identity.description, spec)
    duration = spec.duration_s or visual.duration_s
    if duration <= 0:
        raise InvalidRequest(f"the selected range of {spec.media} is empty")
    if duration > settings.pipeline.max_cue_s:
        raise InvalidRequest(
            f"cue length {duration:g} s exceeds the maximum of {settings.pipeline.max_cue_s:g} s"
        )
    t0 = time.perf_counter()
    progress("retrieve", 0, 1)
    retriever = stage(backend, "retrieve", settings)
    if identity is not None:
        retrieval = identity.retrieval
    else:
        retrieval = retriever.retrieve(description, spec.knobs, visual, settings.pipeline.top_k)
    timings["retrieve_s"] = time.perf_counter() - t0
    generator = stage(backend, "generate", settings)
    t0 = time.perf_counter()
    speech = _speech_regions(spec)
    if speech is not None:
        timings["speech_s"] = time.perf_counter() - t0
    request = GenerationRequest(
        description=description,
        retrieval=retrieval,
        duration_s=duration,
        seed=seed,
        out_dir=out_dir,
        cut_times_s=visual.cut_times_s if "cuts" in spec.hits else (),
        marker_times_s=spec.marker_times_s if "markers" in spec.hits else (),
        sample_rate=settings.pipeline.sample_rate,
        name=spec.name,
        ending=spec.ending,
        loop=spec.loop,
        stems=spec.stems,
        continue_from=spec.continue_from,
        frame_rate=frame_rate_of(spec),
    )
    cues = []
    for v, generated, generate_s in _generate_all(generator, request, spec, progress):
        audio = say_unsupported(generated, spec)
        played = _played(description, audio)
        if speech:
            _duck(audio.audio_path, speech)
            for stem in (audio.extra.get("stems") or {}).values():
                _duck(Path(str(stem)), speech)  # the same gain: stems still sum to the mix
            audio = replace(audio, extra={**audio.extra, "ducked_under_speech_s": speech})
        conditioning, weights = _conditioning(audio, description, retriever)
        cue_timings = {**timings, "generate_s": generate_s}
        cue_timings["total_s"] = sum(cue_timings.values())
        if spec.variations > 1 and hasattr(generator, "generate_variations"):
            cue_timings["generate_batch_of"] = spec.variations  # generate_s: 1/K of the batch
        cues.append(
            _finish(
                Cue(
                    audio=audio.audio_path,
                    midi=audio.midi_path,
                    duration_s=audio.num_samples / audio.sample_rate,
                    num_samples=audio.num_samples,
                    sample_rate=audio.sample_rate,
                    backend=audio.backend,
                    backend_reason=reason,
                    weights=weights,
                    description=played,
                    retrieval=retrieval,
                    seed=seed + v,
                    timings=cue_timings,
                    extra=dict(audio.extra),
                    conditioning=conditioning,
                    compute=compute_of(audio, retriever),
                ),
                spec,
                settings,
            )
        )
    return cues


def _finish(cue: Cue, spec: CueSpec, settings: Settings) -> Cue:
    """The one place a stem is finalised: its licence, and bext + iXML written into the WAV
    (and into each part's WAV of a cue rendered with stems)."""
    from engine.score.provenance import cue_licence, stamp_cue

    licence = cue_licence(cue, settings)
    stamp_cue(cue, spec, licence)
    for part, path in (cue.extra.get("stems") or {}).items():
        stamp_cue(cue, spec, licence, stem=(str(part), Path(str(path))))
    return replace(cue, licence=licence.summary)


def _generate_all(
    generator: Any, request: GenerationRequest, spec: CueSpec, progress: ProgressFn
) -> list[tuple[int, GeneratedAudio, float]]:
    """(variation, audio, seconds) for every variation: one batch where the generator has a
    batched path (the full one), else one after another."""
    k = spec.variations
    names = [spec.name if k == 1 else f"{spec.name}-v{v + 1}" for v in range(k)]
    seeds = [request.seed + v for v in range(k)]
    if k > 1 and hasattr(generator, "generate_variations"):
        t0 = time.perf_counter()
        batch = generator.generate_variations(request, seeds, progress, names=names)
        share = (time.perf_counter() - t0) / len(batch)  # each variation's share of the batch
        return [(v, audio, share) for v, audio in enumerate(batch)]
    out = []
    for v in range(k):
        t0 = time.perf_counter()
        one = replace(request, seed=seeds[v], name=names[v])
        out.append((v, generator.generate(one, progress), time.perf_counter() - t0))
    return out
