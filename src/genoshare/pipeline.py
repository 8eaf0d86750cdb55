"""The blockwise release over VCF Zarr: the only place that builds Dask graphs for a release.

Data flow (docs/architecture.md): panel tiles -> LD statistics (epsilon-free) -> flip
rates; pass 1 over (variant, sample) chunks: encode, noise, XOR, count -> per-block noisy
allele counts -> global reduction -> flip plan (multivariate hypergeometric split over
sample chunks) -> pass 2: regenerate the same noise, XOR, flip, decode, write. Every task
reads its own chunk from the store and derives its randomness from (key, position), so
the output is the in-memory engine's output for any variant chunking, worker count,
retry or execution order; only the sample chunk size (the flip-split block) matters.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import zarr

from genoshare.errors import GenoshareError
from genoshare.kernels.noise import calls_from_codes, dosage_from_calls
from genoshare.mechanism.keystream import ReleaseKeys
from genoshare.mechanism.ldstats import DEFAULT_TILE, LDAccumulator, LDStats, TileTask, plan_tiles, tile_partial
from genoshare.mechanism.release import noisy_codes, plan, restore



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


def _offsets(block_id, layout: _Layout) -> tuple[int, int]:
    return block_id[0] * layout.cv, block_id[1] * layout.cs


def _pass1_block(calls, thresholds, keys: ReleaseKeys, layout: _Layout, block_id=None):
    v0, s0 = _offsets(block_id, layout)
    G = dosage_from_calls(calls)
    _, ones, nonmiss = noisy_codes(G, thresholds[:, 0, :].ravel(), keys, v0, s0, layout.n_total, layout.cs)
    original = np.where(G >= 0, G, 0).sum(axis=1, dtype=np.int64)
    return np.stack([ones[:, 0], nonmiss[:, 0], original], axis=-1)[:, None, :]


def _pass2_block(calls, k_signed, thresholds, keys: ReleaseKeys, layout: _Layout, block_id=None):
    v0, s0 = _offsets(block_id, layout)
    G = dosage_from_calls(calls)
    codes, _, _ = noisy_codes(G, thresholds[:, 0, :].ravel(), keys, v0, s0, layout.n_total, layout.cs)
    k = k_signed[:, 0, 0]
    restore(codes, np.abs(k), np.sign(k).astype(np.int8), keys, v0, s0, layout.n_total)
    return calls_from_codes(codes, np.empty(calls.shape, dtype=np.int8))


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


def _plan_block(counts, target_af, keys: ReleaseKeys, target_fn, layout: _Layout, block_id=None):
    """Flip plan of one variant chunk from its per-sample-block counts, on the worker.

    Returns (v, nb + SUMMARY): the signed flip count per sample block (sign = direction), then
    per variant the original ALT count, called genotypes, released ALT count, 1->0 and 0->1 flips.
    """
    v0 = block_id[0] * layout.cv
    target_af = target_af[:, 0, 0]
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
    return np.concatenate([k_signed, summary], axis=1)


def release_passes(calls: da.Array, thresholds: np.ndarray, keys: ReleaseKeys, target_af: np.ndarray | None,
                   out_group: zarr.Group, progress=None, target_fn=None) -> PassResult:
    """Run pass 1, the flip plan and pass 2, writing call_genotype/mask/phased into ``out_group``.

    Targets of the restoration: ``target_af`` None restores the cohort's own (published)
    frequencies, an (m,) array those ALT frequencies (NaN: leave that SNP as the noise left
    it); ``target_fn(original_counts, n_called, v0) -> target ALT counts`` (picklable) overrides
    both, e.g. for DP frequencies. The plan is made per variant chunk on the workers, so no
    step holds more than a chunk's counts; only per-variant totals come back.
    """
    m, n, _ = calls.shape
    cv, cs = calls.chunksize[0], calls.chunksize[1]
    layout = _Layout(n_total=n, cv=cv, cs=cs)
    vchunks = calls.chunks[0]
    nb = len(calls.chunks[1])
    # Each task gets only its own variants' thresholds: (m, nb, 2) broadcast, chunked like the calls.
    t = da.from_array(np.ascontiguousarray(thresholds, dtype=np.uint32).reshape(m, 1, 2), chunks=(vchunks, 1, 2))
    t = da.broadcast_to(t, (m, nb, 2), chunks=(vchunks, (1,) * nb, (2,)))

    counts = da.map_blocks(_pass1_block, calls, t, keys, layout, dtype=np.int64,
                           chunks=(vchunks, (1,) * nb, (3,)), name="genoshare-pass1")
    af = np.full(m, np.nan) if target_af is None else np.asarray(target_af, dtype=np.float64)
    # af as (m, 1, 1) so its blocks line up with the counts' variant blocks
    plan_rows = da.map_blocks(_plan_block, counts.rechunk((vchunks, nb, 3)),
                              da.from_array(af.reshape(m, 1, 1), chunks=(vchunks, 1, 1)),
                              keys, target_fn, layout, dtype=np.int64, drop_axis=2, chunks=(vchunks, (nb + SUMMARY,)),
                              name="genoshare-plan")
    plan_rows = dask.persist(plan_rows)[0]  # the one global step: stays on the workers
    if progress is not None:
        progress(plan_rows)
    summary = plan_rows[:, nb:].compute()  # (m, SUMMARY)
    kd = plan_rows[:, :nb].rechunk((vchunks, (1,) * nb))[:, :, None]
    released = da.map_blocks(_pass2_block, calls, kd, t, keys, layout, dtype=np.int8,
                             chunks=calls.chunks, name="genoshare-pass2")
    mask = released < 0
    phased = da.zeros((m, n), dtype=bool, chunks=(vchunks, calls.chunks[1]))
    store = da.store([released, mask, phased],
                     [out_group["call_genotype"], out_group["call_genotype_mask"], out_group["call_genotype_phased"]],
                     lock=False, compute=False)
    _compute(store, progress)

    original, n_called, released_counts, down, up = summary.T
    down, up = int(down.sum()), int(up.sum())
    return PassResult(flips=down + up, flips_down=down, flips_up=up, n_missing=int(m * n - n_called.sum()),
                      original_counts=original, n_called=n_called, released_counts=released_counts)


def _compute(collection, progress):
    if progress is None:
        return dask.compute(collection)[0]
    persisted = dask.persist(collection)[0]
    progress(persisted)
    return dask.compute(persisted)[0]
