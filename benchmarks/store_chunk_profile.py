"""Where one chunk's time goes: the store release's per-chunk steps next to a plain copy's.

    python -m benchmarks.store_chunk_profile COHORT.vcz [CHUNKS]     (default 5 chunk rows)

Single process, CPU seconds of the process per step (time.process_time: zarr compresses in its own
threads), summed over the first CHUNKS variant chunks of call_genotype (each 1000 x 10000 x 2 = 20 MB raw), the same
functions the Dask tasks of genoshare.pipeline call (_pass1_task, _plan_task, _pass2_task) and the
codecs the copy and the release write (the release: zstd levels RELEASE_CALL_CLEVELS for call_genotype and
mask). Run it twice to see what glibc's allocator costs inside a Dask
worker (the nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
dynamic mmap threshold: every buffer >= 128 KiB is a fresh mmap, faulted in page by page,
and unmapped on free):

    MALLOC_TRIM_THRESHOLD_=65536 python -m benchmarks.store_chunk_profile ...   # as in a worker
    python -m benchmarks.store_chunk_profile ...                                 # glibc defaults

Not part of `make bench` (it reaches into pipeline internals); it explains the store numbers.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import sys
import time

import numpy as np


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0]
    n_chunks = int(argv[1]) if len(argv) > 1 else 5
    import zarr

    from genoshare.io.vcz import RELEASE_CALL_CLEVELS
    from genoshare.mechanism.keystream import derive_keys, master_key_from_seed, noise_words
    from genoshare.pipeline import _Layout, _pass1_task, _pass2_task, _plan_task

    root = zarr.open_group(store=path, mode="r")
    cg, mask_a, ph_a = root["call_genotype"], root["call_genotype_mask"], root["call_genotype_phased"]
    m, n, _ = cg.shape
    cv, cs = cg.chunks[0], cg.chunks[1]
    out = zarr.open_group(store=zarr.storage.MemoryStore(), mode="w", zarr_format=2)

    def like(name, a, clevel=None):
        comp = a.compressors
        if clevel is not None:
            c = comp[0]
            comp = (type(c)(cname=c.cname, clevel=clevel, shuffle=c.shuffle, blocksize=c.blocksize),)
        return out.create_array(
            name, shape=a.shape, dtype=a.dtype, chunks=a.chunks, compressors=comp, fill_value=a.fill_value
        )

    mk = {name: like(name, a) for name, a in (("cg", cg), ("mask", mask_a), ("phased", ph_a))}
    rk = {
        "cg": like("rcg", cg, RELEASE_CALL_CLEVELS["call_genotype"]),
        "mask": like("rmask", mask_a, RELEASE_CALL_CLEVELS["call_genotype_mask"]),
        "phased": like("rphased", ph_a),
    }
    layout = _Layout(n_total=n, cv=cv, cs=cs, digests=True)
    keys = derive_keys(master_key_from_seed(1))
    p = 0.38  # about the mean flip probability of the 1e9 benchmark release
    t = np.uint32(round(p * 2**32))

    steps: dict[str, float] = collections.defaultdict(float)
    faults: dict[str, int] = collections.defaultdict(int)

    class step:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            self.t0 = time.process_time()
            self.f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

        def __exit__(self, *exc):
            steps[self.name] += time.process_time() - self.t0
            faults[self.name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.f0

    # warm-up (numba load, zarr imports)
    part = _pass1_task(cg[0:cv, 0:cs], np.full((cv, 2), t, np.uint32), keys, layout, 0, 0)
    _pass2_task(part, _plan_task([part], np.full(cv, np.nan), keys, None, layout, 0), keys, layout, 0, 0, cs)
    steps.clear()
    faults.clear()
    for c in range(n_chunks):
        v0, v1 = c * cv, min((c + 1) * cv, m)
        sl = (slice(v0, v1), slice(0, cs))
        # --- plain copy of the three arrays
        with step("copy: read call_genotype"):
            a = cg[sl]
        with step("copy: read mask + phased"):
            b = mask_a[sl]
            ph = ph_a[sl]
        with step("copy: write call_genotype"):
            mk["cg"][sl] = a
        with step("copy: write mask + phased"):
            mk["mask"][sl] = b
            mk["phased"][sl] = ph
        del a, b, ph
        # --- release: pass 1, plan, pass 2 of this chunk (one sample block), then the writes
        th = np.full((v1 - v0, 2), t, np.uint32)
        with step("pass1: read call_genotype"):
            calls = cg[sl]
        with step("pass1: task (decode, noise, XOR, counts, pack, digests)"):
            part = _pass1_task(calls, th, keys, layout, c, 0)
        with step("plan: task (published frequencies)"):
            planned = _plan_task([part], np.full(v1 - v0, np.nan), keys, None, layout, c)
        with step("pass2: task (unpack, flips, decode)"):
            rel, _ = _pass2_task(part, planned, keys, layout, c, 0, cs)
        with step("pass2: mask = released < 0, phased zeros"):
            msk = rel < 0
            phz = np.zeros((v1 - v0, cs), dtype=bool)
        with step("pass2: write call_genotype"):
            rk["cg"][sl] = rel
        with step("pass2: write mask + phased"):
            rk["mask"][sl] = msk
            rk["phased"][sl] = phz
        del calls, part, planned, rel, msk, phz
    # keystream alone, for scale
    with step("(keystream alone, 8 bytes/genotype, 1 chunk)"):
        for a0 in range(0, cv, 52):
            noise_words(keys.noise, n, a0, min(a0 + 52, cv), 0, cs)
    copy = sum(v for k2, v in steps.items() if k2.startswith("copy"))
    rel = sum(v for k2, v in steps.items() if k2.startswith("pass"))
    res = {
        "env_MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
        "env_MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "chunks": n_chunks,
        "genotypes": n_chunks * cv * cs,
        "copy_cpu_s": copy,
        "release_cpu_s": rel,
        "ratio": rel / copy,
        "steps": {k2: [round(v, 3), faults[k2]] for k2, v in steps.items()},
    }
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
