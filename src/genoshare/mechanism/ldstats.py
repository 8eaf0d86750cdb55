"""Per-column LD statistics of the reference panel (SPEC 2), reduced over tiles.

Only T_jj, S+_j, S-_j and F^2 are ever needed; the 2m x 2m matrix is never formed. The
work is a list of independent tile tasks (``plan_tiles``): with a window W, one task per
block of SNPs covering its pairs up to W SNPs ahead (cost linear in m); with ``all``, one
task per pair of blocks (quadratic). Each task returns partial sums (``tile_partial``)
that ``LDAccumulator`` adds in a fixed task order, so the result depends neither on the
number of threads or workers nor on the order in which tasks finish. The in-memory
function below and the Dask pipeline run the same tasks.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from genoshare.kernels.ldtile import (
    HALDANE,
    PROVGEN,
    TABLE_MAX_N,
    column_layout,
    ld_tile,
    ld_tile_runs,
    pack_columns,
    pair_table,
)

ZERO_CELLS = {"haldane": HALDANE, "provgen": PROVGEN}
PROVGEN_Z = float(np.finfo(np.float64).eps)
# SNPs per task side. All-pairs tasks gain from large tiles (longer runs of equal column count and
# more duplicate columns for ld_tile_runs); a task reads at most 2 x 4096 panel rows (8 kB per member).
DEFAULT_TILE = 4096


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


@dataclass(frozen=True)
class TileTask:
    """Pairs (j, k), j in rows [i0, i1), k in [k0, k1), k > j; diagonal when i0 == k0.

    The task reads SNP rows ``rows()`` of the panel: one contiguous range for windowed
    and diagonal tasks, two for off-diagonal ``all`` tasks.
    """

    i0: int
    i1: int
    k0: int
    k1: int

    @property
    def diagonal(self) -> bool:
        return self.i0 == self.k0

    def rows(self) -> list[tuple[int, int]]:
        if self.diagonal:
            return [(self.i0, max(self.i1, self.k1))]
        return [(self.i0, self.i1), (self.k0, self.k1)]


def check_zero_cell(zero_cell: str) -> int:
    if zero_cell not in ZERO_CELLS:
        raise ValueError(f"zero_cell must be one of {sorted(ZERO_CELLS)}")
    return ZERO_CELLS[zero_cell]


def plan_tiles(m: int, window: int | None, tile: int = DEFAULT_TILE) -> list[TileTask]:
    if window is not None and window < 0:
        raise ValueError("window must be >= 0")
    starts = range(0, m, tile)
    if window is not None:
        return [TileTask(a, min(a + tile, m), a, min(a + tile + window, m)) for a in starts]
    return [TileTask(a, min(a + tile, m), c, min(c + tile, m)) for a in starts for c in starts if c >= a]


def _log_table(n: int, mode: int) -> np.ndarray:
    x = np.arange(n + 1, dtype=np.float64)
    if mode == HALDANE:
        return np.log(x + 0.5)
    with np.errstate(divide="ignore"):
        return np.log(x)  # entry 0 is never used in provgen mode


_LOGZ = math.log(PROVGEN_Z)
_TABLES: dict[tuple[int, int], np.ndarray] = {}
_TABLES_LOCK = threading.Lock()


def _t_table(n: int, mode: int) -> np.ndarray:
    """The kernel's lookup table for a panel of n: every possible T for small panels (built once
    per process), else the log table."""
    key = (n, mode)
    tab = _TABLES.get(key)
    if tab is None:
        with _TABLES_LOCK:
            tab = _TABLES.get(key)
            if tab is None:
                logtab = _log_table(n, mode)
                tab = pair_table(n, mode, logtab, _LOGZ) if n <= TABLE_MAX_N else logtab
                tab.setflags(write=False)
                _TABLES[key] = tab
    return tab


def _run_ends(contig: np.ndarray) -> np.ndarray:
    """run_end[k] = index just after the run of equal contig labels that contains k."""
    r = contig.size
    if r == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.append(np.flatnonzero(contig[1:] != contig[:-1]) + 1, r)
    return np.repeat(ends, np.diff(ends, prepend=0)).astype(np.int64)


def tile_partial(
    task: TileTask, G_rows: np.ndarray, contig_rows: np.ndarray, window: int | None, zero_cell: str, n_ref: int
):
    """Partial sums of one task from its panel rows (``task.rows()`` stacked, (r, n_ref) int8).

    Returns (spos_i, sneg_i, spos_k, sneg_k, f2_offdiagonal) with local column indexing.
    All arithmetic, hence every rounding, happens here: whoever runs a task gets the same bits.
    """
    mode = check_zero_cell(zero_cell)
    if window is not None and not task.diagonal:
        raise ValueError("windowed tasks must be diagonal")
    G_rows = np.ascontiguousarray(G_rows, dtype=np.int8)
    WT, counts = pack_columns(G_rows)
    ni = task.i1 - task.i0
    nk = task.k1 - task.k0
    spos_i = np.zeros(2 * ni)
    sneg_i = np.zeros_like(spos_i)
    spos_k = np.zeros(2 * nk)
    sneg_k = np.zeros_like(spos_k)
    tab = _t_table(n_ref, mode)
    if window is None and n_ref <= TABLE_MAX_N:
        # All pairs: free partner order, so deduplicated count-sorted layouts (see ld_tile_runs).
        if task.diagonal:
            pos, LW, lw, lcnt, rs, rc, rf = column_layout(WT, counts, 0, 2 * ni)
            spi, sni = np.zeros(lw.size), np.zeros(lw.size)
            spk, snk = np.zeros(lw.size), np.zeros(lw.size)
            f2 = ld_tile_runs(LW, lw, lcnt, LW, lw, rs, rc, rf, True, n_ref, tab, spi, sni, spk, snk)
            spos_i[:], sneg_i[:], spos_k[:], sneg_k[:] = spi[pos], sni[pos], spk[pos], snk[pos]
        else:
            ipos, IW, iw, icnt, _, _, _ = column_layout(WT, counts, 0, 2 * ni)
            kpos, KW, kw, _, rs, rc, rf = column_layout(WT, counts, 2 * ni, 2 * (ni + nk))
            spi, sni = np.zeros(iw.size), np.zeros(iw.size)
            spk, snk = np.zeros(kw.size), np.zeros(kw.size)
            f2 = ld_tile_runs(IW, iw, icnt, KW, kw, rs, rc, rf, False, n_ref, tab, spi, sni, spk, snk)
            spos_i[:], sneg_i[:], spos_k[:], sneg_k[:] = spi[ipos], sni[ipos], spk[kpos], snk[kpos]
        return spos_i, sneg_i, spos_k, sneg_k, f2
    w = -1 if window is None else int(window)
    contig = np.ascontiguousarray(contig_rows, dtype=np.int64)
    f2 = ld_tile(
        WT,
        counts,
        contig,
        _run_ends(contig),
        ni,
        0 if task.diagonal else ni,
        nk,
        task.diagonal,
        w,
        n_ref,
        mode,
        n_ref <= TABLE_MAX_N,
        tab,
        _LOGZ,
        spos_i,
        sneg_i,
        spos_k,
        sneg_k,
    )
    return spos_i, sneg_i, spos_k, sneg_k, f2


def diagonal(count_hi: np.ndarray, count_lo: np.ndarray, n: int, zero_cell: str) -> np.ndarray:
    m1 = np.empty(2 * count_hi.size, dtype=np.float64)
    m1[0::2] = count_hi
    m1[1::2] = count_lo
    m0 = n - m1
    if zero_cell == "haldane":
        return np.log((m1 + 0.5) / (m0 + 0.5))
    return np.log((m1 + PROVGEN_Z) / (m0 + PROVGEN_Z))


class LDAccumulator:
    """Adds task partials into the global statistics; call ``add`` in task order."""

    def __init__(self, m: int, n_ref: int, zero_cell: str, window: int | None):
        check_zero_cell(zero_cell)
        self.m, self.n_ref, self.zero_cell, self.window = m, n_ref, zero_cell, window
        self.s_pos = np.zeros(2 * m)
        self.s_neg = np.zeros(2 * m)
        self.count_hi = np.zeros(m, dtype=np.int64)
        self.count_lo = np.zeros(m, dtype=np.int64)
        self.f2_off = 0.0

    def add(self, task: TileTask, partial) -> None:
        spi, sni, spk, snk, f2 = partial
        self.s_pos[2 * task.i0 : 2 * task.i1] += spi
        self.s_neg[2 * task.i0 : 2 * task.i1] += sni
        self.s_pos[2 * task.k0 : 2 * task.k1] += spk
        self.s_neg[2 * task.k0 : 2 * task.k1] += snk
        self.f2_off += f2

    def set_counts(self, count_hi: np.ndarray, count_lo: np.ndarray) -> None:
        self.count_hi[:] = count_hi
        self.count_lo[:] = count_lo

    def result(self) -> LDStats:
        t_diag = diagonal(self.count_hi, self.count_lo, self.n_ref, self.zero_cell)
        f2 = float(np.sum(t_diag**2) + 2.0 * self.f2_off)
        return LDStats(
            t_diag=t_diag,
            s_pos=self.s_pos,
            s_neg=self.s_neg,
            f2=f2,
            n_ref=self.n_ref,
            zero_cell=self.zero_cell,
            window=self.window,
        )


def contig_codes(contigs, m: int) -> np.ndarray:
    if contigs is None:
        return np.zeros(m, dtype=np.int64)
    _, codes = np.unique(np.asarray(contigs), return_inverse=True)
    return codes.astype(np.int64)


def compute_ldstats(
    G_ref: np.ndarray,
    zero_cell: str = "haldane",
    window: int | None = None,
    contigs: np.ndarray | None = None,
    tile: int = DEFAULT_TILE,
    threads: int | None = None,
    progress=None,
) -> LDStats:
    """LD statistics of an in-memory variant-major panel (m, n_r) without missing values.

    ``window=None`` uses every pair of SNPs; ``window=W`` only SNPs at most W apart on the
    same contig. ``progress(done, total)`` is called as tasks finish, if given.
    """
    check_zero_cell(zero_cell)
    G_ref = np.ascontiguousarray(G_ref, dtype=np.int8)
    if (G_ref < 0).any():
        raise ValueError("reference panel has missing genotypes")
    m, n = G_ref.shape
    codes = contig_codes(contigs, m)
    tasks = plan_tiles(m, window, tile)

    def run(task: TileTask):
        rows = task.rows()
        G = np.concatenate([G_ref[a:b] for a, b in rows]) if len(rows) > 1 else G_ref[rows[0][0] : rows[0][1]]
        c = np.concatenate([codes[a:b] for a, b in rows])
        return tile_partial(task, G, c, window, zero_cell, n)

    acc = LDAccumulator(m, n, zero_cell, window)
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        # map() yields in submission order: the reduction order is fixed.
        for done, (task, partial) in enumerate(zip(tasks, pool.map(run, tasks)), 1):
            acc.add(task, partial)
            if progress is not None:
                progress(done, len(tasks))
    acc.set_counts((G_ref == 2).sum(axis=1), (G_ref >= 1).sum(axis=1))
    return acc.result()
