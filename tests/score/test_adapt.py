"""`adapt`: a track made exactly S seconds long by leaving out or repeating whole bars.

Everything is measured on the written audio against a synthetic band track whose bar lines,
tempo and ending are known (tests/support/music.py): the exact length, the tempo, that each
splice joins two real downbeats one bar after the previous downbeat (no stumble), that the
music after a splice and the track's ending are the source's own samples, and that no splice
steps further than the music's own 99.9th percentile sample step (no click).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.errors import InvalidRequest
from engine.config import settings_from_dict
from engine.eval.tempo import estimate_tempo
from engine.retrieve.dsp import to_analysis_rate
from engine.score.adapt import adapt_track, parse_adapt_params
from support.music import Track, synth_track

SHORTER = (23.9, 17.3)
LONGER = (41.0, 75.5)


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> Track:
    return synth_track(tmp_path_factory.mktemp("adapt") / "band.wav", bpm=112.0, body_bars=8)


@pytest.fixture(scope="module")
def adapted(track: Track, tmp_path_factory: pytest.TempPathFactory) -> dict[float, dict]:
    out = tmp_path_factory.mktemp("adapted")
    settings = settings_from_dict(out, {})
    results = {}
    for target in SHORTER + LONGER:
        spec = parse_adapt_params(
            {
                "track": str(track.path),
                "duration_s": target,
                "name": f"t{target:g}".replace(".", "_"),
            },
            settings,
        )
        results[target] = adapt_track(spec, out, lambda *a: None)
    return results


def _bpm(audio: np.ndarray, sr: int) -> float:
    return estimate_tempo(to_analysis_rate(audio, sr), 22050).bpm


def _matches(out: np.ndarray, at: int, src: np.ndarray, near: int, n: int, slack: int) -> bool:
    """Whether out[at:at+n] is the source's own samples starting within `slack` of `near`."""
    seg = out[at : at + n]
    return any(np.array_equal(seg, src[near + d : near + d + n]) for d in range(-slack, slack + 1))


@pytest.mark.parametrize("target", SHORTER + LONGER)
def test_exact_length_same_tempo_and_own_ending(
    track: Track, adapted: dict[float, dict], target: float
) -> None:
    r = adapted[target]
    src, sr = sf.read(track.path, dtype="float32")
    out, out_sr = sf.read(r["audio"], dtype="float32")
    assert out_sr == sr and out.shape[1] == src.shape[1] == r["channels"]
    assert out.shape[0] == round(target * sr) == r["length_samples"]
    assert r["length_error_samples"] == 0
    before, after = _bpm(src, sr), _bpm(out, sr)
    assert abs(before - track.bpm) / track.bpm < 0.01
    assert abs(after - before) / before < 0.01
    assert abs(r["tempo"]["after_bpm"] - after) < 0.05  # the result's figure is measured too
    # the ending: the final bar and its ring-out (and one bar before) are the source's samples
    tail = round((track.ring_s + track.bar_s) * sr)
    assert np.array_equal(out[-tail:], src[-tail:])
    assert abs(r["ending"]["final_downbeat_output_s"] - (target - track.ring_s)) < 0.005
    if target == 23.9:  # room to leave bars out of the body: the last phrase stays whole
        phrase = round((track.ring_s + 4 * track.bar_s) * sr)
        assert np.array_equal(out[-phrase:], src[-phrase:])
    assert r["backend"] == "adapt" and r["weights"] == "none"


@pytest.mark.parametrize("target", SHORTER + LONGER)
def test_edits_are_whole_bars_on_downbeats_without_clicks(
    track: Track, adapted: dict[float, dict], target: float
) -> None:
    r = adapted[target]
    src, sr = sf.read(track.path, dtype="float32")
    out, _ = sf.read(r["audio"], dtype="float32")
    edits = r["edits"]
    assert edits, "a target a bar or more away from the track's length needs an edit"
    kind = "remove" if target < track.duration_s else "repeat"
    assert {e["kind"] for e in edits} == {kind}
    bar, n_src = track.bar_s, src.shape[0]
    p999 = np.percentile(np.abs(np.diff(src, axis=0)).max(axis=1), 99.9)
    ms = round(0.002 * sr)
    for e in edits:
        # both sides of the jump are bar lines of the track (within a few ms)
        for t, bar_no in ((e["source_start_s"], min(e["from_bar"], e["to_bar"])),
                          (e["source_end_s"], max(e["from_bar"], e["to_bar"]))):  # fmt: skip
            assert abs(t - track.downbeat_s(bar_no)) < 0.004, e
        assert abs((e["source_end_s"] - e["source_start_s"]) - e["bars"] * bar) < 0.004
        # after the splice: the in-bar's downbeat lands at output_s, the source's own samples
        at = round(e["output_s"] * sr)
        near = round(track.downbeat_s(e["to_bar"]) * sr)
        assert _matches(out, at - ms, src, near - ms, round(0.5 * sr), 3 * ms)
        # before it: the bar before the out-bar's downbeat plays whole, one bar earlier
        back = round((e["output_s"] - bar) * sr)
        near = round((track.downbeat_s(e["from_bar"]) - bar) * sr)
        if back - ms >= 0 and near - ms >= 0:
            assert _matches(out, back, src, near, round((bar - 0.08) * sr), 3 * ms)
        # the splice itself: no sample step above the music's own 99.9th percentile
        lo, hi = at - round(0.06 * sr), at - round(0.005 * sr)
        step = np.abs(np.diff(out[lo:hi], axis=0)).max()
        assert step <= p999, (e, step, p999)
        assert e["step_ratio"] <= 1.0
    bars = sum(e["bars"] for e in edits)
    music = n_src / sr + (bars if kind == "repeat" else -bars) * bar
    head = r["head"]
    assert abs(music - head["trimmed_s"] + head["silence_s"] - target) < 0.003
    assert head["silence_s"] < bar  # the start absorbs less than a bar


