"""The blockwise release over VCF Zarr: the only place that builds Dask graphs for a release.

Data flow (docs/architecture.md): panel tiles -> LD statistics (epsilon-free) -> flip
rates; pass 1 over (variant, sample) chunks: encode, noise, XOR, count -> per-block noisy
allele counts -> reduction over the sample blocks of each variant chunk -> flip plan
(multivariate hypergeometric split over sample chunks) -> pass 2: flip pass 1's noisy codes,
decode, write. Every task reads its own chunk from the store (or takes its pass-1 task's
output) and derives its randomness from (key, position), so the output is the in-memory engine's output for any variant chunking, worker count,
retry or execution order; only the sample chunk size (the flip-split block) matters.
"""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import zarr
from dask.highlevelgraph import HighLevelGraph

from genoshare.errors import GenoshareError
from genoshare.kernels.fingerprint import LANES, add_row_digests
from genoshare.kernels.noise import calls_from_codes, dosage_from_calls, pack_codes, unpack_codes
from genoshare.mechanism.keystream import ReleaseKeys
from genoshare.mechanism.ldstats import DEFAULT_TILE, LDAccumulator, LDStats, TileTask, plan_tiles, tile_partial
from genoshare.mechanism.release import eligible_bits, noisy_codes, plan, restore

# ----------------------------------------------------------------------------------------------
# LD statistics of the aligned panel


def _panel_rows(panel_path: str, panel_index: np.ndarray, swap: np.ndarray) -> np.ndarray:
    """Dosage of the given panel variants (in this order), recoded to the cohort's ALT allele."""
    z = zarr.open_array(f"{panel_path}/call_genotype", mode="r")
    order = np.argsort(panel_index, kind="stable")
    calls = z.get_orthogonal_selection((panel_index[order], slice(None), slice(None)))
    G = np.empty((panel_index.size, z.shape[1]), dtype=np.int8)
    G[order] = dosage_from_calls(np.ascontiguousarray(calls))
    if (G < 0).any():
        bad = int((G < 0).any(axis=1).sum())
        raise GenoshareError(f"{panel_path}: reference panel has missing genotypes at {bad} of the aligned sites "
                             "(impute or drop them first: the LD statistics need complete panel genotypes)")
    G[swap] = 2 - G[swap]
    return G


def _ld_task(task: TileTask, panel_path: str, panel_index: np.ndarray, swap: np.ndarray, codes: np.ndarray,
             window, zero_cell: str, n_ref: int):
    rows = task.rows()
    idx = np.concatenate([panel_index[a:b] for a, b in rows])
    sw = np.concatenate([swap[a:b] for a, b in rows])
    G = _panel_rows(panel_path, idx, sw)
    c = np.concatenate([codes[a:b] for a, b in rows])
    partial = tile_partial(task, G, c, window, zero_cell, n_ref)
    counts = None
    if task.diagonal:
        gi = G[: task.i1 - task.i0]
        counts = ((gi == 2).sum(axis=1), (gi >= 1).sum(axis=1))
    return partial, counts


def panel_ldstats(client, panel_path: str, panel_index: np.ndarray, panel_swap: np.ndarray,
                  contig_codes: np.ndarray, n_ref: int, window: int | None, zero_cell: str,
                  tile: int = DEFAULT_TILE, progress=None) -> tuple[LDStats, np.ndarray]:
    """LD statistics of the panel at the aligned sites, and the panel's ALT frequencies there."""
    m = panel_index.size
    tasks = plan_tiles(m, window, tile)
    args = [client.scatter(x, broadcast=True) for x in (panel_index, panel_swap, contig_codes)]
    futures = client.map(_ld_task, tasks, panel_path=str(panel_path), panel_index=args[0], swap=args[1],
                         codes=args[2], window=window, zero_cell=zero_cell, n_ref=n_ref, pure=False)
    if progress is not None:
        progress(futures)
    acc = LDAccumulator(m, n_ref, zero_cell, window)
    count_hi = np.zeros(m, dtype=np.int64)
    count_lo = np.zeros(m, dtype=np.int64)
    # Gather in task order: the reduction order, hence every bit of the result, is fixed.
    for task, fut in zip(tasks, futures):
        partial, counts = fut.result()
        acc.add(task, partial)
        if counts is not None:
            count_hi[task.i0 : task.i1], count_lo[task.i0 : task.i1] = counts
        fut.release()
    acc.set_counts(count_hi, count_lo)
    return acc.result(), (count_hi + count_lo) / (2.0 * n_ref)


# ----------------------------------------------------------------------------------------------
# The two passes


@dataclass(frozen=True)
class _Layout:
    n_total: int
    cv: int
    cs: int


