"""What a scored OTIO records of how each cue was made, and the cue read back from it.

`vmb render` writes, on every clip of the "VMB Score" track (`vmb` metadata), the facts that
re-making the cue needs: seed, knobs, description and attributes as played, references, the
shots it covers (media and source ranges), the cut and marker times and ending it was fitted
to, and what it carried on to the next cue; and on the timeline (`vmb.render`) the render's
own options. `vmb conform` reads only this and the stems next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge import timeline as tl
from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, TimelineError, quote
from engine.types import Attributes, MusicDescription, Reference, Retrieval

if TYPE_CHECKING:
    from engine.score.cue import Cue
    from engine.score.cue_spec import CueSpec

RECORD_VERSION = 1
# the render options a conform re-uses (the timeline, selection and credits aside)
RENDER_OPTIONS = (
    "per",
    "min_length_s",
    "max_length_s",
    "continuous",
    "hits",
    "backend",
    "knobs",
    "stems",
    "ending",
    "require_media",
    "title",
    "composer",
    "publisher",
    "usage",
    "rate",
    "media_roots",
)
_BULKY = ("programs",)  # of a cue's extra: the instrument table, re-derived by a re-render


def render_record(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The timeline-level record (`vmb.render`): the options and job seed of the render."""
    selection = params.get("selection") or {"all": True}
    return {
        "version": RECORD_VERSION,
        "seed": seed,
        "selection": selection,
        "options": {k: params[k] for k in RENDER_OPTIONS if params.get(k) is not None},
    }


def carried_from(cue: Cue) -> dict[str, Any]:
    """What a following cue keeps (what was played, not only what was asked): tempo, key,
    the genre's groove, and the draft's form position and motifs."""
    a = cue.description.attributes
    carried = {
        "bpm": cue.extra.get("bpm", a.bpm),
        "key": cue.extra.get("key", a.key),
        "mode": cue.extra.get("mode", a.mode),
        "genre": cue.extra.get("genre", a.genre),
    }
    if isinstance(cue.extra.get("carry"), dict):
        carried["carry"] = cue.extra["carry"]
    strength = (cue.extra.get("measured") or {}).get("key_strength")  # full cues measure it
    if strength is not None:
        from engine.generate.full.conditioning import MIN_KEY_STRENGTH

        if strength < MIN_KEY_STRENGTH:  # no clear key was played: none to keep
            carried.update(key=None, mode=None)
    return carried


def _stem_names(cue: Cue) -> dict[str, str]:
    return {str(p): Path(str(f)).name for p, f in (cue.extra.get("stems") or {}).items()}


def cue_record(
    planned: tl.PlannedCue, cue: Cue, spec: CueSpec, carried: dict[str, Any], usage: str
) -> dict[str, Any]:
    """One score clip's record: what re-making this cue with the same identity needs."""
    as_json = cue.to_json()
    extra = {k: v for k, v in cue.extra.items() if k not in _BULKY}
    extra["stems"] = _stem_names(cue)  # file names next to the stem, not staging paths
    return {
        "record_version": RECORD_VERSION,
        "knobs": spec.knobs.to_json(),
        "source": cue.description.source,
        "weights": cue.weights,
        "backend_reason": cue.backend_reason,
        "licence": cue.licence,
        "references": {
            **as_json["references"],
            "backend": cue.retrieval.backend,
            "weights": cue.retrieval.weights,
        },
        "conditioning": cue.conditioning,
        "segments": [s.to_json() for s in planned.segments],
        "record_out_s": planned.record_out_s,
        "cut_times_s": list(planned.cut_times_s),
        "marker_times_s": list(planned.marker_times_s),
        "markers": [m.to_json() for m in planned.markers],
        "ending": spec.ending,
        "hits": list(spec.hits),
        "frame_rate": spec.frame_rate,
        "continue_from": planned.continue_from,
        "continued": spec.continue_from,
        "carried": carried,
        "usage": usage,
        "extra": extra,
    }


def _reference(raw: dict[str, Any]) -> Reference:
    return Reference(
        piece_id=str(raw.get("id", "")),
        title=str(raw.get("title", "")),
        path=str(raw.get("path", "")),
        score=float(raw.get("score") or 0.0),
        partition=raw.get("partition"),
        bpm=raw.get("bpm"),
        key=raw.get("key"),
        mode=raw.get("mode"),
        tags=tuple(raw.get("tags") or ()),
    )


