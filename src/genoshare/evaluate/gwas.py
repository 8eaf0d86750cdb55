"""Case/control association tests per SNP (SPEC 5) and SNP retention.

All tests start from per-group genotype counts, so they work the same on a whole matrix
or on blocks of variants. Missing genotypes are excluded per SNP.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def genotype_counts(G: np.ndarray) -> np.ndarray:
    """(m, n) int8 with -1 missing -> (m, 3) counts of genotypes 0, 1, 2."""
    return np.stack([(G == g).sum(axis=1) for g in (0, 1, 2)], axis=1).astype(np.float64)


def _chi2_table(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson chi-square of (m, 2, k) tables without continuity correction; columns empty
    in both rows are dropped (df = non-empty columns - 1). NaN where df < 1."""
    col = obs.sum(axis=1)  # (m, k)
    row = obs.sum(axis=2)  # (m, 2)
    total = row.sum(axis=1)  # (m,)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = row[:, :, None] * col[:, None, :] / total[:, None, None]
        terms = np.where(expected > 0, (obs - expected) ** 2 / expected, 0.0)
    stat = terms.sum(axis=(1, 2))
    df = (col > 0).sum(axis=1) - 1
    ok = (df >= 1) & (row.min(axis=1) > 0)
    stat = np.where(ok, stat, np.nan)
    p = np.where(ok, stats.chi2.sf(stat, np.maximum(df, 1)), np.nan)
    return stat, p


def allelic_test(case_counts: np.ndarray, control_counts: np.ndarray):
    """Allelic chi-square on the 2x2 allele table (what PLINK 1.9 --assoc reports)."""
    def alleles(c):
        return np.stack([2 * c[:, 2] + c[:, 1], 2 * c[:, 0] + c[:, 1]], axis=1)

    return _chi2_table(np.stack([alleles(case_counts), alleles(control_counts)], axis=1))


def genotypic_test(case_counts: np.ndarray, control_counts: np.ndarray):
    """Genotypic 2x3 chi-square (PLINK 1.9 --model GENO)."""
    return _chi2_table(np.stack([case_counts, control_counts], axis=1))


def dominant_or_test(case_counts: np.ndarray, control_counts: np.ndarray):
    """Dominant-model odds ratio z test with 0.5 added to every cell; returns (z, p)."""
    a = case_counts[:, 1] + case_counts[:, 2] + 0.5
    b = case_counts[:, 0] + 0.5
    c = control_counts[:, 1] + control_counts[:, 2] + 0.5
    d = control_counts[:, 0] + 0.5
    z = np.log(a * d / (b * c)) / np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return z, 2 * stats.norm.sf(np.abs(z))


TESTS = {"allelic": allelic_test, "genotypic": genotypic_test, "dominant": dominant_or_test}


def association(cases: np.ndarray, controls: np.ndarray, test: str = "allelic"):
    """Run one test on variant-major case and control matrices; returns (statistic, p)."""
    return TESTS[test](genotype_counts(cases), genotype_counts(controls))


def retention(p_original: np.ndarray, p_release: np.ndarray, alpha: float = 0.05, tau: float = 0.8) -> float:
    """|S_rep and S_ver| / |S_rep| with S_rep = {p < alpha} on the original and S_ver =
    {p < alpha / tau} on the release (the verifier's relaxed threshold). NaN if S_rep is empty."""
    rep = np.nan_to_num(p_original, nan=1.0) < alpha
    ver = np.nan_to_num(p_release, nan=1.0) < alpha / tau
    return float((rep & ver).sum() / rep.sum()) if rep.any() else float("nan")
