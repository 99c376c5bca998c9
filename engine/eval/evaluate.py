"""`vmb eval`: the paper's metrics over a folder of generated audio against a reference folder.

Files are paired by name (stem): ``generated/abc.wav`` is compared with ``reference/abc.flac``
and scored against the text of id ``abc`` in the CSV. Pairing is strict (a mismatch is an
error naming the ids) because KL is per prompt id; ``unpaired`` compares the two sets as sets
(FD only). ``metrics=("auto",)`` runs every metric whose model and inputs are present and
reports why each other one was skipped; naming a metric makes a missing model an error.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from bridge.errors import InvalidRequest, MediaError, WeightsError
from engine.eval import embedders, metrics

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus"})
VISUAL_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".mp4", ".mov", ".mkv", ".webm"})
MIN_AUDIO_S = 0.1

Kind = Literal["fd", "kl", "clap", "imagebind"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    model: str  # key of embedders.EMBEDDERS
    label: str  # as printed in tables
    unit: str
    better: Literal["lower", "higher"]
    paper: bool  # the paper's own metric (else a stand-in that runs without downloads)


METRICS: dict[str, MetricSpec] = {
    "fd_openl3": MetricSpec("fd_openl3", "fd", "openl3", "FD_openl3", "", "lower", True),
    "kl_passt": MetricSpec("kl_passt", "kl", "passt", "KL_passt", "nats", "lower", True),
    "clap_score": MetricSpec("clap_score", "clap", "clap", "CLAPScore", "x100", "higher", True),
    "imagebind_score": MetricSpec(
        "imagebind_score", "imagebind", "imagebind", "ImageBind score", "x100", "higher", True
    ),
    "fd_aisfx": MetricSpec("fd_aisfx", "fd", "aisfx", "FD_aisfx", "", "lower", False),
    "kl_aisfx": MetricSpec("kl_aisfx", "kl", "aisfx", "KL_aisfx (UCS)", "nats", "lower", False),
}


@dataclass(frozen=True)
class EvalRequest:
    generated: Path
    reference: Path | None = None
    text_csv: Path | None = None
    visual: Path | None = None
    metrics: tuple[str, ...] = ("auto",)
    model_dir: Path = Path(".")
    pca_dim: int | None = None
    unpaired: bool = False


@dataclass(frozen=True)
class MetricResult:
    name: str
    kind: Kind
    label: str
    value: float
    unit: str
    better: str
    paper_metric: bool
    model: dict[str, object]
    per_file: dict[str, float] | None = None
    details: dict[str, object] = field(default_factory=dict)

    @property
    def per_pair(self) -> bool:
        """per_file holds the metric per pair (KL, scores); for FD it holds frame counts."""
        return self.kind != "fd"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "better": self.better,
            "paper_metric": self.paper_metric,
            "model": self.model,
            "per_file": self.per_file,
            "details": self.details,
        }


@dataclass(frozen=True)
class FileRow:
    file_id: str
    generated: str
    generated_s: float
    reference: str | None
    reference_s: float | None


@dataclass(frozen=True)
class EvalResult:
    request: EvalRequest
    results: tuple[MetricResult, ...]
    files: tuple[FileRow, ...]
    skipped: dict[str, str]
    notes: tuple[str, ...]
    # (generated frames, reference frames) of the first FD metric, for the scatter plot
    frames: tuple[np.ndarray, np.ndarray] | None = None

    def to_json(self) -> dict[str, Any]:
        r = self.request
        return {
            "generated": str(r.generated),
            "reference": str(r.reference) if r.reference else None,
            "text": str(r.text_csv) if r.text_csv else None,
            "visual": str(r.visual) if r.visual else None,
            "pca_dim": r.pca_dim,
            "paired": not r.unpaired,
            "metrics": {m.name: m.to_json() for m in self.results},
            "skipped": self.skipped,
            "files": [f.__dict__ for f in self.files],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------------------------
# Inputs


def list_media(folder: Path, suffixes: frozenset[str], what: str) -> dict[str, Path]:
    """id (file stem) -> path for the media files directly inside ``folder``."""
    if not folder.is_dir():
        raise InvalidRequest(f"{what} folder {folder} does not exist")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            if p.stem in out:
                raise InvalidRequest(
                    f"{what}: two files share the id {p.stem!r} ({out[p.stem].name}, {p.name})"
                )
            out[p.stem] = p
    if not out:
        raise InvalidRequest(
            f"{what} folder {folder} holds no audio files ({', '.join(sorted(suffixes))})"
        )
    return out


def check_pairing(
    generated: dict[str, Path], reference: dict[str, Path], where: tuple[Path, Path]
) -> None:
    only_gen = sorted(set(generated) - set(reference))
    only_ref = sorted(set(reference) - set(generated))
    if not only_gen and not only_ref:
        return
    parts = [
        f"generated ({where[0]}) has {len(generated)} files, "
        f"reference ({where[1]}) has {len(reference)}"
    ]
    if only_gen:
        parts.append(
            f"only in generated: {', '.join(only_gen[:5])}{' ...' if len(only_gen) > 5 else ''}"
        )
    if only_ref:
        parts.append(
            f"only in reference: {', '.join(only_ref[:5])}{' ...' if len(only_ref) > 5 else ''}"
        )
    raise InvalidRequest(
        "files are paired by name and the folders do not match: "
        + "; ".join(parts)
        + ". Rename them, or pass --unpaired to compare the two sets (FD only)"
    )


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(samples, channels) float32 and the sample rate; MediaError for anything unreadable."""
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as first:  # libsndfile lacks m4a/opus: PyAV reads those
        try:
            from engine.retrieve.decode import decode_audio

            audio, sr = decode_audio(path, 44100)[:, None], 44100
        except Exception:
            raise MediaError(
                f"{path}: cannot read audio ({type(first).__name__}: {first})"
            ) from None
    if audio.shape[0] < MIN_AUDIO_S * sr:
        raise MediaError(
            f"{path}: {audio.shape[0] / sr:.3f} s of audio; at least {MIN_AUDIO_S} s is needed"
        )
    if not np.isfinite(audio).all():
        raise MediaError(f"{path}: audio holds NaN or infinite samples")
    return audio, int(sr)


