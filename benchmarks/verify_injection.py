"""Error injection on the real OpenSNP lactose cohort: retention-difference curves and the verifier's tolerance.

Setting: cases = data.csv.gz released with the defaults (exact calibration, haldane, window 1000, published
allele frequencies) at epsilon = e x 9,091; controls = reference.csv.gz (also the panel), as in the published
evaluation. One pool of independent releases (fresh keys each) is drawn once:

- the first ``TABLES x K`` copies make ``TABLES`` disjoint owner tables of k copies each;
- the last ``PUBLISHED`` copies play the released copy a reviewer receives (never in a table).

Curves (table 0, every published copy, ``REPS`` corrupted reports per rate): mean retention of the corrupted
report, its paired difference to the correct report's retention on the same copy, and the flagged fraction.
Rules (every table x every published copy): false-flag rate of the correct report and detection rate of reports
with 10/20/30% wrong SNPs, for the default tolerance and two fixed alternatives.

Usage: python -m benchmarks.verify_injection [--eps 1] [--out docs/verify-injection.tsv]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from genoshare.evaluate.gwas import genotype_counts, run_test
from genoshare.evaluate.inject import MODES, corrupt, injection_curves
from genoshare.evaluate.verify import FALSE_FLAG_RATE, summarise, tolerance_for
from genoshare.io.csvmatrix import read_matrix
from genoshare.mechanism.calibrate import calibrate
from genoshare.mechanism.keystream import derive_keys, master_key_from_seed
from genoshare.mechanism.ldstats import compute_ldstats
from genoshare.mechanism.release import release_genotypes, target_counts_published

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "opensnp-lactose"
TESTS = ("genotypic", "dominant", "allelic")
K = 10
TABLES = 20
PUBLISHED = 100
REPS = 20
ALPHA, TAU = 0.05, 0.8
RATES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
SIGMAS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)


def release_pool(eps_per_snp: float, n: int, seed0: int = 10_000):
    """(p_original {test: (m,)}, P {test: (n, m)}) for n releases of the lactose cases."""
    G = read_matrix(DATA / "data.csv.gz").genotypes
    C = read_matrix(DATA / "reference.csv.gz").genotypes
    cc = genotype_counts(C)
    cal = calibrate(compute_ldstats(C, zero_cell="haldane", window=1000), eps_per_snp * G.shape[0], "exact")
    targets = target_counts_published(G)
    p_orig = {t: run_test(genotype_counts(G), cc, t)[1] for t in TESTS}
    P = {t: np.empty((n, G.shape[0])) for t in TESTS}
    for i in range(n):
        S = release_genotypes(G, cal.thresholds, targets, derive_keys(master_key_from_seed(seed0 + i))).genotypes
        sc = genotype_counts(S)
        for t in TESTS:
            P[t][i] = run_test(sc, cc, t)[1]
    return p_orig, P


def table_entry(p_orig, P_table) -> dict:
    rep = np.nan_to_num(p_orig, nan=1.0) < ALPHA
    vals = (np.nan_to_num(P_table[:, rep], nan=1.0) < ALPHA / TAU).mean(axis=1)
    return {"n_reported": int(rep.sum()), "k": P_table.shape[0], **summarise(vals)}


def rules(entry: dict, n: int) -> dict:
    sd = entry["sd"]
    return {"default": tolerance_for(entry, n), "max(3sd,0.1)": max(3 * sd, 0.1), "3sd": 3 * sd}


def rule_table(p_orig, P, k: int) -> pd.DataFrame:
    """False-flag and detection rates of each rule over TABLES tables of k copies x PUBLISHED copies."""
    rng = np.random.default_rng(1)
    pub = P[TABLES * K :]
    okpub = np.nan_to_num(pub, nan=1.0) < ALPHA / TAU
    rows = []
    reports = {0.0: [corrupt(p_orig, "replacing", 0.0, rng, ALPHA)[0]]}
    for r in (0.1, 0.2, 0.3):
        reports[r] = [corrupt(p_orig, "replacing", r, rng, ALPHA)[0] for _ in range(REPS)]
    counts = {}
    for tb in range(TABLES):
        entry = table_entry(p_orig, P[tb * K : tb * K + k])
        for rate, idxs in reports.items():
            for idx in idxs:
                ret = okpub[:, idx].mean(axis=1)
                for name, tol in rules(entry, idx.size).items():
                    c = counts.setdefault((name, rate), [0, 0, []])
                    c[0] += int((entry["mean"] - ret > tol + 1e-12).sum())
                    c[1] += ret.size
                    c[2].append(tol)
    for (name, rate), (flag, tot, tols) in counts.items():
        rows.append(
            {"k": k, "rule": name, "wrong": rate, "flagged": flag / tot, "mean_tolerance": float(np.mean(tols))}
        )
    return pd.DataFrame(rows)


def run(eps_per_snp: float = 1.0):
    t0 = time.perf_counter()
    n = TABLES * K + PUBLISHED
    p_orig, P = release_pool(eps_per_snp, n)
    t_pool = time.perf_counter() - t0
    curves, tables, entries = [], [], {}
    for t in TESTS:
        entry = table_entry(p_orig[t], P[t][:K])
        entries[t] = entry
        if entry["mean"] is None:
            continue
        c = injection_curves(
            p_orig[t],
            P[t][TABLES * K :],
            entry,
            modes=MODES,
            rates=RATES,
            reps=REPS,
            alpha=ALPHA,
            tau=TAU,
            seed=2,
            noise_rates=SIGMAS,
        )
        c.insert(0, "test", t)
        curves.append(c)
    for k in (5, 10):
        rt = rule_table(p_orig["genotypic"], P["genotypic"], k)
        rt.insert(0, "test", "genotypic")
        tables.append(rt)
    return {
        "eps_per_snp": eps_per_snp,
        "curves": pd.concat(curves, ignore_index=True),
        "rules": pd.concat(tables, ignore_index=True),
        "entries": entries,
        "pool_seconds": t_pool,
        "seconds": time.perf_counter() - t0,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eps", type=float, default=1.0, help="epsilon per SNP (total = eps x 9,091)")
    ap.add_argument("--out", type=Path, default=None, help="write the curves TSV here")
    ap.add_argument("--rules-out", type=Path, default=None, help="write the rule comparison TSV here")
    args = ap.parse_args(argv)
    res = run(args.eps)
    print(f"# lactose, epsilon {args.eps:g} x 9091, {TABLES * K + PUBLISHED} releases in {res['pool_seconds']:.1f} s")
    for t, e in res["entries"].items():
        print(
            f"table {t}: n_reported {e['n_reported']}, mean {e['mean']:.3f}, sd {e['sd']:.4f}, "
            f"default tolerance {tolerance_for(e, e['n_reported']):.3f} (t quantile "
            f"{stats.t.ppf(1 - FALSE_FLAG_RATE, K - 1):.2f})"
        )
    cols = [
        "test",
        "mode",
        "rate",
        "n_reported",
        "wrong_fraction",
        "retention",
        "difference",
        "difference_sd",
        "flagged",
    ]
    print(res["curves"][cols].to_markdown(index=False, floatfmt=".3f"))
    print()
    print(res["rules"].to_markdown(index=False, floatfmt=".4f"))
    if args.out:
        res["curves"].to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    if args.rules_out:
        res["rules"].to_csv(args.rules_out, sep="\t", index=False, float_format="%.5f")
    print(f"\n{res['seconds']:.1f} s")


if __name__ == "__main__":
    main()
