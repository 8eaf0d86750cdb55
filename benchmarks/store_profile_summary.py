"""Summarise py-spy raw (collapsed) stacks of a release or copy by what the time is spent on.

    py-spy record --subprocesses --native --format raw -o prof.txt -- genoshare release ...
    python -m benchmarks.store_profile_summary prof.txt

Buckets are matched in order on the whole stack (first match wins); samples whose process
or stack is idle (waiting in the event loop, a lock or a select) are counted apart. Used to
explain where the store release spends its time (see the store benchmark's report).
"""

from __future__ import annotations

import collections
import re
import sys

BUCKETS = [
    ("ldstats: tile kernel", r"ld_tile|tile_partial"),
    ("ldstats: panel read", r"_panel_rows"),
    ("ldstats: other", r"_ld_task"),
    ("noise keystream (AES-CTR)", r"noise_words|keystream|_rows \(genoshare/mechanism/keystream"),
    ("noise+XOR+count kernel", r"noise_xor_count|noise_pack_count"),
    ("flips (restore)", r"restore \(genoshare|apply_flips|flip_words"),
    ("dosage_from_calls", r"dosage_from_calls"),
    ("calls_from_codes", r"calls_from_codes"),
    ("pass1 other", r"_pass1_task"),
    ("pass2 other", r"_pass2_task|unpack_codes"),
    ("mask (released < 0)", r"(lt|less).*\(dask/array|operator.lt|numpy.*less"),
    ("zeros (phased)", r"zeros|broadcast_to|ones_like"),
    (
        "zarr write: compress",
        r"(?=.*(blosc|Blosc|compress))(?=.*(store_chunk|_write|encode|setitem|__setitem__|set_basic_selection|write))",
    ),
    ("zarr read: decompress", r"blosc|Blosc|decompress|decode"),
    ("zarr other (read/write glue, file io)", r"zarr/"),
    ("dask scheduling / comm / pickling", r"distributed/|pickle|tornado|msgpack"),
    ("dask array glue", r"dask/"),
]
IDLE = (
    r"pthread_cond_wait|pthread_cond_timedwait|epoll_wait|select_epoll_poll|Condition\.wait|Queue\.get|sem_wait|"
    r"sem_clockwait|PyThread_acquire_lock|_wait_for_tstate_lock|time_sleep|clock_nanosleep|poll \(libc"
)


def summarise(path: str) -> dict:
    procs = collections.defaultdict(collections.Counter)
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        count = int(count)
        frames = stack.split(";")
        proc = [f for f in frames if f.startswith("process ")][-1]
        if "multiprocessing.spawn" in proc:
            kind = "dask worker processes"
        elif "resource_tracker" in proc:
            kind = "resource tracker"
        else:
            kind = "main process (CLI + scheduler + client)"
        leaf = frames[-1]
        if re.search(IDLE, stack):
            procs[kind]["(idle/wait)"] += count
            continue
        for name, pat in BUCKETS:
            if re.search(pat, stack):
                procs[kind][name] += count
                break
        else:
            procs[kind]["other: " + leaf[:70]] += count
    return procs


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for kind, c in summarise(argv[0]).items():
        total = sum(c.values())
        busy = total - c.get("(idle/wait)", 0)
        print(f"== {kind}: {total} samples, {busy} busy")
        for name, n in c.most_common(25):
            print(f"  {n:7d}  {100 * n / max(busy, 1):5.1f}% of busy  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