def test_phrases_and_intro_stay_whole_where_they_can(adapted: dict[float, dict]) -> None:
    for target in (23.9, 41.0):
        for e in adapted[target]["edits"]:
            assert min(e["from_bar"], e["to_bar"]) >= 4, e  # the 4-bar intro plays whole
    for e in adapted[75.5]["edits"]:  # long repeats loop whole phrases
        assert e["bars"] % 4 == 0 or e is adapted[75.5]["edits"][-1], e


def test_no_edit_when_the_track_already_fits(track: Track, tmp_path: Path) -> None:
    settings = settings_from_dict(tmp_path, {})
    spec = parse_adapt_params({"track": str(track.path), "duration_s": track.duration_s - 0.1},
                              settings)  # fmt: skip
    r = adapt_track(spec, tmp_path, lambda *a: None)
    assert r["edits"] == [] and r["length_error_samples"] == 0
    assert r["head"] == {
        "trimmed_s": pytest.approx(0.1, abs=1e-4),
        "silence_s": 0.0,
        "enters_on_beat": False,
    }  # fmt: skip  (leading silence trimmed)


def test_short_targets_backtime_or_say_why(track: Track, tmp_path: Path) -> None:
    settings = settings_from_dict(tmp_path, {})
    spec = parse_adapt_params({"track": str(track.path), "duration_s": 3.2}, settings)
    r = adapt_track(spec, tmp_path, lambda *a: None)
    assert r["length_error_samples"] == 0 and r["edits"] == []
    assert any("leaving out the intro" in n for n in r["notes"])
    src, sr = sf.read(track.path, dtype="float32")
    out, _ = sf.read(r["audio"], dtype="float32")
    tail = round(track.ring_s * sr)
    assert np.array_equal(out[-tail:], src[-tail:])
    spec = parse_adapt_params({"track": str(track.path), "duration_s": 2.5}, settings)
    with pytest.raises(InvalidRequest, match="shorter than the track's own ending"):
        adapt_track(spec, tmp_path, lambda *a: None)


def test_rate_channels_and_format_are_the_tracks(track: Track, tmp_path: Path) -> None:
    """A mono 48 kHz FLAC and an MP3 come back at their own rate and channel count."""
    from scipy.signal import resample_poly

    src, sr = sf.read(track.path, dtype="float32")
    mono = resample_poly(src.mean(axis=1), 160, 147).astype(np.float32)
    flac, mp3 = tmp_path / "mono.flac", tmp_path / "band.mp3"
    sf.write(flac, mono, 48000, subtype="PCM_16")
    sf.write(mp3, src, sr, format="MP3")
    settings = settings_from_dict(tmp_path, {})
    for path, rate, channels in ((flac, 48000, 1), (mp3, sr, 2)):
        spec = parse_adapt_params({"track": str(path), "duration_s": 20.0}, settings)
        r = adapt_track(spec, tmp_path / path.suffix[1:], lambda *a: None)
        info = sf.info(r["audio"])
        assert (info.samplerate, info.channels, info.frames) == (rate, channels, 20 * rate)
        assert info.format == "WAV" and abs(r["tempo"]["change_pct"]) < 1.0


