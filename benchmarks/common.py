"""Shared pieces of the benchmarks: paths, result rows, small timing helpers."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench"  # gitignored
CACHE = BENCH_DIR / "data"
WORK = BENCH_DIR / "work"


def cached_simulation(params: dict, files=("simulation.json", "cohort.csv.gz", "panel.csv.gz")) -> tuple[Path, dict]:
    """A deterministic ``genoshare.simulate.simulate_cohort(**params)`` cached under .bench/data (made once), and
    how long making it took (now, or when it was cached; recorded beside the directory)."""
    from genoshare.simulate import simulate_cohort

    key = "sim-c{cases}-k{controls}-p{panel}-v{variants}-h{holdout}-s{seed}".format(**params)
    out = CACHE / key
    stamp = CACHE / f"{key}.seconds.json"
    if all((out / f).exists() for f in files):
        seconds = json.loads(stamp.read_text())["seconds"] if stamp.exists() else None
        return out, {"cached": True, "seconds": seconds, "dir": str(out.relative_to(ROOT))}
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    simulate_cohort(out, overwrite=True, **params)
    seconds = time.perf_counter() - t0
    stamp.write_text(json.dumps({"seconds": seconds}) + "\n")
    return out, {"cached": False, "seconds": seconds, "dir": str(out.relative_to(ROOT))}


@dataclass
class Row:
    """One line of the results table.

    ``target`` is a human-readable statement; ``ok`` is None for informational rows (no
    target), else whether the target was met. ``ratio`` is always baseline / measured of two
    numbers measured in the same run (never a number from elsewhere).
    """

    benchmark: str
    measured: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None
    values: dict = field(default_factory=dict)  # the raw numbers, for the JSON

    def to_json(self) -> dict:
        return asdict(self)


def fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def repeat(fn, times: int):
    """Call fn() ``times`` times; returns (list of wall seconds, last result)."""
    walls = []
    result = None
    for _ in range(times):
        t0 = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
    return walls, result


def summary(walls: list[float]) -> dict:
    return {"runs": [round(w, 6) for w in walls], "best": min(walls), "median": statistics.median(walls)}
