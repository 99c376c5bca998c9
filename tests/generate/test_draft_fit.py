"""Music that fits the cut, measured on the rendered audio: cues that join without a dip,
endings on the last frame, seamless loops (with `smpl` loop points read back with struct, not
with the writer) and per-part stems that sum to the mix.
"""

from __future__ import annotations

import math
import shutil
import struct
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from bridge.errors import InvalidRequest
from engine.eval.boundary import boundary_dip, last_onset_s, loop_wrap
from engine.generate.draft import render as draft_render
from engine.generate.draft.generator import DraftGenerator
from engine.types import (
    Attributes,
    GeneratedAudio,
    GenerationRequest,
    MusicDescription,
    Retrieval,
)

NO_RETRIEVAL = Retrieval(backend="draft", weights="none")  # no retriever ran

pytestmark = pytest.mark.skipif(
    shutil.which("fluidsynth") is None
    or not any(Path(p).is_file() for p in draft_render.SOUNDFONT_CANDIDATES),
    reason="needs the fluidsynth CLI and a GM soundfont (apt-get install fluidsynth "
    "fluid-soundfont-gm)",
)
FPS = 25.0


def _gen(
    out: Path,
    *,
    genre: str = "pop",
    energy: str = "medium",
    bpm: float | None = None,
    duration: float = 8.0,
    seed: int = 1,
    cuts: tuple[float, ...] = (),
    **fields,
) -> GeneratedAudio:
    attrs = Attributes(mood="happy", genre=genre, tempo_bucket="medium", energy=energy,
                       instruments=(), bpm=bpm)  # fmt: skip
    desc = MusicDescription(text="t", attributes=attrs, source="text", backend="draft",
                            weights="none")  # fmt: skip
    req = GenerationRequest(description=desc, retrieval=NO_RETRIEVAL, duration_s=duration,
                            seed=seed, out_dir=out, cut_times_s=cuts, **fields)  # fmt: skip
    return DraftGenerator().generate(req)


def _read(path: Path) -> tuple[np.ndarray, int]:
    audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
    return audio, sr


def _level_db(x: np.ndarray) -> float:
    return 10.0 * math.log10(float(np.mean(np.square(x))) + 1e-20)


def _join(first: GeneratedAudio, second: GeneratedAudio) -> tuple[np.ndarray, int, float]:
    a, sr = _read(first.audio_path)
    b, _ = _read(second.audio_path)
    return np.concatenate([a, b]), sr, len(a) / sr


def _carry(cue: GeneratedAudio) -> dict:
    x = cue.extra
    return {"bpm": x["bpm"], "key": x["key"], "mode": x["mode"], "carry": x["carry"]}


def test_joined_cues_have_no_dip_where_ringing_cues_do(tmp_path: Path) -> None:
    """Two cues of a continuous run placed end to end, as the soundtrack mix places them."""
    kw = {"genre": "pop", "energy": "high", "duration": 5.0, "bpm": 120.0}
    first = _gen(tmp_path / "a", ending="none", **kw)
    second = _gen(tmp_path / "b", continue_from=_carry(first), seed=2, **kw)
    mix, sr, cut = _join(first, second)
    joined = boundary_dip(mix, sr, cut)
    assert joined["dip_db"] > -10.0, joined
    # the old behaviour (every cue rings out and fades) is what the measure catches
    ringing = _gen(tmp_path / "c", ending="ring", **kw)
    mix, sr, cut = _join(ringing, second)
    assert boundary_dip(mix, sr, cut)["dip_db"] < -20.0
    # the second cue continued the first one's form (no new intro) and restated its motifs
    assert second.extra["sections"][0]["label"] != "intro"
    for label, motif in first.extra["carry"]["motifs"].items():
        assert second.extra["carry"]["motifs"][label] == motif


@pytest.mark.parametrize(("ending", "genre"), [("button", "pop"), ("cut", "cinematic")])
def test_final_downbeat_lands_on_the_last_frame(tmp_path: Path, ending: str, genre: str) -> None:
    cue = _gen(tmp_path, ending=ending, genre=genre, duration=7.3, cuts=(3.1,), frame_rate=FPS)
    audio, sr = _read(cue.audio_path)
    assert len(audio) == round(7.3 * sr)
    last_frame = len(audio) / sr - 1.0 / FPS
    onset = last_onset_s(audio, sr)
    assert abs(onset - last_frame) <= 1.0 / FPS, (onset, last_frame)
    # the hit is the music's loudest moment of its last half second, not a stray tick
    tail = audio[int((last_frame - 0.5) * sr) : int(last_frame * sr)]
    assert _level_db(audio[int(last_frame * sr) :]) > _level_db(tail)


