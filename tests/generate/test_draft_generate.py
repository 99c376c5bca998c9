"""Rendered draft cues: tempo, exact length, sync to cuts, loudness, determinism, errors.

Renders with the real FluidSynth CLI and FluidR3_GM (MIT); skipped with a reason where they are
not installed. Cues are rendered once per module and shared.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from bridge.errors import ConfigError, InvalidRequest, JobCancelled, MissingDependency
from engine.config import DraftConfig
from engine.eval.tempo import estimate_tempo, onset_times
from engine.generate.draft import render as draft_render
from engine.generate.draft import style as st
from engine.generate.draft.generator import DraftGenerator
from engine.generate.loudness import integrated_loudness, true_peak_dbtp
from engine.types import (
    Attributes,
    GeneratedAudio,
    GenerationRequest,
    MusicDescription,
    Retrieval,
)

NO_RETRIEVAL = Retrieval(backend="draft", weights="none")  # no retriever ran

HAVE_RENDERER = shutil.which("fluidsynth") is not None and any(
    Path(p).is_file() for p in draft_render.SOUNDFONT_CANDIDATES
)
needs_renderer = pytest.mark.skipif(
    not HAVE_RENDERER,
    reason="needs the fluidsynth CLI and a GM soundfont (apt-get install fluidsynth "
    "fluid-soundfont-gm)",
)


def request(
    out: Path,
    *,
    mood: str = "happy",
    genre: str = "pop",
    tempo: str = "medium",
    energy: str = "medium",
    instruments: tuple[str, ...] = (),
    bpm: float | None = None,
    duration: float = 16.0,
    seed: int = 1,
    cuts: tuple[float, ...] = (),
    name: str = "cue",
) -> GenerationRequest:
    attrs = Attributes(mood=mood, genre=genre, tempo_bucket=tempo, energy=energy,
                       instruments=instruments, bpm=bpm)  # fmt: skip
    desc = MusicDescription(text="t", attributes=attrs, source="text", backend="draft",
                            weights="none")  # fmt: skip
    return GenerationRequest(description=desc, retrieval=NO_RETRIEVAL, duration_s=duration,
                             seed=seed, out_dir=out, cut_times_s=cuts, name=name)  # fmt: skip


TEMPO_CUES = {
    "pop-slow": dict(genre="pop", tempo="slow", mood="happy"),
    "electronic-medium": dict(genre="electronic", tempo="medium", mood="uplifting"),
    "rock-fast": dict(genre="rock", tempo="fast", mood="powerful", energy="high"),
    "jazz-90": dict(genre="jazz", tempo="slow", bpm=90.0, mood="calm", energy="low"),
    "hiphop-128": dict(genre="hip-hop", tempo="medium", bpm=128.0, mood="dark"),
    "cinematic-150": dict(genre="cinematic", tempo="fast", bpm=150.0, mood="epic"),
    "classical-slow": dict(genre="classical", tempo="slow", mood="romantic", energy="low",
                           instruments=("piano", "strings")),
}  # fmt: skip
CUT_CUES = {
    "ambient-cuts": dict(genre="ambient", mood="calm", energy="low", duration=20.0,
                         cuts=(0.4, 4.37, 9.81, 10.5, 15.02, 19.4)),
    "pop-cuts": dict(genre="pop", mood="uplifting", energy="high", duration=20.0,
                     cuts=(3.33, 8.9, 13.07, 17.6)),
}  # fmt: skip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, tuple[GeneratedAudio, np.ndarray]]:
    if not HAVE_RENDERER:
        pytest.skip("needs fluidsynth and a GM soundfont")
    out = tmp_path_factory.mktemp("draft")
    gen = DraftGenerator(DraftConfig())
    cues = {}
    for name, kw in {**TEMPO_CUES, **CUT_CUES}.items():
        res = gen.generate(request(out, name=name, **kw))
        audio, sr = sf.read(str(res.audio_path), dtype="float64", always_2d=True)
        assert sr == 44100
        cues[name] = (res, audio)
    return cues


@needs_renderer
@pytest.mark.parametrize("name", list(TEMPO_CUES))
def test_tempo_is_what_was_asked(rendered, name):
    res, audio = rendered[name]
    asked = TEMPO_CUES[name].get("bpm")
    if asked is None:  # issue 19: drawn inside the bucket by mood and genre, not one default
        lo, hi = st.BUCKET_TEMPO[TEMPO_CUES[name]["tempo"]]
        asked = res.extra["bpm"]
        assert lo <= asked <= hi and res.extra["tempo_source"] == "mood+genre"
    assert res.extra["bpm"] == asked
    est = estimate_tempo(audio, res.sample_rate)  # no bucket hint: what a listener hears
    if asked < 80 and "bpm" not in TEMPO_CUES[name]:
        # a drawn ballad tempo (73 BPM with running eighths) is heard in eighths as often as
        # in quarters: the estimate may be the double, never anything else
        assert min(abs(est.bpm / asked - k) for k in (1.0, 2.0)) <= 0.03, est
        return
    if asked > 160 and "bpm" not in TEMPO_CUES[name]:
        # a drawn rock tempo fitted to its form (161 -> 171.6 BPM) is heard in half time as
        # often as in quarters: the estimate may be the half, never anything else
        assert min(abs(est.bpm / asked - k) for k in (1.0, 0.5)) <= 0.03, est
        return
    assert est.bpm == pytest.approx(asked, rel=0.03), est


@needs_renderer
def test_every_cue_is_sample_exact_stereo_and_loudness_normalised(rendered):
    for name, (res, audio) in rendered.items():
        kw = {**TEMPO_CUES, **CUT_CUES}[name]
        n = round(kw.get("duration", 16.0) * 44100)
        assert res.num_samples == n and audio.shape == (n, 2), name
        assert res.backend == "draft" and res.weights == "none"
        assert res.audio_path.name == f"{name}.wav" and res.midi_path.name == f"{name}.mid"
        assert integrated_loudness(audio, 44100) == pytest.approx(-16.0, abs=1.0), name
        assert true_peak_dbtp(audio) <= -1.0 + 0.1, name
        assert np.abs(audio[-10:]).max() < 1e-3, name  # the end is faded, no click
        assert np.abs(audio[: 44100 * 2]).max() > 1e-3, name  # music from the start


@needs_renderer
@pytest.mark.parametrize("name", list(CUT_CUES))
def test_an_accent_lands_on_every_cut(rendered, name):
    res, audio = rendered[name]
    times, strengths = onset_times(audio, 44100)
    typical = np.median(strengths)
    for cut in CUT_CUES[name]["cuts"]:
        near = np.abs(times - cut) <= 0.05
        assert near.any(), f"no onset within 50 ms of the cut at {cut} s"
        assert strengths[near].max() >= 2.0 * typical, f"weak accent at {cut} s"
    hits = sorted(h["time_s"] for h in res.extra["cuts"])
    np.testing.assert_allclose(hits, sorted(CUT_CUES[name]["cuts"]), atol=0.002)


@needs_renderer
def test_midi_matches_the_arrangement(rendered):
    res, _ = rendered["classical-slow"]
    pm = pretty_midi.PrettyMIDI(str(res.midi_path))
    programs = {p["name"]: p for p in res.extra["programs"]}
    assert programs["piano"]["program"] == 0 and programs["strings"]["program"] == 48
    assert {i.program for i in pm.instruments if not i.is_drum} >= {0, 48}
    assert pm.get_end_time() == pytest.approx(16.0, abs=0.3)
    res, _ = rendered["rock-fast"]
    pm = pretty_midi.PrettyMIDI(str(res.midi_path))
    drums = [i for i in pm.instruments if i.is_drum]
    assert drums and drums[0].notes  # drums on channel 10
    assert abs(pm.get_tempo_changes()[1][0] - res.extra["bpm"]) < 0.01


@needs_renderer
def test_same_seed_same_bytes_other_seed_other_music(tmp_path):
    gen = DraftGenerator()
    kw = dict(genre="lofi", duration=6.0, cuts=(2.5,))
    a = gen.generate(request(tmp_path / "a", seed=42, **kw))
    b = gen.generate(request(tmp_path / "b", seed=42, **kw))
    c = gen.generate(request(tmp_path / "c", seed=43, **kw))
    assert a.audio_path.read_bytes() == b.audio_path.read_bytes()
    assert a.midi_path.read_bytes() == b.midi_path.read_bytes()
    assert a.audio_path.read_bytes() != c.audio_path.read_bytes()
    assert a.midi_path.read_bytes() != c.midi_path.read_bytes()


@needs_renderer
@pytest.mark.parametrize("duration", [0.37, 2.5, 7.777])
def test_short_and_odd_lengths_are_exact(tmp_path, duration):
    res = DraftGenerator().generate(request(tmp_path, duration=duration, tempo="fast"))
    info = sf.info(str(res.audio_path))
    assert info.frames == round(duration * 44100) and info.channels == 2
    assert info.samplerate == 44100


@needs_renderer
def test_progress_reports_and_cancel_leaves_nothing(tmp_path):
    calls = []
    DraftGenerator().generate(request(tmp_path / "ok", duration=3.0), lambda *a: calls.append(a))
    assert [c[0] for c in calls] == ["generate"] * len(calls) and len(calls) >= 3
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)

    def cancel(stage, step, of):
        if step == 2:
            raise JobCancelled("cancelled")

    out = tmp_path / "cancel"
    with pytest.raises(JobCancelled):
        DraftGenerator().generate(request(out, duration=3.0), cancel)
    assert list(out.iterdir()) == []


def test_missing_soundfont_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="apt-get install fluid-soundfont-gm"):
        DraftGenerator(DraftConfig(soundfont=str(tmp_path / "none.sf2"))).generate(
            request(tmp_path / "out", duration=2.0)
        )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    with pytest.raises(MissingDependency, match="apt-get install fluid-soundfont-gm"):
        draft_render.find_soundfont("", candidates=(str(tmp_path / "missing.sf2"),))
    gpl = tmp_path / "TimGM6mb.sf2"
    gpl.write_bytes(b"RIFF")
    with pytest.raises(ConfigError, match="GPL"):
        draft_render.find_soundfont(str(gpl))
    with pytest.raises(MissingDependency):  # a GPL soundfont is never picked automatically
        draft_render.find_soundfont("", candidates=(str(gpl),))


@pytest.mark.parametrize(
    ("change", "message"),
    [(dict(duration=0.0), "positive"), (dict(duration=-3.0), "positive"),
     (dict(duration=math.nan), "positive"), (dict(duration=61.0), "maximum"),
     (dict(bpm=500.0), "impossible"), (dict(bpm=10.0), "impossible"),
     (dict(name="../escape"), "output name"), (dict(genre="polka"), "genre")],
)  # fmt: skip
def test_bad_requests_are_refused_before_writing(tmp_path, change, message):
    out = tmp_path / "out"
    with pytest.raises(InvalidRequest, match=message):
        DraftGenerator(max_duration_s=60.0).generate(request(out, **change))
    assert not out.exists() or list(out.iterdir()) == []


@needs_renderer
@pytest.mark.skipif(
    not Path("/usr/share/sonic-pi/samples/loop_breakbeat.flac").is_file(),
    reason="needs Debian's sonic-pi-samples (CC0): apt-get install sonic-pi-samples",
)
def test_optional_cc0_loop_layer(tmp_path):
    gen = DraftGenerator(DraftConfig(layer_loops=True))
    res = gen.generate(request(tmp_path, genre="lofi", tempo="slow", duration=12.0))
    loops = res.extra["loops"]
    assert loops["loop"]["sample"].startswith("loop_") and "CC0" in loops["loop"]["licence"]
    audio, _ = sf.read(str(res.audio_path), always_2d=True)
    assert audio.shape == (12 * 44100, 2)
    assert integrated_loudness(audio, 44100) == pytest.approx(-16.0, abs=1.0)
    plain = DraftGenerator().generate(request(tmp_path / "plain", genre="lofi", tempo="slow",
                                              duration=12.0))  # fmt: skip
    assert "loops" not in plain.extra
