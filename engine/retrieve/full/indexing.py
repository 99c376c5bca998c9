"""`vmb library add`: analyse files (CLAP, CLIP key frames, DSP) and write the full library.

Analysis is a pure function of a file and the encoders, so it runs anywhere: in-process
(LocalExecutor, the default and what the tests use) or on a Ray cluster through Ray Data
(RayExecutor, `--ray-address` / RAY_ADDRESS) with the encoders loaded once per actor. Either
way one process, the caller, owns the library and writes every batch (SQLite is a single
writer, and the crash-safety rules of engine.retrieve.full.library hold).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bridge.errors import MediaError
from engine.retrieve import decode, dsp
from engine.retrieve.full import schema
from engine.retrieve.full.library import MusicLibrary
from engine.retrieve.full.schema import EncoderStamp, PieceAnalysis
from engine.retrieve.full.writer import LibraryWriter

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AddOptions:
    max_windows: int = 12  # CLAP 10 s windows per piece (spread over the piece)
    max_frames: int = 8  # CLIP key frames per video
    batch_size: int = 16  # files per committed batch
    reembed: bool = False  # analyse again even when the file did not change
    ray_address: str | None = None  # "auto", "ray://host:port", or None for in-process
    ray_concurrency: int = 2
    runtime: str = "auto"  # encoder runtime: auto (ONNX when exported) | torch | onnx
    device: str = "auto"  # models.device: picks the ONNX providers (CUDA where there is one)


@dataclass(frozen=True)
class AnalysisOutcome:
    path: str
    analysis: PieceAnalysis | None
    error: str | None = None


@dataclass(frozen=True)
class AddReport:
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    calibration: dict[str, Any] | None = None
    ann: dict[str, Any] | None = None
    executor: str = "local"
    notes: tuple[str, ...] = field(default_factory=tuple)
    encoders: dict[str, str] = field(default_factory=dict)  # what ran: "onnx CUDAExecutionProvider"

    def to_json(self) -> dict[str, Any]:
        return {
            "added": list(self.added), "updated": list(self.updated),
            "unchanged": len(self.unchanged),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "audio_seconds": round(self.audio_seconds, 2),
            "wall_seconds": round(self.wall_seconds, 2), "calibration": self.calibration,
            "ann": self.ann, "executor": self.executor, "notes": list(self.notes),
            "encoders": dict(self.encoders),
        }  # fmt: skip


def scan(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported media files under the given files/folders (sorted), and what was skipped."""
    found: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw).expanduser().resolve()
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith(".") and decode.media_kind(f):
                    found.append(f)
        elif p.is_file():
            if decode.media_kind(p):
                found.append(p)
            else:
                skipped.append((str(p), f"unsupported file type {p.suffix or '(none)'}"))
        else:
            skipped.append((str(p), "no such file or folder"))
    return sorted(dict.fromkeys(found)), skipped


def content_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Analyzer:
    """Loads the encoders once; turns a path into a PieceAnalysis (or raises MediaError)."""

    def __init__(self, model_dir: Path, options: AddOptions, clap: Any = None) -> None:
        from engine.retrieve.full.encoders.runtime import ClapEncoder

        self.model_dir = Path(model_dir)
        self.options = options
        self.clap = clap or ClapEncoder(self.model_dir, options.runtime, options.device)  # type: ignore[arg-type]
        self._clip: Any = None

    @property
    def clip(self) -> Any:
        if self._clip is None:
            from engine.retrieve.full.encoders.runtime import ClipEncoder

            self._clip = ClipEncoder(self.model_dir, self.options.runtime, self.options.device)  # type: ignore[arg-type]
        return self._clip

    def analyse(self, path: Path) -> PieceAnalysis:
        stat = path.stat()
        kind = decode.media_kind(path)
        media = decode.decode_media(path, self.clap.cfg.sample_rate, self.options.max_frames)
        try:
            features = dsp.analyse_audio(media.audio, media.sample_rate)
        except Exception as exc:  # DSP must not sink a decodable file: keep the embedding
            log.warning("%s: DSP features failed (%s)", path, exc)
            features = None
        audio_emb = self.clap.embed_audio(media.audio, self.options.max_windows)
        if not np.isfinite(audio_emb).all():
            raise MediaError(f"{path}: the audio embedding is not finite")
        frames = (
            self.clip.embed_images(media.frames)
            if kind == "video" and len(media.frames)
            else np.zeros((0, 0), np.float32)
        )
        return PieceAnalysis(
            path=str(path),
            size=int(stat.st_size),
            mtime_ns=int(stat.st_mtime_ns),
            content_hash=content_hash(path),
            kind=str(kind),
            title=path.stem,
            duration_s=float(media.duration_s),
            bpm=features.bpm if features else None,
            key=features.key if features else None,
            mode=features.mode if features else None,
            loudness_db=round(features.loudness_db, 2) if features else None,
            audio_embedding=audio_emb,
            frame_embeddings=frames.astype(np.float32),
            frame_times_s=media.frame_times_s[: len(frames)],
        )

    def outcome(self, path: Path) -> AnalysisOutcome:
        """Never raises for a bad file: the error is reported and the add goes on."""
        try:
            return AnalysisOutcome(str(path), self.analyse(path))
        except MediaError as exc:
            return AnalysisOutcome(str(path), None, exc.message.removeprefix(f"{path}: "))
        except Exception as exc:  # a corrupt file can trip anything below the decoder
            return AnalysisOutcome(str(path), None, f"{type(exc).__name__}: {exc}")


