"""Library embedding on a local Ray (Ray Data actors), the library written by this process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.retrieve.full import indexing
from engine.retrieve.full.library import MusicLibrary
from support.full_retrieve import tiny_models, write_audio


def test_add_on_local_ray_matches_local_executor(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    pytest.importorskip("pyarrow")  # Ray Data moves Arrow tables
    music = tmp_path / "music"
    music.mkdir()
    for i, bpm in enumerate((90, 120, 150, 170)):
        write_audio(music / f"{i}.wav", bpm, 5.0, 200.0 + 100 * i, seed=i)
    (music / "broken.flac").write_bytes(b"fLaC nope")
    opts = indexing.AddOptions(runtime="torch", batch_size=2, ray_concurrency=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = indexing.RayExecutor(tiny_models(), opts)
        remote = indexing.add_paths(
            tmp_path / "ray", tiny_models(), [music], opts, executor=executor
        )
    finally:
        ray.shutdown()
    local = indexing.add_paths(tmp_path / "local", tiny_models(), [music], opts)
    assert remote.executor == "ray" and sorted(remote.added) == sorted(local.added)
    assert [Path(p).name for p, _ in remote.skipped] == ["broken.flac"]
    with MusicLibrary.open(tmp_path / "ray") as a, MusicLibrary.open(tmp_path / "local") as b:
        ea = {r.piece_id: a.audio_embedding(r.piece_id) for r in a.pieces()}
        eb = {r.piece_id: b.audio_embedding(r.piece_id) for r in b.pieces()}
        assert ea.keys() == eb.keys()
        for pid in ea:
            assert np.allclose(ea[pid], eb[pid], atol=2e-3)
        assert {r.piece_id: r.tempo for r in a.pieces()} == {
            r.piece_id: r.tempo for r in b.pieces()
        }
