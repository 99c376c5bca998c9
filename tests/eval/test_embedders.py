"""The embedding models: aisfx for real (its weights ship in the wheel), the paper's models'
missing-weights errors, and the pure-numpy pre-processing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.errors import InvalidRequest, WeightsError
from engine.eval import embedders, metrics

SR = 44100


def tones(freqs: tuple[float, ...], seconds: float = 6.0, sr: int = SR) -> list[np.ndarray]:
    t = np.arange(int(seconds * sr)) / sr
    return [0.4 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 2 * f * t) for f in freqs]


@pytest.fixture(scope="module")
def aisfx() -> embedders.AisfxEmbedder:
    return embedders.load("aisfx", Path("/nonexistent-model-dir"))


def test_aisfx_loads_offline_with_real_weights(aisfx: embedders.AisfxEmbedder) -> None:
    assert aisfx.info.weights == "real" and aisfx.info.dim == 512
    assert "aisfx 0.1.2" in aisfx.info.model
    x = tones((440.0,))[0]
    emb = aisfx.embed_audio(x, SR)
    # 6 s at hop 1024: 259 frames -> blocks of 100 every 50 -> 4 embeddings
    assert emb.shape == (4, 512) and np.isfinite(emb).all()
    logits = aisfx.window_logits(x, SR)
    assert logits.shape == (4, 69) and np.isfinite(logits).all()
    # stereo at another rate gives the same kind of output
    stereo48 = np.stack([tones((440.0,), sr=48000)[0]] * 2, axis=1)
    assert aisfx.embed_audio(stereo48, 48000).shape == (4, 512)


def test_aisfx_fd_separates_tones_from_noise(aisfx: embedders.AisfxEmbedder) -> None:
    rng = np.random.default_rng(0)

    def frames(signals: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([aisfx.embed_audio(x, SR) for x in signals])  # 4 s: 2 frames each

    a = frames(tones((220.0, 330.0, 440.0), seconds=4.0))
    b = frames(tones((247.0, 370.0, 494.0), seconds=4.0))
    noise = frames([rng.normal(0, 0.3, 4 * SR) for _ in range(3)])
    # 6 frames per set: project to 3 dims so the covariances are full rank
    fd_tones, _, _ = metrics.frechet_distance_frames(a, b, pca_dim=3)
    fd_noise, _, _ = metrics.frechet_distance_frames(a, noise, pca_dim=3)
    assert 0 < fd_tones < fd_noise / 3


def test_aisfx_spectrogram_blocks_and_filters() -> None:
    w = embedders.htk_mel_filters(SR, 2048, 96, 0.0, SR / 2)
    assert w.shape == (96, 1025)
    assert w.sum(axis=1) == pytest.approx(np.ones(96))
    spec = embedders.aisfx_spectrogram(np.zeros(SR // 2))
    assert spec.shape[1] == 96 and np.all(spec == 0)
    blocks = embedders.aisfx_blocks(spec)  # 0.5 s is shorter than a block: one padded block
    assert blocks.shape == (1, 100, 96)


def test_passt_windows_follow_stable_audio_metrics() -> None:
    sr = embedders.PASST_SR
    assert embedders.passt_windows(np.ones(25 * sr)).shape == (4, 10 * sr)  # starts 0,5,10,15 s
    short = embedders.passt_windows(np.ones(3 * sr))
    assert short.shape == (1, 10 * sr) and short[0, 3 * sr :].max() == 0


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("openl3", "pip install openl3==0.4.2"),
        ("passt", "hear21passt"),
        ("imagebind", "imagebind_huge.pth"),
        ("clap", "vmb models download clap-music"),
    ],
)
def test_missing_models_name_themselves_and_how_to_install(
    name: str, says: str, tmp_path: Path
) -> None:
    with pytest.raises(WeightsError) as err:
        embedders.load(name, tmp_path)
    assert err.value.message.startswith(f"{name}:")
    assert says in err.value.message


def test_unknown_model_is_an_invalid_request(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="known: aisfx"):
        embedders.load("vggish", tmp_path)
