"""Which zero-cell rule should be the default? Measured at equal TRUE epsilon (SPEC 2).

For each dataset, rule (haldane, provgen) and epsilon (e x m, exact calibration, so the
drawn noise has exactly that pure epsilon under both rules) release the cohort with
several keys and measure the point error and the SNP retention of three GWAS tests
(alpha 0.05, tau 0.8). Usage: python -m benchmarks.zero_cell [--out docs/zero-cell.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from genoshare.evaluate.gwas import association, retention
from genoshare.evaluate.utility import utility_metrics
from genoshare.io.csvmatrix import read_matrix
from genoshare.mechanism.calibrate import calibrate
from genoshare.mechanism.keystream import derive_keys, master_key_from_seed
from genoshare.mechanism.ldstats import compute_ldstats
from genoshare.mechanism.release import release_genotypes, target_counts_published

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench" / "data"


def lactose():
    d = ROOT / "data" / "opensnp-lactose"
    cases = read_matrix(d / "data.csv.gz").genotypes
    controls = read_matrix(d / "reference.csv.gz").genotypes
    # As in the published evaluation: the panel is both the LD source and the GWAS controls;
    # only the cases are released.
    return "OpenSNP lactose (60 cases; panel = 60 controls)", cases, controls, controls, None


def simulated(cases=300, controls=300, panel=400, variants=4000, seed=11):
    from genoshare.simulate import simulate_cohort

    out = CACHE / f"zc-{cases}-{controls}-{panel}-{variants}-{seed}"
    if not (out / "cohort.csv.gz").exists():
        simulate_cohort(out, cases=cases, controls=controls, panel=panel, variants=variants, seed=seed, holdout=0)
    cohort = read_matrix(out / "cohort.csv.gz")
    pheno = pd.read_csv(out / "phenotype.tsv", sep="\t", dtype={"id": str}).set_index("id")["phenotype"]
    is_case = pheno.reindex(cohort.sample_ids).to_numpy() == 2
    ref = read_matrix(out / "panel.csv.gz").genotypes
    name = f"msprime ({cases} cases + {controls} controls released; panel {panel}; {variants} SNPs)"
    return name, cohort.genotypes, None, ref, is_case


def measure(dataset, eps_per_snp=(1, 2, 3, 4, 5), seeds=(1, 2, 3)):
    name, G, controls, ref, is_case = dataset
    m = G.shape[0]

    def gwas(X):
        if is_case is None:
            return {t: association(X, controls, t)[1] for t in ("allelic", "genotypic", "dominant")}
        return {t: association(X[:, is_case], X[:, ~is_case], t)[1] for t in ("allelic", "genotypic", "dominant")}

    p_orig = gwas(G)
    targets = target_counts_published(G)
    rows = []
    for rule in ("haldane", "provgen"):
        stats = compute_ldstats(ref, rule)
        for e in eps_per_snp:
            cal = calibrate(stats, e * m, "exact")
            acc = []
            for s in seeds:
                S = release_genotypes(G, cal.thresholds, targets, derive_keys(master_key_from_seed(s))).genotypes
                p_rel = gwas(S)
                acc.append(
                    [utility_metrics(G, S)["point_error"]]
                    + [retention(p_orig[t], p_rel[t]) for t in ("allelic", "genotypic", "dominant")]
                )
            mean = np.mean(acc, axis=0)
            rows.append(
                {
                    "dataset": name,
                    "zero_cell": rule,
                    "eps_per_snp": e,
                    "epsilon_xor": round(cal.epsilon_xor),
                    "mean_p": round(float(cal.p.mean()), 3),
                    "point_error": round(mean[0], 4),
                    "retention_allelic": round(mean[1], 3),
                    "retention_genotypic": round(mean[2], 3),
                    "retention_dominant": round(mean[3], 3),
                }
            )
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    args = ap.parse_args(argv)
    tables = [measure(lactose()), measure(simulated())]
    df = pd.concat(tables, ignore_index=True)
    text = df.to_markdown(index=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
