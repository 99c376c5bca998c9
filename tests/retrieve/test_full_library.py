"""The full music library: add (bad files skipped), partitions, exact top-k, persistence,
crash recovery, versioning, calibration, removal, the approximate index."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from bridge.errors import InvalidRequest
from engine import taxonomy
from engine.retrieve.full import indexing, vectors
from engine.retrieve.full import schema as full_schema
from engine.retrieve.full.library import MusicLibrary
from engine.retrieve.full.schema import (
    EmptyPartition,
    EncoderStamp,
    LibraryError,
    Partition,
    PieceAnalysis,
    parse_partition,
)
from support.full_retrieve import PIECES, media_folder, tiny_models, write_audio


@pytest.fixture(scope="module")
def added(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, indexing.AddReport]:
    """One library built from the generated media (shared by the read-only tests)."""
    root = tmp_path_factory.mktemp("full-lib")
    folder = media_folder(root)
    report = indexing.add_paths(root / "lib", tiny_models(), [folder, root / "missing.wav"],
                                indexing.AddOptions(batch_size=2, runtime="torch"))  # fmt: skip
    return root / "lib", folder, report


def test_add_reports_pieces_and_skips_bad_files(
    added: tuple[Path, Path, indexing.AddReport],
) -> None:
    lib_root, folder, report = added
    assert len(report.added) == len(PIECES) + 1  # five audio files and the video
    assert report.encoders == {"clap": "torch cpu", "clip": "torch cpu"}  # what ran, said
    assert report.to_json()["encoders"] == report.encoders
    reasons = dict(report.skipped)
    assert set(reasons) == {str(folder / "corrupt.wav"), str(folder.parent / "missing.wav")}
    assert "cannot decode" in reasons[str(folder / "corrupt.wav")]
    with MusicLibrary.open(lib_root) as lib:
        records = {Path(r.path).name: r for r in lib.pieces()}
        assert set(records) == {name for name, _, _ in PIECES} | {"clip.mp4"}
        assert records["clip.mp4"].kind == "video"
        assert lib.frame_matrix().shape[0] == len(lib.frame_owner()) >= 1
        assert lib.audio_matrix().shape == (len(records), 32)
        stats = lib.stats()
        assert stats["encoders"]["clap"]["weights"] == "random"
        assert stats["calibration"]["method"] == "prior"


def test_partitions_follow_bpm_and_tags(added: tuple[Path, Path, indexing.AddReport]) -> None:
    lib_root, _, _ = added
    with MusicLibrary.open(lib_root) as lib:
        records = {Path(r.path).name: r for r in lib.pieces()}
        for name, bpm, _ in PIECES:
            rec = records[name]
            assert rec.bpm is not None and abs(rec.bpm - bpm) < 2.0, (name, rec.bpm)
            assert rec.tempo == taxonomy.tempo_bucket(rec.bpm)
        for bucket in taxonomy.TEMPO_BUCKETS:
            rows = lib.partition_rows([Partition("tempo", bucket)])
            expect = sorted(r.row for r in records.values() if r.tempo == bucket)
            assert rows.tolist() == expect
        for name, count in lib.partition_counts().items():
            p = parse_partition(name)
            rows = lib.partition_rows([p])
            assert len(rows) == count
            if p.facet != "tempo":
                assert all(p.value in rec.tags for rec in lib.records_for_rows(rows))
        # every piece has exactly its top genre and mood as a partition
        for rec in records.values():
            assert rec.genre in rec.tags and rec.mood in rec.tags
        both = lib.partition_rows(
            [Partition("tempo", "fast"), Partition("genre", records["fast_b.flac"].genre)]
        )
        assert records["fast_b.flac"].row in both.tolist()


def test_empty_partition_names_the_nearest(added: tuple[Path, Path, indexing.AddReport]) -> None:
    lib_root, _, _ = added
    with MusicLibrary.open(lib_root) as lib:
        counts = lib.partition_counts()
        empty_genre = next(g for g in taxonomy.GENRES if f"genre:{g}" not in counts)
        with pytest.raises(EmptyPartition, match="nearest non-empty partition: genre:") as exc:
            lib.require_partition(Partition("genre", empty_genre))
        assert exc.value.nearest in counts
    with pytest.raises(InvalidRequest, match="FACET:VALUE"):
        parse_partition("colour:red")
    with pytest.raises(InvalidRequest, match="unknown genre"):
        parse_partition("genre:polka")


def test_incremental_add_skips_unchanged_and_replaces_changed(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    a = write_audio(folder / "a.wav", 90, 6.0, seed=1)
    write_audio(folder / "b.wav", 150, 6.0, pitch=300, seed=2)
    opts = indexing.AddOptions(runtime="torch")
    first = indexing.add_paths(tmp_path / "lib", tiny_models(), [folder], opts)
    assert len(first.added) == 2
    again = indexing.add_paths(tmp_path / "lib", tiny_models(), [folder], opts)
    assert len(again.unchanged) == 2 and not again.added
    write_audio(a, 160, 6.0, seed=5)  # same path, new content
    changed = indexing.add_paths(tmp_path / "lib", tiny_models(), [folder], opts)
    assert len(changed.updated) == 1 and len(changed.unchanged) == 1
    shutil.copy(folder / "b.wav", folder / "b_copy.wav")
    dup = indexing.add_paths(tmp_path / "lib", tiny_models(), [folder], opts)
    assert any("same content" in reason for _, reason in dup.skipped)
    with MusicLibrary.open(tmp_path / "lib") as lib:
        recs = {Path(r.path).name: r for r in lib.pieces()}
        assert set(recs) == {"a.wav", "b.wav"} and recs["a.wav"].tempo == "fast"
        assert len(lib.removed_rows()) == 1  # the old a.wav row: a hole the search skips
        with lib.writer() as w:
            assert w.remove([recs["b.wav"].piece_id]) == [recs["b.wav"].piece_id]
        assert [r.title for r in lib.pieces()] == ["a"]
        hits = lib.search_audio(lib.audio_embedding(recs["a.wav"].piece_id), 5)
        assert [r for r, _ in hits] == [recs["a.wav"].row]


def _stamp(dim: int) -> EncoderStamp:
    return EncoderStamp("clap-music", "random", "test", dim)


def _analysis(i: int, vec: np.ndarray, bpm: float | None) -> PieceAnalysis:
    return PieceAnalysis(
        path=f"/music/{i}.wav", size=1, mtime_ns=1,
        content_hash=hashlib.sha256(str(i).encode()).hexdigest(), kind="audio",
        title=str(i), duration_s=30.0, bpm=bpm, key="A", mode="minor", loudness_db=-14.0,
        audio_embedding=vec, frame_embeddings=np.zeros((0, 0), np.float32),
    )  # fmt: skip


def _synthetic(root: Path, n: int, dim: int = 16, seed: int = 0, batch: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    tags = [(f, t) for f in full_schema.TAG_FACETS for t in taxonomy.all_tags()[f]]
    emb = rng.standard_normal((len(tags), dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    bpms = rng.uniform(60, 200, n)
    with MusicLibrary.open(root, create=True) as lib, lib.writer() as w:
        w.set_encoders(_stamp(dim), None)
        w.set_vocabulary([f for f, _ in tags], [t for _, t in tags],
                         [full_schema.prompt_for(f, t) for f, t in tags], emb)  # fmt: skip
        for start in range(0, n, batch):
            w.commit(
                [_analysis(i, vecs[i], float(bpms[i])) for i in range(start, min(n, start + batch))]
            )
    return vecs


def test_exact_top_k_equals_brute_force_with_and_without_filters(tmp_path: Path) -> None:
    vecs = _synthetic(tmp_path, 600)
    rng = np.random.default_rng(7)
    with MusicLibrary.open(tmp_path) as lib:
        matrix = lib.audio_matrix()
        assert np.allclose(matrix, vecs, atol=1e-3)  # float16 storage
        parts = [
            [],
            [Partition("tempo", "fast")],
            [Partition("tempo", "slow"), Partition("genre", lib.pieces()[0].genre)],
        ]
        for q in rng.standard_normal((10, 16)).astype(np.float32):
            q /= np.linalg.norm(q)
            for p in parts:
                rows = lib.partition_rows(p) if p else None
                want_rows, want_scores = vectors.brute_force(matrix, q, 10, rows)
                got = lib.search_audio(q, 10, p or None)
                assert [r for r, _ in got] == want_rows.tolist()
                assert np.allclose([s for _, s in got], want_scores, atol=1e-6)
                for r, _ in got:  # the filter holds
                    rec = lib.records_for_rows([r])[0]
                    for part in p:
                        assert (
                            rec.tempo if part.facet == "tempo" else part.value in rec.tags
                        ) is not False
                        if part.facet == "tempo":
                            assert rec.tempo == part.value


def test_vectors_top_k_is_exact_even_with_near_ties() -> None:
    rng = np.random.default_rng(3)
    base = rng.standard_normal(64).astype(np.float32)
    base /= np.linalg.norm(base)
    m = np.repeat(base[None], 500, 0) + rng.standard_normal((500, 64)).astype(np.float32) * 1e-3
    m = (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float16)
    rows, scores = vectors.top_k(m, base, 7)
    want_rows, want_scores = vectors.brute_force(m, base, 7)
    assert rows.tolist() == want_rows.tolist() and np.allclose(scores, want_scores, atol=1e-7)


def test_persistence_across_restart(tmp_path: Path) -> None:
    _synthetic(tmp_path, 100)
    with MusicLibrary.open(tmp_path) as lib:
        before = lib.stats()
        q = lib.audio_embedding(lib.pieces()[5].piece_id)
        hits = lib.search_audio(q, 5)
    with MusicLibrary.open(tmp_path) as lib:
        assert lib.stats()["partitions"] == before["partitions"]
        assert lib.search_audio(q, 5) == hits
        assert hits[0][0] == 5


def test_interrupted_add_leaves_a_consistent_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vecs = _synthetic(tmp_path, 64)
    real_tx = MusicLibrary._tx
    calls = {"n": 0}

    def crashing_tx(self: MusicLibrary):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise RuntimeError("simulated crash after the embeddings were written")

    monkeypatch.setattr(MusicLibrary, "_tx", crashing_tx)
    extra = np.random.default_rng(9).standard_normal((10, 16)).astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    with MusicLibrary.open(tmp_path) as lib, pytest.raises(RuntimeError), lib.writer() as w:
        w.commit([_analysis(1000 + i, extra[i], 120.0) for i in range(10)])
    monkeypatch.setattr(MusicLibrary, "_tx", real_tx)
    # On disk now: 74 rows in the matrix file, 64 committed. Readers see the 64.
    dim = 16
    assert (tmp_path / full_schema.AUDIO_FILE).stat().st_size == 74 * 2 * dim
    with MusicLibrary.open(tmp_path) as lib:
        assert lib.count() == 64 and len(lib.audio_matrix()) == 64
        assert np.allclose(lib.audio_matrix(), vecs, atol=1e-3)
        with lib.writer() as w:  # the next writer cuts the leftover rows, then goes on
            assert (tmp_path / full_schema.AUDIO_FILE).stat().st_size == 64 * 2 * dim
            w.commit([_analysis(1000 + i, extra[i], 120.0) for i in range(10)])
        assert lib.count() == 74
        got = lib.search_audio(extra[3], 1)
        assert got[0][0] == 64 + 3


def test_killed_writer_process_recovers(tmp_path: Path) -> None:
    """A real crash: a child process appends embeddings and dies (os._exit) before its SQL
    transaction commits; the lock dies with it and the library is the last commit."""
    import subprocess
    import sys
    import textwrap

    _synthetic(tmp_path, 32)
    script = textwrap.dedent(f"""
        import os, numpy as np
        from engine.retrieve.full import library as fl, schema
        lib = fl.MusicLibrary.open(__import__("pathlib").Path({str(tmp_path)!r}))
        def die(self):
            os._exit(9)
        fl.MusicLibrary._tx = die
        w = lib.writer().__enter__()
        v = np.ones(16, np.float32) / 4.0
        w.commit([schema.PieceAnalysis("/x.wav", 1, 1, "f" * 64, "audio", "x", 1.0, None, None,
                                        None, None, v, np.zeros((0, 0), np.float32))])
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[2], timeout=120
    )
    assert proc.returncode == 9
    with MusicLibrary.open(tmp_path) as lib:
        assert lib.count() == 32
        with lib.writer():  # the dead process's lock is gone
            pass
        assert (tmp_path / full_schema.AUDIO_FILE).stat().st_size == 32 * 2 * 16


