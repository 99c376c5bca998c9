"""A loop's and its stems' WAVs go through the same finishing as any cue: bext + iXML
provenance in every file, and the loop's `smpl` chunk kept through stamping and ducking.
Read back with tests/support/riff.py, not the writers' code."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.config import load_settings
from engine.score import bwf, wavchunks
from engine.score.cue import _duck, run_cue
from engine.score.cue_spec import parse_cue_params
from engine.types import no_progress
from support import riff


def _loop_points(path: Path) -> tuple[int, int]:
    body = riff.chunk(path, "smpl")
    n_loops = struct.unpack_from("<I", body, 28)[0]
    assert n_loops == 1
    _, kind, start, end, _, count = struct.unpack_from("<6I", body, 36)
    assert kind == 0 and count == 0  # forward, forever
    return start, end


def test_loop_and_stems_carry_provenance_and_keep_loop_points(
    draft_home: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    spec = parse_cue_params(
        {"text": "dark hip hop groove", "duration_s": 5.4, "loop": True, "stems": True,
         "knobs": {"tempo": "120"}, "project": "Night Walk", "position_s": 2.0},
        settings,
    )  # fmt: skip
    (cue,) = run_cue(spec, settings, 4, tmp_path, no_progress)
    n = cue.num_samples
    assert n == round(6.0 * 44100)  # 5.4 s at 120 BPM: three whole bars
    stems = {k: Path(v) for k, v in cue.extra["stems"].items()}
    assert {"drums", "bass"} <= set(stems)
    for path in (cue.audio, *stems.values()):
        names = [name for name, _ in riff.chunks(path)]
        assert names[0] == "bext" and names[-1] == "iXML" and "smpl" in names, (path, names)
        assert _loop_points(path) == (0, n - 1)
        assert riff.bext(path)["time_reference"] == 2 * 44100
        assert riff.ixml(path).findtext("PROJECT") == "Night Walk"
        assert sf.info(path).frames == n
    mix = riff.ixml(cue.audio).find("VMB_SCORE")
    assert mix is not None and mix.find("STEM") is None
    request = json.loads(mix.findtext("REQUEST") or "{}")
    assert request["loop"] is True and request["stems"] is True
    drums = riff.ixml(stems["drums"])
    assert drums.findtext("SCENE") == f"{cue.audio.stem}-drums"
    assert drums.find("VMB_SCORE/STEM") is not None
    assert drums.findtext("VMB_SCORE/STEM") == "drums"
    # the part's file says where it belongs but not the mix's loudness
    assert riff.bext(stems["drums"])["loudness"] == 0x7FFF
    assert riff.bext(cue.audio)["loudness"] != 0x7FFF
    # the recorded request makes the same loop again (`vmb generate --from`)
    assert bwf.read(stems["drums"])["vmb"]["request"]["loop"] is True


def test_ducking_a_loop_keeps_its_loop_points(tmp_path: Path) -> None:
    path = tmp_path / "loop.wav"
    sr, n = 8000, 16000
    sf.write(path, np.full((n, 2), 0.5, np.float32), sr, subtype="PCM_24")
    wavchunks.add_loop_points(path, sr, n)
    _duck(path, [(0.5, 1.0)])
    assert _loop_points(path) == (0, n - 1)
    audio, _ = sf.read(path, dtype="float32")
    assert len(audio) == n and audio[int(0.75 * sr), 0] < 0.4  # ducked under the speech
    assert wavchunks.read_chunk(path, b"smpl") == riff.chunk(path, "smpl")
    assert wavchunks.read_chunk(path, b"bext") is None
