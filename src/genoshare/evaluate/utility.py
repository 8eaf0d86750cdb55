"""Utility of a release in genotype space (SPEC 5), over non-missing cells."""

from __future__ import annotations

import numpy as np


def utility_metrics(G: np.ndarray, S: np.ndarray) -> dict[str, float]:
    """Original G vs released S, both variant-major (m, n) int8 with -1 missing."""
    if G.shape != S.shape:
        raise ValueError(f"shape mismatch: original {G.shape} vs release {S.shape}")
    ok = (G >= 0) & (S >= 0)
    g = np.where(ok, G, 0).astype(np.float64)
    s = np.where(ok, S, 0).astype(np.float64)
    diff = np.abs(g - s)
    n_ok_cells = ok.sum()
    point = np.count_nonzero((G != S) & ok) / n_ok_cells
    per_ind = diff.sum(axis=0) / np.maximum(ok.sum(axis=0), 1)
    n_j = np.maximum(ok.sum(axis=1), 1)
    mean_g, mean_s = g.sum(axis=1) / n_j, s.sum(axis=1) / n_j
    var_g = (np.where(ok, g - mean_g[:, None], 0) ** 2).sum(axis=1) / n_j
    var_s = (np.where(ok, s - mean_s[:, None], 0) ** 2).sum(axis=1) / n_j
    return {
        "point_error": float(point),
        "sample_error": float(per_ind.mean()),
        "mean_error": float(np.abs(mean_s - mean_g).mean()),
        "variance_error": float(np.abs(var_s - var_g).mean()),
    }
