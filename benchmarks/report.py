"""Benchmark: `genoshare report` of a 10-release sweep with attacks and retention tables builds in < 10 s and
writes an HTML page < 6 MB.

Inputs: one real lactose release (`genoshare release`, epsilon 9,091, seed 1) and one real split-panel attack of
it (nn, lrt). They are copied into 10 release directories whose manifests state epsilons from 10 to 100,000 (the
report reads only the manifest, so the copies are real inputs for it). Each copy gets an attack JSON of the real
one, with every ROC resampled to 2,000 points (what a 1,000-member, 1,000-non-member audit gives), and a retention
table. The timed run is the CLI as a subprocess: process start, reading every input, figures, HTML and JSON.

Usage: python -m benchmarks.report  (or register "report" in benchmarks/run.py BENCHMARKS)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import ROOT, WORK, Row, fmt_bytes, fmt_s

TARGET_SECONDS = 10.0
TARGET_BYTES = 6_000_000
N_RELEASES = 10
ROC_POINTS = 2000
LACTOSE = ROOT / "data" / "opensnp-lactose"


def _cli(*args, env=None):
    exe = os.path.join(os.path.dirname(sys.executable), "genoshare")
    res = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"genoshare {args[0]} failed: {res.stderr.strip()}")
    return res.stdout


def _inputs(work):
    env = {**os.environ, "GENOSHARE_PRIVATE_DIR": str(work / "private")}
    base = work / "base"
    if not (base / "manifest.json").is_file():
        shutil.rmtree(base, ignore_errors=True)
        _cli(
            "release",
            LACTOSE / "data.csv.gz",
            "--reference",
            LACTOSE / "reference.csv.gz",
            "--epsilon",
            9091,
            "--out",
            base,
            "--seed",
            1,
            env=env,
        )
    att = work / "base-attack.json"
    if not att.is_file():
        att.write_text(
            _cli(
                "attack",
                "--original",
                LACTOSE / "data.csv.gz",
                "--release",
                base,
                "--nonmembers",
                LACTOSE / "reference.csv.gz",
                "--split-panel",
                "--attacks",
                "nn,lrt",
                "--json",
                env=env,
            )
        )
    return base, json.loads(att.read_text())


def run():
    work = WORK / "report"
    work.mkdir(parents=True, exist_ok=True)
    base, attack = _inputs(work)
    sweep = work / "sweep"
    shutil.rmtree(sweep, ignore_errors=True)
    sweep.mkdir()
    args = []
    grid = np.linspace(0, 1, ROC_POINTS)
    for i, eps in enumerate(np.logspace(1, 5, N_RELEASES)):
        d = sweep / f"r{i:02d}"
        d.mkdir()
        shutil.copy(base / "release.csv.gz", d / "release.csv.gz")
        m = json.loads((base / "manifest.json").read_text())
        m["epsilon_requested"] = m["epsilon_xor"] = float(eps)
        m["privacy"]["total"]["epsilon_pure"] = float(eps)
        m["privacy"]["total"]["epsilon"] = float(eps) / 10
        (d / "manifest.json").write_text(json.dumps(m))
        a = json.loads(json.dumps(attack))
        for k, v in a.items():
            if k not in ("split", "audit"):
                v["roc"] = {
                    "fpr": grid.round(6).tolist(),
                    "tpr": np.interp(grid, v["roc"]["fpr"], v["roc"]["tpr"]).round(6).tolist(),
                }
        a["audit"]["releases"] = [{"path": str(d), "epsilon_xor": float(eps), "af_source": "published"}]
        (sweep / f"attack-{i:02d}.json").write_text(json.dumps(a))
        sha = hashlib.sha256((d / "manifest.json").read_bytes()).hexdigest()
        mean = float(min(0.95, 0.3 + 0.1 * i))
        ret = {
            "k": 10,
            "alpha": 0.05,
            "tau": 0.8,
            "design": "controls",
            "tests": {
                "genotypic": {
                    "n_reported": 290,
                    "mean": mean,
                    "sd": 0.02,
                    "min": mean - 0.04,
                    "q05": mean - 0.03,
                    "median": mean,
                    "q95": mean + 0.03,
                    "max": mean + 0.04,
                }
            },
            "release": {"manifest": {"file": "manifest.json", "sha256": sha}},
        }
        (d / "retention.json").write_text(json.dumps(ret))
        args += ["--release", d, "--attacks", sweep / f"attack-{i:02d}.json"]
    out = sweep / "out" / "report.html"
    t0 = time.perf_counter()
    _cli("report", *args, "--out", out)
    wall = time.perf_counter() - t0
    size = out.stat().st_size
    rows = [
        Row(
            f"report: {N_RELEASES}-release sweep with attacks, CLI wall",
            fmt_s(wall),
            "",
            "",
            f"< {TARGET_SECONDS:g} s",
            wall < TARGET_SECONDS,
            {"seconds": wall},
        ),
        Row(
            "report: HTML size",
            fmt_bytes(size),
            "",
            "",
            f"< {TARGET_BYTES / 1e6:g} MB",
            size < TARGET_BYTES,
            {"bytes": size},
        ),
    ]
    return rows, {"seconds": wall, "html_bytes": size, "releases": N_RELEASES, "roc_points": ROC_POINTS}


def main(argv=None) -> int:
    from benchmarks.run import table

    rows, _ = run()
    print(table(rows))
    print(f"load average now {os.getloadavg()[0]:.2f} (other work on the machine skews timings)")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
