"""How much of a small cohort comes back unchanged when it is restored to its own frequencies (issue 15, item 1).

The justification of ``MIN_PUBLISHED_SAMPLES`` (genoshare.privacy.release_safety), table in docs/privacy.md.
Real data: subsets of n individuals of the bundled OpenSNP lactose cohort (60 x 9,091), released with its
reference panel at a typical epsilon (e = 3 per SNP, the demo's middle release: epsilon 27,273, haldane, exact
calibration, window 1000), through the release engine directly (the API refuses small published cohorts).
For each n: the fraction of genotypes released identical to the original, the fraction of individuals released
byte-identical (every SNP unchanged), restored to the cohort's own (published) frequencies and, for comparison,
to the reference panel's; mean over REPS random subsets, each with its own key.

    .venv/bin/python -m benchmarks.small_n            # prints the markdown table
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import ROOT

DATA = ROOT / "data" / "opensnp-lactose"
SIZES = (1, 2, 5, 10, 20, 50)
E_PER_SNP = 3.0
REPS = 10


def measure(sizes=SIZES, e_per_snp: float = E_PER_SNP, reps: int = REPS) -> list[dict]:
    from genoshare.io.csvmatrix import read_matrix
    from genoshare.mechanism.calibrate import calibrate
    from genoshare.mechanism.keystream import derive_keys, master_key_from_seed
    from genoshare.mechanism.ldstats import compute_ldstats
    from genoshare.mechanism.release import release_genotypes, target_counts_from_af, target_counts_published

    cohort, panel = read_matrix(DATA / "data.csv.gz"), read_matrix(DATA / "reference.csv.gz")
    R = panel.genotypes
    panel_af = R.sum(axis=1) / (2.0 * R.shape[1])
    cal = calibrate(compute_ldstats(R, zero_cell="haldane", window=1000), e_per_snp * cohort.n_variants, "exact")
    rng = np.random.default_rng(15)
    rows = []
    for n in sizes:
        acc = {"published": [], "reference": []}
        for r in range(reps):
            cols = np.sort(rng.choice(cohort.n_samples, n, replace=False))
            G = np.ascontiguousarray(cohort.genotypes[:, cols])
            for kind, targets in (
                ("published", target_counts_published(G)),
                ("reference", target_counts_from_af(G, panel_af)),
            ):
                S = release_genotypes(
                    G, cal.thresholds, targets, derive_keys(master_key_from_seed(1000 * n + r)), sample_block=n
                ).genotypes
                same = S == G
                acc[kind].append((same.mean(), same.all(axis=0).mean()))
        row = {"n": n}
        for kind, vals in acc.items():
            v = np.array(vals)
            row[f"{kind}_genotypes"], row[f"{kind}_individuals"] = float(v[:, 0].mean()), float(v[:, 1].mean())
        rows.append(row)
    return rows


def table(rows) -> str:
    """Markdown; "excess" is the published fraction minus that of the largest n (what the noise alone leaves)."""
    floor = rows[-1]["published_genotypes"]
    lines = [
        f"| n | genotypes identical, published | excess over n = {rows[-1]['n']} | individuals identical, "
        "published | genotypes identical, reference |",
        "|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['published_genotypes']:.1%} | {100 * (r['published_genotypes'] - floor):+.1f} "
            f"points | {r['published_individuals']:.0%} | {r['reference_genotypes']:.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    for e in map(float, sys.argv[1:] or [E_PER_SNP]):
        print(f"e = {e:g} per SNP (epsilon {e * 9091:,.0f})")
        print(table(measure(e_per_snp=e)))