def test_second_writer_is_refused(tmp_path: Path) -> None:
    _synthetic(tmp_path, 4)
    with (
        MusicLibrary.open(tmp_path) as a,
        MusicLibrary.open(tmp_path) as b,
        a.writer(),
        pytest.raises(LibraryError, match="another process"),
        b.writer(),
    ):
        pass


def test_newer_library_version_is_refused(tmp_path: Path) -> None:
    _synthetic(tmp_path, 4)
    conn = sqlite3.connect(tmp_path / full_schema.DB_FILE)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(LibraryError, match="newer VMB Score"):
        MusicLibrary.open(tmp_path)
    with pytest.raises(LibraryError, match="vmb library add"):
        MusicLibrary.open(tmp_path / "nothing-here")


def test_other_encoder_is_refused(tmp_path: Path) -> None:
    _synthetic(tmp_path, 4)
    with (
        MusicLibrary.open(tmp_path) as lib,
        pytest.raises(LibraryError, match="rebuild the library"),
    ):
        lib.check_encoder("clap", EncoderStamp("clap-music", "real", "other", 16))


def test_calibration_quantile_then_labels(tmp_path: Path) -> None:
    _synthetic(tmp_path, 80)
    with MusicLibrary.open(tmp_path) as lib, lib.writer() as w:
        record = w.calibrate()  # 80 >= 32 pieces and never calibrated: quantiles
        assert record is not None and record["method"] == "quantile"
        vocab = lib.tag_vocabulary()
        assert set(vocab.methods) == {"quantile"}
        share = lib.partition_counts().get("instrument:piano", 0) / 80
        assert 0.2 <= share <= 0.4  # EXPECTED_RATE["instrument"] = 0.3
        assert w.calibrate() is None  # not doubled since
        pieces = lib.pieces()
        labels = {p.piece_id: ["jazz"] for p in pieces[:10]} | {
            p.piece_id: ["rock"] for p in pieces[10:20]
        }
        record = w.calibrate(labels=labels)
        assert record["method"] == "labels+quantile" and record["labelled_tags"] == 2
        vocab = lib.tag_vocabulary()
        assert vocab.methods[vocab.index("genre", "jazz")] == "labels"
        assert vocab.methods[vocab.index("genre", "blues")] == "quantile"
        assert lib.calibration()["labelled_pieces"] == 20


