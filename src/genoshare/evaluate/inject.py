"""Error injection (SPEC 5): corrupt a correct list of significant SNPs and measure what the verifier sees.

A researcher's report is the set of SNPs with p < alpha on the original cohort. The corruptions:

- ``flipping`` (rate r): a fraction r of ALL SNPs' p-values are replaced by U(0, 1) draws, then the report is
  the SNPs with corrupted p < alpha (significant SNPs drop out, random ones come in);
- ``noise`` (rate = sigma): p + N(0, sigma^2), clipped to [0, 1], then p < alpha;
- ``shifting`` (rate r): a fraction r of the reported SNPs are moved to a neighbour (index j - 1 or j + 1, in
  the file's SNP order, i.e. genome order), carrying their p-value;
- ``replacing`` (rate r): a fraction r of the reported SNPs are replaced by SNPs drawn uniformly among the
  non-significant ones (p >= alpha on the original): "30% wrong SNPs".

:func:`injection_curves` measures, for each mode and rate, the retention of the corrupted report on released
copies, its gap to the retention of the correct report on the same copies, and how often the verifier flags it.
"""

from __future__ import annotations

import numpy as np

from genoshare.errors import GenoshareError

MODES = ("flipping", "noise", "shifting", "replacing")


def _check(mode: str, rate: float) -> None:
    if mode not in MODES:
        raise GenoshareError(f"unknown error-injection mode {mode!r} (choose from {', '.join(MODES)})")
    if not (rate >= 0 and np.isfinite(rate)):
        raise GenoshareError(f"error rate must be a non-negative number, not {rate}")
    if mode != "noise" and rate > 1:
        raise GenoshareError(f"{mode}: the rate is a fraction and must be at most 1, not {rate}")


def corrupt(p: np.ndarray, mode: str, rate: float, rng: np.random.Generator, alpha: float = 0.05):
    """(indices of the reported SNPs, sorted; their reported p-values) after injecting ``mode`` at ``rate``
    into the correct report {p < alpha} of the original p-values ``p`` (NaN = not significant)."""
    _check(mode, rate)
    p = np.nan_to_num(np.asarray(p, dtype=np.float64), nan=1.0)
    m = p.size
    if mode == "flipping":
        q = p.copy()
        sel = rng.random(m) < rate
        q[sel] = rng.random(int(sel.sum()))
        idx = np.flatnonzero(q < alpha)
        return idx, q[idx]
    if mode == "noise":
        q = np.clip(p + rng.normal(0.0, rate, m), 0.0, 1.0) if rate > 0 else p.copy()
        idx = np.flatnonzero(q < alpha)
        return idx, q[idx]
    rep = np.flatnonzero(p < alpha)
    n_move = int(round(rate * rep.size))
    if n_move == 0 or rep.size == 0:
        return rep, p[rep]
    moved = rng.choice(rep.size, size=n_move, replace=False)
    new = rep.copy()
    if mode == "shifting":
        step = rng.choice(np.array([-1, 1]), size=n_move)
        j = rep[moved] + step
        j = np.where(j < 0, rep[moved] + 1, j)
        j = np.where(j >= m, rep[moved] - 1, j)
        new[moved] = np.clip(j, 0, m - 1)
    else:  # replacing
        pool = np.flatnonzero(p >= alpha)
        if pool.size < n_move:
            raise GenoshareError(f"replacing: only {pool.size} non-significant SNPs to draw {n_move} wrong ones from")
        new[moved] = rng.choice(pool, size=n_move, replace=False)
    vals = p[rep]
    order = np.argsort(new, kind="stable")
    new, vals = new[order], vals[order]
    keep = np.ones(new.size, dtype=bool)
    keep[1:] = new[1:] != new[:-1]  # two SNPs shifted onto the same neighbour count once
    return new[keep], vals[keep]


def corrupt_report(ids, p: np.ndarray, mode: str, rate: float, rng: np.random.Generator, alpha: float = 0.05):
    """The corrupted report as a DataFrame (id, p), ready for ``genoshare verify --reported``."""
    import pandas as pd

    idx, q = corrupt(p, mode, rate, rng, alpha)
    return pd.DataFrame({"id": np.asarray(ids, dtype=object)[idx], "p": q})