def test_no_beat_and_bad_requests_are_clear(tmp_path: Path) -> None:
    settings = settings_from_dict(tmp_path, {})
    sr = 22050
    t = np.arange(12 * sr) / sr
    drone = tmp_path / "drone.wav"
    sf.write(drone, 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.2 * np.sin(0.3 * t)), sr)
    noise = tmp_path / "noise.wav"
    sf.write(noise, 0.1 * np.random.default_rng(1).standard_normal(t.size), sr)
    for path in (drone, noise):
        spec = parse_adapt_params({"track": str(path), "duration_s": 8.0}, settings)
        with pytest.raises(InvalidRequest, match="no steady beat"):
            adapt_track(spec, tmp_path, lambda *a: None)
    assert not list(tmp_path.glob("*adapted*")), "a failed adapt leaves no file"
    text = tmp_path / "notes.txt"
    text.write_text("not music")
    cases = [
        ({"track": str(tmp_path / "gone.wav"), "duration_s": 5}, InvalidRequest, "not found"),
        ({"track": str(drone)}, InvalidRequest, "exactly one of 'duration_s'"),
        ({"track": str(drone), "duration_s": 5, "clip": str(drone)}, InvalidRequest, "exactly"),
        ({"track": str(drone), "duration_s": 0}, InvalidRequest, "must be positive"),
        ({"track": str(drone), "duration_s": 121}, InvalidRequest, "over 10x the track"),
        ({"track": str(drone), "duration_s": 5000}, InvalidRequest, "pipeline.max_cue_s"),
        ({"track": str(drone), "duration_s": 5, "speed": 2}, InvalidRequest, "speed"),
        ({"track": str(drone), "duration_s": 5, "name": "a/b"}, InvalidRequest, "'name'"),
        (
            {"track": str(drone), "duration_s": 5, "position_s": float("inf")},
            InvalidRequest,
            "'position_s'",
        ),
        ({"track": str(drone), "duration_s": float("nan")}, InvalidRequest, "finite"),
        ({"track": str(text), "duration_s": 5}, InvalidRequest, "not a readable media file"),
        ({"track": str(drone), "clip": str(text)}, InvalidRequest, "not a readable media file"),
    ]
    for params, error, words in cases:
        with pytest.raises(error, match=words):
            parse_adapt_params(params, settings)


def test_three_four_bars_are_found_and_kept(tmp_path: Path) -> None:
    """A waltz: bars of three beats, cut and repeated as such."""
    from engine.score.bars import analyse

    waltz = synth_track(tmp_path / "waltz.wav", bpm=96.0, beats_per_bar=3, body_bars=12)
    src, sr = sf.read(waltz.path, dtype="float32")
    bars = analyse(src, sr)
    assert bars.beats_per_bar == 3 and abs(bars.bpm - 96.0) < 0.5
    for j in range(waltz.bars + 1):
        assert np.min(np.abs(bars.downbeats_s - waltz.downbeat_s(j))) < 0.005
    spec = parse_adapt_params({"track": str(waltz.path), "duration_s": 52.0},
                              settings_from_dict(tmp_path, {}))  # fmt: skip
    r = adapt_track(spec, tmp_path, lambda *a: None)
    assert r["length_error_samples"] == 0 and r["tempo"]["beats_per_bar"] == 3
    for e in r["edits"]:
        assert abs((e["source_end_s"] - e["source_start_s"]) - e["bars"] * waltz.bar_s) < 0.004
        assert abs(e["source_start_s"] - waltz.downbeat_s(min(e["from_bar"], e["to_bar"]))) < 0.005


def test_every_plan_adds_or_removes_exactly_its_bars() -> None:
    """The planner's runs and jumps agree with each other and with the bar count (a grid of
    24 bars of 1 s each, 0.5 s before the first downbeat, 2 s of ring-out)."""
    from engine.score.adapt_plan import Grid, music_length, removals, repeats

    rate = 1000
    downbeats = 500 + 1000 * np.arange(24)
    grid = Grid(downbeats=downbeats, beats=500 + 250 * np.arange(96), final_bar=22,
                phrase_offset=0, distances=np.zeros((24, 24)), n_samples=24_500, rate=rate,
                lead=0, guard=20, fade=30)  # fmt: skip
    for k in (1, 3, 4, 8, 13, 40, 77):
        plans = repeats(grid, k) + (removals(grid, k) if k < 22 else [])
        assert plans
        for _, plan in plans:
            assert len(plan.runs) == len(plan.jumps) + 1
            sign = 1 if plan.jumps[0].kind == "repeat" else -1
            assert music_length(grid, plan) == grid.n_samples + sign * k * 1000
            assert sum(j.bars for j in plan.jumps) == k
            for i, jump in enumerate(plan.jumps):
                assert (plan.runs[i][1], plan.runs[i + 1][0]) == (jump.out_bar, jump.in_bar)


AMEN = Path("/usr/share/sonic-pi/samples/loop_amen_full.flac")


