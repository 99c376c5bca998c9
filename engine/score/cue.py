"""One cue: describe -> retrieve -> generate, with progress, cancel checks and timings.

Stages are chosen by backend from a table of import paths (draft needs no downloaded
weights; full needs the neural models). `backend="auto"` picks full where every stage's
weights are installed and the device can run it, else draft, and says why. Stage objects
are cached per process so models stay resident in the worker between jobs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest, quote
from bridge.knobs import MAX_TEXT_CHARS, Knob, knob_rows, row_values
from engine import backends, taxonomy
from engine.backends import StageName
from engine.config import Settings, load_frozen
from engine.types import (
    GeneratedAudio,
    GenerationRequest,
    Knobs,
    MusicDescription,
    ProgressFn,
    Retrieval,
    VisualInput,
)
from engine.util import atomic

MAX_VARIATIONS = 8


@dataclass(frozen=True)
class CueSpec:
    """A validated cue request (the `cue` and `describe` job kinds' params): its fields are
    the wire's parameters, loaded by the config's strict loader (unknown keys refused)."""

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

    def to_params(self) -> dict[str, Any]:
        """The params this spec parses from (normalised): the job's stored parameters."""
        return {f.name: _wire(getattr(self, f.name)) for f in fields(self)}


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
            "extra": self.extra,
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


def parse_knobs(raw: Any) -> Knobs:
    """The `knobs` map, checked row by row against the knob table (bridge/knobs.py)."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidRequest("'knobs' must be a map")
    rows = {k.name: k for k in knob_rows("knobs")}
    unknown = sorted(set(raw) - set(rows))
    if unknown:
        raise InvalidRequest(
            f"unknown knob(s) {', '.join(quote(u) for u in unknown[:8])}; knobs: {', '.join(rows)}"
        )
    values = {n: _knob_value(rows[n], v) for n, v in raw.items() if v is not None and v != ""}
    typed = {f.name for f in fields(Knobs)} - {"text", "extra"}
    knobs = load_frozen(
        Knobs,
        {n: v for n, v in values.items() if n in typed and v != ()},
        "knobs",
        InvalidRequest,
        "knob",
    )
    return replace(knobs, extra=tuple(sorted((n, v) for n, v in values.items() if n not in typed)))


def _seconds(spec: CueSpec) -> None:
    for key in ("start_s", "end_s", "duration_s"):
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


def parse_cue_params(
    params: dict[str, Any], settings: Settings, need_duration: bool = True
) -> CueSpec:
    """Check everything that can be checked before a job is acknowledged (a null is the
    same as leaving the parameter out)."""
    given = {k: v for k, v in params.items() if v is not None}
    spec = load_frozen(CueSpec, given, "", InvalidRequest, "cue parameter", {"knobs": parse_knobs})
    media, text = spec.media, spec.text
    if text is not None and not text.strip():
        raise InvalidRequest("'text' must be a non-empty string")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"'text' is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    if media is None and text is None:
        raise InvalidRequest("a cue needs 'media' (a video or image) or 'text'")
    if media is not None and not _is_file_path(media):
        raise InvalidRequest(f"media file not found: {quote(media, 200)}")
    _seconds(spec)
    start, end, duration = spec.start_s, spec.end_s, spec.duration_s
    if start is not None and end is not None and end <= start:
        raise InvalidRequest(f"end_s ({end:g}) must be after start_s ({start:g})")
    if duration is None and start is not None and end is not None:
        duration = end - start
    if duration is None and media is None and need_duration:
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
    if not 1 <= spec.variations <= MAX_VARIATIONS:
        raise InvalidRequest(f"'variations' must be 1-{MAX_VARIATIONS}")
    name = spec.name or "cue"
    if not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest("'name' may use letters, digits, '-' and '_' only")
    return replace(
        spec,
        media=str(Path(media).expanduser().resolve()) if media else None,
        text=text.strip() if text else None,
        duration_s=duration,
        backend=backend,
        name=name,
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
    if spec.media is None:
        return VisualInput(
            frames=np.zeros((0, 1, 1, 3), np.uint8),
            frame_times_s=(),
            duration_s=spec.duration_s or 0.0,
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
    knob_tempo = spec.knobs.tempo is not None
    attrs = replace(
        attrs,
        bpm=attrs.bpm if knob_tempo else (prev.get("bpm") or attrs.bpm),
        key=prev.get("key") or attrs.key,
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

    info = sf.info(path)
    music, sr = sf.read(path, dtype="float32", always_2d=True)
    gain = ducking_gain(len(music), sr, regions).astype(np.float32)
    tmp = atomic.temp_path(path)
    sf.write(tmp, music * gain[:, None], sr, subtype=info.subtype, format=info.format)
    atomic.publish(tmp, path)


def _played(description: MusicDescription, audio: GeneratedAudio) -> MusicDescription:
    """Report the tempo and key the generator actually played, where it says so."""
    x = audio.extra
    attrs = description.attributes
    bpm, mode = x.get("bpm", attrs.bpm), x.get("mode", attrs.mode)
    key = x.get("key", attrs.key)
    return replace(description, attributes=replace(attrs, bpm=bpm, key=key, mode=mode))


def describe(
    spec: CueSpec, settings: Settings, seed: int, progress: ProgressFn
) -> tuple[str, str, VisualInput, MusicDescription, dict[str, float]]:
    backend, reason = backends.select(spec.backend, settings)
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


def run_cue(
    spec: CueSpec, settings: Settings, seed: int, out_dir: Path, progress: ProgressFn
) -> list[Cue]:
    """describe -> retrieve -> generate; K variations share description and references."""
    backend, reason, visual, description, timings = describe(spec, settings, seed, progress)
    duration = spec.duration_s or visual.duration_s
    if duration <= 0:
        raise InvalidRequest(f"the selected range of {spec.media} is empty")
    if duration > settings.pipeline.max_cue_s:
        raise InvalidRequest(
            f"cue length {duration:g} s exceeds the maximum of {settings.pipeline.max_cue_s:g} s"
        )
    t0 = time.perf_counter()
    progress("retrieve", 0, 1)
    retrieval = stage(backend, "retrieve", settings).retrieve(
        description, spec.knobs, visual, settings.pipeline.top_k
    )
    timings["retrieve_s"] = time.perf_counter() - t0
    generator = stage(backend, "generate", settings)
    t0 = time.perf_counter()
    speech = _speech_regions(spec)
    if speech is not None:
        timings["speech_s"] = time.perf_counter() - t0
    cues = []
    for v in range(spec.variations):
        name = spec.name if spec.variations == 1 else f"{spec.name}-v{v + 1}"
        t0 = time.perf_counter()
        request = GenerationRequest(
            description=description,
            retrieval=retrieval,
            duration_s=duration,
            seed=seed + v,
            out_dir=out_dir,
            cut_times_s=visual.cut_times_s,
            sample_rate=settings.pipeline.sample_rate,
            name=name,
        )
        audio: GeneratedAudio = generator.generate(request, progress)
        played = _played(description, audio)
        if speech:
            _duck(audio.audio_path, speech)
            audio = replace(audio, extra={**audio.extra, "ducked_under_speech_s": speech})
        cue_timings = {**timings, "generate_s": time.perf_counter() - t0}
        cue_timings["total_s"] = sum(cue_timings.values())
        cues.append(
            Cue(
                audio=audio.audio_path,
                midi=audio.midi_path,
                duration_s=audio.num_samples / audio.sample_rate,
                num_samples=audio.num_samples,
                sample_rate=audio.sample_rate,
                backend=audio.backend,
                backend_reason=reason,
                weights=audio.weights,
                description=played,
                retrieval=retrieval,
                seed=seed + v,
                timings=cue_timings,
                extra=dict(audio.extra),
            )
        )
    return cues