def retrieval_of(meta: dict[str, Any]) -> Retrieval:
    refs = meta.get("references") or {}
    backend = refs.get("backend") or meta.get("backend")
    return Retrieval(
        backend=backend if backend in ("draft", "full") else "draft",
        weights=refs.get("weights") or "none",
        broad=tuple(_reference(r) for r in refs.get("broad") or ()),
        targeted=tuple(_reference(r) for r in refs.get("targeted") or ()),
        notes=tuple(str(n) for n in refs.get("notes") or ()),
    )


def description_of(meta: dict[str, Any]) -> MusicDescription:
    """The description as the cue played it (tempo, key and mode included)."""
    a = meta.get("attributes") or {}
    attrs = Attributes(
        mood=str(a.get("mood") or "calm"),
        genre=str(a.get("genre") or "ambient"),
        tempo_bucket=str(a.get("tempo") or "medium"),
        energy=str(a.get("energy") or "medium"),
        instruments=tuple(a.get("instruments") or ()),
        bpm=a.get("bpm"),
        key=a.get("key"),
        mode=a.get("mode"),
    )
    backend = meta.get("backend") if meta.get("backend") in ("draft", "full") else "draft"
    return MusicDescription(
        text=str(meta.get("description") or ""),
        attributes=attrs,
        source=meta.get("source") or "text",
        backend=backend,
        weights=meta.get("weights") or "none",
    )


def stem_path(meta: dict[str, Any], folder: Path) -> Path:
    """Where a take's stem is: the file of its name next to the OTIO first (a render's
    folder the user keeps), else where its clip points; never silently the engine's own
    output folder that `vmb.audio` may still name."""
    raws = [r for r in (meta.get("stem_path"), meta.get("audio")) if isinstance(r, str) and r]
    for raw in raws:
        near = folder / Path(raw.replace("\\", "/")).name
        if near.is_file():
            return near
    if raws and Path(raws[0]).is_file():  # where the clip points (not the engine's record)
        return Path(raws[0])
    shown = quote(str(meta.get("stem_path") or meta.get("audio")), PATH_QUOTE_CHARS)
    raise InvalidRequest(
        f"the stem of {meta.get('cue_id')} is missing: {shown} is neither where the scored "
        f"OTIO points nor in its folder {quote(str(folder), PATH_QUOTE_CHARS)}"
    )


def cue_of(meta: dict[str, Any], audio: Path) -> Cue:
    """A rendered cue read back from its record and its stem (kept or moved by a conform)."""
    import soundfile as sf

    from engine.score.cue import Cue

    info = sf.info(str(audio))
    extra = dict(meta.get("extra") or {})
    stems = {p: audio.parent / name for p, name in (extra.get("stems") or {}).items()}
    extra["stems"] = {p: str(f) for p, f in stems.items()} if stems else None
    midi = meta.get("midi")
    midi_path = audio.parent / Path(str(midi)).name if midi else None
    return Cue(
        audio=audio,
        midi=midi_path if midi_path is not None and midi_path.is_file() else None,
        duration_s=info.frames / info.samplerate,
        num_samples=info.frames,
        sample_rate=info.samplerate,
        backend=description_of(meta).backend,
        backend_reason=str(meta.get("backend_reason") or ""),
        weights=meta.get("weights") or "none",
        description=description_of(meta),
        retrieval=retrieval_of(meta),
        seed=int(meta.get("seed") or 0),
        extra={k: v for k, v in extra.items() if v is not None},
        licence=str(meta.get("licence") or ""),
        conditioning=meta.get("conditioning"),
    )


def scored_render(timeline: Any, shown: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the render record, its takes) of a timeline scored by VMB Score; an error naming
    `shown` where it is not one (no score track, or written before these records)."""
    takes = tl.score_takes(timeline)
    record = (timeline.metadata.get(tl.META) or {}).get("render")
    if not takes:
        raise TimelineError(f"{shown} was not scored by VMB Score: it has no takes on a "
                            f'"{tl.SCORE_TRACK}" track')  # fmt: skip
    if record is None or any(t.get("record_version") is None for t in takes):
        raise TimelineError(
            f"{shown} was scored by a VMB Score without conform records; render it again "
            "with `vmb render` (its takes lack the knobs, references and shots they were fitted to)"
        )
    return tl.plain(record), takes