def _pass1_task(calls, thresholds, keys: ReleaseKeys, layout: _Layout, c: int, b: int):
    """Pass 1 of chunk (c, b): (per-variant [1-bits, called, original ALT count] (v, 3), packed noisy codes)."""
    v0, s0 = c * layout.cv, b * layout.cs
    G = dosage_from_calls(calls)
    codes, ones, nonmiss = noisy_codes(G, thresholds.ravel(), keys, v0, s0, layout.n_total, layout.cs)
    original = np.where(G >= 0, G, 0).sum(axis=1, dtype=np.int64)
    return np.stack([ones[:, 0], nonmiss[:, 0], original], axis=1), pack_codes(codes)


def _pass2_task(part, planned, keys: ReleaseKeys, layout: _Layout, c: int, b: int, s: int):
    """Pass 2 of chunk (c, b): pass 1's noisy codes, this sample block's share of the flips, decoded.
    Returns (calls (v, s, 2), ALT alleles written per variant (v, 1))."""
    v0, s0 = c * layout.cv, b * layout.cs
    codes = unpack_codes(part[1], s)
    k = planned[0][:, b]
    direction = np.sign(k).astype(np.int8)
    restore(codes, np.abs(k), direction, keys, v0, s0, layout.n_total,
            eligible_bits(part[0][:, 0], part[0][:, 1], direction))
    alt = np.empty(codes.shape[0], dtype=np.int64)
    calls = calls_from_codes(codes, np.empty((codes.shape[0], s, 2), dtype=np.int8), alt)
    return calls, alt[:, None]


def cohort_calls(cohort_path: str, variant_index: np.ndarray | None, chunks: tuple[int, int]) -> da.Array:
    """call_genotype of the kept variants as a Dask array with regular (cv, cs, 2) chunks."""
    z = zarr.open_array(f"{cohort_path}/call_genotype", mode="r")
    if z.ndim != 3 or z.shape[2] != 2:
        raise GenoshareError(f"{cohort_path}: call_genotype must be variants x samples x 2 (diploid), got {z.shape}")
    calls = da.from_zarr(z)
    if variant_index is not None and not (variant_index.size == z.shape[0]
                                          and np.array_equal(variant_index, np.arange(z.shape[0]))):
        calls = calls[variant_index]
    cv, cs = chunks
    return calls.rechunk((cv, cs, 2))


def cohort_digests(cohort_path: str) -> da.Array:
    """(m, 2) uint64 per-variant digests of every variant of a store (the ledger's cohort fingerprint,
    genoshare.privacy.ledger), blockwise on the store's own chunks (lazy: compute it on the client)."""
    z = zarr.open_array(f"{cohort_path}/call_genotype", mode="r")
    calls = da.from_zarr(z)
    cs = calls.chunksize[1]
    parts = da.map_blocks(_digest_block, calls, cs, dtype=np.uint64, drop_axis=2, new_axis=2,
                          chunks=(calls.chunks[0], (1,) * len(calls.chunks[1]), (LANES,)), name="genoshare-digest")
    return parts.sum(axis=1, dtype=np.uint64)  # uint64 addition wraps: the digests' mod 2^64


def _digest_block(calls, cs: int, block_id=None):
    return add_row_digests(dosage_from_calls(calls), block_id[1] * cs,
                           np.zeros((calls.shape[0], LANES), dtype=np.uint64))[:, None, :]


SUMMARY = 5  # per-variant columns of the plan: original, called, released, 1->0 flips, 0->1 flips


@dataclass(frozen=True)
class PassResult:
    flips: int
    flips_down: int
    flips_up: int
    n_missing: int
    original_counts: np.ndarray  # (m,) ALT allele counts of the cohort (never written anywhere)
    n_called: np.ndarray  # (m,) non-missing genotypes per variant
    released_counts: np.ndarray  # (m,) ALT allele counts of the release


def _plan_task(parts, target_af, keys: ReleaseKeys, target_fn, layout: _Layout, c: int):
    """Flip plan of variant chunk c from its sample blocks' pass-1 counts.

    Returns (k_signed (v, nb): signed flip count per sample block (sign = direction), summary (v, SUMMARY): per
    variant the original ALT count, called genotypes, released ALT count, 1->0 and 0->1 flips).
    """
    v0 = c * layout.cv
    counts = np.stack([p[0] for p in parts], axis=1)  # (v, nb, 3)
    ones, called = counts[..., 0], counts[..., 1]
    original = counts[..., 2].sum(axis=1)
    n_called = called.sum(axis=1)
    if target_fn is not None:
        targets = target_fn(original, n_called, v0)
    elif np.isnan(target_af).all():
        targets = original.astype(np.float64)  # published: the cohort's own frequencies
    else:
        targets = 2.0 * n_called * target_af
    k, direction = plan(ones, called, targets, keys, v0)
    k_signed = k * direction[:, None]
    flips = k.sum(axis=1)
    summary = np.stack([original, n_called, ones.sum(axis=1) + k_signed.sum(axis=1),
                        np.where(direction < 0, flips, 0), np.where(direction > 0, flips, 0)], axis=1)
    return k_signed, summary


