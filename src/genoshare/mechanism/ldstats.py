"""Per-column LD statistics of the reference panel (SPEC 2), reduced over tiles.

Only T_jj, S+_j, S-_j and F^2 are ever needed; the 2m x 2m matrix is never formed. Tiles
of SNPs are independent tasks (numba kernels release the GIL); partial sums are reduced
in a fixed tile order, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from genoshare.kernels.ldtile import HALDANE, PROVGEN, ld_tile, pack_bits

ZERO_CELLS = {"haldane": HALDANE, "provgen": PROVGEN}
PROVGEN_Z = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class LDStats:
    t_diag: np.ndarray  # (2m,) T_jj
    s_pos: np.ndarray  # (2m,) sum_{k != j} max(T_jk, 0)
    s_neg: np.ndarray  # (2m,) sum_{k != j} min(T_jk, 0)
    f2: float  # sum over all (j, k) of T_jk^2
    n_ref: int
    zero_cell: str
    window: int | None  # None = all pairs

    @property
    def n_variants(self) -> int:
        return self.t_diag.size // 2


def _log_table(n: int, mode: int) -> np.ndarray:
    x = np.arange(n + 1, dtype=np.float64)
    if mode == HALDANE:
        return np.log(x + 0.5)
    with np.errstate(divide="ignore"):
        return np.log(x)  # entry 0 is never read in provgen mode


def diagonal(count_hi: np.ndarray, count_lo: np.ndarray, n: int, zero_cell: str) -> np.ndarray:
    m1 = np.empty(2 * count_hi.size, dtype=np.float64)
    m1[0::2] = count_hi
    m1[1::2] = count_lo
    m0 = n - m1
    if zero_cell == "haldane":
        return np.log((m1 + 0.5) / (m0 + 0.5))
    return np.log((m1 + PROVGEN_Z) / (m0 + PROVGEN_Z))


def compute_ldstats(
    G_ref: np.ndarray,
    zero_cell: str = "haldane",
    window: int | None = None,
    contigs: np.ndarray | None = None,
    tile: int = 512,
    threads: int | None = None,
    progress=None,
) -> LDStats:
    """LD statistics of a variant-major reference panel (m, n_r) without missing values.

    ``window=None`` uses every pair of SNPs; ``window=W`` only SNPs at most W apart on the
    same contig. ``progress`` is called with the number of tiles finished, if given.
    """
    if zero_cell not in ZERO_CELLS:
        raise ValueError(f"zero_cell must be one of {sorted(ZERO_CELLS)}")
    G_ref = np.ascontiguousarray(G_ref, dtype=np.int8)
    if (G_ref < 0).any():
        raise ValueError("reference panel has missing genotypes")
    m, n = G_ref.shape
    if window is not None and window < 0:
        raise ValueError("window must be >= 0")
    mode = ZERO_CELLS[zero_cell]
    hi, lo = pack_bits(G_ref)
    count_hi = (G_ref == 2).sum(axis=1, dtype=np.int64)
    count_lo = (G_ref >= 1).sum(axis=1, dtype=np.int64)
    if contigs is None:
        contig_codes = np.zeros(m, dtype=np.int64)
    else:
        _, contig_codes = np.unique(np.asarray(contigs), return_inverse=True)
        contig_codes = contig_codes.astype(np.int64)
    logtab = _log_table(n, mode)
    logz = math.log(PROVGEN_Z)
    w = -1 if window is None else int(window)

    starts = list(range(0, m, tile))
    pairs = []
    for a, i0 in enumerate(starts):
        for k0 in starts[a:]:
            if w >= 0 and k0 > i0 + tile - 1 + w:
                break
            pairs.append((i0, k0))

    def run(pair):
        i0, k0 = pair
        i1, k1 = min(i0 + tile, m), min(k0 + tile, m)
        spos_i = np.zeros(2 * (i1 - i0))
        sneg_i = np.zeros_like(spos_i)
        spos_k = np.zeros(2 * (k1 - k0))
        sneg_k = np.zeros_like(spos_k)
        f2 = ld_tile(hi, lo, count_hi, count_lo, contig_codes, i0, i1, k0, k1, w, n, mode,
                     logtab, logz, spos_i, sneg_i, spos_k, sneg_k)
        return spos_i, sneg_i, spos_k, sneg_k, f2

    s_pos = np.zeros(2 * m)
    s_neg = np.zeros(2 * m)
    f2_off = 0.0
    nthreads = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=nthreads) as pool:
        # map() yields in submission order: the reduction order is fixed.
        for done, ((i0, k0), (spi, sni, spk, snk, f2)) in enumerate(zip(pairs, pool.map(run, pairs)), 1):
            s_pos[2 * i0 : 2 * i0 + spi.size] += spi
            s_neg[2 * i0 : 2 * i0 + sni.size] += sni
            s_pos[2 * k0 : 2 * k0 + spk.size] += spk
            s_neg[2 * k0 : 2 * k0 + snk.size] += snk
            f2_off += f2
            if progress is not None:
                progress(done, len(pairs))
    t_diag = diagonal(count_hi, count_lo, n, zero_cell)
    f2 = float(np.sum(t_diag**2) + 2.0 * f2_off)
    return LDStats(t_diag=t_diag, s_pos=s_pos, s_neg=s_neg, f2=f2, n_ref=n, zero_cell=zero_cell,
                   window=None if w < 0 else w)
