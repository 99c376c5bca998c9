"""`vmb dataset ecmg`: ECMG records with references retrieved from the library per clip,
never the clip's own music, carrying the stored CLAP embedding and the attribute text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bridge.errors import InvalidRequest
from engine.retrieve.full import indexing
from engine.retrieve.full.encoders.clap import TINY_CONFIG
from engine.retrieve.full.library import MusicLibrary
from engine.train.ecmg import read_records
from support.full_retrieve import tiny_models, write_audio


def _tags(tempo: str, bpm: float, genre: str = "jazz") -> dict:
    return {"moods": ["sad"], "genres": [genre], "instruments": ["piano"], "tempo": tempo,
            "bpm": bpm, "vocal": False, "vocal_score": 0.0}  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ecmg-data")
    music = root / "music"
    music.mkdir()
    for i, (bpm, pitch) in enumerate([(90, 220), (100, 330), (150, 440), (170, 550)]):
        write_audio(music / f"p{i}.wav", bpm, 4.0, pitch, seed=i)
    (root / "home").mkdir()
    report = indexing.add_paths(root / "home" / "library" / "full", tiny_models(), [music],
                                indexing.AddOptions(runtime="torch"))  # fmt: skip
    assert len(report.added) == 4
    outside = root / "outside.wav"  # a clip whose music is not in the library
    write_audio(outside, 95, 4.0, 660, seed=9)
    import soundfile as sf

    data, sr = sf.read(music / "p1.wav")  # p1 re-encoded: other bytes, other path
    sf.write(root / "p1_pcm24.wav", data, sr, subtype="PCM_24")
    lines = [
        {"audio": str(music / "p0.wav"), "description": "A slow sad piano piece.",
         "tags": _tags("slow", 90), "meta": {"key": "A minor"}, "video": "clip0.mp4"},
        {"audio": str(music / "p2.wav"), "description": "Fast jazz.", "tags": _tags("fast", 150)},
        {"audio": str(outside), "description": "Slow piano.", "tags": _tags("slow", 95)},
        {"audio": str(root / "p1_pcm24.wav"), "description": "Slow jazz piano.",
         "tags": _tags("slow", 100)},
    ]  # fmt: skip
    (root / "described.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def test_records_reference_other_pieces_with_stored_embeddings(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    monkeypatch.setenv("VMB_HOME", str(home / "home"))
    out = home / "records.jsonl"
    code = main(["dataset", "ecmg", str(home / "described.jsonl"), "--out", str(out),
                 "--model-dir", str(tiny_models()), "--json"])  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["written"] == 4
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    with MusicLibrary.open(home / "home" / "library" / "full") as lib:
        p1 = lib.find(str(home / "music" / "p1.wav"))
        assert p1 is not None
        for row in rows:
            own = lib.find(row["audio"]) or (p1 if "pcm24" in row["audio"] else None)
            meta = row["meta"]
            assert meta["own_piece"] == (own.piece_id if own else None)
            assert row["reference"] != row["audio"]
            assert own is None or own.piece_id not in (meta["broad"], meta["targeted"])
            stored = lib.audio_embedding(meta["targeted"])
            assert np.allclose(row["targeted_embedding"], stored, atol=1e-6)
            facet, value = meta["partition"].split(":")
            assert value in lib.piece(meta["targeted"]).tags or facet == "tempo"
    # the slow clips' only other slow piece is the other one; tempo is named with its BPM
    assert rows[0]["attribute"].startswith("tempo: slow (90 BPM); genre: jazz; mood: sad")
    assert "instruments: piano" in rows[0]["attribute"] and "key: A minor" in rows[0]["attribute"]
    assert rows[2]["meta"]["own_piece"] is None  # embedded with CLAP, not found in the library
    # the PCM_24 re-encode of p1 is found by content and never references p1
    assert rows[3]["meta"]["own_piece"] == p1.piece_id
    assert p1.piece_id not in (rows[3]["meta"]["broad"], rows[3]["meta"]["targeted"])
    assert rows[0]["meta"]["video"] == "clip0.mp4" and rows[1]["meta"]["video"] is None
    records = read_records(out, TINY_CONFIG.joint_dim)  # what `vmb train ecmg` reads
    assert len(records) == 4 and len(records[0].embedding) == TINY_CONFIG.joint_dim


def test_a_clip_with_nothing_else_to_reference_is_reported(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.train.ecmg_data import ReferenceFinder, build_ecmg_records

    lonely = tmp_path / "lib"
    indexing.add_paths(lonely, tiny_models(), [home / "music" / "p0.wav"],
                       indexing.AddOptions(runtime="torch"))  # fmt: skip
    manifest = tmp_path / "d.jsonl"
    line = {
        "audio": str(home / "music" / "p0.wav"),
        "description": "x y",
        "tags": _tags("slow", 90),
    }
    manifest.write_text(json.dumps(line) + "\n")
    with MusicLibrary.open(lonely) as lib:
        finder = ReferenceFinder(lib, clap=None)
        with pytest.raises(InvalidRequest, match="no piece besides the clip's own music"):
            build_ecmg_records(manifest, tmp_path / "o.jsonl", finder)
        report = build_ecmg_records(manifest, tmp_path / "o.jsonl", finder, on_error="skip")
    assert report.written == 0 and len(report.skipped) == 1 and "d.jsonl:1:" in report.skipped[0]
