"""The metrics against closed forms: Fréchet distance of Gaussians, KL of known
distributions, cosine scores x100."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bridge.errors import InvalidRequest
from engine.eval import metrics as m


def stats(mean: list[float], cov: np.ndarray, count: int = 1000) -> m.GaussianStats:
    return m.GaussianStats(np.asarray(mean, float), np.asarray(cov, float), count)


def test_fd_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(400, 16))
    value, a, b = m.frechet_distance_frames(x, x)
    assert value == pytest.approx(0.0, abs=1e-8)
    assert a.count == 400 and a.dim == 16 and not a.rank_deficient


def test_fd_of_diagonal_gaussians_matches_the_closed_form() -> None:
    mu1, mu2 = [0.0, 1.0, -2.0], [1.0, 3.0, -2.0]
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = (1 + 4 + 0) + float(np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2)))  # 5 + (4+1+0)
    assert expected == pytest.approx(10.0)
    got = m.frechet_distance(stats(mu1, np.diag(v1)), stats(mu2, np.diag(v2)))
    assert got == pytest.approx(expected, rel=1e-10)


def test_fd_in_one_dimension_is_mean_and_std_differences_squared() -> None:
    got = m.frechet_distance(stats([2.0], [[4.0]]), stats([-1.0], [[1.0]]))
    assert got == pytest.approx((2 + 1) ** 2 + (2 - 1) ** 2)


def test_fd_of_scaled_covariances() -> None:
    """S2 = c S1 commute: Tr(S1 + c S1 - 2 sqrt(c) S1) = (1 - sqrt c)^2 Tr S1."""
    a = np.random.default_rng(1).normal(size=(6, 6))
    s1 = a @ a.T + 0.5 * np.eye(6)
    got = m.frechet_distance(stats([0.0] * 6, s1), stats([0.0] * 6, 4.0 * s1))
    assert got == pytest.approx((1 - 2) ** 2 * np.trace(s1), rel=1e-8)


def test_fd_is_symmetric_for_non_commuting_covariances() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + np.eye(5), b @ b.T + np.eye(5)
    x, y = stats(list(rng.normal(size=5)), s1), stats(list(rng.normal(size=5)), s2)
    assert m.frechet_distance(x, y) == pytest.approx(m.frechet_distance(y, x), rel=1e-8)
    assert m.frechet_distance(x, y) > 0


def test_fd_from_samples_approaches_the_population_value() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, size=(20000, 2))
    y = rng.normal(1.0, 2.0, size=(20000, 2))
    value, _, _ = m.frechet_distance_frames(x, y)
    assert value == pytest.approx(2 * 1.0 + 2 * (2 - 1) ** 2, rel=0.03)  # 4


def test_fd_with_fewer_frames_than_dims_is_finite_and_flagged() -> None:
    rng = np.random.default_rng(4)
    value, a, _ = m.frechet_distance_frames(rng.normal(size=(5, 32)), rng.normal(size=(5, 32)))
    assert math.isfinite(value) and value > 0
    assert a.rank_deficient


def test_fd_needs_two_frames_per_set() -> None:
    with pytest.raises(InvalidRequest, match="at least 2 embedding frames"):
        m.frechet_distance_frames(np.ones((1, 4)), np.ones((3, 4)))


def test_fd_pca_projection() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(50, 64)), rng.normal(size=(50, 64)) + 3.0
    value, a, _ = m.frechet_distance_frames(x, y, pca_dim=8)
    assert a.dim == 8 and not a.rank_deficient and value > 0
    with pytest.raises(InvalidRequest, match="PCA"):
        m.frechet_distance_frames(x, y, pca_dim=500)


def test_fd_rejects_mismatched_dims() -> None:
    with pytest.raises(InvalidRequest, match="sizes differ"):
        m.frechet_distance(stats([0.0], [[1.0]]), stats([0.0, 0.0], np.eye(2)))


def test_kl_of_known_distributions() -> None:
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert m.kl_divergence(p, q) == pytest.approx(expected, abs=1e-5)
    # not symmetric: KL(q || p) is another number
    assert m.kl_divergence(q, p) == pytest.approx(
        0.9 * math.log(1.8) + 0.1 * math.log(0.2), abs=1e-5
    )
    assert m.kl_divergence(p, p) == pytest.approx(0.0, abs=1e-5)
    # 0 log 0 = 0; a zero in the reference is held off by epsilon, not infinite
    assert m.kl_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(
        math.log(2), abs=1e-5
    )
    assert math.isfinite(m.kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0])))


def test_label_distribution_averages_logits_before_the_softmax() -> None:
    logits = np.array([[4.0, 0.0], [0.0, 0.0]])
    p = m.label_distribution(logits)
    assert p == pytest.approx(m.softmax(np.array([2.0, 0.0])))
    assert p.sum() == pytest.approx(1.0)
    mean_of_softmax = m.softmax(logits).mean(axis=0)
    assert not np.allclose(p, mean_of_softmax)


def test_mean_kl_is_per_id_then_averaged() -> None:
    gen = {"a": np.array([[0.0, 0.0]]), "b": np.array([[math.log(9.0), 0.0]])}  # .5/.5, .9/.1
    ref = {"a": np.array([[0.0, 0.0]]), "b": np.array([[0.0, 0.0]])}
    value, per = m.mean_kl(gen, ref)
    kl_b = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert per["a"] == pytest.approx(0.0, abs=1e-5)
    assert per["b"] == pytest.approx(kl_b, abs=1e-5)
    assert value == pytest.approx(kl_b / 2, abs=1e-5)
    with pytest.raises(InvalidRequest, match="one side only"):
        m.mean_kl(gen, {"a": ref["a"]})


def test_scores_are_cosine_times_100() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    b = np.array([[5.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    mean, per = m.paired_score(a, b)
    assert per == pytest.approx([100.0, 0.0, -100.0])
    assert mean == pytest.approx(0.0)
    with pytest.raises(InvalidRequest):
        m.paired_score(a, b[:2])
