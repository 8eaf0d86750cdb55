"""`make bench`: run every benchmark, print one table, write .bench/results.json.

Every number in the table was measured in this run; a ratio is baseline / genoshare of two
numbers measured here, never a number from elsewhere. The exit status is non-zero if any
target is missed or any benchmark failed, but everything is printed first.

Usage: python -m benchmarks.run [--only lactose,simulated_cli,store] [--out .bench/results.json]
(GENOSHARE_BENCH_QUICK=1: the store benchmark skips its 1e9-genotype size.)
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, UTC
from pathlib import Path

from benchmarks.common import BENCH_DIR, ROOT, Row

BENCHMARKS = ["lactose", "simulated_cli", "attacks", "store"]
COLUMNS = ["benchmark", "measured", "baseline", "ratio", "target", "ok"]


def _git() -> dict:
    def out(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:  # noqa: BLE001 - git is optional here
            return ""

    return {"commit": out("rev-parse", "HEAD"), "dirty": bool(out("status", "--porcelain", "--", "src"))}


def machine() -> dict:
    import numpy

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": numpy.__version__,
        "loadavg_start": os.getloadavg(),
    }
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        info["cpu"] = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return info


def table(rows: list[Row]) -> str:
    cells = [COLUMNS] + [
        [r.benchmark, r.measured, r.baseline, r.ratio, r.target, "" if r.ok is None else ("yes" if r.ok else "NO")]
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = []
    for k, c in enumerate(cells):
        lines.append(" | ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
        if k == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    # benchmark releases go to their own ledger, never the user's
    os.environ.setdefault("GENOSHARE_PRIVATE_DIR", str(BENCH_DIR / "private"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ", ".join(BENCHMARKS))
    ap.add_argument("--out", default=str(BENCH_DIR / "results.json"))
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    results = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": _git(),
        "benchmarks": {},
    }
    all_rows: list[Row] = []
    t_all = time.perf_counter()
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
            rows, details = mod.run()
            error = None
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            traceback.print_exc()
            rows = [Row(f"{name}: FAILED", f"{type(exc).__name__}: {exc}"[:120], ok=False)]
            details, error = {}, traceback.format_exc()
        seconds = time.perf_counter() - t0
        print(f"[bench] {name} done in {seconds:.1f} s", file=sys.stderr, flush=True)
        all_rows += rows
        results["benchmarks"][name] = {
            "seconds": seconds,
            "rows": [r.to_json() for r in rows],
            "details": details,
            "error": error,
        }
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - t_all
    missed = [r.benchmark for r in all_rows if r.ok is False]
    results["all_targets_met"] = not missed

    print()
    print(table(all_rows))
    print()
    for name in names:
        d = results["benchmarks"][name]["details"]
        if name == "simulated_cli" and d:
            print(d["dense_memory"]["text"])
    m = results["machine"]
    print(
        f"machine: {m.get('cpu', '?')}, {m['cpus']} cpus; load average at start {m['loadavg_start'][0]:.2f}, "
        f"end {m['loadavg_end'][0]:.2f} (other work on the machine skews timings); "
        f"total {results['total_seconds']:.0f} s"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {os.path.relpath(out, Path.cwd())}")
    if missed:
        print(f"MISSED {len(missed)} target(s): " + "; ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
