"""FullRetriever (engine.types.Retriever) over a tiny library, availability, CLI and bench."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main as vmb
from engine.config import load_settings
from engine.retrieve.full import indexing
from engine.retrieve.full.library import MusicLibrary
from engine.retrieve.full.retriever import (
    NO_LIBRARY,
    FullRetriever,
    full_retrieval_available,
    library_root,
)
from engine.retrieve.full.schema import EmptyPartition, Partition
from engine.types import Attributes, Knobs, MusicDescription, Retrieval, Retriever, VisualInput
from support.full_retrieve import tiny_models, write_audio, write_video


@pytest.fixture(scope="module")
def built_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four click tracks and a video, added once; each test gets its own copy."""
    root = tmp_path_factory.mktemp("full-retrieval")
    music = root / "music"
    music.mkdir()
    for i, (bpm, pitch) in enumerate([(90, 220), (150, 330), (120, 440), (170, 550)]):
        write_audio(music / f"t{i}.wav", bpm, 6.0, pitch, seed=i)
    write_video(music / "v.mp4", seconds=3.0, color="0x14c828")
    report = indexing.add_paths(root / "full", tiny_models(), [music],
                                indexing.AddOptions(runtime="torch"))  # fmt: skip
    assert len(report.added) == 5
    return root / "full"


@pytest.fixture
def settings_with_library(built_library: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VMB_MODEL_DIR", str(tiny_models()))
    settings = load_settings()
    ok, why = full_retrieval_available(settings)
    assert ok and "no music library" in why  # no obstacle: generation from the text alone
    assert FullRetriever(settings).retrieve(_description("x"), Knobs(), _no_visual(), 3) == (
        Retrieval(backend="full", weights="none", notes=(NO_LIBRARY,))
    )
    shutil.copytree(built_library, library_root(settings))
    return settings


def _no_visual() -> VisualInput:
    return VisualInput(frames=np.zeros((0, 1, 1, 3), np.uint8), frame_times_s=(), duration_s=0.0,
                       source="text")  # fmt: skip


def _description(text: str) -> MusicDescription:
    attrs = Attributes(
        mood="calm", genre="ambient", tempo_bucket="slow", energy="low", instruments=()
    )
    return MusicDescription(
        text=text, attributes=attrs, source="video", backend="full", weights="random"
    )


def test_retrieve_broad_and_targeted(settings_with_library) -> None:  # type: ignore[no-untyped-def]
    settings = settings_with_library
    ok, why = full_retrieval_available(settings)
    assert ok and "5 pieces" in why and "random" in why
    retriever: Retriever = FullRetriever(settings)  # satisfies the protocol (typed)
    assert isinstance(retriever, FullRetriever)
    frames = np.full((2, 32, 48, 3), 100, np.uint8)
    visual = VisualInput(frames=frames, frame_times_s=(0.0, 1.0), duration_s=2.0)
    with MusicLibrary.open(library_root(settings)) as lib:
        genre = lib.pieces()[0].genre
    knobs = Knobs(tempo="fast", genre=genre)
    out = retriever.retrieve(_description("A calm ambient piece with soft pads."), knobs, visual, 3)
    assert 1 <= len(out.broad) <= 3
    assert len({r.piece_id for r in out.broad}) == len(out.broad)
    assert [t.partition for t in out.targeted] == ["tempo:fast", f"genre:{genre}"]
    fast = out.targeted[0]
    assert fast.bpm is not None and fast.bpm >= 135 and fast.tags
    emb = retriever.clap_embedding(fast.piece_id)
    assert emb.shape == (32,) and abs(float(np.linalg.norm(emb)) - 1) < 1e-2
    assert fast.clap is not None and np.array_equal(fast.clap, emb)  # stored, not re-embedded
    # eq. 4 by hand: the best cosine between the attribute text and the partition's audio
    with MusicLibrary.open(library_root(settings)) as lib:
        rows = lib.partition_rows([Partition("tempo", "fast")])
        q = retriever.clap.embed_text(["This is music with a fast tempo."])[0]
        scores = np.asarray(lib.audio_matrix()[rows], np.float64) @ q
        best = lib.records_for_rows([rows[int(np.argmax(scores))]])[0]
    assert best.piece_id == fast.piece_id
    # broad from audio finds the piece itself first; image search reaches the video's frames
    rec = next(r for r in out.broad)
    from engine.retrieve.decode import decode_audio

    wave = decode_audio(Path(rec.path), 48000)
    assert retriever.broad_audio(wave, 1)[0].piece_id == rec.piece_id
    assert retriever.broad_image(frames, 2)[0].title == "v"
    assert retriever.broad_clip_text("a green field", 1)[0].title == "v"
    retriever.close()


def test_empty_partition_falls_back_to_nearest(settings_with_library) -> None:  # type: ignore[no-untyped-def]
    retriever = FullRetriever(settings_with_library)
    counts = retriever.library.partition_counts()
    missing = next(
        f"mood:{m}"
        for m in ("aggressive", "sad", "tense", "happy", "calm")
        if f"mood:{m}" not in counts
    )
    with pytest.raises(EmptyPartition, match="nearest non-empty partition"):
        retriever.targeted(missing)
    notes: list[str] = []
    hits = retriever.targeted(missing, strict=False, notes=notes)
    assert hits and hits[0].partition != missing and hits[0].partition.startswith("mood:")
    assert notes == [f"partition {missing} is empty; used {hits[0].partition}"]
    mood = missing.split(":")[1]
    out = retriever.retrieve(_description("calm"), Knobs(mood=mood), _no_visual(), 2)
    assert out.notes == tuple(notes) and out.targeted[0].partition == hits[0].partition
    retriever.close()


def test_cli_library_commands(settings_with_library, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert vmb(["library", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["pieces"] == 5 and stats["videos"] == 1
    assert vmb(["library", "search", "--text", "fast drums", "--top-k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert vmb(["library", "search", "--partition", "tempo:slow", "--json"]) == 0
    assert all(r["partition"] == "tempo:slow" for r in json.loads(capsys.readouterr().out))
    assert vmb(["library", "list", "--partition", "tempo:fast", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and all(r["tempo"] == "fast" for r in listed)
    assert vmb(["library", "remove", listed[0]["id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == [listed[0]["id"]]
    assert vmb(["library", "search", "--partition", "genre:polka"]) == 2  # a clear user error
    assert "unknown genre" in capsys.readouterr().err


def test_bench_retrieval_quick_contract(tmp_path: Path) -> None:
    from engine.bench.retrieval import bench_retrieval

    out = bench_retrieval(argparse.Namespace(items=3000, quick=True))
    for key in ("items", "filtered_top10_ms_p50", "unfiltered_top10_ms_p50", "figures", "notes"):
        assert key in out
    assert out["items"] == 3000
    assert next(
        f for f in out["figures"] if f["name"] == "filtered results = ground truth, every query"
    )["ok"]