def retention_of(idx: np.ndarray, p_release: np.ndarray, alpha: float = 0.05, tau: float = 0.8) -> float:
    """Fraction of the reported SNPs ``idx`` with p < alpha / tau on the release (NaN p: not retained)."""
    if len(idx) == 0:
        return float("nan")
    return float(np.mean(np.nan_to_num(np.asarray(p_release)[idx], nan=1.0) < alpha / tau))


def injection_curves(
    p_original: np.ndarray,
    p_releases: np.ndarray,
    expected: dict,
    modes=MODES,
    rates=(0.0, 0.1, 0.2, 0.3, 0.5),
    reps: int = 20,
    alpha: float = 0.05,
    tau: float = 0.8,
    seed: int = 0,
    tolerance: float | None = None,
    noise_rates=None,
):
    """Retention-difference curves.

    ``p_original`` (m,): the original cohort's p-values of one test; ``p_releases`` (r, m): that test on r
    released copies (never those of the owner's table); ``expected``: the owner's table entry of that test
    (mean, sd, k, n_reported; see :mod:`genoshare.evaluate.verify`). For each mode and rate (``noise_rates``,
    the sigmas, for ``noise`` if given), ``reps`` corrupted reports are drawn and scored on every copy.

    Returns a DataFrame, one row per (mode, rate): n_reported and wrong_fraction (reported SNPs outside the
    correct report) averaged over reps; retention (mean, sd over reps x copies); retention_correct (mean of the
    correct report on the same copies); difference = retention_correct - retention (paired, mean and sd);
    gap = expected mean - retention; flagged = fraction of (rep, copy) pairs the verifier flags.
    """
    import pandas as pd

    from genoshare.evaluate.verify import decide

    p_original = np.asarray(p_original, dtype=np.float64)
    P = np.atleast_2d(np.asarray(p_releases, dtype=np.float64))
    if P.shape[1] != p_original.size:
        raise ValueError("p_releases must have one column per SNP of p_original")
    correct = np.flatnonzero(np.nan_to_num(p_original, nan=1.0) < alpha)
    ok = np.nan_to_num(P, nan=1.0) < alpha / tau  # (r, m) retained at the relaxed threshold
    r_correct = ok[:, correct].mean(axis=1) if correct.size else np.full(P.shape[0], np.nan)
    rng = np.random.default_rng(seed)
    rows = []
    for mode in modes:
        grid = noise_rates if (mode == "noise" and noise_rates is not None) else rates
        for rate in grid:
            ret, diff, flag, sizes, wrong = [], [], [], [], []
            for _ in range(reps if rate > 0 else 1):
                idx, _ = corrupt(p_original, mode, float(rate), rng, alpha)
                sizes.append(idx.size)
                wrong.append(float(np.mean(~np.isin(idx, correct))) if idx.size else np.nan)
                rr = ok[:, idx].mean(axis=1) if idx.size else np.full(P.shape[0], np.nan)
                ret.extend(rr.tolist())
                diff.extend((r_correct - rr).tolist())
                flag.extend(decide(x, expected, idx.size, tolerance)["flag"] for x in rr)
            rows.append(
                {
                    "mode": mode,
                    "rate": float(rate),
                    "n_reported": float(np.mean(sizes)),
                    "wrong_fraction": float(np.nanmean(wrong)) if np.isfinite(wrong).any() else np.nan,
                    "retention": float(np.nanmean(ret)),
                    "retention_sd": float(np.nanstd(ret, ddof=1)) if len(ret) > 1 else 0.0,
                    "retention_correct": float(np.nanmean(r_correct)),
                    "difference": float(np.nanmean(diff)),
                    "difference_sd": float(np.nanstd(diff, ddof=1)) if len(diff) > 1 else 0.0,
                    "gap": float(expected["mean"] - np.nanmean(ret)),
                    "flagged": float(np.mean(flag)),
                }
            )
    return pd.DataFrame(rows)