def read_texts(path: Path) -> dict[str, str]:
    """A CSV with a header holding ``id`` and ``text`` columns (other columns are ignored)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidRequest(f"{path}: cannot read the text CSV ({exc})") from None
    if not rows or not {"id", "text"} <= set(rows[0]):
        raise InvalidRequest(f"{path}: the text CSV needs a header with 'id' and 'text' columns")
    texts = {}
    for i, row in enumerate(rows, start=2):
        key, text = (row.get("id") or "").strip(), (row.get("text") or "").strip()
        if not key or not text:
            raise InvalidRequest(f"{path}:{i}: empty id or text")
        texts[Path(key).stem] = text
    return texts


# ---------------------------------------------------------------------------------------------
# Metric selection


def _needs(spec: MetricSpec, req: EvalRequest) -> str | None:
    """Why the inputs do not allow this metric, or None."""
    if spec.kind in ("fd", "kl") and req.reference is None:
        return "needs --reference"
    if spec.kind == "kl" and req.unpaired:
        return "KL compares pairs (same id); it cannot run --unpaired"
    if spec.kind == "clap" and req.text_csv is None:
        return "needs --text (a CSV with id,text)"
    if spec.kind == "imagebind" and req.visual is None:
        return "needs --visual (a folder of images or videos named like the audio)"
    return None


def select_metrics(req: EvalRequest) -> tuple[list[tuple[MetricSpec, Any]], dict[str, str]]:
    """[(spec, loaded model)] to run and {name: why skipped}."""
    auto = req.metrics == ("auto",)
    names = list(METRICS) if auto else list(req.metrics)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise InvalidRequest(
            f"unknown metric {', '.join(unknown)}; known: {', '.join(METRICS)}, auto"
        )
    chosen, skipped = [], {}
    for name in names:
        spec = METRICS[name]
        why = _needs(spec, req)
        if why:
            if not auto:
                raise InvalidRequest(f"{name} {why}")
            skipped[name] = why
            continue
        try:
            model = embedders.load(spec.model, req.model_dir)
        except WeightsError as exc:
            if not auto:
                raise WeightsError(f"{name} needs the {spec.model} model: {exc.message}") from None
            skipped[name] = exc.message
            continue
        chosen.append((spec, model))
    if not chosen:
        raise InvalidRequest(
            "no metric can run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    return chosen, skipped


# ---------------------------------------------------------------------------------------------
# Running


def _check_frames(spec: MetricSpec, gf: np.ndarray, rf: np.ndarray, req: EvalRequest) -> None:
    """FD needs a covariance per set, i.e. at least two embedding frames on each side."""
    sides = (("generated", gf, req.generated), ("reference", rf, req.reference))
    for side, frames, folder in sides:
        if frames.shape[0] < metrics.MIN_COVARIANCE_FRAMES:
            raise InvalidRequest(
                f"{spec.label}: {side} audio in {folder} gave {frames.shape[0]} embedding "
                f"frame(s); a covariance needs at least {metrics.MIN_COVARIANCE_FRAMES} "
                "(it divides by N - 1): give longer or more files"
            )


AudioOf = Callable[[str], tuple[np.ndarray, int]]


@dataclass
class _Inputs:
    """The validated files of one evaluation, audio decoded once and cached."""

    gen: dict[str, Path]
    ref: dict[str, Path]
    texts: dict[str, str]
    visual: dict[str, Path]
    gen_audio: AudioOf = field(init=False)
    ref_audio: AudioOf = field(init=False)

    def __post_init__(self) -> None:
        cache: dict[tuple[str, str], tuple[np.ndarray, int]] = {}

        def audio_of(side: str, files: dict[str, Path]) -> AudioOf:
            def get(i: str) -> tuple[np.ndarray, int]:
                if (side, i) not in cache:
                    cache[(side, i)] = read_audio(files[i])
                return cache[(side, i)]

            return get

        self.gen_audio, self.ref_audio = audio_of("g", self.gen), audio_of("r", self.ref)


def _inputs(req: EvalRequest) -> _Inputs:
    """List and pair the folders, read the texts; every problem is found before any model."""
    gen = list_media(req.generated, AUDIO_SUFFIXES, "generated")
    ref = list_media(req.reference, AUDIO_SUFFIXES, "reference") if req.reference else {}
    if req.reference and not req.unpaired:
        check_pairing(gen, ref, (req.generated, req.reference))
    texts = read_texts(req.text_csv) if req.text_csv else {}
    if texts:
        absent = sorted(set(gen) - set(texts))
        if absent:
            raise InvalidRequest(f"{req.text_csv}: no text for {', '.join(absent[:5])}")
    visual = list_media(req.visual, VISUAL_SUFFIXES, "visual") if req.visual else {}
    if visual:
        absent = sorted(set(gen) - set(visual))
        if absent:
            raise InvalidRequest(f"{req.visual}: no image or video for {', '.join(absent[:5])}")
    if req.pca_dim is not None and req.pca_dim < 1:
        raise InvalidRequest("--pca-dim must be at least 1")
    return _Inputs(gen, ref, texts, visual)


def _frechet(
    spec: MetricSpec, model: Any, inp: _Inputs, req: EvalRequest, notes: list[str]
) -> tuple[float, dict[str, float], dict[str, object], tuple[np.ndarray, np.ndarray]]:
    """FD over all embedding frames; (value, frames per file, details, the frames)."""
    g = {i: model.embed_audio(*inp.gen_audio(i)) for i in inp.gen}
    r = {i: model.embed_audio(*inp.ref_audio(i)) for i in inp.ref}
    gf, rf = np.concatenate(list(g.values())), np.concatenate(list(r.values()))
    _check_frames(spec, gf, rf, req)
    value, sg, sr_ = metrics.frechet_distance_frames(gf, rf, req.pca_dim)
    details: dict[str, object] = {
        "generated_frames": sg.count, "reference_frames": sr_.count, "dims": sg.dim
    }  # fmt: skip
    if sg.rank_deficient or sr_.rank_deficient:
        details["rank_deficient"] = True
        notes.append(
            f"{spec.label}: {min(sg.count, sr_.count)} frames in {sg.dim} dims, so a "
            "covariance is singular and FD is biased; compare only runs with equal frame "
            "counts, or use more audio or --pca-dim K with K well below the frame count"
        )
    per_file = {i: float(v.shape[0]) for i, v in g.items()}  # frames per file
    return value, per_file, details, (gf, rf)


def _paired(spec: MetricSpec, model: Any, inp: _Inputs) -> tuple[float, dict[str, float]]:
    """Text-audio (CLAP) or visual-audio (ImageBind) score per generated file."""
    ids = list(inp.gen)
    if spec.kind == "clap":
        a = model.embed_text([inp.texts[i] for i in ids])
        b = np.stack([model.embed_clip(*inp.gen_audio(i)) for i in ids])
    else:  # imagebind
        a = model.embed_visual_files([inp.visual[i] for i in ids])
        b = model.embed_audio_files([inp.gen[i] for i in ids])
    value, per = metrics.paired_score(a, b)
    return value, dict(zip(ids, map(float, per), strict=True))


def evaluate(req: EvalRequest, progress: Callable[[str], None] = lambda msg: None) -> EvalResult:
    """Compute every chosen metric; inputs are validated before any model runs."""
    inp = _inputs(req)
    chosen, skipped = select_metrics(req)
    gen, ref, gen_audio, ref_audio = inp.gen, inp.ref, inp.gen_audio, inp.ref_audio
    for i in gen:  # read everything first: a bad file fails before minutes of embedding
        gen_audio(i)
    for i in ref:
        ref_audio(i)

    results: list[MetricResult] = []
    notes: list[str] = []
    scatter: tuple[np.ndarray, np.ndarray] | None = None
    for spec, model in chosen:
        progress(f"{spec.label}: {model.info.model}")
        info = model.info.to_json()
        details: dict[str, object] = {}
        if spec.kind == "fd":
            value, per_file, details, frames = _frechet(spec, model, inp, req, notes)
            scatter = scatter or frames
        elif spec.kind == "kl":
            gl = {i: model.window_logits(*gen_audio(i)) for i in gen}
            rl = {i: model.window_logits(*ref_audio(i)) for i in ref}
            value, per_file = metrics.mean_kl(gl, rl)
            details = {"classes": info["dim"]}
        else:
            value, per_file = _paired(spec, model, inp)
        results.append(
            MetricResult(spec.name, spec.kind, spec.label, value, spec.unit, spec.better,
                         spec.paper, info, per_file, details)
        )  # fmt: skip
        if info["weights"] == "random":
            notes.append(
                f"{spec.label}: the {spec.model} model has random weights; its number means nothing"
            )
    for name, why in skipped.items():
        notes.append(f"skipped {name}: {why}")

    files = tuple(
        FileRow(
            file_id=i,
            generated=str(gen[i]),
            generated_s=round(gen_audio(i)[0].shape[0] / gen_audio(i)[1], 3),
            reference=str(ref[i]) if i in ref else None,
            reference_s=round(ref_audio(i)[0].shape[0] / ref_audio(i)[1], 3) if i in ref else None,
        )
        for i in gen
    )
    return EvalResult(req, tuple(results), files, skipped, tuple(notes), scatter)