def test_fade_fades_and_none_plays_into_the_end(tmp_path: Path) -> None:
    kw = {"genre": "pop", "energy": "high", "duration": 8.0}
    faded, sr = _read(_gen(tmp_path / "f", ending="fade", **kw).audio_path)
    assert _level_db(faded[-int(0.3 * sr) :]) < _level_db(faded[-int(4 * sr) : -int(3 * sr)]) - 20
    plain, sr = _read(_gen(tmp_path / "n", ending="none", **kw).audio_path)
    assert _level_db(plain[-int(0.1 * sr) :]) > _level_db(plain[-int(2 * sr) :]) - 10


def _smpl_loops(path: Path) -> list[tuple[int, ...]]:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    pos, loops = 12, []
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"smpl":
            n = struct.unpack("<I", data[pos + 8 + 28 : pos + 8 + 32])[0]
            for k in range(n):
                off = pos + 8 + 36 + 24 * k
                loops.append(struct.unpack("<6I", data[off : off + 24]))
        pos += 8 + size + (size % 2)
    return loops


def test_loop_is_whole_bars_and_wraps_seamlessly(tmp_path: Path) -> None:
    cue = _gen(tmp_path, loop=True, stems=True, genre="electronic", energy="high",
               bpm=120.0, duration=7.3)  # fmt: skip
    audio, sr = _read(cue.audio_path)
    assert len(audio) == round(8.0 * sr)  # 4 bars of 2 s: 7.3 s rounded to whole bars
    assert cue.extra["loop"]["bars"] == 4 and "rounded" in cue.extra["loop"]["note"]
    (loop,) = _smpl_loops(cue.audio_path)
    assert loop[1] == 0 and loop[2] == 0 and loop[3] == len(audio) - 1
    for stem in cue.extra["stems"].values():
        assert _smpl_loops(Path(stem)) == [loop]
    wrap = loop_wrap(audio, sr, bar_s=2.0)
    assert wrap["wrap_sample_step"] <= 1.5 * wrap["p999_sample_step"], wrap  # no click
    inner = wrap["bar_line_steps_db"]
    assert min(inner) - 3.0 <= wrap["wrap_step_db"] <= max(inner) + 3.0, wrap  # like a bar line
    assert abs(wrap["first_bar_db"] - wrap["last_bar_db"]) < 3.0, wrap  # no level jump
    mid = mido.MidiFile(str(cue.midi_path))
    markers = [(m.text, t) for t, m in _abs(mid.tracks[0]) if m.type == "marker"]
    assert ("loopStart", 0) in markers
    end = [t for text, t in markers if text == "loopEnd"]
    assert end == [round(4 * 4 * mid.ticks_per_beat)]


def _abs(track: mido.MidiTrack) -> list[tuple[int, mido.Message]]:
    now, out = 0, []
    for msg in track:
        now += msg.time
        out.append((now, msg))
    return out


def test_stems_sum_to_the_mix(tmp_path: Path) -> None:
    cue = _gen(tmp_path, stems=True, genre="pop", energy="high", duration=6.0, cuts=(2.5,))
    mix, sr = _read(cue.audio_path)
    stems = cue.extra["stems"]
    assert {"drums", "bass", "harmony", "melody"} <= set(stems)
    parts = []
    for name, path in stems.items():
        assert Path(path).name == f"cue-{name}.wav"
        audio, stem_sr = _read(Path(path))
        assert stem_sr == sr and audio.shape == mix.shape
        assert _level_db(audio) > -60.0, name
        parts.append(audio)
    err = _level_db(np.sum(parts, axis=0) - mix) - _level_db(mix)
    assert err < -50.0


def test_bad_endings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="unknown ending 'sting'.*ring, button"):
        _gen(tmp_path, ending="sting", duration=2.0)
    with pytest.raises(InvalidRequest, match="frame rate"):
        _gen(tmp_path, ending="cut", duration=2.0, frame_rate=0.0)
    assert not list(tmp_path.glob("*.wav"))


def test_the_loop_layer_is_a_stem_of_its_own(tmp_path: Path) -> None:
    from engine.config import DraftConfig
    from engine.generate.draft.loops import SAMPLES_DIR

    if not (SAMPLES_DIR / "loop_amen.flac").is_file():
        pytest.skip("needs Debian's sonic-pi-samples (CC0) for the loop layer")
    attrs = Attributes(mood="dark", genre="hip-hop", tempo_bucket="medium", energy="high",
                       instruments=())  # fmt: skip
    desc = MusicDescription(text="t", attributes=attrs, source="text", backend="draft",
                            weights="none")  # fmt: skip
    req = GenerationRequest(description=desc, retrieval=NO_RETRIEVAL, duration_s=8.0, seed=3,
                            out_dir=tmp_path, stems=True)  # fmt: skip
    cue = DraftGenerator(DraftConfig(layer_loops=True)).generate(req)
    mix, _ = _read(cue.audio_path)
    stems = cue.extra["stems"]
    assert "loops" in stems and "loops" in cue.extra
    layer, _ = _read(Path(stems["loops"]))
    assert _level_db(layer) > -50.0
    total = np.sum([_read(Path(p))[0] for p in stems.values()], axis=0)
    assert _level_db(total - mix) - _level_db(mix) < -50.0
