"""Benchmark of `genoshare audit-model` (issue 13, not a timed test): python -m benchmarks.model_audit [--quick]

Targets on this 2-core machine: n = 1,000, m = 10,000 simulated cohort, 64 (here 65, so that LiRA online has its 64
references) logistic-regression models + LiRA + RMIA
+ loss in under 3 minutes; the DP-SGD sweep of 3 noise levels with 32 references each in under 5 minutes.
The relatives filter is skipped (simulated individuals share one short genealogy; KING is timed elsewhere)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import cached_simulation


def main(quick: bool = False) -> dict:
    from genoshare.audit.run import audit_model

    n, m = (200, 2000) if quick else (1000, 10_000)
    sim, made = cached_simulation(
        {"cases": n // 2, "controls": n // 2, "panel": 10, "variants": m, "holdout": 0, "seed": 11}
    )
    out: dict = {"n": n, "m": m, "simulation": made}
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        rep = audit_model(
            sim / "cohort.csv.gz",
            sim / "phenotype.tsv",
            Path(d) / "a.json",
            references=64,
            relatives="skip",
            private_dir=Path(d) / "private",
        )
        out["original_65_models_64_references"] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "target_seconds": 180,
            "attacks": sorted(rep["models"][0]["attacks"]),
            "auc": {a: r["auc"] for a, r in rep["models"][0]["attacks"].items()},
        }
        t0 = time.perf_counter()
        rep = audit_model(
            sim / "cohort.csv.gz",
            sim / "phenotype.tsv",
            Path(d) / "b.json",
            references=32,
            dp_sgd="0.8,2,8",
            relatives="skip",
            private_dir=Path(d) / "private",
        )
        out["dp_sgd_sweep_3x32_references"] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "target_seconds": 300,
            "note": "includes the original setting (4 games of 33 models)",
            "settings": [
                {
                    "name": e["name"],
                    "epsilon": e["epsilon"],
                    "utility": e["utility"]["value"],
                    "max_auc": max(r["auc"] for r in e["attacks"].values()),
                }
                for e in rep["models"]
            ],
        }
    return out


if __name__ == "__main__":
    print(json.dumps(main("--quick" in sys.argv), indent=1))
