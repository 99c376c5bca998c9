"""Draft music library and retriever on a temp folder of generated audio and MIDI."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from bridge.errors import ConfigError, InvalidRequest
from engine.config import DraftConfig, Settings
from engine.describe.draft import DraftDescriber
from engine.retrieve.draft import library as lib_mod
from engine.retrieve.draft import records
from engine.retrieve.draft.analyse import name_hints
from engine.retrieve.draft.library import DraftLibrary
from engine.retrieve.draft.retriever import (
    DraftRetriever,
    library_add,
    library_list,
    library_search,
    library_stats,
    targeted_search,
)
from engine.text_embed import embed_text
from engine.types import Knobs, VisualInput, no_progress

SR = 44100
CLICK_BPMS = {"pulse_one": 90.0, "pulse_two": 120.0, "pulse_three": 150.0}


def _clicks(bpm: float, seconds: float = 8.0) -> np.ndarray:
    x = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.01 * SR)) / SR
    burst = (np.sin(2 * np.pi * 1500 * t) * np.exp(-t * 400)).astype(np.float32)
    beat = 0
    while (start := int(round(beat * 60.0 / bpm * SR))) + burst.size <= x.size:
        x[start : start + burst.size] += burst * (0.9 if beat % 4 == 0 else 0.5)
        beat += 1
    return x


def _melody(midi_notes: list[int], note_s: float = 0.5) -> np.ndarray:
    out = []
    for m in midi_notes:
        t = np.arange(int(note_s * SR)) / SR
        env = np.minimum(1.0, (note_s - t) * 20)
        out.append(0.3 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) * env)
    return np.concatenate(out).astype(np.float32)


C_MAJOR = [60, 64, 67, 72, 60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 60]
A_MINOR = [57, 60, 64, 69, 57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 57]


def _write_midi(path: Path) -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=100.0)
    piano = pretty_midi.Instrument(program=0)
    bass = pretty_midi.Instrument(program=33)
    d_major = [62, 66, 69, 74, 62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62, 62]
    for i, pitch in enumerate(d_major):
        piano.notes.append(pretty_midi.Note(90, pitch, i * 0.6, i * 0.6 + 0.55))
        if i % 4 == 0:
            bass.notes.append(
                pretty_midi.Note(80, 38 if i % 8 == 0 else 45, i * 0.6, i * 0.6 + 2.3)
            )
    pm.instruments += [piano, bass]
    pm.write(str(path))


@pytest.fixture(scope="module")
def music_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("music")
    for name, bpm in CLICK_BPMS.items():
        sf.write(d / f"{name}.wav", _clicks(bpm), SR)
    (d / "piano").mkdir()
    sf.write(d / "piano" / "tune_one.flac", _melody(C_MAJOR), SR)
    sf.write(d / "tune_two.ogg", _melody(A_MINOR), SR)
    _write_midi(d / "song.mid")
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (d / "notes.txt").write_text("not music")
    return d


def _settings(home: Path, *dirs: Path) -> Settings:
    return Settings(
        home=home, draft=DraftConfig(library_dirs=tuple(map(str, dirs)), use_system_samples=False)
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, music_dir: Path) -> tuple[Settings, object]:
    """A library indexed once for the read-only tests (added as a user folder)."""
    settings = _settings(tmp_path_factory.mktemp("home"))
    report = library_add([music_dir], settings)
    return settings, report


def _by_title(settings: Settings) -> dict[str, records.Piece]:
    return {p.title: p for p in library_list(settings)}


def test_add_report_and_corrupt_file(indexed: tuple[Settings, records.AddReport]) -> None:
    settings, report = indexed
    assert (report.added, report.updated, report.total) == (6, 0, 6)
    assert [Path(p).name for p, _ in report.failed] == ["broken.wav"]
    assert "broken.wav" in report.failed[0][1]
    stats = library_stats(settings)
    assert (
        stats.pieces == 6
        and stats.failures == 1
        and stats.kinds == {"midi": 1, "track": 5}  # the melodies keep a steady pulse too
    )
    assert stats.embedding_model.startswith("all-MiniLM-L6-v2")


def test_tempo_within_3_percent(indexed: tuple[Settings, records.AddReport]) -> None:
    pieces = _by_title(indexed[0])
    for name, bpm in CLICK_BPMS.items():
        got = pieces[name.replace("_", " ")].bpm
        assert got is not None and abs(got - bpm) / bpm <= 0.03, (name, got)
    assert "tempo:fast" in pieces["pulse three"].tags and "tempo:slow" in pieces["pulse one"].tags


def test_key_detection_and_midi(indexed: tuple[Settings, records.AddReport]) -> None:
    pieces = _by_title(indexed[0])
    assert (pieces["tune one"].key, pieces["tune one"].mode) == ("C", "major")
    assert (pieces["tune two"].key, pieces["tune two"].mode) == ("A", "minor")
    assert "instrument:piano" in pieces["tune one"].tags  # from its folder name
    song = pieces["song"]
    assert song.kind == "midi" and song.bpm == pytest.approx(100.0)
    assert (song.key, song.mode) == ("D", "major")
    assert {"instrument:piano", "instrument:bass"} <= set(song.tags)


def test_incremental_add_and_persistence(tmp_path: Path, music_dir: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    for f in ("pulse_one.wav", "tune_two.ogg", "song.mid", "broken.wav"):
        (folder / f).write_bytes((music_dir / f).read_bytes())
    settings = _settings(tmp_path / "home")
    first = library_add([folder], settings)
    assert (first.added, len(first.failed)) == (3, 1)
    second = library_add([folder], settings)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 3)
    assert len(second.failed) == 1  # the same broken file is reported, not retried
    # A changed file is analysed again; a removed one leaves the index.
    sf.write(folder / "pulse_one.wav", _clicks(100.0), SR)
    os.utime(folder / "pulse_one.wav", ns=(time.time_ns(), time.time_ns() + 10**9))
    (folder / "song.mid").unlink()
    third = library_add([], settings)
    assert (third.updated, third.unchanged, third.removed, third.total) == (1, 1, 1, 2)
    # Reopened from disk: same pieces, same search results.
    query = embed_text("a slow steady pulse")
    with DraftLibrary(settings) as a:
        before = [(h.piece.piece_id, round(h.score, 5)) for h in a.search(query, 2)]
        assert {p.title for p in a.pieces()} == {"pulse one", "tune two"}
        assert a.pieces()[0].bpm == pytest.approx(100.0, rel=0.03)
    with DraftLibrary(settings) as b:
        assert [(h.piece.piece_id, round(h.score, 5)) for h in b.search(query, 2)] == before
    # Exactly one embedding generation is left on disk, and it is the one the index names.
    assert [p.name for p in settings.library_dir.glob("draft-emb-*.npy")] == [
        DraftLibrary(settings)._meta("embeddings")
    ]


def test_partitions_and_exact_top_k(indexed: tuple[Settings, records.AddReport]) -> None:
    settings = indexed[0]
    fast = library_list(settings, partition="tempo:fast")
    assert [p.title for p in fast] == ["pulse three"]
    piano = {p.title for p in library_list(settings, partition="instrument:piano")}
    assert piano == {"tune one", "song"}
    with pytest.raises(InvalidRequest, match="valid genres"):
        library_list(settings, partition="genre:polka")
    with DraftLibrary(settings) as library:
        query = embed_text("piano melody in a major key")
        ids, matrix = library.embeddings()
        brute = np.argsort(-(matrix @ query), kind="stable")[:4]
        hits = library.search(query, 4)
        assert [h.piece.piece_id for h in hits] == [ids[i] for i in brute]
        assert np.allclose([h.score for h in hits], (matrix @ query)[brute], atol=1e-5)
        inside = library.search(query, 10, ("tempo", "fast"))
        assert [h.piece.title for h in inside] == ["pulse three"]


def test_empty_partition_says_so(indexed: tuple[Settings, records.AddReport]) -> None:
    settings = indexed[0]
    with pytest.raises(InvalidRequest, match=r"mood:aggressive is empty; the nearest non-empty"):
        library_search("angry", 3, settings, partition="mood:aggressive")
    with pytest.raises(InvalidRequest, match="no piece in the library has a genre tag"):
        library_search("smooth", 3, settings, partition="genre:jazz")
    with DraftLibrary(settings) as library:
        query = embed_text("a fast pulse")
        result = targeted_search(library, "instrument", "violin", query)
        assert result.used is not None and result.used[0] == "instrument" and result.hits
        assert "instrument:violin is empty" in (result.note or "")
        # No piece has a genre tag at all: the whole library stands in, with a note.
        result = targeted_search(library, "genre", "jazz", query)
        assert result.used is None and result.hits and "has a genre tag" in (result.note or "")


def test_retriever_broad_and_targeted(indexed: tuple[Settings, records.AddReport]) -> None:
    settings = indexed[0]
    visual = VisualInput(np.zeros((0, 1, 1, 3), np.uint8), (), 0.0, source="text")
    knobs = Knobs(text="a fast driving pulse", tempo="150", instruments=("violin",))
    description = DraftDescriber().describe(visual, knobs, np.random.default_rng(0), no_progress)
    retriever = DraftRetriever(settings)
    retrieval = retriever.retrieve(description, knobs, visual, top_k=3)
    assert retrieval.backend == "draft" and retrieval.weights == "none"
    assert len(retrieval.broad) == 3
    tempo_ref, inst_ref = retrieval.targeted
    assert tempo_ref.partition == "tempo:fast" and tempo_ref.title == "pulse three"
    assert tempo_ref.bpm == pytest.approx(150.0, rel=0.03)
    assert inst_ref.partition is not None and inst_ref.partition.startswith("instrument:")
    assert any("instrument:violin is empty" in n for n in retrieval.notes)
    # Without knobs, the description's own tempo/genre/mood partitions are used.
    plain = retriever.retrieve(description, Knobs(text=knobs.text), visual, top_k=2)
    assert len(plain.broad) == 2 and len(plain.targeted) == 3
    retriever.close()


def test_empty_library_is_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    visual = VisualInput(np.zeros((0, 1, 1, 3), np.uint8), (), 0.0, source="text")
    description = DraftDescriber().describe(
        visual, Knobs(text="calm piano"), np.random.default_rng(0), no_progress
    )
    with pytest.raises(ConfigError, match="library is empty.*vmb library add"):
        DraftRetriever(settings).retrieve(description, Knobs(), visual, 3)
    report = library_add([tmp_path / "nowhere"], settings)
    assert report.failed == ((str(tmp_path / "nowhere"), "not found"),) and report.total == 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    DraftLibrary(settings).close()
    db = sqlite3.connect(settings.library_dir / "draft.sqlite")
    db.execute(f"PRAGMA user_version={lib_mod.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ConfigError, match="newer VMB Score"):
        DraftLibrary(settings)


def test_interrupted_write_leaves_a_consistent_index(tmp_path: Path, music_dir: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "tune_two.ogg").write_bytes((music_dir / "tune_two.ogg").read_bytes())
    settings = _settings(tmp_path / "home", folder)
    library_add([], settings)
    # A crash after writing a new matrix generation but before its commit leaves an orphan
    # (and a temp file); the index still names the old, complete matrix.
    (settings.library_dir / "draft-emb-99.npy").write_bytes(b"partial")
    (settings.library_dir / ".draft-emb-100.npy.1.tmp").write_bytes(b"partial")
    with DraftLibrary(settings) as library:
        assert len(library.search(embed_text("minor melody"), 1)) == 1
    (folder / "pulse_two.wav").write_bytes((music_dir / "pulse_two.wav").read_bytes())
    report = library_add([], settings)
    assert report.added == 1 and report.total == 2
    assert sorted(p.name for p in settings.library_dir.iterdir() if "emb" in p.name) == [
        "draft-emb-2.npy"
    ]


def test_sonic_pi_samples(tmp_path: Path) -> None:
    """The real CC0 library: indexed in seconds, loops get tempi, searches make sense."""
    if not lib_mod.SYSTEM_SAMPLES_DIR.is_dir():
        pytest.skip("sonic-pi-samples is not installed")
    settings = Settings(home=tmp_path / "home")
    t0 = time.perf_counter()
    report = library_add([], settings)
    elapsed = time.perf_counter() - t0
    assert report.total >= 160 and not report.failed
    pieces = _by_title(settings)
    assert pieces["loop amen"].bpm == pytest.approx(137.0, rel=0.03)
    assert pieces["loop drone g 97"].bpm == 97.0 and pieces["loop drone g 97"].key == "G"
    assert all(p.bpm is None for p in pieces.values() if p.title.startswith(("bd ", "drum ")))
    hits = library_search("dark ambient drone", 3, settings)
    assert hits[0].piece.title.startswith(("ambi", "loop drone"))
    again = library_add([], settings)
    assert again.unchanged == report.total and again.elapsed_s < 2.0
    print(f"sonic-pi-samples: {report.total} pieces indexed in {elapsed:.1f} s")


def test_name_hints() -> None:
    drone = name_hints("loop_drone_g_97")
    assert (drone.loop, drone.bpm, drone.key) == (True, 97.0, "G")
    assert ("instrument", "pad") in drone.tags
    bass = name_hints("bass_dnb_f")
    assert (bass.loop, bass.key) == (False, "F") and ("instrument", "bass") in bass.tags
    groove = name_hints("Funky Groove 96bpm Cm", folders=("Jazz", "Drums"))
    assert (groove.loop, groove.bpm, groove.key, groove.mode) == (True, 96.0, "C", "minor")
    assert {("genre", "jazz"), ("instrument", "drums")} <= set(groove.tags)
    assert ("instrument", "bass") not in name_hints("drum_bass_hard").tags  # a bass drum
    assert all(f != "genre" or t != "pop" for f, t in name_hints("elec_pop").tags)
