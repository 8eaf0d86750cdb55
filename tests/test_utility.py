"""Utility metrics (SPEC 5): package utility_metrics vs the dense reference."""

import numpy as np
import pytest

from dense_reference import dense_utility, simulate_genotypes

KEYS = ("point_error", "sample_error", "mean_error", "variance_error")


def test_dense_utility_hand_example():
    G = np.array([[0, 1], [2, 2]], dtype=np.int8)  # m=2 SNPs, n=2 individuals
    S = np.array([[1, 1], [2, 0]], dtype=np.int8)
    u = dense_utility(G, S)
    assert u["point_error"] == pytest.approx(2 / 4)
    assert u["sample_error"] == pytest.approx((1 / 2 + 2 / 2) / 2)
    assert u["mean_error"] == pytest.approx((0.5 + 1.0) / 2)
    assert u["variance_error"] == pytest.approx((0.25 + 1.0) / 2)
    z = dense_utility(G, G)
    assert all(z[k] == 0 for k in KEYS)


def test_dense_utility_hand_example_with_missing():
    G = np.array([[0, 1, -1], [2, 2, 1]], dtype=np.int8)  # individual 2 misses SNP 0
    S = np.array([[1, 1, -1], [2, 0, 0]], dtype=np.int8)
    u = dense_utility(G, S)
    assert u["point_error"] == pytest.approx(3 / 5)
    assert u["sample_error"] == pytest.approx((1 / 2 + 2 / 2 + 1 / 1) / 3)  # individual 2: L1 over its 1 SNP
    # SNP0: g (0,1) s (1,1); SNP1: g (2,2,1) s (2,0,0)
    assert u["mean_error"] == pytest.approx((0.5 + abs(2 / 3 - 5 / 3)) / 2)
    assert u["variance_error"] == pytest.approx((0.25 + abs(np.var([2, 0, 0]) - np.var([2, 2, 1]))) / 2)


def _noisy_copy(G, rng, rate):
    S = G.copy()
    change = (rng.random(G.shape) < rate) & (G >= 0)
    S[change] = rng.integers(0, 3, size=int(change.sum())).astype(np.int8)
    return S


@pytest.mark.parametrize("m,n,missing,rate", [(1, 1, 0.0, 0.5), (50, 40, 0.0, 0.3), (200, 131, 0.0, 0.05)])
def test_utility_matches_dense_no_missing(m, n, missing, rate):
    from genoshare.evaluate.utility import utility_metrics

    rng = np.random.default_rng(m * 31 + n)
    G = simulate_genotypes(rng, m, n, missing_rate=missing)
    S = _noisy_copy(G, rng, rate)
    got = utility_metrics(G, S)
    want = dense_utility(G, S)
    for k in KEYS:
        assert float(got[k]) == pytest.approx(want[k], rel=1e-12, abs=1e-15), k


@pytest.mark.parametrize("m,n,missing,rate", [(30, 25, 0.1, 0.3), (173, 90, 0.05, 0.4), (64, 200, 0.3, 0.1)])
def test_utility_matches_dense_with_missing(m, n, missing, rate):
    """Missing cells (same in G and S, as in a release) are excluded from every metric."""
    from genoshare.evaluate.utility import utility_metrics

    rng = np.random.default_rng(m * 17 + n)
    G = simulate_genotypes(rng, m, n, missing_rate=missing)
    S = _noisy_copy(G, rng, rate)
    assert (G < 0).any() and np.array_equal(G < 0, S < 0)
    got = utility_metrics(G, S)
    want = dense_utility(G, S)
    for k in KEYS:
        assert float(got[k]) == pytest.approx(want[k], rel=1e-12, abs=1e-15), k