def test_ann_index_recall_and_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 16)).astype(np.float32)
    n = 3000
    vecs = centres[rng.integers(0, 40, n)] + rng.standard_normal((n, 16)).astype(np.float32) * 0.3
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with MusicLibrary.open(tmp_path, create=True) as lib, lib.writer() as w:
        w.set_encoders(_stamp(16), None)
        w.set_vocabulary(["genre"], ["rock"], ["x"], np.eye(1, 16, dtype=np.float32))
        w.commit([_analysis(i, vecs[i], None) for i in range(n)])
        info = w.maybe_build_ann(force=True)
        assert info is not None and info.rows == n and info.recall_at_10 >= 0.95
        extra = vecs[:5] * -1.0
        w.commit([_analysis(n + i, extra[i], None) for i in range(5)])  # after the build: the tail
        assert lib.ann_info() is not None
        found = lib.search_audio(extra[2], 3)
        assert found[0][0] == n + 2  # tail rows are searched exactly
        recalls = []
        for q in vecs[rng.integers(0, n, 30)]:
            got = {r for r, _ in lib.search_audio(q, 10)}
            want = set(vectors.brute_force(lib.audio_matrix(), q, 10)[0].tolist())
            recalls.append(len(got & want) / 10)
        assert np.mean(recalls) >= 0.9
        # filtered queries never use the index
        rows = lib.partition_rows([Partition("genre", "rock")])
        got = lib.search_audio(vecs[0], 10, [Partition("genre", "rock")])
        assert [r for r, _ in got] == vectors.brute_force(lib.audio_matrix(), vecs[0], 10, rows)[
            0
        ].tolist()


def test_analysis_row_round_trip() -> None:
    a = _analysis(3, np.arange(4, dtype=np.float32), 128.0)
    a = PieceAnalysis(
        **{
            **a.__dict__,
            "frame_embeddings": np.ones((2, 3), np.float32),
            "frame_times_s": (0.5, 1.5),
        }
    )
    b = PieceAnalysis.from_row(a.to_row())
    assert b.path == a.path and b.bpm == 128.0 and b.frame_times_s == (0.5, 1.5)
    assert np.array_equal(b.audio_embedding, a.audio_embedding)
    assert np.array_equal(b.frame_embeddings, a.frame_embeddings)


def test_scan_lists_unsupported_and_missing(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("")
    (tmp_path / "y.wav").write_bytes(b"")
    files, skipped = indexing.scan([tmp_path, tmp_path / "x.txt", tmp_path / "nope.mp3"])
    assert files == [tmp_path / "y.wav"]
    assert {os.path.basename(p) for p, _ in skipped} == {"x.txt", "nope.mp3"}