class Executor(Protocol):
    name: str

    def map(self, paths: list[Path]) -> Iterator[AnalysisOutcome]: ...


class LocalExecutor:
    """In-process analysis, one file after the other (encoders loaded once)."""

    name = "local"

    def __init__(self, model_dir: Path, options: AddOptions) -> None:
        self.model_dir = model_dir
        self.options = options
        self.analyzer: Analyzer | None = None  # add_paths hands over its own (one CLAP load)

    def map(self, paths: list[Path]) -> Iterator[AnalysisOutcome]:
        if not paths:
            return
        if self.analyzer is None:
            self.analyzer = Analyzer(self.model_dir, self.options)
        for p in paths:
            yield self.analyzer.outcome(p)


class _RayAnalyzer:
    """Ray Data class UDF: an actor holds the encoders, each batch is a table of paths."""

    def __init__(self, model_dir: str, options: dict[str, Any]) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.analyzer = Analyzer(Path(model_dir), AddOptions(**options))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, list[Any]] = {"path": [], "error": [], "meta": [], "audio": [], "frames": []}
        for path in batch["path"]:
            res = self.analyzer.outcome(Path(str(path)))
            out["path"].append(res.path)
            out["error"].append(res.error or "")
            row = (
                res.analysis.to_row() if res.analysis else {"meta": "", "audio": b"", "frames": b""}
            )
            for key in ("meta", "audio", "frames"):
                out[key].append(row[key])
        return {k: np.array(v, dtype=object) for k, v in out.items()}


