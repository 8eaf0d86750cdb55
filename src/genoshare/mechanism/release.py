"""The release of an in-memory genotype matrix (SPEC 3-4): noise, XOR, minimal flips.

Every variant's restoration needs only that variant's counts over all samples, so a chunk
of variants holding every sample is released in one pass; the blockwise pipeline splits
the same work into two passes over (variant, sample) chunks and gives identical output.
The result depends on the sample block size (the hypergeometric split is over sample
blocks) but not on variant chunking or threads: all randomness is position-addressed.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from genoshare.kernels.noise import apply_flips, decode_codes, noise_xor_count, plan_chunk
from genoshare.mechanism.keystream import ReleaseKeys, flip_words, noise_words, split_uniforms

DEFAULT_SAMPLE_BLOCK = 10_000
DEFAULT_VARIANT_CHUNK = 512
NOISE_WINDOW_BYTES = 4 << 20


@dataclass(frozen=True)
class ReleaseResult:
    genotypes: np.ndarray  # (m, n) int8, -1 missing
    flips: int  # bits changed by the restoration
    flips_down: int  # 1 -> 0 bits (noisy frequency above target)
    flips_up: int
    n_missing: int
    sample_block: int


def n_blocks(n_samples: int, sample_block: int) -> int:
    return max(1, -(-n_samples // sample_block))


def noisy_codes(
    G: np.ndarray, thresholds: np.ndarray, keys: ReleaseKeys, v0: int, s0: int, n_total: int, sample_block: int
):
    """Pass 1 of a chunk: XOR-noised codes plus per-block 1-bit and non-missing counts.

    ``thresholds`` holds the chunk's 2v column thresholds (high, low per variant). ``s0``
    must fall on a sample-block boundary; counts cover the blocks the chunk spans.
    """
    v, s = G.shape
    nb = n_blocks(s, sample_block)
    codes = np.empty((v, s), dtype=np.uint8)
    ones = np.zeros((v, nb), dtype=np.int64)
    nonmiss = np.zeros((v, nb), dtype=np.int64)
    t_hi, t_lo = thresholds[0::2].copy(), thresholds[1::2].copy()
    # The keystream goes through a few-MB window of rows: touching fresh pages costs far more
    # than AES here, and a small buffer is reused by the allocator instead of faulted in anew.
    step = max(1, NOISE_WINDOW_BYTES // (8 * max(s, 1)))
    for a in range(0, v, step):
        b = min(a + step, v)
        words = noise_words(keys.noise, n_total, v0 + a, v0 + b, s0, s0 + s)
        noise_xor_count(G[a:b], words, t_hi[a:b], t_lo[a:b], sample_block, codes[a:b], ones[a:b], nonmiss[a:b])
    return codes, ones, nonmiss


def plan(ones: np.ndarray, nonmiss: np.ndarray, target_counts: np.ndarray, keys: ReleaseKeys, v0: int):
    """Flip counts per (variant, sample block) and direction, from global per-block counts."""
    v, nb = ones.shape
    u = split_uniforms(keys.split, nb, v0, v0 + v)
    k = np.zeros((v, nb), dtype=np.int64)
    direction = np.zeros(v, dtype=np.int8)
    plan_chunk(ones, nonmiss, np.asarray(target_counts, dtype=np.float64), u, k, direction)
    return k, direction


def eligible_bits(ones: np.ndarray, nonmiss: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Bits a restoration may flip in a block, from its pass-1 counts: the 1-bits when flipping down,
    the 0-bits of called genotypes when flipping up."""
    return np.where(direction < 0, ones, 2 * nonmiss - ones).astype(np.int64)


def restore(
    codes: np.ndarray,
    k_block: np.ndarray,
    direction: np.ndarray,
    keys: ReleaseKeys,
    v0: int,
    s0: int,
    n_total: int,
    eligible: np.ndarray | None = None,
) -> None:
    """Apply one sample block's share of the flips to its noisy codes, in place.

    ``eligible``: the block's eligible bits per variant (:func:`eligible_bits`) if known; else counted here.
    """
    v, s = codes.shape
    k_block = np.ascontiguousarray(k_block, dtype=np.int64)
    words, first = flip_words(keys.flip, n_total, v0, s0, k_block)
    eligible = np.full(v, -1, dtype=np.int64) if eligible is None else np.ascontiguousarray(eligible, np.int64)
    apply_flips(codes, words, first, k_block, direction, np.empty(2 * s + 1, dtype=np.uint8), eligible)


def target_counts_published(G: np.ndarray) -> np.ndarray:
    """The cohort's own allele counts (the frequencies a paper publishes)."""
    return np.where(G >= 0, G, 0).sum(axis=1, dtype=np.int64).astype(np.float64)


def target_counts_from_af(G: np.ndarray, af: np.ndarray) -> np.ndarray:
    """2 n_j f_j over each SNP's non-missing genotypes; NaN frequency = no restoration."""
    n_j = (G >= 0).sum(axis=1)
    return 2.0 * n_j * np.asarray(af, dtype=np.float64)


def release_genotypes(
    G: np.ndarray,
    thresholds: np.ndarray,
    target_counts: np.ndarray,
    keys: ReleaseKeys,
    sample_block: int = DEFAULT_SAMPLE_BLOCK,
    variant_chunk: int = DEFAULT_VARIANT_CHUNK,
    threads: int | None = None,
    progress=None,
) -> ReleaseResult:
    """Release a variant-major matrix G (m, n) int8 with -1 missing.

    thresholds: (2m,) uint32 from the calibration; target_counts: (m,) allele counts to
    restore (NaN: leave that SNP's frequency as the noise left it).
    """
    G = np.ascontiguousarray(G, dtype=np.int8)
    m, n = G.shape
    if thresholds.shape != (2 * m,):
        raise ValueError("thresholds must have 2m entries")
    if sample_block < 1 or variant_chunk < 1:
        raise ValueError("chunk sizes must be positive")
    out = np.empty((m, n), dtype=np.int8)
    starts = list(range(0, m, variant_chunk))
    lock = threading.Lock()
    totals = {"down": 0, "up": 0, "done": 0}

    def run(v0: int) -> None:
        v1 = min(v0 + variant_chunk, m)
        chunk = G[v0:v1]
        codes, ones, nonmiss = noisy_codes(chunk, thresholds[2 * v0 : 2 * v1], keys, v0, 0, n, sample_block)
        k, direction = plan(ones, nonmiss, target_counts[v0:v1], keys, v0)
        for b, s0 in enumerate(range(0, n, sample_block)):
            s1 = min(s0 + sample_block, n)
            block = codes[:, s0:s1].copy()
            restore(block, k[:, b], direction, keys, v0, s0, n, eligible_bits(ones[:, b], nonmiss[:, b], direction))
            codes[:, s0:s1] = block
        out[v0:v1] = decode_codes(codes)
        kk = k.sum(axis=1)
        with lock:
            totals["down"] += int(kk[direction < 0].sum())
            totals["up"] += int(kk[direction > 0].sum())
            totals["done"] += v1 - v0
            if progress is not None:
                progress(totals["done"], m)

    nthreads = threads or os.cpu_count() or 1
    if nthreads == 1:
        for v0 in starts:
            run(v0)
    else:
        with ThreadPoolExecutor(max_workers=nthreads) as pool:
            list(pool.map(run, starts))
    return ReleaseResult(
        genotypes=out,
        flips=totals["down"] + totals["up"],
        flips_down=totals["down"],
        flips_up=totals["up"],
        n_missing=int(np.count_nonzero(G < 0)),
        sample_block=sample_block,
    )
