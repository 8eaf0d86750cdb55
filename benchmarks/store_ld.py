"""LD-statistics timing of benchmarks/store.py: ``genoshare.pipeline.panel_ldstats`` at several m.

    python -m benchmarks.store_ld '{"stores": [[m, cohort.vcz, panel.vcz], ...], "window": 1000, "repeats": 2}'

One local Dask cluster (``genoshare.cluster.dask_client("local")``, as the release uses) for
every size, so cluster start-up and the numba cache load in each worker (one untimed warm-up
call on the first store) are not part of any timing: what is left is the cost of the tile
tasks (read panel rows, pack, popcount tiles, reduce), which should be linear in m for a
fixed window. Sites are aligned exactly as the release aligns them (``--ambiguous keep``).
Prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import sys
import time


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    window, repeats = int(spec.get("window", 1000)), int(spec.get("repeats", 2))
    zero_cell = spec.get("zero_cell", "haldane")
    from genoshare.cluster import dask_client
    from genoshare.io.align import align
    from genoshare.io.vcz import open_vcz
    from genoshare.mechanism.ldstats import DEFAULT_TILE, plan_tiles
    from genoshare.pipeline import panel_ldstats

    out = {"window": window, "zero_cell": zero_cell, "tile": DEFAULT_TILE, "sizes": []}
    with dask_client("local", quiet=True) as client:
        out["workers"] = len(client.scheduler_info()["workers"])
        prepared = []
        for m, cohort_path, panel_path in spec["stores"]:
            cohort, panel = open_vcz(cohort_path), open_vcz(panel_path)
            al = align(cohort, panel, ambiguous="keep")
            prepared.append((int(m), panel, al, cohort.variant_contig[al.cohort_index]))

        def once(panel, al, codes):
            # panel_ldstats scatters its index arrays (content-hashed keys); calling it again with the
            # same arrays while the previous call's futures are still being released loses them
            # ("lost dependencies"), so let the release settle first (untimed).
            gc.collect()
            time.sleep(1.0)
            t0 = time.perf_counter()
            stats, _ = panel_ldstats(
                client, str(panel.path), al.panel_index, al.panel_swap, codes, panel.n_samples, window, zero_cell
            )
            return time.perf_counter() - t0, stats

        m0, panel0, al0, codes0 = prepared[0]
        warm, _ = once(panel0, al0, codes0)
        out["warmup_s"] = warm
        for m, panel, al, codes in prepared:
            walls = []
            for _ in range(repeats):
                w, stats = once(panel, al, codes)
                walls.append(w)
            out["sizes"].append(
                {
                    "m": m,
                    "kept": int(al.n_kept),
                    "n_ref": panel.n_samples,
                    "runs_s": walls,
                    "best_s": min(walls),
                    "tasks": len(plan_tiles(al.n_kept, window)),
                    "f2": float(stats.f2),
                }
            )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
