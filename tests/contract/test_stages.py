"""One contract per stage, every backend through the same tests (like diffusers' common
scheduler tests): returned types, progress calls, cancel from the progress callback, seed
determinism, exact length (generators) and truthful labels (backend, weights)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.errors import JobCancelled
from engine import backends, taxonomy
from engine.types import (
    GeneratedAudio,
    GenerationRequest,
    Knobs,
    MusicDescription,
    Reference,
    Retrieval,
    VisualInput,
)

from .conftest import SETUPS

BACKENDS = sorted(backends.BACKENDS)
SR = 44100


def _visual() -> VisualInput:
    """Four small frames of a two-shot clip (a cut at 1 s), as the media stage gives them."""
    frames = np.zeros((4, 48, 64, 3), np.uint8)
    frames[:2] = (20, 30, 120)
    frames[2:] = (230, 140, 20)
    frames[:, :, ::7] = 255
    return VisualInput(frames, (0.0, 0.5, 1.0, 1.5), 2.0, cut_times_s=(1.0,), motion_energy=0.3)


class Recorder:
    """A progress callback that records its calls and can cancel at the n-th call."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.cancel_at = cancel_at

    def __call__(self, stage: str, step: int, of: int) -> None:
        self.calls.append((stage, step, of))
        if self.cancel_at is not None and len(self.calls) > self.cancel_at:
            raise JobCancelled("cancelled by the test")

    def check(self) -> None:
        assert self.calls, "the stage reported no progress"
        for stage, step, of in self.calls:
            assert isinstance(stage, str) and stage
            assert isinstance(step, int) and isinstance(of, int) and 0 <= step <= of, (step, of)


def test_every_backend_has_a_setup() -> None:
    assert set(SETUPS) == set(backends.BACKENDS)


# -- describe ---------------------------------------------------------------------------------
def _describe(build, backend: str, seed: int, knobs: Knobs = Knobs(), progress=None):
    return build(backend, "describe").describe(
        _visual(), knobs, np.random.default_rng(seed), progress or Recorder()
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_describer_contract(build, backend: str) -> None:
    progress = Recorder()
    knobs = Knobs(mood="calm", instruments=("piano",))
    desc = _describe(build, backend, 5, knobs, progress)
    assert isinstance(desc, MusicDescription) and desc.text.strip()
    assert desc.backend == backend and desc.weights == SETUPS[backend].weights
    assert desc.source == "video"
    a = desc.attributes
    tags = taxonomy.all_tags()
    assert a.mood in tags["mood"] and a.genre in tags["genre"] and a.energy in tags["energy"]
    assert a.tempo_bucket in tags["tempo"] and set(a.instruments) <= set(tags["instrument"])
    assert a.mood == "calm" and "piano" in a.instruments  # a set knob wins over inference
    progress.check()
    assert _describe(build, backend, 5, knobs) == desc  # same seed, same description


@pytest.mark.parametrize("backend", BACKENDS)
def test_describer_cancels_from_progress(build, backend: str) -> None:
    progress = Recorder(cancel_at=0)
    with pytest.raises(JobCancelled):
        _describe(build, backend, 1, progress=progress)
    assert len(progress.calls) == 1  # stopped at the first report


_INPUTS: dict[str, tuple[MusicDescription, Retrieval]] = {}


def _inputs(build, backend: str) -> tuple[MusicDescription, Retrieval]:
    """One description and retrieval per backend for the later stages (the describer runs
    on the full backend's tiny InternVL: once is enough outside its own contract)."""
    if backend not in _INPUTS:
        desc = _describe(build, backend, 2, Knobs(tempo="slow"))
        retrieval = build(backend, "retrieve").retrieve(
            desc, Knobs(tempo="slow"), _visual(), 2, Recorder()
        )
        _INPUTS[backend] = (desc, retrieval)
    return _INPUTS[backend]


# -- retrieve ---------------------------------------------------------------------------------
def _retrieve(build, backend: str, progress=None) -> Retrieval:
    desc = _inputs(build, backend)[0]
    return build(backend, "retrieve").retrieve(
        desc, Knobs(tempo="slow"), _visual(), 2, progress or Recorder()
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_retriever_contract(build, backend: str) -> None:
    progress = Recorder()
    got = _retrieve(build, backend, progress)
    assert isinstance(got, Retrieval)
    # the result says what ran: its backend, and the weights that ranked (a library exists)
    assert got.backend == backend and got.weights == SETUPS[backend].weights
    progress.check()
    assert progress.calls[-1][1] == progress.calls[-1][2]  # it reported its end
    assert got.broad, "nothing retrieved from a library of two pieces"
    assert len(got.broad) <= 2
    for ref in (*got.broad, *got.targeted):
        assert isinstance(ref, Reference) and ref.piece_id and ref.title
        assert Path(ref.path).is_file(), ref.path  # a piece of this library, not a label
        assert math.isfinite(ref.score)
    assert all(isinstance(n, str) for n in got.notes)
    assert _retrieve(build, backend) == got  # no hidden state: the same answer again
    assert got == _inputs(build, backend)[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_retriever_cancels_from_progress(build, backend: str) -> None:
    progress = Recorder(cancel_at=0)
    with pytest.raises(JobCancelled):
        _retrieve(build, backend, progress)
    assert len(progress.calls) == 1  # stopped at the first report


# -- generate ---------------------------------------------------------------------------------
def _request(build, backend: str, out: Path, seed: int, duration_s: float) -> GenerationRequest:
    desc, retrieval = _inputs(build, backend)
    return GenerationRequest(desc, retrieval, duration_s, seed, out, cut_times_s=(0.6,))


@pytest.mark.parametrize("backend", BACKENDS)
def test_generator_contract(build, backend: str, tmp_path: Path) -> None:
    duration = 1.3  # not a whole number of beats, bars or latent frames
    progress = Recorder()
    generator = build(backend, "generate")
    got = generator.generate(_request(build, backend, tmp_path / "a", 11, duration), progress)
    assert isinstance(got, GeneratedAudio)
    assert got.backend == backend and got.weights == SETUPS[backend].weights
    assert got.sample_rate == SR and got.num_samples == round(duration * SR)
    audio, sr = sf.read(got.audio_path, dtype="float32", always_2d=True)
    assert sr == SR and audio.shape == (got.num_samples, 2)  # exactly the cue's length, stereo
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert got.midi_path is None or Path(got.midi_path).is_file()
    progress.check()
    again = generator.generate(_request(build, backend, tmp_path / "b", 11, duration))
    assert np.array_equal(sf.read(again.audio_path, dtype="float32", always_2d=True)[0], audio)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generator_cancels_from_progress(build, backend: str, tmp_path: Path) -> None:
    progress = Recorder(cancel_at=0)
    request = _request(build, backend, tmp_path / "c", 4, 1.0)
    with pytest.raises(JobCancelled):
        build(backend, "generate").generate(request, progress)
    assert len(progress.calls) == 1  # nothing ran past the cancel
    assert not list(tmp_path.glob("c/*.wav"))  # no half-written stem