@pytest.mark.skipif(not AMEN.is_file(), reason="needs Debian's sonic-pi-samples (CC0)")
def test_a_recorded_drum_loop_loops_and_shortens(tmp_path: Path) -> None:
    """A real recording (the Amen break, 4 bars at ~140 BPM, FLAC): played longer by whole
    bars and shorter by one, at its own tempo, without a click."""
    settings = settings_from_dict(tmp_path, {})
    src, sr = sf.read(AMEN, dtype="float32")
    p999 = np.percentile(np.abs(np.diff(src, axis=0)).max(axis=1), 99.9)
    for target in (18.5, 4.1):
        spec = parse_adapt_params({"track": str(AMEN), "duration_s": target}, settings)
        r = adapt_track(spec, tmp_path / str(target), lambda *a: None)
        out, _ = sf.read(r["audio"], dtype="float32")
        assert out.shape == (round(target * sr), src.shape[1])
        assert abs(_bpm(out, sr) - _bpm(src, sr)) / _bpm(src, sr) < 0.01
        assert r["edits"] and r["tempo"]["beats_per_bar"] == 4
        assert abs(r["tempo"]["grid_bpm"] - 140) < 2
        for e in r["edits"]:
            at = round(e["output_s"] * sr)
            step = np.abs(np.diff(out[at - round(0.06 * sr) : at - round(0.005 * sr)], axis=0))
            assert step.max() <= p999, e


def test_a_track_that_speeds_up_is_cut_on_its_own_beats(tmp_path: Path) -> None:
    """100 -> 105 BPM over 16 bars: no straight grid fits, the tracked beats are followed."""
    from engine.score.bars import analyse

    track = synth_track(tmp_path / "push.wav", bpm=100.0, body_bars=12, drift=0.05)
    src, sr = sf.read(track.path, dtype="float32")
    bars = analyse(src, sr)
    assert not bars.steady
    true = np.array([track.downbeat_s(j) for j in range(track.bars + 1)])
    assert max(np.min(np.abs(bars.downbeats_s - t)) for t in true) < 0.008
    p999 = np.percentile(np.abs(np.diff(src, axis=0)).max(axis=1), 99.9)
    settings = settings_from_dict(tmp_path, {})
    for target in (25.0, 60.0):
        spec = parse_adapt_params({"track": str(track.path), "duration_s": target}, settings)
        r = adapt_track(spec, tmp_path / str(target), lambda *a: None)
        out, _ = sf.read(r["audio"], dtype="float32")
        assert out.shape[0] == round(target * sr) and r["tempo"]["grid"] == "tracked"
        for e in r["edits"]:
            for t in (e["source_start_s"], e["source_end_s"]):
                assert np.min(np.abs(true - t)) < 0.008, e
            at = round(e["output_s"] * sr)
            step = np.abs(np.diff(out[at - round(0.06 * sr) : at - round(0.005 * sr)], axis=0))
            assert step.max() <= p999, e


def test_a_fast_draft_track_keeps_its_real_bars(tmp_path: Path) -> None:
    """165 BPM funk (a syncopated dotted-quarter pulse the tempo estimator alone reads as 110,
    which once made every "bar" three real ones): the bar found is the MIDI's bar, the head
    adds at most one beat of silence, and a short output says its tempo is rough."""
    import mido

    from engine.score.cue import run_cue
    from engine.score.cue_spec import parse_cue_params

    settings = settings_from_dict(tmp_path, {})
    spec = parse_cue_params(
        {"text": "funky groove", "duration_s": 24.0, "backend": "draft",
         "knobs": {"genre": "funk", "tempo": 165}, "duck": False},
        settings,
    )  # fmt: skip
    cue = run_cue(spec, settings, 11, tmp_path / "cue", lambda *a: None)[0]
    tracks = mido.MidiFile(str(cue.midi)).tracks
    bar = 4 * next(m.tempo for t in tracks for m in t if m.type == "set_tempo") / 1e6
    for target in (15.5, 3.0):
        params = {"track": str(cue.audio), "duration_s": target, "name": f"t{int(target)}"}
        r = adapt_track(parse_adapt_params(params, settings), tmp_path, lambda *a: None)
        assert abs(r["tempo"]["bar_s"] / bar - 1.0) < 0.01, r["tempo"]
        assert abs(r["tempo"]["before_bpm"] / (240.0 / bar) - 1.0) < 0.01, r["tempo"]
        assert r["head"]["silence_s"] <= bar / 4 + 0.01 and r["length_error_samples"] == 0
        for e in r["edits"]:
            assert abs((e["source_end_s"] - e["source_start_s"]) - e["bars"] * bar) < 0.01
    assert any("too short to measure its tempo" in n for n in r["notes"]), r["notes"]