def release_passes(calls: da.Array, thresholds: np.ndarray, keys: ReleaseKeys, target_af: np.ndarray | None,
                   out_group: zarr.Group, progress=None, target_fn=None) -> PassResult:
    """Run pass 1, the flip plan and pass 2, writing call_genotype/mask/phased into ``out_group``.

    Targets of the restoration: ``target_af`` None restores the cohort's own (published)
    frequencies, an (m,) array those ALT frequencies (NaN: leave that SNP as the noise left
    it); ``target_fn(original_counts, n_called, v0) -> target ALT counts`` (picklable) overrides
    both, e.g. for DP frequencies.

    One graph, no global barrier: a variant chunk's plan needs only that chunk's counts, so its
    pass 2 starts as soon as its own pass-1 tasks are done, and takes their (packed) noisy codes
    instead of reading the store and regenerating the noise again. Only a few chunks' codes are
    in memory at a time, and only per-variant totals come back to this process.
    """
    m, n, _ = calls.shape
    vchunks, schunks = calls.chunks[0], calls.chunks[1]
    layout = _Layout(n_total=n, cv=calls.chunksize[0], cs=calls.chunksize[1])
    nb = len(schunks)
    thresholds = np.ascontiguousarray(thresholds, dtype=np.uint32).reshape(m, 2)
    af = np.full(m, np.nan) if target_af is None else np.asarray(target_af, dtype=np.float64)
    # A random token, not a hash of the arguments: the graph must not carry anything derived from the keys.
    tok = uuid.uuid4().hex
    p1, pl, p2, rel, alt, sm = (f"genoshare-{what}-{tok}"
                                for what in ("pass1", "plan", "pass2", "released", "written", "summary"))
    dsk = {}
    v0 = 0
    for c, cv in enumerate(vchunks):
        rows = slice(v0, v0 + cv)
        for b in range(nb):
            dsk[(p1, c, b)] = (_pass1_task, (calls.name, c, b, 0), thresholds[rows], keys, layout, c, b)
        dsk[(pl, c)] = (_plan_task, [(p1, c, b) for b in range(nb)], af[rows], keys, target_fn, layout, c)
        for b, s in enumerate(schunks):
            dsk[(p2, c, b)] = (_pass2_task, (p1, c, b), (pl, c), keys, layout, c, b, s)
            dsk[(rel, c, b, 0)] = (operator.getitem, (p2, c, b), 0)
            dsk[(alt, c, b)] = (operator.getitem, (p2, c, b), 1)
        dsk[(sm, c, 0)] = (operator.getitem, (pl, c), 1)
        v0 += cv
    def array(name, chunks, dtype):  # the three outputs share the tasks; Dask merges them on compute
        return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=[calls]), name, chunks=chunks,
                        dtype=dtype)

    released = array(rel, calls.chunks, np.int8)
    summary = array(sm, (vchunks, (SUMMARY,)), np.int64)
    written = array(alt, (vchunks, (1,) * nb), np.int64).sum(axis=1)
    mask = released < 0
    phased = da.zeros((m, n), dtype=bool, chunks=(vchunks, schunks))
    store = da.store([released, mask, phased],
                     [out_group["call_genotype"], out_group["call_genotype_mask"], out_group["call_genotype_phased"]],
                     lock=False, compute=False)
    _, summary, written = _compute((store, summary, written), progress)

    original, n_called, released_counts, down, up = summary.T
    if not np.array_equal(written, released_counts):
        bad = int(np.flatnonzero(written != released_counts)[0])
        raise GenoshareError(f"internal error: variant {bad} was written with {int(written[bad])} ALT alleles, "
                             f"the plan says {int(released_counts[bad])}; nothing was released")
    down, up = int(down.sum()), int(up.sum())
    return PassResult(flips=down + up, flips_down=down, flips_up=up, n_missing=int(m * n - n_called.sum()),
                      original_counts=original, n_called=n_called, released_counts=released_counts)


def _compute(collections, progress):
    if progress is None:
        return dask.compute(*collections)
    persisted = dask.persist(*collections)
    progress(persisted)
    return dask.compute(*persisted)
