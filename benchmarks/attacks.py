"""Benchmark: membership-inference audit of a 1,000 x 10,000 release, 3 attacks x 5 release seeds, < 5 minutes.

msprime cohort (500 cases + 500 controls), a 500-person reference panel and a 1,000-person hold-out set (the
non-members) on 10,000 SNPs (simulate_cohort, cached under .bench/data keyed by its parameters). Five releases
with `genoshare release` (seeds 1-5, epsilon = m, defaults otherwise: exact calibration, haldane, window 1000,
published allele frequencies); their time is reported, not targeted. The measured run is

    genoshare attack --original cohort --release r1 ... --release r5 --nonmembers holdout --reference panel --json

(nearest neighbour, likelihood ratio, classifier) as a subprocess: process start, reading the six CSV matrices, all
attacks on all seeds, the statistics and the JSON. Wall time and the child's peak RSS are measured around it.

Usage: python -m benchmarks.attacks  (or register "attacks" in benchmarks/run.py BENCHMARKS)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks.common import ROOT, WORK, Row, cached_simulation, fmt_bytes, fmt_s

PARAMS = {"cases": 500, "controls": 500, "panel": 500, "variants": 10000, "seed": 7, "holdout": 1000}
SEEDS = (1, 2, 3, 4, 5)
TARGET_SECONDS = 300.0
ATTACKS = "nn,lrt,classifier"

WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "wall": wall, "maxrss_kb": ru.ru_maxrss, "user": ru.ru_utime,
                  "sys": ru.ru_stime, "stdout": p.stdout, "stderr": p.stderr[-4000:]}))
"""


def simulated_data():
    return cached_simulation(PARAMS, ("simulation.json", "cohort.csv.gz", "panel.csv.gz", "holdout.csv.gz"))


def measure(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout)
    if res["rc"] != 0:
        raise RuntimeError(f"`{' '.join(argv[:4])} ...` failed (exit {res['rc']}): {res['stderr'].strip()}")
    res["peak_rss_bytes"] = res["maxrss_kb"] * 1024
    return res


def run() -> tuple[list[Row], dict]:
    data, sim = simulated_data()
    cohort, panel, holdout = data / "cohort.csv.gz", data / "panel.csv.gz", data / "holdout.csv.gz"
    n, m = PARAMS["cases"] + PARAMS["controls"], PARAMS["variants"]
    eps = float(m)
    WORK.mkdir(parents=True, exist_ok=True)

    releases, release_walls = [], []
    for s in SEEDS:
        out = WORK / f"attack-release-s{s}"
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "genoshare.cli",
                "release",
                str(cohort),
                "--reference",
                str(panel),
                "--epsilon",
                f"{eps:g}",
                "--out",
                str(out),
                "--seed",
                str(s),
                "--overwrite",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        release_walls.append(time.perf_counter() - t0)
        releases.append(out)

    argv = [
        sys.executable,
        "-m",
        "genoshare.cli",
        "attack",
        "--original",
        str(cohort),
        *[a for r in releases for a in ("--release", str(r))],
        "--nonmembers",
        str(holdout),
        "--reference",
        str(panel),
        "--attacks",
        ATTACKS,
        "--json",
    ]
    res = measure(argv)
    report = json.loads(res["stdout"])
    wall = res["wall"]
    label = f"attack {n}x{m:,}, 3 attacks x {len(SEEDS)} seeds"
    eps_xor = report["audit"].get("epsilon_xor")
    rows = [
        Row(
            f"{label}: CLI wall",
            fmt_s(wall),
            "",
            "",
            f"< {TARGET_SECONDS:g} s",
            wall < TARGET_SECONDS,
            {"wall_s": wall, "user_s": res["user"], "sys_s": res["sys"]},
        ),
        Row(
            f"{label}: peak RSS",
            fmt_bytes(res["peak_rss_bytes"]),
            "",
            "",
            "",
            None,
            {"peak_rss_bytes": res["peak_rss_bytes"]},
        ),
    ]
    for name, r in report.items():
        if name in ("split", "audit"):
            continue
        t = r["tpr_at_fpr"]
        rows.append(
            Row(
                f"{label}:   {name} AUC / TPR@1% / eps lower bound",
                f"{r['auc']:.3f} / {t['0.01']['tpr']:.3f} / {r['epsilon_lower_bound']:.3g}",
                "",
                "",
                f"bound <= epsilon_xor {eps_xor:g}" if eps_xor else "",
                None,
                {
                    "auc": r["auc"],
                    "tpr_at_fpr": t,
                    "epsilon_lower_bound": r["epsilon_lower_bound"],
                    "per_seed_auc": [p["auc"] for p in r["per_seed"]],
                },
            )
        )
    rows.append(
        Row(
            f"{label}: {len(SEEDS)} releases (CLI, not targeted)",
            fmt_s(sum(release_walls)),
            "",
            "",
            "",
            None,
            {"walls": release_walls},
        )
    )
    rows.append(
        Row(
            f"{label}: simulation ({'cached' if sim['cached'] else 'this run'})",
            fmt_s(sim["seconds"]) if sim["seconds"] is not None else "?",
            "",
            "",
            "",
            None,
            sim,
        )
    )
    details = {
        "params": PARAMS,
        "epsilon": eps,
        "seeds": list(SEEDS),
        "attacks": ATTACKS,
        "command": " ".join(os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a for a in argv),
        "wall_s": wall,
        "release_walls_s": release_walls,
        "simulation": sim,
        "split": report["split"],
        "audit": report["audit"],
        "summary": {
            k: {"auc": v["auc"], "tpr_at_fpr": v["tpr_at_fpr"], "epsilon_lower_bound": v["epsilon_lower_bound"]}
            for k, v in report.items()
            if k not in ("split", "audit")
        },
    }
    return rows, details


def main(argv=None) -> int:
    from benchmarks.run import table

    rows, details = run()
    print(table(rows))
    print(f"load average now {os.getloadavg()[0]:.2f} (other work on the machine skews timings)")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
