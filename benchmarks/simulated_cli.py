"""Benchmark 2: `genoshare release` as a subprocess on a simulated 401 x 28,396-SNP cohort.

msprime cohort of 200 cases + 201 controls with a 541-person reference panel, 28,396 SNPs
(simulate_cohort, cached under .bench/data keyed by its parameters, so reruns skip it; the
simulation time is reported separately). Window all, exact calibration, haldane, epsilon = m.

Each measured run is the real CLI in a child of a fresh wrapper process: wall time is measured
around the child (process start, imports, CSV read, everything), peak RSS is the child's
getrusage(RUSAGE_CHILDREN).ru_maxrss. One small CLI run on the lactose data comes first so the
numba on-disk cache is warm (a first run after a code change compiles the kernels).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.common import ROOT, WORK, Row, cached_simulation, fmt_bytes, fmt_s, summary

PARAMS = {"cases": 200, "controls": 201, "panel": 541, "variants": 28396, "seed": 2024, "holdout": 0}
RUNS = 3
TARGET_SECONDS = 30.0
TARGET_RSS = 2e9  # bytes
MACHINE_RAM = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

# The wrapper is a fresh interpreter whose only child is the CLI, so RUSAGE_CHILDREN is exactly it.
WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "wall": wall, "maxrss_kb": ru.ru_maxrss, "user": ru.ru_utime,
                  "sys": ru.ru_stime, "stdout": p.stdout[-4000:], "stderr": p.stderr[-4000:]}))
"""


def genoshare_exe() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "genoshare")
    if not os.path.exists(exe):
        raise FileNotFoundError(f"{exe} not found: run `make install` first")
    return exe


def measure(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout)
    if res["rc"] != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed (exit {res['rc']}): {res['stderr'].strip()}")
    res["peak_rss_bytes"] = res["maxrss_kb"] * 1024  # Linux reports kilobytes
    return res


def simulated_data():
    """Cached cohort directory and how long making it took (now, or when it was cached)."""
    return cached_simulation(PARAMS)


def dense_memory(m: int) -> dict:
    two_m = 2 * m
    per = two_m * two_m * 8
    return {
        "2m": two_m,
        "bytes_per_matrix": per,
        "matrices": 5,
        "bytes_total": 5 * per,
        "text": (
            f"dense at m={m:,}: (2m)^2 float64 = {two_m:,}^2 x 8 B = {fmt_bytes(per)} per matrix; "
            f"M11, M10, M01, M00 and T = {fmt_bytes(5 * per)} (machine RAM {fmt_bytes(MACHINE_RAM)}): "
            "not run"
        ),
    }


def run() -> tuple[list[Row], dict]:
    data, sim = simulated_data()
    cohort, panel = data / "cohort.csv.gz", data / "panel.csv.gz"
    m = PARAMS["variants"]
    n = PARAMS["cases"] + PARAMS["controls"]
    eps = float(m)
    exe = genoshare_exe()
    WORK.mkdir(parents=True, exist_ok=True)

    lactose = ROOT / "data" / "opensnp-lactose"
    warm = measure(
        [
            exe,
            "release",
            str(lactose / "data.csv.gz"),
            "--reference",
            str(lactose / "reference.csv.gz"),
            "--epsilon",
            "9091",
            "--out",
            str(WORK / "cli-warmup"),
            "--seed",
            "1",
            "--overwrite",
        ]
    )

    out_dir = WORK / "sim-release"
    argv = [
        exe,
        "release",
        str(cohort),
        "--reference",
        str(panel),
        "--epsilon",
        f"{eps:g}",
        "--out",
        str(out_dir),
        "--seed",
        "1",
        "--window",
        "all",
        "--overwrite",
    ]
    runs = []
    for _ in range(RUNS):
        r = measure(argv)
        r["manifest"] = json.loads((out_dir / "manifest.json").read_text())
        runs.append(r)
    walls = [r["wall"] for r in runs]
    wall = summary(walls)
    peak = max(r["peak_rss_bytes"] for r in runs)
    med_run = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
    mf = med_run["manifest"]
    timings = mf["timings"]
    in_api = sum(timings.values())
    dense = dense_memory(m)

    label = f"sim {n}x{m:,} (panel {PARAMS['panel']})"
    rows = [
        Row(
            f"{label}: CLI release wall (median of {RUNS})",
            fmt_s(wall["median"]),
            "",
            "",
            f"< {TARGET_SECONDS:g} s",
            wall["median"] < TARGET_SECONDS,
            {"median_s": wall["median"], "best_s": wall["best"], "runs": walls},
        ),
        Row(
            f"{label}: CLI release peak RSS (max of {RUNS})",
            fmt_bytes(peak),
            "",
            "",
            f"< {fmt_bytes(TARGET_RSS)}",
            peak < TARGET_RSS,
            {"peak_rss_bytes": peak},
        ),
        *[Row(f"{label}:   manifest timing: {k}", fmt_s(v), "", "", "", None, {"s": v}) for k, v in timings.items()],
        Row(
            f"{label}:   outside the timed steps (start, imports)",
            fmt_s(med_run["wall"] - in_api),
            "",
            "",
            "",
            None,
            {"s": med_run["wall"] - in_api},
        ),
        Row(
            f"{label}: epsilon requested / true (XOR)",
            f"{mf['epsilon_requested']:g} / {mf['epsilon_xor']:.6g}",
            "",
            "",
            "",
            None,
            {"requested": mf["epsilon_requested"], "xor": mf["epsilon_xor"], "nominal": mf["epsilon_nominal"]},
        ),
        Row(
            f"{label}: simulation ({'cached' if sim['cached'] else 'this run'})",
            fmt_s(sim["seconds"]) if sim["seconds"] is not None else "?",
            "",
            "",
            "",
            None,
            sim,
        ),
        Row(f"{label}: dense memory (computed, not run)", fmt_bytes(dense["bytes_total"]), "", "", "", None, dense),
    ]
    details = {
        "params": PARAMS,
        "settings": {"epsilon": eps, "calibration": "exact", "zero_cell": "haldane", "window": "all", "seed": 1},
        "command": " ".join(os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a for a in argv),
        "simulation": sim,
        "warmup": {k: warm[k] for k in ("wall", "peak_rss_bytes")},
        "runs": [
            {
                "wall_s": r["wall"],
                "peak_rss_bytes": r["peak_rss_bytes"],
                "user_s": r["user"],
                "sys_s": r["sys"],
                "timings": r["manifest"]["timings"],
            }
            for r in runs
        ],
        "wall": wall,
        "peak_rss_bytes": peak,
        "dense_memory": dense,
        "rss_method": "getrusage(RUSAGE_CHILDREN).ru_maxrss in a fresh wrapper process",
    }
    return rows, details
