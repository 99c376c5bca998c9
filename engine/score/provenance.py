"""The provenance a finished cue writes into its WAV, and how `--from FILE.wav` reads it back.

`stamp_cue` is called once per cue, where the pipeline finishes its stem (after ducking), so
every stem of `vmb generate`, `vmb render` and the plugins carries the same fields; `stamp_mix`
does the same for a timeline's mixed soundtrack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.score import bwf
from engine.score.licence import LicenceStatement, output_licence

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.score.cue import Cue
    from engine.score.cue_spec import CueSpec


def adapted_tracks(cue: Cue) -> list[str]:
    """Library tracks whose audio conditioned a full cue (ControlFormer / Stylization)."""
    if cue.backend != "full":
        return []
    notes = " ".join(str(n) for n in cue.extra.get("notes", []))
    if "references not used" in notes:
        return []
    refs = []
    if cue.retrieval.broad and "no broad reference" not in notes:
        refs.append(cue.retrieval.broad[0].title)
    if cue.retrieval.targeted and "no targeted reference" not in notes:
        refs.append(cue.retrieval.targeted[0].title)
    return list(dict.fromkeys(refs))


def layered_samples(cue: Cue) -> list[str]:
    """Sample files a draft cue layered under its band (its loop and texture)."""
    loops = cue.extra.get("loops") if cue.backend == "draft" else None
    if not isinstance(loops, dict):
        return []
    parts = (loops.get("loop"), loops.get("texture"))
    return [str(p["sample"]) for p in parts if isinstance(p, dict) and p.get("sample")]


def cue_licence(cue: Cue, settings: Settings) -> LicenceStatement:
    soundfont = cue.extra.get("soundfont") if cue.backend == "draft" else None
    return output_licence(
        cue.backend,
        settings.model_dir,
        soundfont=soundfont,
        adapted=adapted_tracks(cue),
        samples=layered_samples(cue),
    )


def rerender_request(cue: Cue, spec: CueSpec) -> dict[str, Any]:
    """The `cue` job params that make this very stem again (with `seed`)."""
    return {
        **spec.to_params(),
        "backend": cue.backend,
        "name": cue.audio.stem,
        "variations": 1,
    }


def _reference(stem: str, seed: int) -> str:
    """'<file stem>-s<seed>', once: a take's file (`--seed next`) already ends with it."""
    tag = f"-s{seed}"
    return stem if stem.endswith(tag) else stem + tag


def stamp_cue(
    cue: Cue, spec: CueSpec, licence: LicenceStatement, stem: tuple[str, Path] | None = None
) -> None:
    """Write bext + iXML into the cue's WAV (atomically, samples untouched); with ``stem``
    (part, path), into that part's WAV: its request re-renders the whole cue with its stems,
    and the mix's loudness is not the part's, so the bext loudness fields stay unset."""
    request = rerender_request(cue, spec)
    path, scene, part = cue.audio, cue.audio.stem, None
    if stem is not None:
        part, path = stem
        scene = f"{cue.audio.stem}-{part}"
    vmb = {
        "backend": cue.backend,
        "weights": cue.weights,
        "seed": cue.seed,
        "knobs": request["knobs"],
        "description": cue.description.text,
        "attributes": cue.description.attributes.to_json(),
        "references": {
            "broad": [r.to_json() for r in cue.retrieval.broad],
            "targeted": [r.to_json() for r in cue.retrieval.targeted],
        },
        "position_s": spec.position_s,
        "licence": licence.summary,
        "request": request,
    }
    if part is not None:
        vmb["stem"] = part
    bwf.stamp(
        path,
        bwf.Provenance(
            description=cue.description.text,
            time_reference=round(spec.position_s * cue.sample_rate),
            sample_rate=cue.sample_rate,
            vmb=vmb,
            project=spec.project,
            scene=scene,
            originator_reference=_reference(scene, cue.seed)[:32],
            loudness_lufs=cue.extra.get("loudness_lufs") if part is None else None,
            true_peak_dbtp=cue.extra.get("true_peak_dbtp") if part is None else None,
        ),
    )


def stamp_mix(
    src: Path,
    dst: Path,
    title: str,
    sample_rate: int,
    cues: Sequence[dict[str, Any]],
    licences: Sequence[str],
    start_s: float = 0.0,
) -> Path:
    """The mix starts at the timeline's start (`start_s`, on the timeline's own clock: BWF
    counts samples since midnight) and lists its cues."""
    vmb = {
        "kind": "mix",
        "cues": [
            {k: c.get(k) for k in ("cue_id", "audio", "record_in_s", "seed", "backend")}
            for c in cues
        ],
        "licence": " | ".join(dict.fromkeys(licences)),
    }
    provenance = bwf.Provenance(
        description=f"VMB Score mix of {len(cues)} cue(s) for {title}",
        time_reference=round(max(0.0, start_s) * sample_rate),
        sample_rate=sample_rate,
        vmb=vmb,
        project=title,
        scene="mix",
        originator_reference="mix",
    )
    return bwf.stamp(src, provenance, dst)
