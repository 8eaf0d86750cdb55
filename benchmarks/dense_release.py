"""The release done the dense way: the baseline genoshare is measured against.

What a straightforward numpy implementation of SPEC 1-4 does:
  1. LD statistics from the full 2m x 2m matrix of log odds ratios (``dense_ldstats`` of
     tests/dense_reference.py, written from SPEC alone: matrix products of the encoded panel,
     window all);
  2. p_j from the dense formulas at the scale c whose true epsilon equals the request (plain
     bracket-and-bisect on the quantised p_j, like ``calibration: exact``);
  3. the cohort encoded as an n x 2m bit matrix, numpy Bernoulli(p_j) noise XORed onto it;
  4. naive minimal-flip restoration to the published allele counts: per SNP, choose
     floor(|noisy count - original count|) of the eligible bits uniformly at random (numpy
     ``choice`` without replacement) and flip them.
It uses numpy's PCG64 for the noise, which is fine for a timing baseline but NOT for a real
release (SPEC 3: randomness must be cryptographic).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"


def dense_reference():
    """The tests' dense reference module (tests/ is not a package)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import dense_reference  # noqa: PLC0415

    return dense_reference


def dense_exact_scale(dr, stats: dict, m: int, epsilon: float, iters: int = 200) -> float:
    """Smallest-ish c with eps_xor(quantised p(c)) = epsilon: double until reached, then bisect."""

    def eps_at(c):
        return dr.dense_eps_xor(
            dr.dense_quantise(dr.dense_flip_probs(stats["t_diag"], stats["s_pos"], stats["s_neg"], c))
        )

    c = dr.dense_nominal_c(stats["f2"], m, epsilon) * 1e-6
    lo = 0.0
    while eps_at(c) < epsilon:
        lo = c
        c *= 1.05
        if c > 1e12:
            return lo
    hi = c
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if eps_at(mid) > epsilon:
            hi = mid
        else:
            lo = mid
        if epsilon - eps_at(lo) <= 1e-9 * epsilon:
            break
    return lo


def dense_release(G: np.ndarray, G_ref: np.ndarray, epsilon: float, zero_cell: str = "haldane", seed: int = 0) -> dict:
    """Release variant-major G (m, n) the dense way; returns the released genotypes and timings."""
    dr = dense_reference()
    rng = np.random.default_rng(seed)
    timings = {}
    t0 = time.perf_counter()
    stats = dr.dense_ldstats(G_ref, zero_cell=zero_cell, window=None)
    t1 = time.perf_counter()
    timings["ldstats"] = t1 - t0

    m, n = G.shape
    c = dense_exact_scale(dr, stats, m, epsilon)
    p = dr.dense_quantise(dr.dense_flip_probs(stats["t_diag"], stats["s_pos"], stats["s_neg"], c))
    t2 = time.perf_counter()
    timings["calibrate"] = t2 - t1

    missing = G < 0  # (m, n)
    B = dr.dense_encode(G)  # (n, 2m) uint8, missing -> 00
    N = (rng.random(B.shape) < p[None, :]).astype(np.uint8)
    Bn = B ^ N
    t3 = time.perf_counter()
    timings["noise"] = t3 - t2

    target = np.where(missing, 0, G).sum(axis=1)  # published allele counts
    flips = 0
    for j in range(m):
        rows = np.flatnonzero(~missing[j])
        bits = Bn[rows][:, 2 * j : 2 * j + 2]  # (n_j, 2)
        diff = int(bits.sum()) - int(target[j])
        if diff == 0:
            continue
        want = 1 if diff > 0 else 0  # flip bits that are 1 (too many ones) or 0 (too few)
        eligible = np.flatnonzero(bits.ravel() == want)
        k = min(abs(diff), eligible.size)
        pick = rng.choice(eligible, size=k, replace=False)
        r, b = np.divmod(pick, 2)
        Bn[rows[r], 2 * j + b] ^= 1
        flips += k
    S = dr.dense_decode(Bn, missing)
    t4 = time.perf_counter()
    timings["restore"] = t4 - t3
    timings["total"] = t4 - t0
    return {"genotypes": S, "stats": stats, "c": c, "p": p, "flips": flips, "timings": timings}
