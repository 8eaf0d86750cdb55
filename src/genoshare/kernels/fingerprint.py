"""Per-variant digests of a cohort's genotypes, additive over samples (the ledger's cohort fingerprint).

Variant j's digest is ``H[j, l] = sum_i c_ij * w_l(i) mod 2^64`` for lanes l = 0, 1, with c = dosage + 1
(missing -> 0, 0 -> 1, 1 -> 2, 2 -> 3) and per-sample weights ``w_l(i) = splitmix64(2 i + l) | 1``. A sum
over samples can be split at any sample boundary and added back (mod 2^64), so every (variant, sample) chunk of
a store contributes its part on its own Dask worker and the total does not depend on the chunking. Odd weights
make any single changed genotype change the digest (its difference c' - c is 1..3, never 0 mod 2^64); this
identifies a cohort for the ledger, it is not meant to resist someone who crafts collisions on purpose.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LANES = 2


@njit(cache=True, nogil=True)
def _splitmix64(x):
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def sample_weights(s0, s):
    """(s, LANES) uint64 weights of samples s0 .. s0 + s - 1."""
    w = np.empty((s, LANES), dtype=np.uint64)
    for i in range(s):
        for lane in range(LANES):
            w[i, lane] = _splitmix64(np.uint64(LANES) * np.uint64(s0 + i) + np.uint64(lane)) | np.uint64(1)
    return w


@njit(cache=True, nogil=True)
def add_row_digests(G, s0, out):
    """out[j] += this block's part of variant j's digest; G is (v, s) int8 dosage (negative = missing) of
    samples s0 .. s0 + s - 1, out is (v, LANES) uint64 (wrapping addition)."""
    v, s = G.shape
    w = sample_weights(s0, s)
    for j in range(v):
        h0 = np.uint64(0)
        h1 = np.uint64(0)
        for i in range(s):
            g = G[j, i]
            c = np.uint64(g + 1) if g >= 0 else np.uint64(0)
            h0 += c * w[i, 0]
            h1 += c * w[i, 1]
        out[j, 0] += h0
        out[j, 1] += h1
    return out


def row_digests(G: np.ndarray, s0: int = 0) -> np.ndarray:
    """(v, LANES) uint64 digests of a dosage block's rows over samples s0 .. s0 + s - 1."""
    G = np.ascontiguousarray(G, dtype=np.int8)
    return add_row_digests(G, int(s0), np.zeros((G.shape[0], LANES), dtype=np.uint64))
