"""How far does LD reach? The evidence behind the default LD window (docs/window.md).

Simulates (or reuses) an msprime panel and prints mean r^2 between SNPs d SNPs apart, next to
the value between unlinked SNPs (d = 5,000 and beyond), in SNPs and in kb.
Usage: python -m benchmarks.ld_decay
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genoshare.io.csvmatrix import read_matrix

ROOT = Path(__file__).resolve().parents[1]
DISTANCES = (1, 10, 50, 100, 200, 500, 1000, 2000, 5000)


def panel(n=541, variants=28396, seed=2024):
    from genoshare.simulate import simulate_cohort

    out = ROOT / ".bench" / "data" / f"lddecay-{n}-{variants}-{seed}"
    if not (out / "panel.csv.gz").exists():
        simulate_cohort(out, cases=1, controls=1, panel=n, variants=variants, seed=seed, holdout=0)
    length = json.loads((out / "simulation.json").read_text())["model"]["sequence_length"]
    return read_matrix(out / "panel.csv.gz").genotypes, length


def mean_r2(G: np.ndarray, d: int) -> float:
    X = G.astype(np.float64)
    X -= X.mean(axis=1, keepdims=True)
    sd = X.std(axis=1)
    X = X[sd > 0] / sd[sd > 0, None]
    return float(np.mean(((X[:-d] * X[d:]).mean(axis=1)) ** 2))


def main():
    G, length = panel()
    m, n = G.shape
    kb_per_snp = length / m / 1000
    rows = [(d, d * kb_per_snp, mean_r2(G, d)) for d in DISTANCES]
    floor = rows[-1][2]
    print(f"msprime panel: {n} people, {m} SNPs over {length / 1e6:.1f} Mb ({kb_per_snp * 1000:.0f} bp per SNP)")
    print("| distance (SNPs) | distance (kb) | mean r^2 | x unlinked |")
    print("|--:|--:|--:|--:|")
    for d, kb, r2 in rows:
        print(f"| {d} | {kb:.0f} | {r2:.4f} | {r2 / floor:.1f} |")


if __name__ == "__main__":
    main()
