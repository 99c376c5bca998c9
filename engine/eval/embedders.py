"""Pluggable models behind the metrics: a small registry, name -> loader, all local.

Roles (what a metric asks of a model):
  frames  ``embed_audio(audio, sr) -> (T, D)`` embedding frames      -> Fréchet distance
  tagger  ``window_logits(audio, sr) -> (W, C)`` classifier logits   -> KL divergence
  text    ``embed_text(texts) -> (N, D)``, ``embed_clip(audio, sr) -> (D,)`` -> CLAPScore
  vision  ``embed_visual_files(paths)``, ``embed_audio_files(paths)`` -> ImageBind score

Nothing is downloaded here. ``aisfx`` ships its weights inside its PyPI wheel (CC BY 4.0), so
it is the model CI runs for real; OpenL3, PaSST and ImageBind are the paper's models and run
where the user installed them (a missing one is a WeightsError that says how); CLAP is the
product's own ``clap-music`` folder (`vmb models download clap-music`).

``audio`` is float (n,) mono or (n, channels); every model resamples and mixes as it needs.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import signal

from bridge.errors import InvalidRequest, WeightsError

Role = Literal["frames", "tagger", "text", "vision"]


@dataclass(frozen=True)
class EmbedderInfo:
    """What a report says about the model behind a number."""

    name: str
    model: str  # the exact checkpoint / package version
    weights: Literal["real", "random"]
    sample_rate: int
    dim: int
    licence: str

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "model": self.model,
            "weights": self.weights,
            "sample_rate": self.sample_rate,
            "dim": self.dim,
            "licence": self.licence,
        }


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    roles: tuple[Role, ...]
    loader: str  # "module:function", called as function(model_dir)
    install: str  # what to do when it is missing
    licence: str


EMBEDDERS: dict[str, EmbedderSpec] = {
    "aisfx": EmbedderSpec(
        "aisfx",
        ("frames", "tagger"),
        "engine.eval.embedders:load_aisfx",
        "install the wheel (weights inside): .venv/bin/pip install --no-deps torch==2.13.0 "
        "aisfx==0.1.2 (requirements/nodeps.txt)",
        "CC BY 4.0 (weights), MIT (code)",
    ),
    "openl3": EmbedderSpec(
        "openl3",
        ("frames",),
        "engine.eval.embedders:load_openl3",
        "OpenL3 needs TensorFlow and fetches its .h5 weights while installing: on a machine "
        "with internet, in a separate evaluation environment, `pip install openl3==0.4.2`, then "
        "run `vmb eval` from there",
        "MIT (code), CC BY 4.0 (weights)",
    ),
    "passt": EmbedderSpec(
        "passt",
        ("tagger",),
        "engine.eval.embedders:load_passt",
        "`pip install hear21passt==0.0.26` and put passt-s-f128-p16-s10-ap.476-swa.pt (PaSST "
        "release v0.0.1-audioset) into <model_dir>/passt/",
        "Apache-2.0",
    ),
    "clap": EmbedderSpec(
        "clap",
        ("text",),
        "engine.eval.embedders:load_clap",
        "run `vmb models download clap-music` (LAION-CLAP music checkpoint)",
        "CC0-1.0 (checkpoint), Apache-2.0 (code)",
    ),
    "imagebind": EmbedderSpec(
        "imagebind",
        ("vision",),
        "engine.eval.embedders:load_imagebind",
        "install facebookresearch/ImageBind (with torchvision and torchaudio) and put "
        "imagebind_huge.pth into <model_dir>/imagebind/; evaluation only (CC BY-NC 4.0)",
        "CC BY-NC 4.0 (code and weights): evaluation only, never shipped",
    ),
}

_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


def load(name: str, model_dir: Path) -> Any:
    """The model object for ``name`` (built once per process and model folder)."""
    if name not in EMBEDDERS:
        raise InvalidRequest(f"unknown embedding model {name!r}; known: {', '.join(EMBEDDERS)}")
    key = (name, str(model_dir))
    with _CACHE_LOCK:
        if key not in _CACHE:
            module, func = EMBEDDERS[name].loader.split(":")
            _CACHE[key] = getattr(importlib.import_module(module), func)(Path(model_dir))
        return _CACHE[key]


def missing(name: str, why: str) -> WeightsError:
    """The error for a model that is not installed: names it and says how to install it."""
    return WeightsError(f"{name}: {why}; to install: {EMBEDDERS[name].install}")


# ---------------------------------------------------------------------------------------------
# Audio helpers shared by the adapters.


def as_channels(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, ch) -> (n, ch) float64."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidRequest(f"expected (samples,) or (samples, channels) audio, got {x.shape}")
    return x


def to_mono(audio: np.ndarray) -> np.ndarray:
    return as_channels(audio).mean(axis=1)


def resample(x: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    """Polyphase resampling along axis 0 (exact rational ratio, no external library)."""
    if int(sample_rate) == int(target):
        return np.asarray(x, dtype=np.float64)
    g = math.gcd(int(sample_rate), int(target))
    return signal.resample_poly(
        np.asarray(x, dtype=np.float64), target // g, int(sample_rate) // g, axis=0
    )


def peak_normalise(x: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    """Scale so the largest absolute sample sits at ``peak_db`` dBFS (silence stays silence)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x if peak <= 0 else x * (10.0 ** (peak_db / 20.0) / peak)


