"""The full music bridge: broad and targeted retrieval over the full library (paper eqs. 2-4).

Broad (eqs. 2-3): the description's CLAP text embedding against every piece's CLAP audio
embedding; with video frames in the request and key frames in the library, also the CLIP
image embedding of the request's frames against the library's key frames. Two lists are
merged by reciprocal-rank fusion (cosines of different models are not comparable); each
Reference keeps its own best cosine as the score.

Targeted (eq. 4): for each attribute the user set (tempo, genre, mood, instruments), the
pieces inside that partition ranked by cosine between the attribute's CLAP text embedding
and their audio embeddings; the best one per attribute. An empty partition falls back to
the nearest non-empty one (and says so in the log and in Reference.partition).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import LibraryError, VMBError, WeightsError
from engine import taxonomy, weights
from engine.config import Settings
from engine.retrieve.full.encoders import clap as clap_mod
from engine.retrieve.full.encoders import clip as clip_mod
from engine.retrieve.full.library import MusicLibrary
from engine.retrieve.full.schema import (
    DB_FILE,
    EmptyPartition,
    EncoderStamp,
    Partition,
    parse_partition,
    prompt_for,
)
from engine.types import (
    Knobs,
    MusicDescription,
    ProgressFn,
    Reference,
    Retrieval,
    VisualInput,
    Weights,
    no_progress,
    overall_weights,
)

log = logging.getLogger(__name__)

RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al.): rank r scores 1 / (60 + r)


def library_root(settings: Settings) -> Path:
    return settings.library_dir / "full"


NO_LIBRARY = "no music library: no references, the cue is generated from the description alone"


def library_state(settings: Settings) -> tuple[int, EncoderStamp | None]:
    """(pieces, CLAP stamp) of the full library; (0, None) where there is none yet."""
    if not (library_root(settings) / DB_FILE).exists():
        return 0, None
    with MusicLibrary.open(library_root(settings)) as lib:
        return lib.count(), lib.encoder("clap")


def full_retrieval_available(settings: Settings) -> tuple[bool, str]:
    """Whether the full retriever can answer, and why (cheap: loads no model). No library is
    no obstacle: the cue is then generated from the description alone."""
    from engine.retrieve.full.encoders.runtime import model_identity

    root = library_root(settings)
    try:
        n, stamp = library_state(settings)
    except LibraryError as exc:
        return False, exc.message
    if n == 0 or stamp is None:
        return True, f"{NO_LIBRARY} (add music with `vmb library add FOLDER`)"
    try:
        folder = weights.resolve(clap_mod.MODEL_NAME, settings.model_dir)
    except WeightsError as exc:
        return False, f"the full library in {root} needs {clap_mod.MODEL_NAME}: {exc.message}"
    if stamp.identity != model_identity(folder.path):
        return False, (
            f"the full library was embedded with another {clap_mod.MODEL_NAME} ({stamp.weights} "
            "weights); re-embed it with `vmb library add --reembed FOLDER`"
        )
    return True, f"full library: {n} pieces, {clap_mod.MODEL_NAME} {folder.weights} weights"


def _fuse(lists: list[list[tuple[int, float]]], k: int) -> list[tuple[int, float]]:
    if len(lists) == 1:
        return lists[0][:k]
    fused: dict[int, float] = {}
    best: dict[int, float] = {}
    for hits in lists:
        for rank, (row, score) in enumerate(hits):
            fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
            best[row] = max(best.get(row, -2.0), score)
    order = sorted(fused, key=lambda r: (-fused[r], r))[:k]
    return [(r, best[r]) for r in order]


class FullRetriever:
    """engine.types.Retriever over the full library (CLAP + CLIP). Thread-safe; the library
    and encoders open on first use and stay open."""

    def __init__(self, settings: Settings, runtime: str = "auto") -> None:
        self.settings = settings
        self.runtime = runtime  # the encoders': auto | torch | onnx
        self.root = library_root(settings)
        self._lock = threading.RLock()
        self._lib: MusicLibrary | None = None
        self._clap: Any = None
        self._clip: Any = None

    # -- resources -----------------------------------------------------------------------------

    @property
    def library(self) -> MusicLibrary:
        with self._lock:
            if self._lib is None:
                self._lib = MusicLibrary.open(self.root)
            return self._lib

    @property
    def clap(self) -> Any:
        from engine.retrieve.full.encoders.runtime import ClapEncoder

        with self._lock:
            if self._clap is None:
                s = self.settings
                enc = ClapEncoder(s.model_dir, self.runtime, s.models.device)  # type: ignore[arg-type]
                self.library.check_encoder("clap", EncoderStamp(**_stamp(enc.info)))
                self._clap = enc
            return self._clap

    @property
    def clip(self) -> Any:
        from engine.retrieve.full.encoders.runtime import ClipEncoder

        with self._lock:
            if self._clip is None:
                s = self.settings
                enc = ClipEncoder(s.model_dir, self.runtime, s.models.device)  # type: ignore[arg-type]
                self.library.check_encoder("clip", EncoderStamp(**_stamp(enc.info)))
                self._clip = enc
            return self._clip

    def ran_on(self) -> dict[str, str]:
        """The encoders loaded so far and what they run on ("onnx CUDAExecutionProvider")."""
        with self._lock:
            loaded = {"clap": self._clap, "clip": self._clip}
        return {k: enc.info.ran_on() for k, enc in loaded.items() if enc is not None}

    def close(self) -> None:
        with self._lock:
            if self._lib is not None:
                self._lib.close()
                self._lib = None

    # -- the Retriever protocol ----------------------------------------------------------------

    def has_library(self) -> bool:
        n, stamp = library_state(self.settings)
        return n > 0 and stamp is not None

    @property
    def weights(self) -> Weights:
        """What retrieval ran on: the weakest of CLAP's weights and -- where the library has
        key frames and CLIP is installed, so CLIP also ranks -- CLIP's; none without a library."""
        if not self.has_library():
            return "none"
        model_dir = self.settings.model_dir
        labels = {"clap": weights.resolve(clap_mod.MODEL_NAME, model_dir).weights}
        if len(self.library.frame_matrix()):
            try:
                labels["clip"] = weights.resolve(clip_mod.MODEL_NAME, model_dir).weights
            except WeightsError:
                pass  # CLIP not installed: only CLAP ranks
        return overall_weights(labels)  # type: ignore[arg-type]

    def retrieve(
        self,
        description: MusicDescription,
        knobs: Knobs,
        visual: VisualInput,
        top_k: int,
        progress: ProgressFn = no_progress,
    ) -> Retrieval:
        """Broad, then one targeted search per partition the knobs ask for: each a step of
        `progress` (which raises JobCancelled when the job is cancelled)."""
        partitions = self.partitions_from_knobs(knobs)
        steps = 1 + len(partitions)
        progress("retrieve", 0, steps)
        if not self.has_library():
            return Retrieval(backend="full", weights="none", notes=(NO_LIBRARY,))
        broad = self._broad(description, knobs, visual, top_k)
        progress("retrieve", 1, steps)
        targeted: list[Reference] = []
        notes: list[str] = []
        for step, partition in enumerate(partitions, start=2):
            targeted.extend(self.targeted(partition, k=1, strict=False, notes=notes))
            progress("retrieve", step, steps)
        return Retrieval(
            backend="full", weights=self.weights, broad=tuple(broad), targeted=tuple(targeted),
            notes=tuple(notes),
        )  # fmt: skip

    def _broad(
        self, description: MusicDescription, knobs: Knobs, visual: VisualInput, top_k: int
    ) -> list[Reference]:
        """CLAP text against the pieces' audio and, where the library has key frames, CLIP
        (the request's frames, else its text) against them, fused by rank."""
        text = (knobs.text or description.text).strip()
        lists = []
        if text:
            lists.append(self.library.search_audio(self.clap.embed_text([text])[0], top_k * 2))
        if len(self.library.frame_matrix()) and self._clip_available():
            if visual.frames is not None and len(visual.frames):
                emb = self.clip.embed_images(np.asarray(visual.frames))
                q = emb.mean(axis=0)
                lists.append(
                    self.library.search_frames(q / max(1e-12, float(np.linalg.norm(q))), top_k * 2)
                )
            elif text:
                lists.append(self.library.search_frames(self.clip.embed_text([text])[0], top_k * 2))
        return self._references(_fuse([x for x in lists if x], top_k) if any(lists) else [], None)

    # -- building blocks (also used by the CLI) ------------------------------------------------

    def broad_text(
        self, text: str, k: int, partitions: list[Partition] | None = None
    ) -> list[Reference]:
        """Text -> library by CLAP text against audio embeddings (eq. 2, text side)."""
        return self._references(
            self.library.search_audio(self.clap.embed_text([text])[0], k, partitions), None
        )

    def broad_audio(
        self, waveform_48k: np.ndarray, k: int, partitions: list[Partition] | None = None
    ) -> list[Reference]:
        """Audio -> library by CLAP audio embeddings (eq. 2)."""
        q = self.clap.embed_audio(waveform_48k)
        return self._references(self.library.search_audio(q, k, partitions), None)

    def broad_image(
        self, frames: np.ndarray, k: int, partitions: list[Partition] | None = None
    ) -> list[Reference]:
        """Image/frames -> library by CLIP image against the library's key frames (eq. 3)."""
        emb = self.clip.embed_images(frames).mean(axis=0)
        q = emb / max(1e-12, float(np.linalg.norm(emb)))
        return self._references(self.library.search_frames(q, k, partitions), None)

    def broad_clip_text(
        self, text: str, k: int, partitions: list[Partition] | None = None
    ) -> list[Reference]:
        """Text -> library by CLIP text against the library's key frames (eq. 3, text side)."""
        return self._references(
            self.library.search_frames(self.clip.embed_text([text])[0], k, partitions), None
        )

    def targeted(
        self,
        partition: Partition | str,
        k: int = 1,
        attribute: str | None = None,
        strict: bool = True,
        notes: list[str] | None = None,
    ) -> list[Reference]:
        """Eq. 4: inside the partition, CLAP text of the attribute against audio embeddings.
        strict=False falls back to the nearest non-empty partition instead of raising."""
        p = parse_partition(partition) if isinstance(partition, str) else partition
        try:
            self.library.require_partition(p)
        except EmptyPartition as exc:
            if strict:
                raise
            log.warning("%s", exc.message)
            if notes is not None:
                used = f"; used {exc.nearest}" if exc.nearest else "; no targeted reference"
                notes.append(f"partition {p} is empty{used}")
            if exc.nearest is None:
                return []
            p = parse_partition(exc.nearest)
        q = self.clap.embed_text([attribute or prompt_for(p.facet, p.value)])[0]
        return self._references(self.library.search_audio(q, k, [p]), str(p))

    def clap_embedding(self, piece_id: str) -> np.ndarray:
        """The piece's CLAP audio embedding (float32 unit vector): the targeted reference the
        generator's Stylization module conditions on."""
        return self.library.audio_embedding(piece_id)

    @staticmethod
    def partitions_from_knobs(knobs: Knobs) -> list[Partition]:
        out = []
        if knobs.tempo:
            out.append(Partition("tempo", taxonomy.normalise_tempo(knobs.tempo)[0]))
        if knobs.genre:
            out.append(Partition("genre", taxonomy.normalise_genre(knobs.genre)))
        if knobs.mood:
            out.append(Partition("mood", taxonomy.normalise_mood(knobs.mood)))
        for name in taxonomy.normalise_instruments(list(knobs.instruments)):
            out.append(Partition("instrument", name))
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _clip_available(self) -> bool:
        try:
            _ = self.clip
        except VMBError as exc:
            log.info("CLIP retrieval unavailable: %s", exc.message)
            return False
        return True

    def _references(self, hits: list[tuple[int, float]], partition: str | None) -> list[Reference]:
        records = {r.row: r for r in self.library.records_for_rows([row for row, _ in hits])}
        matrix = self.library.audio_matrix()
        out = []
        for row, score in hits:
            rec = records.get(row)
            if rec is None:
                continue
            out.append(Reference(
                piece_id=rec.piece_id, title=rec.title, path=rec.path, score=float(score),
                partition=partition, bpm=rec.bpm, key=rec.key, mode=rec.mode, tags=rec.tags,
                clap=np.asarray(matrix[row], dtype=np.float32),  # the stored embedding
            ))  # fmt: skip
        return out


def _stamp(info: Any) -> dict[str, Any]:
    return {"name": info.name, "weights": info.weights, "identity": info.identity, "dim": info.dim}
