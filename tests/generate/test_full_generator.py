"""FullGenerator with tiny random weights written by the tiny builders: exact-length WAVs,
windowed continuation, references looped, and every failure typed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bridge.errors import InvalidRequest, JobCancelled, NumericalError, OutOfMemory, WeightsError
from engine import weights
from engine.config import Settings, settings_from_dict
from engine.generate.full.audio import Window, plan_windows
from engine.generate.full.availability import full_available
from engine.generate.full.generator import FullGenerator
from engine.types import (
    Attributes,
    GenerationRequest,
    MusicDescription,
    Reference,
    Retrieval,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    weights.write_tiny(out, ["sao-1.0", "t5-base", "vmb-ecmg"], seed=0)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("refs") / "short.wav"
    t = np.arange(int(0.4 * 22050)) / 22050  # shorter than any cue, another sample rate, mono
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 22050)
    return path


def _settings(home: Path, model_dir: Path, **generate: object) -> Settings:
    gen = {"steps": 4, "overlap_s": 0.5, **generate}
    return settings_from_dict(home, {"models": {"model_dir": str(model_dir)}, "generate": gen})


def _clap_dim() -> int:
    from engine.retrieve.full.encoders.clap import TINY_CONFIG

    return TINY_CONFIG.joint_dim  # the tiny vmb-ecmg is built for the tiny CLAP


def _emb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(_clap_dim()).astype(np.float32)


def _clap(ref: Reference) -> np.ndarray:
    return _emb(len(ref.piece_id))


def _request(
    out: Path,
    ref: Path,
    duration: float,
    seed: int = 7,
    sr: int = 44100,
    style: np.ndarray | None = None,
    attributes: Attributes | None = None,
    text: str = "A calm piano piece.",
) -> GenerationRequest:
    attrs = attributes or Attributes("calm", "classical", "slow", "low", ("piano",))
    description = MusicDescription(text, attrs, "text", "full", "random")
    retrieval = Retrieval(
        backend="full",
        weights="none",
        broad=(Reference("broad-1", "Broad", str(ref), 0.9),),
        targeted=(
            Reference("target-1", "Target", str(ref), 0.8, partition="tempo:slow", clap=style),
        ),
    )
    return GenerationRequest(
        description, retrieval, duration, seed, out, sample_rate=sr, name="cue"
    )


@pytest.fixture(scope="module")
def generator(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FullGenerator:
    home = tmp_path_factory.mktemp("home")
    return FullGenerator(_settings(home, model_dir, crop_to_cue=True), clap_embed=_clap)


def test_writes_a_wav_of_the_exact_length_labelled_random(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    events: list[tuple[str, int, int]] = []
    out = generator.generate(_request(tmp_path, reference, 1.3), lambda *e: events.append(e))
    audio, sr = sf.read(out.audio_path, always_2d=True)
    assert out.audio_path == tmp_path / "cue.wav"
    assert (sr, audio.shape) == (44100, (round(1.3 * 44100), 2)) and out.num_samples == 57330
    assert (out.backend, out.weights) == ("full", "random")
    assert out.extra["prompt"] == (
        "A calm piano piece. tempo: slow; genre: classical; mood: calm; energy: low; "
        "instruments: piano"
    )
    assert any("looped" in n for n in out.extra["notes"])  # 0.4 s reference, 1.3 s cue
    steps = [e for e in events if e[0] == "generate"]
    assert steps == [("generate", i, 4) for i in range(1, 5)]
    assert [p.name for p in tmp_path.iterdir() if p.name != "vmb-home"] == ["cue.wav"]


def test_long_cue_is_continued_window_by_window(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    window = generator.load().ecmg.sao.sample_size / 44100  # 2.97 s tiny window
    out = generator.generate(_request(tmp_path, reference, 2 * window + 0.5, sr=48000))
    audio, sr = sf.read(out.audio_path, always_2d=True)
    assert out.extra["windows"] == 3
    assert sr == 48000 and audio.shape == (round((2 * window + 0.5) * 48000), 2)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_plan_windows_cover_the_cue_with_overlaps() -> None:
    assert plan_windows(40, 64, 11, crop=True) == [Window(0, 0, 40, 0)]
    assert plan_windows(40, 64, 11, crop=False) == [Window(0, 0, 64, 0)]
    wins = plan_windows(200, 64, 11, crop=True)
    assert [w.start for w in wins] == [0, 53, 106, 159]
    assert wins[-1].start + wins[-1].length == 200 and wins[-1].length > 11
    assert all(w.known == 11 for w in wins[1:])


def test_variations_run_in_one_batch(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    request = _request(tmp_path, reference, 0.8)
    both = generator.generate_variations(request, [11, 12])
    assert [o.audio_path.name for o in both] == ["cue-11.wav", "cue-12.wav"]
    single = generator.generate_variations(request, [12])[0]
    a, _ = sf.read(both[1].audio_path)
    b, _ = sf.read(single.audio_path)
    assert np.allclose(a, b, atol=1e-3)  # batch of two = the seed alone (PCM-24 rounding)
    c, _ = sf.read(both[0].audio_path)
    assert not np.allclose(a, c, atol=1e-2)


def test_cue_longer_than_the_maximum_is_rejected(
    model_dir: Path, reference: Path, tmp_path: Path
) -> None:
    gen = FullGenerator(_settings(tmp_path / "h", model_dir, max_cue_s=5.0))
    with pytest.raises(InvalidRequest, match="longer than the maximum 5 s"):
        gen.generate(_request(tmp_path, reference, 6.0))
    with pytest.raises(InvalidRequest):
        gen.generate(_request(tmp_path, reference, 0.0))


def _styles_seen(gen: FullGenerator) -> list[torch.Tensor | None]:
    """Record the style input of every DiT call of this generator."""
    ecmg = gen.load().ecmg
    seen: list[torch.Tensor | None] = []
    original = ecmg.v_prediction

    def spy(x, t, cond, control, style, cfg_scale=1.0):  # noqa: ANN001, ANN202
        seen.append(None if style is None else style.detach().clone())
        return original(x, t, cond, control, style, cfg_scale)

    ecmg.v_prediction = spy  # type: ignore[method-assign]
    return seen


def test_style_is_the_targeted_references_library_embedding(
    model_dir: Path, reference: Path, tmp_path: Path
) -> None:
    gen = FullGenerator(_settings(tmp_path / "h", model_dir, crop_to_cue=True, steps=2))
    seen = _styles_seen(gen)
    emb = _emb(1)
    out = gen.generate(_request(tmp_path, reference, 0.5, style=emb))
    assert seen and all(s is not None for s in seen), "style input missing"
    for s in seen:
        assert s.abs().sum() > 0, "style input is zeros although a targeted reference exists"
        assert torch.allclose(s[0], torch.from_numpy(emb))
    cond = out.extra["conditioning"]
    assert cond["style"] and cond["style_from"] == "target-1"
    assert cond["control"] and cond["control_from"] == "broad-1"


def test_without_references_the_adapters_get_the_trained_nulls(
    model_dir: Path, reference: Path, tmp_path: Path
) -> None:
    """No library: zero latent to the ControlFormer, zero style through the Stylization
    projection -- the nulls training used -- never a bypass the adapters never saw."""
    gen = FullGenerator(_settings(tmp_path / "h", model_dir, crop_to_cue=True, steps=2))
    ecmg = gen.load().ecmg
    seen: list[tuple[torch.Tensor | None, torch.Tensor | None]] = []
    original = ecmg.v_prediction

    def spy(x, t, cond, control, style, cfg_scale=1.0):  # noqa: ANN001, ANN202
        seen.append((control, style))
        return original(x, t, cond, control, style, cfg_scale)

    ecmg.v_prediction = spy  # type: ignore[method-assign]
    req = _request(tmp_path, reference, 0.5)
    req = dataclasses.replace(req, retrieval=Retrieval(backend="full", weights="none"))
    out = gen.generate(req)
    assert seen
    for control, style in seen:
        assert control is not None and style is not None, "adapters bypassed without references"
        assert not control.any() and not style.any()
    cond = out.extra["conditioning"]
    assert not cond["control"] and not cond["style"]
    notes = " ".join(out.extra["notes"])
    assert "null control" in notes and "null style" in notes


def test_another_targeted_reference_changes_the_music(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    a = generator.generate(_request(tmp_path / "a", reference, 0.5, style=_emb(1)))
    b = generator.generate(_request(tmp_path / "b", reference, 0.5, style=_emb(2)))
    x, _ = sf.read(a.audio_path)
    y, _ = sf.read(b.audio_path)
    assert not np.allclose(x, y, atol=1e-4), "the targeted reference does not reach the model"


def test_style_of_another_clap_model_is_refused(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    wrong = np.ones(_clap_dim() + 1, np.float32)
    with pytest.raises(WeightsError, match="different CLAP models"):
        generator.generate(_request(tmp_path, reference, 0.5, style=wrong))


def test_every_attribute_reaches_the_model(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    rock = Attributes("sad", "rock", "slow", "high", ("guitar", "drums"), key="A", mode="minor")
    jazz = Attributes("happy", "jazz", "slow", "low", ("piano",))
    a = generator.generate(_request(tmp_path / "a", reference, 0.5, attributes=rock))
    b = generator.generate(_request(tmp_path / "b", reference, 0.5, attributes=jazz))
    text = a.extra["conditioning"]["attribute_text"]
    for word in ("tempo: slow", "genre: rock", "mood: sad", "energy: high", "guitar", "drums",
                 "key: A minor"):  # fmt: skip
        assert word in text
    assert a.extra["prompt"] != b.extra["prompt"]
    assert a.extra["conditioning"]["text_cut"] is None  # within T5's 128 tokens
    x, _ = sf.read(a.audio_path)
    y, _ = sf.read(b.audio_path)
    assert not np.allclose(x, y, atol=1e-4), "the attribute text does not reach the model"


def test_a_prompt_over_the_token_limit_is_cut_and_says_so(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    long = " ".join(["calm piano music with soft strings"] * 40) + "."
    out = generator.generate(_request(tmp_path, reference, 0.5, text=long))
    cond = out.extra["conditioning"]
    cut = cond["text_cut"]
    # the knobs survive; the description's end is what goes
    assert cut and "instruments" not in cut and cut.endswith("soft strings.")
    assert out.extra["prompt"].endswith(cond["attribute_text"])
    assert generator.load().ecmg.sao.prompt.cut_words(out.extra["prompt"]) is None
    assert out.extra["prompt"].startswith("calm piano music")
    assert any("128 tokens: cut" in n and "keeping every attribute" in n
               for n in out.extra["notes"])  # fmt: skip
    from engine.commands.generate import conditioning_lines

    assert any("text cut" in line and cut in line for line in conditioning_lines(cond))


def test_without_adapters_no_block_copies_and_no_references(
    tmp_path_factory: pytest.TempPathFactory, reference: Path, tmp_path: Path
) -> None:
    base_only = tmp_path_factory.mktemp("base-only")
    weights.write_tiny(base_only, ["sao-1.0", "t5-base"], seed=0)
    for name in ("sao-1.0", "t5-base"):  # as if downloaded: real base weights, no vmb-ecmg
        weights.finalize_folder(base_only / name, name, "real")
    settings = _settings(tmp_path / "h", base_only, crop_to_cue=True, steps=2)
    ok, why = full_available(settings)
    assert ok and "base weights" in why and "vmb-ecmg not installed" in why
    gen = FullGenerator(settings)
    ecmg = gen.load().ecmg
    assert not ecmg.has_adapters and len(ecmg.adapters) == 0  # no ControlFormer copies
    out = gen.generate(_request(tmp_path, reference, 0.5, style=_emb(1)))
    assert out.weights == "base" and out.extra["conditioning"]["weights"] == {"generate": "base"}
    cond = out.extra["conditioning"]
    assert not cond["control"] and not cond["style"] and cond["style_from"] is None
    assert any("vmb-ecmg not installed" in n for n in out.extra["notes"])


def test_weights_label_says_base_without_vmb_adapters() -> None:
    from engine.generate.full.availability import weights_label

    assert weights_label(["real", "real"], None) == "base"
    assert weights_label(["real", "real"], "real") == "real"
    assert weights_label(["real", "random"], "real") == "random"
    assert weights_label(["real", "real"], "random") == "random"


def test_reported_tempo_and_key_are_measured_on_the_audio(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    from engine.retrieve.dsp import analyse_audio

    asked = Attributes("calm", "classical", "fast", "low", ("piano",), bpm=128.0, key="D")
    out = generator.generate(_request(tmp_path, reference, 1.0, attributes=asked))
    audio, sr = sf.read(out.audio_path, always_2d=True)
    f = analyse_audio(audio, sr)
    assert out.extra["bpm"] == f.bpm and out.extra["bpm"] != 128.0
    assert out.extra["measured"]["key"] == (f"{f.key} {f.mode}" if f.key else None)


_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _triad_root(path: Path) -> str:
    """An estimate independent of engine.retrieve.dsp: one FFT of the whole file, energy per
    pitch class, the best-matching major triad."""
    audio, sr = sf.read(path, always_2d=True)
    x = audio.mean(axis=1)
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    ok = (freqs > 80) & (freqs < 2000)
    pc = np.rint(12 * np.log2(freqs[ok] / 440.0) + 69).astype(int) % 12
    energy = np.bincount(pc, weights=spec[ok], minlength=12)
    scores = [energy[r] + energy[(r + 4) % 12] + energy[(r + 7) % 12] for r in range(12)]
    return _NAMES[int(np.argmax(scores))]


def _tonal_decode(gen: FullGenerator, midi_root: int) -> None:
    """The VAE decodes to a major triad on ``midi_root``: tonal audio with a known key."""
    sao = gen.load().ecmg.sao

    def decode(latents: torch.Tensor) -> np.ndarray:
        n = latents.shape[-1] * sao.downsampling_ratio
        t = np.arange(n) / sao.sample_rate
        tone = sum(np.sin(2 * np.pi * 440 * 2 ** ((midi_root + i - 69) / 12) * t)
                   for i in (0, 4, 7))  # fmt: skip
        return np.broadcast_to(0.2 * tone, (latents.shape[0], 2, n)).astype(np.float32)

    gen._decode = decode  # type: ignore[method-assign]


def test_each_cue_reports_the_key_of_its_own_audio(
    model_dir: Path, reference: Path, tmp_path: Path
) -> None:
    """Two cues with different music report different keys, each the key of its WAV."""
    seen = []
    for i, root in enumerate((60, 66)):  # C major, F# major
        gen = FullGenerator(_settings(tmp_path / f"h{i}", model_dir, crop_to_cue=True, steps=2))
        _tonal_decode(gen, root)
        asked = Attributes("calm", "classical", "slow", "low", ("piano",), key="D", mode="minor")
        out = gen.generate(_request(tmp_path / str(i), reference, 1.0, attributes=asked))
        expected = _triad_root(out.audio_path)
        assert expected == _NAMES[root % 12]
        assert (out.extra["key"], out.extra["mode"]) == (expected, "major")
        seen.append(out.extra["key"])
    assert seen[0] != seen[1]


def test_noise_reports_no_key() -> None:
    from engine.generate.full.conditioning import measure_played

    sr = 44100
    for seed in range(6):
        white = np.random.default_rng(seed).standard_normal(5 * sr)
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(white.size)
        f[0] = f[1]
        for power in (0.0, 0.5, 1.0):  # white, pink, brown
            x = np.fft.irfft(spectrum / f**power, white.size)
            x = 0.3 * x / np.abs(x).max()
            played = measure_played(np.stack([x, x]), sr)
            assert played["key"] is None and played["mode"] is None, (seed, power, played)
    t = np.arange(3 * sr) / sr
    chord = sum(np.sin(2 * np.pi * 440 * 2 ** ((57 + i - 69) / 12) * t) for i in (0, 3, 7))
    played = measure_played(0.1 * np.stack([chord, chord]), sr)
    assert (played["key"], played["mode"]) == ("A", "minor")


def test_nan_during_sampling_aborts_with_a_typed_error(
    model_dir: Path, reference: Path, tmp_path: Path
) -> None:
    gen = FullGenerator(_settings(tmp_path / "h", model_dir, crop_to_cue=True), clap_embed=_clap)
    dit = gen.load().ecmg.sao.dit
    with torch.no_grad():
        dit.transformer.project_out.weight[0, 0] = float("nan")
    with pytest.raises(NumericalError, match="step 1"):
        gen.generate(_request(tmp_path / "out", reference, 0.5))
    assert not (tmp_path / "out").exists()


def test_cancel_reaches_the_sampler_between_steps(
    generator: FullGenerator, reference: Path, tmp_path: Path
) -> None:
    seen = []

    def progress(stage: str, step: int, of: int) -> None:
        seen.append((stage, step))
        if stage == "generate" and step == 2:
            raise JobCancelled("cancelled by the user")

    with pytest.raises(JobCancelled):
        generator.generate(_request(tmp_path / "out", reference, 0.5), progress)
    assert seen[-1] == ("generate", 2)
    assert not (tmp_path / "out").exists()


def test_out_of_memory_retries_with_offload_then_is_typed(
    model_dir: Path, reference: Path, tmp_path: Path
) -> None:
    gen = FullGenerator(_settings(tmp_path / "h", model_dir, crop_to_cue=True), clap_embed=_clap)
    dit = gen.load().ecmg.sao.dit
    failures = {"left": 1}

    def fail(module: torch.nn.Module, args: tuple) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = dit.register_forward_pre_hook(fail)
    try:
        out = gen.generate(_request(tmp_path, reference, 0.5))
        assert gen.offload and any("offload" in n for n in out.extra["notes"])
        failures["left"] = 10**6
        with pytest.raises(OutOfMemory, match=r"out of memory .*\(offload on\)"):
            gen.generate(_request(tmp_path, reference, 0.5))
    finally:
        handle.remove()
    fresh = FullGenerator(_settings(tmp_path / "h", model_dir, crop_to_cue=True))
    handle = fresh.load().ecmg.sao.dit.register_forward_pre_hook(fail)
    try:
        with pytest.raises(OutOfMemory, match="even with offload") as err:
            fresh.generate(_request(tmp_path, reference, 0.5))
        assert fresh.offload and "retry_with_offload" not in err.value.details
    finally:
        handle.remove()


def test_full_available_reports_weights_and_device(model_dir: Path, tmp_path: Path) -> None:
    ok, why = full_available(_settings(tmp_path / "h", model_dir))
    assert ok and "random weights" in why
    ok, why = full_available(_settings(tmp_path / "h", tmp_path / "empty"))
    assert not ok and "sao-1.0" in why

    from engine.generate.full.sao import SAO_1_0_CONFIG

    big = tmp_path / "big"
    (big / "sao-1.0").mkdir(parents=True)
    (big / "sao-1.0" / "model_config.json").write_text(json.dumps(SAO_1_0_CONFIG))
    weights.finalize_folder(big / "sao-1.0", "sao-1.0", "random")
    weights.write_tiny(big, ["t5-base"])
    ok, why = full_available(_settings(tmp_path / "h", big))
    if not torch.cuda.is_available():
        assert not ok and "no GPU" in why
