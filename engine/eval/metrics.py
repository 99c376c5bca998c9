"""The paper's metrics as plain numpy/scipy: Fréchet distance, KL divergence, cosine scores.

Definitions follow Stability-AI/stable-audio-metrics (protocol-and-reliability.md §9), so a
number here means what FD_openl3, KL_passt, CLAPScore and the ImageBind score mean in the
paper once the same embedding model is plugged in (engine.eval.embedders). Cosine scores are
reported x100 as the paper does; FD and KL are reported unscaled.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from bridge.errors import InvalidRequest

SCORE_SCALE = 100.0  # CLAPScore and ImageBind score are cosine x 100 in the paper
FD_EPS = 1e-6  # added to both covariances' diagonals when sqrtm of the product fails
KL_EPS = 1e-6  # added to the reference distribution before the log (stable-audio-metrics)
MIN_COVARIANCE_FRAMES = 2  # an unbiased covariance divides by N - 1


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a set of embedding frames (what FD compares)."""

    mean: np.ndarray  # (D,)
    cov: np.ndarray  # (D, D)
    count: int  # frames the statistics were estimated from

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def rank_deficient(self) -> bool:
        """N <= D: the sample covariance is singular, FD is biased and sqrtm is fragile."""
        return self.count <= self.dim


def gaussian_stats(frames: np.ndarray, what: str = "embedding set") -> GaussianStats:
    """Mean and unbiased covariance of (N, D) frames; N must be at least 2."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidRequest(f"{what}: expected (frames, dims) embeddings, got shape {x.shape}")
    if x.shape[0] < MIN_COVARIANCE_FRAMES:
        raise InvalidRequest(
            f"{what}: a covariance needs at least {MIN_COVARIANCE_FRAMES} embedding frames "
            f"(it divides by N - 1), got {x.shape[0]}; give longer or more audio files"
        )
    if not np.isfinite(x).all():
        raise InvalidRequest(f"{what}: embeddings hold NaN or infinite values")
    return GaussianStats(mean=x.mean(axis=0), cov=np.cov(x, rowvar=False), count=int(x.shape[0]))


def frechet_distance(a: GaussianStats, b: GaussianStats, eps: float = FD_EPS) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)); the eps diagonal only if sqrtm fails."""
    mu1, mu2 = np.atleast_1d(a.mean), np.atleast_1d(b.mean)
    s1, s2 = np.atleast_2d(a.cov), np.atleast_2d(b.cov)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise InvalidRequest(f"FD: embedding sizes differ ({mu1.shape[0]} vs {mu2.shape[0]})")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a singular product is expected (N <= D); handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=1e-3):
            raise InvalidRequest(
                f"FD: sqrt(S1 S2) has an imaginary part of {np.max(np.abs(covmean.imag)):.3g}; "
                "the covariances are too ill-conditioned (use more frames or --pca-dim)"
            )
        covmean = covmean.real
    total = float(np.trace(s1) + np.trace(s2))
    value = float(diff @ diff + total - 2.0 * np.trace(covmean))
    # FD >= 0; a tiny negative is rounding (FD(x, x)), a large one would be a real problem
    return 0.0 if -1e-9 * max(1.0, total) < value < 0.0 else value


def pca_fit(frames: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, (D, dim) basis) of the top principal directions of (N, D) frames."""
    x = np.asarray(frames, dtype=np.float64)
    if dim < 1 or dim > min(x.shape):
        raise InvalidRequest(
            f"PCA to {dim} dims needs 1 <= dim <= min(frames, dims) = {min(x.shape)}"
        )
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:dim].T


def frechet_distance_frames(
    generated: np.ndarray, reference: np.ndarray, pca_dim: int | None = None
) -> tuple[float, GaussianStats, GaussianStats]:
    """FD between two frame sets; with ``pca_dim`` both are first projected on the principal
    directions of their union (fewer dims than frames keeps the covariances full rank)."""
    g = np.asarray(generated, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if pca_dim:
        mean, basis = pca_fit(np.concatenate([g, r]), pca_dim)
        g, r = (g - mean) @ basis, (r - mean) @ basis
    sg = gaussian_stats(g, "generated embeddings")
    sr = gaussian_stats(r, "reference embeddings")
    return frechet_distance(sg, sr), sg, sr


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def label_distribution(window_logits: np.ndarray) -> np.ndarray:
    """(W, C) classifier logits over analysis windows -> (C,) probabilities: mean logits, then
    softmax (tagger heads are sigmoid-trained; the softmax makes a distribution for KL)."""
    x = np.asarray(window_logits, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidRequest(f"KL: expected (windows, classes) logits, got shape {x.shape}")
    return softmax(x.mean(axis=0))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = KL_EPS) -> float:
    """KL(p || q) = sum p log(p / (q + eps)), with 0 log 0 = 0 (torch's kl_div on probs)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise InvalidRequest(f"KL: distributions have different sizes ({p.shape} vs {q.shape})")
    nz = p > 0
    return float(np.sum(p[nz] * (np.log(p[nz]) - np.log(q[nz] + eps))))


def mean_kl(
    generated_logits: Mapping[str, np.ndarray], reference_logits: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, float]]:
    """KL(generated || reference) per id (same prompt), averaged over ids (KL_passt)."""
    missing = sorted(set(generated_logits) ^ set(reference_logits))
    if missing:
        raise InvalidRequest(f"KL: ids present on one side only: {', '.join(missing[:5])}")
    if not generated_logits:
        raise InvalidRequest("KL: no pairs to compare")
    per_id = {
        k: kl_divergence(
            label_distribution(generated_logits[k]), label_distribution(reference_logits[k])
        )
        for k in sorted(generated_logits)
    }
    return float(np.mean(list(per_id.values()))), per_id


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (N, D) and (N, D) (or (D,) and (D,))."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise InvalidRequest(f"cosine: shapes differ ({a.shape} vs {b.shape})")
    return np.sum(unit(a) * unit(b), axis=-1)


def paired_score(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean x100 cosine of paired rows, and each pair's x100 value (CLAPScore: text vs audio
    embeddings; ImageBind score: vision vs audio embeddings)."""
    per = SCORE_SCALE * np.atleast_1d(cosine(a, b))
    if per.size == 0:
        raise InvalidRequest("score: no pairs to compare")
    return float(per.mean()), per
