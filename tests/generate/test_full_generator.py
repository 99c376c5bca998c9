"""FullGenerator with tiny random weights written by the tiny builders: exact-length WAVs,
windowed continuation, references looped, and every failure typed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bridge.errors import InvalidRequest, JobCancelled, NumericalError, OutOfMemory
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


def _clap(ref: Reference) -> np.ndarray:
    return np.random.default_rng(len(ref.piece_id)).standard_normal(512).astype(np.float32)


def _request(
    out: Path, ref: Path, duration: float, seed: int = 7, sr: int = 44100
) -> GenerationRequest:
    description = MusicDescription(
        "A calm piano piece.",
        Attributes("calm", "classical", "slow", "low", ("piano",)),
        "text",
        "full",
        "random",
    )
    retrieval = Retrieval(
        broad=(Reference("broad-1", "Broad", str(ref), 0.9),),
        targeted=(Reference("target-1", "Target", str(ref), 0.8, partition="tempo:slow"),),
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
    assert out.extra["prompt"] == "A calm piano piece. tempo: slow"
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


def test_no_clap_embedder_gives_zeros_and_says_so(
    model_dir: Path, reference: Path, tmp_path: Path
) -> None:
    gen = FullGenerator(_settings(tmp_path / "h", model_dir, crop_to_cue=True, steps=2))
    out = gen.generate(_request(tmp_path, reference, 0.5))
    assert any("no CLAP embedder" in n for n in out.extra["notes"])


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