# ---------------------------------------------------------------------------------------------
# aisfx 0.1.2 (Ma & Lerch, ISMIR 2022): a 9-layer CNN on 96-band log-mel blocks of ~2.3 s,
# 512-d embeddings, plus UCS category heads (used as a tagger for KL).


AISFX_SR = 44100
AISFX_N_FFT = 2048
AISFX_HOP = 1024
AISFX_MELS = 96
AISFX_BLOCK = 100  # spectrogram frames per embedding (~2.32 s)
AISFX_BLOCK_HOP = 50  # half a block (~1.16 s): the package's default emb_hop_size 0.5
AISFX_SPEC_MAX = 9.457798957824707  # the package's "original" min-max normalisation (min 0)
AISFX_HEAD = "ucsMixed"  # 69 UCS categories


def htk_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangles in the HTK mel domain, each band summing to 1 (Essentia's
    MelBands with warpingFormula=htkMel, weighting=warping, normalize=unit_sum)."""

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    edges = np.linspace(mel(fmin), mel(fmax), n_mels + 2)
    bins = mel(np.fft.rfftfreq(n_fft, 1.0 / sr))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins[None] - lo) / (mid - lo)
    down = (hi - bins[None]) / (hi - mid)
    w = np.maximum(0.0, np.minimum(up, down))
    return w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)


_AISFX_FILTERS = htk_mel_filters(AISFX_SR, AISFX_N_FFT, AISFX_MELS, 0.0, AISFX_SR / 2)


def aisfx_spectrogram(mono_44k: np.ndarray) -> np.ndarray:
    """(T, 96) normalised log-mel frames: peak-normalised audio, centred Hann frames of 2048
    hop 1024, power spectrum, mel bands, log10(1e4 x + 1) / max (aisfx's front end in numpy:
    its librosa variant returns the spectrogram transposed, its Essentia variant needs Essentia)."""
    x = peak_normalise(np.asarray(mono_44k, dtype=np.float64), 0.0)
    x = np.pad(x, (AISFX_N_FFT // 2, AISFX_N_FFT // 2))
    if x.shape[0] < AISFX_N_FFT:
        x = np.pad(x, (0, AISFX_N_FFT - x.shape[0]))
    n = 1 + (x.shape[0] - AISFX_N_FFT) // AISFX_HOP
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n, AISFX_N_FFT), strides=(x.strides[0] * AISFX_HOP, x.strides[0])
    )
    power = np.abs(np.fft.rfft(frames * np.hanning(AISFX_N_FFT), axis=1)) ** 2
    return (np.log10(power @ _AISFX_FILTERS.T * 1e4 + 1.0) / AISFX_SPEC_MAX).astype(np.float32)


def aisfx_blocks(spec: np.ndarray) -> np.ndarray:
    """(B, 100, 96) blocks at half-block hop; a short clip is zero-padded to one block."""
    t = spec.shape[0]
    if t < AISFX_BLOCK:
        spec = np.concatenate([spec, np.zeros((AISFX_BLOCK - t, spec.shape[1]), spec.dtype)])
        t = AISFX_BLOCK
    starts = range(0, t - AISFX_BLOCK + 1, AISFX_BLOCK_HOP)
    return np.stack([spec[s : s + AISFX_BLOCK] for s in starts])


class AisfxEmbedder:
    """aisfx's X-Sequential-CE model, strict-loaded from the file inside the wheel."""

    CACHE_SIZE = 64  # FD and KL over the same files share one forward pass per file

    def __init__(self, model: Any, head: int, classes: int, version: str) -> None:
        self.model = model
        self.head = head
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self.info = EmbedderInfo(
            "aisfx", f"aisfx {version} X-Sequential-CE (head {AISFX_HEAD}: {classes} UCS classes)",
            "real", AISFX_SR, 512, EMBEDDERS["aisfx"].licence,
        )  # fmt: skip

    def _embedding(self, audio: np.ndarray, sample_rate: int) -> Any:
        import hashlib

        import torch

        x = np.ascontiguousarray(audio)
        key = hashlib.sha1(x.view(np.uint8).reshape(-1)).hexdigest() + f"/{x.shape}/{sample_rate}"
        with self._lock:
            if key not in self._cache:
                mono = resample(to_mono(x), sample_rate, AISFX_SR)
                blocks = torch.from_numpy(aisfx_blocks(aisfx_spectrogram(mono)))
                with torch.inference_mode():
                    emb = self.model.get_embedding(blocks)
                if len(self._cache) >= self.CACHE_SIZE:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = emb
            return self._cache[key]

    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """(blocks, 512): one embedding per ~2.3 s block, every ~1.16 s."""
        return self._embedding(audio, sample_rate).float().numpy().copy()

    def window_logits(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """(blocks, 69) logits of the UCS-category head."""
        import torch

        emb = self._embedding(audio, sample_rate)
        with self._lock, torch.inference_mode():
            return self.model.fc[self.head](emb).float().numpy()


def load_aisfx(model_dir: Path) -> AisfxEmbedder:
    """The weights are a (state_dict, datasets) pickle holding numpy scalars: torch's safe
    loader accepts it with numpy's scalar and dtype globals allow-listed, nothing more."""
    if importlib.util.find_spec("aisfx") is None:
        raise missing("aisfx", "the aisfx package is not installed")
    from importlib import metadata, resources

    import torch
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    path = resources.files("aisfx").joinpath("models/checkpoint.pth")
    if not path.is_file():
        raise missing("aisfx", f"{path} is missing from the installed package")
    allowed = [(np._core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype,
               type(np.dtype(np.int64))]  # fmt: skip
    try:
        with torch.serialization.safe_globals(allowed):
            state, datasets = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"aisfx: cannot load {path}: {type(exc).__name__}: {exc}") from None
    datasets = {k: (int(i), int(n)) for k, (i, n) in datasets.items()}
    model = CrossNet(EmbeddingNet("max", 3, 1, 64), datasets, "cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"aisfx: {path} does not match the model: {exc}") from None
    model.eval()
    head, classes = datasets[AISFX_HEAD]
    return AisfxEmbedder(model, head, classes, metadata.version("aisfx"))


# ---------------------------------------------------------------------------------------------
# OpenL3 (FD_openl3): mel256, music, 512-d, hop 0.5 s; stereo = L and R concatenated (1024-d).
# Not installable offline (its sdist downloads the weights); runs where the user installed it.


OPENL3_SR = 44100  # stable-audio-metrics evaluates 44.1 kHz models at their own rate
OPENL3_HOP_S = 0.5


class OpenL3Embedder:
    def __init__(self, openl3: Any, model: Any, version: str) -> None:
        self.openl3 = openl3
        self.model = model
        self.info = EmbedderInfo(
            "openl3", f"openl3 {version} mel256/music/512 (stereo L+R: 1024-d)", "real",
            OPENL3_SR, 1024, EMBEDDERS["openl3"].licence,
        )  # fmt: skip

    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        x = peak_normalise(as_channels(audio), -1.0)
        x = resample(x, sample_rate, OPENL3_SR)
        left, right = x[:, 0], x[:, -1]  # mono: the same channel twice ("fake stereo")
        emb, _ = self.openl3.get_audio_embedding(
            [left, right], [OPENL3_SR, OPENL3_SR], model=self.model, verbose=False,
            hop_size=OPENL3_HOP_S,
        )  # fmt: skip
        return np.concatenate(emb, axis=1).astype(np.float32)


def load_openl3(model_dir: Path) -> OpenL3Embedder:
    if importlib.util.find_spec("openl3") is None:
        raise missing("openl3", "the openl3 package (and TensorFlow) is not installed")
    from importlib import metadata

    import openl3

    try:
        model = openl3.models.load_audio_embedding_model(
            input_repr="mel256", content_type="music", embedding_size=512
        )
    except Exception as exc:
        raise missing("openl3", f"its weights did not load ({type(exc).__name__}: {exc})") from None
    return OpenL3Embedder(openl3, model, metadata.version("openl3"))


# ---------------------------------------------------------------------------------------------
# PaSST (KL_passt): passt-s-f128-p16-s10, 527 AudioSet logits, 32 kHz mono, 10 s windows
# with 5 s overlap; windows shorter than 15 % of 10 s are dropped, longer ones zero-padded.


PASST_SR = 32000
PASST_FILE = "passt-s-f128-p16-s10-ap.476-swa.pt"
PASST_WINDOW_S = 10.0
PASST_STEP_S = 5.0


def passt_windows(mono_32k: np.ndarray) -> np.ndarray:
    """(W, 320000) analysis windows (stable-audio-metrics' return_probabilities)."""
    size, step = int(PASST_WINDOW_S * PASST_SR), int(PASST_STEP_S * PASST_SR)
    x = np.asarray(mono_32k, dtype=np.float32)
    out = []
    for start in range(0, max(step, x.shape[0] - step), step):
        w = x[start : start + size]
        if w.shape[0] < size:
            if w.shape[0] <= int(0.15 * size) and out:
                continue
            w = np.pad(w, (0, size - w.shape[0]))
        out.append(w)
    return np.stack(out)


class PasstTagger:
    def __init__(self, mel: Any, net: Any) -> None:
        self.mel = mel
        self.net = net
        self._lock = threading.Lock()
        self.info = EmbedderInfo(
            "passt", "PaSST passt-s-f128-p16-s10 (ap .476 swa), 527 AudioSet classes", "real",
            PASST_SR, 527, EMBEDDERS["passt"].licence,
        )  # fmt: skip

    def window_logits(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import functools

        import torch

        x = peak_normalise(resample(to_mono(audio), sample_rate, PASST_SR), -1.0)
        outs = []
        with self._lock, torch.inference_mode():
            stft = torch.stft  # older hear21passt calls the pre-1.8 stft signature
            torch.stft = functools.partial(stft, return_complex=False)
            try:
                for w in passt_windows(x):
                    logits, _features = self.net(self.mel(torch.from_numpy(w[None])).unsqueeze(1))
                    outs.append(logits.reshape(-1).float().numpy())
            finally:
                torch.stft = stft
        return np.stack(outs)


def load_passt(model_dir: Path) -> PasstTagger:
    """hear21passt's get_basic_model, built with pretrained=False (it would download) and
    loaded strictly from the user's file. The wrapper class is skipped: its constructor and
    output changed between hear21passt versions; mel + net are what it runs."""
    if importlib.util.find_spec("hear21passt") is None:
        raise missing("passt", "the hear21passt package is not installed")
    path = Path(model_dir) / "passt" / PASST_FILE
    if not path.is_file():
        raise missing("passt", f"{path} does not exist")
    import torch
    from hear21passt.models.passt import get_model
    from hear21passt.models.preprocess import AugmentMelSTFT

    mel = AugmentMelSTFT(n_mels=128, sr=PASST_SR, win_length=800, hopsize=320, n_fft=1024,
                         freqm=48, timem=192, htk=False, fmin=0.0, fmax=None, norm=1,
                         fmin_aug_range=10, fmax_aug_range=2000)  # fmt: skip
    net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"passt: {path} does not match passt_s_swa_p16_128_ap476: {exc}"
        ) from None
    mel.eval()
    net.eval()
    return PasstTagger(mel, net)


# ---------------------------------------------------------------------------------------------
# CLAP (CLAPScore): the product's clap-music folder through the retrieval encoder. The paper's
# CLAPScore used 630k-audioset-fusion-best.pt; ours uses the installed music checkpoint.


CLAP_SR = 48000


class ClapScorer:
    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.info = EmbedderInfo(
            "clap", f"LAION-CLAP {encoder.cfg.checkpoint} ({encoder.info.runtime})",
            encoder.info.weights, CLAP_SR, encoder.dim, EMBEDDERS["clap"].licence,
        )  # fmt: skip

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return self.encoder.embed_text(list(texts))

    def embed_clip(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        mono = resample(to_mono(audio), sample_rate, CLAP_SR).astype(np.float32)
        return self.encoder.embed_audio(mono)


def load_clap(model_dir: Path) -> ClapScorer:
    from engine.retrieve.full.encoders.clap import MODEL_NAME
    from engine.retrieve.full.encoders.runtime import ClapEncoder

    if not (Path(model_dir) / MODEL_NAME).is_dir():
        raise missing("clap", f"model {MODEL_NAME!r} is not installed in {model_dir}")
    return ClapScorer(ClapEncoder(Path(model_dir)))


# ---------------------------------------------------------------------------------------------
# ImageBind (ImageBind score): imagebind_huge vision and audio embeddings, through ImageBind's
# own file loaders (they need torchvision/torchaudio, i.e. a GPU machine's environment).


IMAGEBIND_FILE = "imagebind_huge.pth"


class ImageBindScorer:
    def __init__(self, model: Any, data: Any, modality: Any) -> None:
        self.model = model
        self.data = data
        self.modality = modality
        self.info = EmbedderInfo(
            "imagebind", "ImageBind imagebind_huge", "real", 16000, 1024,
            EMBEDDERS["imagebind"].licence,
        )  # fmt: skip

    def _embed(self, key: str, inputs: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model({key: inputs})[key].float().cpu().numpy()

    def embed_visual_files(self, paths: list[Path]) -> np.ndarray:
        video = [p for p in paths if p.suffix.lower() not in {".png", ".jpg", ".jpeg", ".webp"}]
        if video:
            inputs = self.data.load_and_transform_video_data([str(p) for p in paths], "cpu")
        else:
            inputs = self.data.load_and_transform_vision_data([str(p) for p in paths], "cpu")
        return self._embed(self.modality.VISION, inputs)

    def embed_audio_files(self, paths: list[Path]) -> np.ndarray:
        inputs = self.data.load_and_transform_audio_data([str(p) for p in paths], "cpu")
        return self._embed(self.modality.AUDIO, inputs)


def load_imagebind(model_dir: Path) -> ImageBindScorer:
    if importlib.util.find_spec("imagebind") is None:
        raise missing("imagebind", "the imagebind package is not installed")
    path = Path(model_dir) / "imagebind" / IMAGEBIND_FILE
    if not path.is_file():
        raise missing("imagebind", f"{path} does not exist")
    import torch
    from imagebind import data
    from imagebind.models import imagebind_model
    from imagebind.models.imagebind_model import ModalityType

    model = imagebind_model.imagebind_huge(pretrained=False)
    try:
        model.load_state_dict(
            torch.load(str(path), map_location="cpu", weights_only=True), strict=True
        )
    except RuntimeError as exc:
        raise WeightsError(f"imagebind: {path} does not match imagebind_huge: {exc}") from None
    model.eval()
    return ImageBindScorer(model, data, ModalityType)