class RayExecutor:
    """Analysis on Ray Data (`ray.init(address)`); results stream back to the writer."""

    name = "ray"

    def __init__(
        self, model_dir: Path, options: AddOptions, init_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.model_dir = model_dir
        self.options = options
        self.init_kwargs = init_kwargs or {}

    def map(self, paths: list[Path]) -> Iterator[AnalysisOutcome]:
        import dataclasses

        import ray

        if not paths:
            return
        if not ray.is_initialized():
            address = self.options.ray_address
            kwargs = dict(self.init_kwargs)
            if address and address != "local":
                kwargs["address"] = address
            ray.init(log_to_driver=False, **kwargs)
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        opts = dataclasses.asdict(self.options)
        ds = ray.data.from_items([{"path": str(p)} for p in paths]).map_batches(
            _RayAnalyzer,
            fn_constructor_kwargs={"model_dir": str(self.model_dir), "options": opts},
            batch_size=max(1, min(8, self.options.batch_size)),
            concurrency=self.options.ray_concurrency,
            num_cpus=1,
            batch_format="numpy",
        )
        for row in ds.iter_rows():
            if row["error"]:
                yield AnalysisOutcome(str(row["path"]), None, str(row["error"]))
            else:
                yield AnalysisOutcome(str(row["path"]), PieceAnalysis.from_row(row))


def make_executor(model_dir: Path, options: AddOptions) -> Executor:
    address = options.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        return RayExecutor(model_dir, AddOptions(**{**options.__dict__, "ray_address": address}))
    return LocalExecutor(model_dir, options)


def _vocabulary(clap: Any) -> tuple[list[str], list[str], list[str], np.ndarray]:
    from engine import taxonomy

    facets, tags, prompts = [], [], []
    for facet in schema.TAG_FACETS:
        names = taxonomy.all_tags()[facet]
        for tag in names:
            facets.append(facet)
            tags.append(tag)
            prompts.append(schema.prompt_for(facet, tag))
    return facets, tags, prompts, clap.embed_text(prompts)


def _stamp(info: Any) -> EncoderStamp:
    return EncoderStamp(name=info.name, weights=info.weights, identity=info.identity, dim=info.dim)


def _prepare(
    lib: MusicLibrary,
    writer: LibraryWriter,
    files: list[Path],
    model_dir: Path,
    options: AddOptions,
    executor: Executor,
    notes: list[str],
    encoders: dict[str, str],
) -> EncoderStamp | None:
    """Stamp the encoders' identity, embed the tag prompts once, give a local executor its
    analyzer, note in `encoders` what each ran on; returns the CLIP stamp (None: videos
    cannot be added)."""
    from engine.retrieve.full.encoders.runtime import ClapEncoder, ClipEncoder

    clap = ClapEncoder(model_dir, options.runtime, options.device)  # type: ignore[arg-type]
    encoders["clap"] = clap.info.ran_on()
    clip_stamp = None
    if any(decode.media_kind(f) == "video" for f in files) or lib.encoder("clip"):
        try:
            clip_enc = ClipEncoder(model_dir, options.runtime, options.device)  # type: ignore[arg-type]
            clip_stamp = _stamp(clip_enc.info)
            encoders["clip"] = clip_enc.info.ran_on()
        except Exception as exc:
            notes.append(f"CLIP unavailable ({exc}); videos are skipped")
    writer.set_encoders(_stamp(clap.info), clip_stamp)
    if lib.tag_vocabulary() is None:
        writer.set_vocabulary(*_vocabulary(clap))
    if isinstance(executor, LocalExecutor) and executor.analyzer is None:
        executor.analyzer = Analyzer(model_dir, options, clap=clap)
    return clip_stamp


def _to_analyse(
    writer: LibraryWriter,
    files: list[Path],
    clip_stamp: EncoderStamp | None,
    options: AddOptions,
    skipped: list[tuple[str, str]],
    unchanged: list[str],
) -> list[Path]:
    """The files that are new or changed (or all, with reembed); the rest are reported."""
    todo: list[Path] = []
    for f in files:
        if decode.media_kind(f) == "video" and clip_stamp is None:
            skipped.append((str(f), "video needs the CLIP model (vmb models download clip)"))
            continue
        known = writer.known(str(f))
        stat = f.stat()
        if known and not options.reembed and known[:2] == (stat.st_size, stat.st_mtime_ns):
            unchanged.append(str(f))
        else:
            todo.append(f)
    return todo


def _analyse_and_commit(
    writer: LibraryWriter,
    executor: Executor,
    todo: list[Path],
    options: AddOptions,
    skipped: list[tuple[str, str]],
    progress: ProgressFn | None,
) -> tuple[list[str], list[str], float]:
    """Analyse ``todo`` and commit it in batches; a file whose content is already in the
    library under another existing path is skipped. Returns (added, updated, seconds)."""
    added: list[str] = []
    updated: list[str] = []
    seconds = 0.0
    batch: list[PieceAnalysis] = []
    existing = {str(f) for f in todo if writer.known(str(f))}
    seen_hashes: dict[str, str] = {}

    def flush() -> None:
        for a, pid in zip(batch, writer.commit(batch), strict=True):
            (updated if a.path in existing else added).append(pid)
        batch.clear()

    for done, outcome in enumerate(executor.map(todo), start=1):
        if outcome.analysis is None:
            skipped.append((outcome.path, outcome.error or "unknown error"))
        else:
            a = outcome.analysis
            owner = writer.owner_of_hash(a.content_hash) or seen_hashes.get(a.content_hash)
            if owner and owner != a.path and Path(owner).exists():
                skipped.append((a.path, f"same content as {owner} (already in the library)"))
            else:
                seen_hashes[a.content_hash] = a.path
                batch.append(a)
                seconds += a.duration_s
                if len(batch) >= options.batch_size:
                    flush()
        if progress:
            progress("add", done, len(todo))
    flush()
    return added, updated, seconds


def add_paths(
    library_root: Path,
    model_dir: Path,
    paths: Iterable[str | Path],
    options: AddOptions = AddOptions(),
    executor: Executor | None = None,
    progress: ProgressFn | None = None,
) -> AddReport:
    """Add (or refresh) files and folders; bad files are skipped and reported."""
    t0 = time.perf_counter()
    files, skipped = scan(paths)
    lib = MusicLibrary.open(library_root, create=True)
    unchanged: list[str] = []
    notes: list[str] = []
    encoders: dict[str, str] = {}
    executor = executor or make_executor(model_dir, options)
    try:
        with lib.writer() as writer:
            clip_stamp = _prepare(lib, writer, files, model_dir, options, executor, notes, encoders)
            todo = _to_analyse(writer, files, clip_stamp, options, skipped, unchanged)
            added, updated, seconds = _analyse_and_commit(
                writer, executor, todo, options, skipped, progress
            )
            calibration = writer.calibrate()
            built = writer.maybe_build_ann()
            ann_info = built.__dict__ if built else None
    finally:
        lib.close()
    return AddReport(
        added=tuple(added), updated=tuple(updated), unchanged=tuple(unchanged),
        skipped=tuple(skipped), audio_seconds=seconds,
        wall_seconds=time.perf_counter() - t0, calibration=calibration, ann=ann_info,
        executor=executor.name, notes=tuple(notes), encoders=encoders,
    )  # fmt: skip
