"""Baseline of benchmarks/store.py: a plain Zarr copy of a VCF Zarr store's call arrays.

    python -m benchmarks.store_copy SRC.vcz DST.zarr [WORKERS] [--release-codec]

Copies call_genotype, call_genotype_mask and call_genotype_phased (the arrays a release
writes) with the same dtype, chunks, compressor, filters and fill value into a new Zarr
format 2 group, reading and writing every chunk on the same local Dask cluster as the release
(``genoshare.cluster.dask_client("local")``: one single-threaded worker process per core):
``dask.array.from_zarr`` -> ``dask.array.store``. Prints one JSON line of timings. Run as its
own process so that its wall time, like the release's, includes interpreter start, imports
and cluster start-up. ``--release-codec``: write call_genotype and call_genotype_mask at the zstd level a
release uses (genoshare.io.vcz.RELEASE_CALL_CLEVELS) instead of the source's: an informational second baseline.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402

ARRAYS = ("call_genotype", "call_genotype_mask", "call_genotype_phased")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    release_codec = "--release-codec" in argv
    argv = [a for a in argv if a != "--release-codec"]
    src_path, dst_path = argv[0], argv[1]
    workers = int(argv[2]) if len(argv) > 2 else None
    import dask
    import dask.array as da
    import zarr

    from genoshare.cluster import dask_client

    t_import = time.perf_counter()
    src = zarr.open_group(store=src_path, mode="r")
    dst = zarr.open_group(store=dst_path, mode="w-", zarr_format=2)
    arrays = [src[name] for name in ARRAYS]
    outs = []
    for name, a in zip(ARRAYS, arrays):
        compressors = a.compressors
        if release_codec and name in ("call_genotype", "call_genotype_mask"):
            from genoshare.io.vcz import RELEASE_CALL_CLEVELS

            c = a.compressors[0]
            compressors = (
                type(c)(cname=c.cname, clevel=RELEASE_CALL_CLEVELS[name], shuffle=c.shuffle, blocksize=c.blocksize),
            )
        outs.append(
            dst.create_array(
                name,
                shape=a.shape,
                dtype=a.dtype,
                chunks=a.chunks,
                compressors=compressors,
                filters=a.filters or None,
                fill_value=a.fill_value,
            )
        )
    with dask_client("local", n_workers=workers, quiet=True) as client:
        t_cluster = time.perf_counter()
        nworkers = len(client.scheduler_info()["workers"])
        store = da.store([da.from_zarr(a) for a in arrays], outs, lock=False, compute=False)
        dask.compute(store)
        t_copy = time.perf_counter()
    t_end = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": t_import - T_START,
                "cluster_start_s": t_cluster - t_import,
                "copy_s": t_copy - t_cluster,
                "cluster_close_s": t_end - t_copy,
                "total_in_process_s": t_end - T_START,
                "workers": nworkers,
                "codecs": {
                    name: {
                        "chunks": list(a.chunks),
                        "compressors": [str(c) for c in a.compressors],
                        "filters": [str(f) for f in (a.filters or ())],
                    }
                    for name, a in zip(ARRAYS, outs)
                },
                "raw_bytes": int(sum(a.nbytes for a in arrays)),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
