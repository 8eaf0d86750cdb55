"""Benchmark: `genoshare release` on a 10,000 x 100,000-SNP VCF Zarr cohort (1e9 genotypes).

Issue text: "simulated cohort of 10,000 x 100,000 SNPs (1e9 genotypes) with a 1,000-person
panel: end-to-end release time and its ratio to a plain Zarr copy of the same store (read +
write, same codec and chunks) measured in the same run - target at most 2.0x; time per
genotype at 1e8, 3e8 and 1e9 genotypes within +-20% of each other (linear scaling); peak RSS
at most 3 GB at every size; LD statistics cost per SNP constant in m for a fixed window."

Data. One msprime simulation (``genoshare.simulate.simulate_cohort``: 5,000 cases + 5,000
controls + 1,000 panel, 100,000 SNPs, no hold-out, VCF Zarr only, chunks 1000 variants x
10000 samples), cached under .bench/data keyed by its parameters. The 1e8 and 3e8 sizes are the
first 10,000 and 30,000 SNPs of the same cohort and panel, written as their own stores with
the same chunks and codecs (call arrays copied chunk by chunk), and a 1,000-SNP store serves
as the warm-up. Making the data takes ~3 minutes and ~3 GB of RAM once (its time is reported;
later runs reuse the cache).

Release. The real CLI as a subprocess, at each size:
``genoshare release cohort.vcz --reference panel.vcz --epsilon m --out DIR --seed 1
--overwrite --ambiguous keep`` (defaults otherwise: window 1000, exact calibration, haldane,
published frequencies, local Dask cluster with one single-threaded worker process per core).
The releases' ledger goes to a private directory under .bench/work (GENOSHARE_PRIVATE_DIR),
emptied at the start of every run, never the owner's ~/.local/share/genoshare.
``--ambiguous keep``: the simulator gives ~1/6 of the SNPs A/T or C/G alleles; cohort and panel
come from the same simulation on the same strand, and keeping them makes the release cover
every one of the m x n genotypes that the copy copies (with the default ``drop`` it would
release ~83% of them, through an extra gather + rechunk of the kept rows). Wall time is
measured around the child process (interpreter start, imports, cluster start, everything).
Peak memory is the peak of the SUM of RSS over the child's whole process tree (sampled every
0.2 s, benchmarks/store_procs.py), plus the largest single process (its kernel VmHWM).

Baseline, same run, same sizes: ``python -m benchmarks.store_copy`` copies call_genotype,
call_genotype_mask and call_genotype_phased (what the release writes) into a new Zarr store
with the same chunks, compressor and filters, on the same local Dask cluster configuration
(``genoshare.cluster.dask_client("local")``), ``da.from_zarr`` -> ``da.store``; also a child
process timed the same way. Ratio = release wall / copy wall. Copy and release alternate
(copy first), in rounds over the sizes (``REPEATS``: 3, 2, 2 runs), and the BEST (least disturbed)
wall times are compared: the machine is shared, and other work only ever adds time. Whole-tree
CPU seconds (user + system) are reported beside them as a load-insensitive cross-check.

LD statistics. ``python -m benchmarks.store_ld`` times ``genoshare.pipeline.panel_ldstats``
(window 1000, haldane) on the panel at m = 1e4, 3e4, 1e5 on one warm local cluster (best of
``LD_REPEATS``); seconds per SNP must be constant in m (max/min within the same +-20% band).
The release manifests' own ldstats timings (which include each worker's first-task numba
load) are reported too.

Linear scaling. Every run pays a fixed start-up (interpreter, imports, Dask cluster, ~5 s), so
end-to-end seconds per genotype fall with size for any pipeline and are only reported. The target
is on the slope: the seconds each additional genotype costs between consecutive sizes,
(T(3e8) - T(1e8)) / 2e8 and (T(1e9) - T(3e8)) / 7e8, must agree within +-20%.

Quick run: GENOSHARE_BENCH_QUICK=1 skips the 1e9 size (the ratio target is then checked at
3e8; the scaling target needs all three sizes). GENOSHARE_BENCH_STORE_REPEATS=N: N runs at every size.
GENOSHARE_BENCH_STORE_MALLOC=1 adds an informational experiment: copy and release at the largest
size with the Dask workers' glibc allocator set to reuse freed memory (``MALLOC_ENV`` through
the ``distributed.nanny.pre-spawn-environ`` dask config; the nanny's default
MALLOC_TRIM_THRESHOLD_=65536 disables glibc's dynamic mmap threshold, so every buffer of
>= 128 KiB is freshly mmapped and faulted in).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks.common import CACHE, ROOT, WORK, Row, fmt_bytes, fmt_s
from benchmarks.store_procs import run_tree

PARAMS = {"cases": 5000, "controls": 5000, "panel": 1000, "variants": 100_000, "seed": 20251123, "holdout": 0}
SIZES = (10_000, 30_000, 100_000)  # SNPs: 1e8, 3e8, 1e9 genotypes with 10,000 samples
WARMUP_SNPS = 1_000
# runs of copy and of release per size (interleaved in rounds over the sizes, so that every size sees
# the machine's load of the same minutes); GENOSHARE_BENCH_STORE_REPEATS=N sets all of them
_REP = os.environ.get("GENOSHARE_BENCH_STORE_REPEATS")
REPEATS = {m: int(_REP) if _REP else r for m, r in zip(SIZES, (3, 2, 2))}
LD_REPEATS = 3
#: opt-in experiment (GENOSHARE_BENCH_STORE_MALLOC=1): the largest size again, with the Dask workers'
#: glibc malloc told to reuse freed buffers (set through dask config, genoshare's code unchanged)
MALLOC_EXPERIMENT = os.environ.get("GENOSHARE_BENCH_STORE_MALLOC", "") not in ("", "0")
MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": 256 << 20, "MALLOC_MMAP_THRESHOLD_": 64 << 20}
WINDOW = 1000
TARGET_RATIO = 2.0  # release wall / copy wall at 1e9
TARGET_SCALING = 1.2 / 0.8  # max / min of seconds per genotype (all within +-20% of a common value)
TARGET_LD_SCALING = 1.2 / 0.8  # max / min of LD seconds per SNP
TARGET_RSS = 3e9  # bytes, whole process tree, every size
QUICK = os.environ.get("GENOSHARE_BENCH_QUICK", "") not in ("", "0")
TIMEOUT = 3600.0


def _key() -> str:
    return "store-c{cases}-k{controls}-p{panel}-v{variants}-h{holdout}-s{seed}".format(**PARAMS)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _subset(src: Path, dst: Path, m: int) -> None:
    """The first m variants of VCF Zarr store src as a new store dst: same samples, chunks and codecs
    (metadata through genoshare.io.vcz.init_vcz, call arrays copied chunk row by chunk row)."""
    import zarr

    from genoshare.io.vcz import atomic_store, init_vcz, open_vcz

    info = open_vcz(src)
    root = zarr.open_group(store=str(src), mode="r")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_store(dst, overwrite=True) as tmp:
        out = init_vcz(
            tmp,
            sample_ids=info.sample_ids,
            contig_ids=info.contig_ids,
            variant_contig=info.variant_contig[:m],
            variant_position=info.variant_position[:m],
            variant_allele=info.variant_allele[:m],
            variant_id=info.variant_id[:m],
            chunks=info.chunks,
            contig_lengths=info.contig_lengths,
            root_attrs={"genoshare_bench_subset_of": str(src), "genoshare_bench_variants": m},
        )
        cv = info.chunks[0]
        for name in ("call_genotype", "call_genotype_mask", "call_genotype_phased"):
            a, b = root[name], out[name]
            if a.chunks != b.chunks or str(a.compressors) != str(b.compressors):
                raise RuntimeError(
                    f"{dst}/{name}: chunks/codecs {b.chunks} {b.compressors} differ from the "
                    f"source's {a.chunks} {a.compressors}"
                )
            for v0 in range(0, m, cv):
                b[v0 : min(v0 + cv, m)] = a[v0 : min(v0 + cv, m)]


def data() -> tuple[Path, dict]:
    """The cached simulation and its subsets: returns (directory, info)."""
    from genoshare.simulate import simulate_cohort

    base = CACHE / _key()
    stamp = base / "bench-data.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        info["cached"] = True
        return base, info
    base.mkdir(parents=True, exist_ok=True)
    sim_dir = base / "full"
    sim_stamp = base / "simulation-seconds.json"
    if not (sim_stamp.exists() and (sim_dir / "simulation.json").exists()):
        print(
            f"[bench] store: simulating {_key()} (once; cached in {base.relative_to(ROOT)}) ...",
            file=sys.stderr,
            flush=True,
        )
        t0 = time.perf_counter()
        simulate_cohort(sim_dir, formats=("vcz",), overwrite=True, **PARAMS)
        sim_stamp.write_text(json.dumps({"seconds": time.perf_counter() - t0}) + "\n")
    t_sim = json.loads(sim_stamp.read_text())["seconds"]
    t0 = time.perf_counter()
    for m in (WARMUP_SNPS,) + SIZES[:-1]:
        for name in ("cohort", "panel"):
            _subset(sim_dir / f"{name}.vcz", base / f"m{m}" / f"{name}.vcz", m)
    t_sub = time.perf_counter() - t0
    info = {
        "simulation_s": t_sim,
        "subsets_s": t_sub,
        "params": PARAMS,
        "simulation": json.loads((sim_dir / "simulation.json").read_text())["model"],
        "bytes_on_disk": {p.name: _dir_bytes(p) for p in (sim_dir / "cohort.vcz", sim_dir / "panel.vcz")},
    }
    stamp.write_text(json.dumps(info, indent=2) + "\n")
    info["cached"] = False
    return base, info


def stores(base: Path, m: int) -> tuple[Path, Path]:
    d = base / ("full" if m == PARAMS["variants"] else f"m{m}")
    return d / "cohort.vcz", d / "panel.vcz"


def genoshare_exe() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "genoshare")
    if not os.path.exists(exe):
        raise FileNotFoundError(f"{exe} not found: run `make install` first")
    return exe


def _check(res: dict, what: str) -> dict:
    if res["rc"] != 0:
        raise RuntimeError(f"{what} failed (exit {res['rc']}): {res['stderr'].strip()[-600:]}")
    return res


PRIVATE = WORK / "store-private"  # the releases' ledger (GENOSHARE_PRIVATE_DIR): never the owner's real one


def _env(malloc: bool = False) -> dict:
    env = {**os.environ, "GENOSHARE_PRIVATE_DIR": str(PRIVATE)}
    if not malloc:
        return env
    import dask
    import distributed  # noqa: F401 - loads distributed's config defaults

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.update(MALLOC_ENV)
    env["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"] = repr(environ)
    return env


def release_once(base: Path, m: int, tag: str, malloc: bool = False) -> dict:
    cohort, panel = stores(base, m)
    out = WORK / f"store-release-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    argv = [
        genoshare_exe(),
        "release",
        str(cohort),
        "--reference",
        str(panel),
        "--epsilon",
        f"{float(m):g}",
        "--out",
        str(out),
        "--seed",
        "1",
        "--overwrite",
        "--ambiguous",
        "keep",
    ]
    res = _check(run_tree(argv, timeout=TIMEOUT, env=_env(malloc)), f"release m={m}")
    mf = json.loads((out / "manifest.json").read_text())
    res["timings"] = mf["timings"]
    if mf.get("n_variants") != m or mf.get("n_samples") != PARAMS["cases"] + PARAMS["controls"]:
        raise RuntimeError(
            f"release m={m} released {mf.get('n_variants')} variants x {mf.get('n_samples')} samples, "
            "not the whole store (alignment dropped sites?)"
        )
    res["manifest"] = {
        k: mf.get(k)
        for k in ("n_samples", "n_variants", "epsilon_requested", "epsilon_xor", "flips", "chunks", "alignment")
    }
    res["argv"] = " ".join(os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a for a in argv)
    res["out_bytes"] = _dir_bytes(out)
    res["codecs"] = _codecs(out / "release.vcz")
    shutil.rmtree(out, ignore_errors=True)
    return res


def copy_once(base: Path, m: int, tag: str, malloc: bool = False, release_codec: bool = False) -> dict:
    cohort, _ = stores(base, m)
    out = WORK / f"store-copy-{tag}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    extra = ["--release-codec"] if release_codec else []
    res = _check(
        run_tree(
            [sys.executable, "-m", "benchmarks.store_copy", str(cohort), str(out), *extra],
            cwd=ROOT,
            timeout=TIMEOUT,
            env=_env(malloc),
        ),
        f"copy m={m}",
    )
    res["inner"] = json.loads(res["stdout"].strip().splitlines()[-1])
    res["out_bytes"] = _dir_bytes(out)
    res["codecs"] = _codecs(out)
    shutil.rmtree(out, ignore_errors=True)
    return res


def _codecs(store: Path) -> dict:
    out = {}
    for name in ("call_genotype", "call_genotype_mask", "call_genotype_phased"):
        meta = json.loads((store / name / ".zarray").read_text())
        out[name] = {"chunks": meta["chunks"], "compressor": meta["compressor"], "filters": meta["filters"]}
    return out


def _slim(r: dict) -> dict:
    keep = (
        "wall",
        "peak_rss_total_bytes",
        "peak_rss_total_at_s",
        "peak_rss_total_processes",
        "peak_pss_total_bytes",
        "peak_rss_single_bytes",
        "peak_rss_single_cmd",
        "hwm_by_process",
        "samples",
        "max_processes",
        "timings",
        "cpu_s",
        "user_s",
        "sys_s",
        "minor_faults",
        "cpu_by_process",
        "manifest",
        "inner",
        "out_bytes",
        "argv",
        "trace",
        "loadavg",
    )
    return {k: r[k] for k in keep if k in r}


def ld_timings(base: Path, sizes) -> dict:
    spec = {"stores": [[m, *map(str, stores(base, m))] for m in sizes], "window": WINDOW, "repeats": LD_REPEATS}
    res = _check(
        run_tree([sys.executable, "-m", "benchmarks.store_ld", json.dumps(spec)], cwd=ROOT, timeout=TIMEOUT),
        "panel_ldstats timing",
    )
    out = json.loads(res["stdout"].strip().splitlines()[-1])
    out["wall_s"] = res["wall"]
    out["peak_rss_total_bytes"] = res["peak_rss_total_bytes"]
    return out


def _fit(xs, ys) -> tuple[float, float]:
    """Least-squares y = a + b x."""
    k = len(xs)
    mx, my = sum(xs) / k, sum(ys) / k
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")
    return my - b * mx, b


def _one(kind: str, base: Path, m: int, k: int, of: int, malloc: bool = False, release_codec: bool = False) -> dict:
    la = os.getloadavg()[0]
    tag = (" (malloc experiment)" if malloc else "") + (" (release's zstd level)" if release_codec else "")
    print(f"[bench] store: {kind} m={m:,} run {k}/{of}{tag} (load {la:.2f}) ...", file=sys.stderr, flush=True)
    if kind == "copy":
        r = copy_once(base, m, f"m{m}", malloc=malloc, release_codec=release_codec)
    else:
        r = release_once(base, m, f"m{m}", malloc=malloc)
    r["loadavg"] = [la, os.getloadavg()[0]]
    print(
        f"[bench] store:   {fmt_s(r['wall'])}, CPU {r['cpu_s']:.1f} s, peak tree RSS "
        f"{fmt_bytes(r['peak_rss_total_bytes'])}",
        file=sys.stderr,
        flush=True,
    )
    return r


def run() -> tuple[list[Row], dict]:
    t_begin = time.perf_counter()
    base, datainfo = data()
    sizes = SIZES[:-1] if QUICK else SIZES
    n = PARAMS["cases"] + PARAMS["controls"]
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(PRIVATE, ignore_errors=True)  # a fresh ledger every run (the same cohort is released often)
    PRIVATE.mkdir(mode=0o700)
    load_start = os.getloadavg()

    # Warm-up (untimed): numba's on-disk cache in fresh processes, the page cache of the small stores.
    warm = {
        "release": release_once(base, WARMUP_SNPS, "warmup")["wall"],
        "copy": copy_once(base, WARMUP_SNPS, "warmup")["wall"],
    }

    per_size: dict[int, dict] = {m: {"copy": [], "release": [], "copy_release_codec": []} for m in sizes}
    for k in range(max(REPEATS[m] for m in sizes)):
        for m in sizes:
            if k < REPEATS[m]:
                for kind in ("copy", "release"):
                    per_size[m][kind].append(_one(kind, base, m, k + 1, REPEATS[m]))
    for m in sizes:  # informational second baseline, once per size
        per_size[m]["copy_release_codec"].append(_one("copy", base, m, 1, 1, release_codec=True))

    ld = ld_timings(base, SIZES)  # the panel alone is small: all three m even in a quick run
    experiment = None
    if MALLOC_EXPERIMENT:
        m = sizes[-1]
        experiment = {
            "m": m,
            "env": MALLOC_ENV,
            "copy": _one("copy", base, m, 1, 1, malloc=True),
            "release": _one("release", base, m, 1, 1, malloc=True),
        }

    # ---- rows ------------------------------------------------------------------------------------------------
    rows: list[Row] = []
    best = {m: {kind: min(rs, key=lambda r: r["wall"]) for kind, rs in per_size[m].items()} for m in sizes}
    spg, spg_pass, summary = {}, {}, {}
    for m in sizes:
        rel, cp = per_size[m]["release"], per_size[m]["copy"]
        br, bc = best[m]["release"], best[m]["copy"]
        g = m * n
        rw, cw = br["wall"], bc["wall"]
        ratio = rw / cw
        spg[m] = rw / g
        spg_pass[m] = min(r["timings"]["release"] for r in rel) / g
        peak_total = max(r["peak_rss_total_bytes"] for r in rel)
        peak_single = max(r["peak_rss_single_bytes"] for r in rel)
        peak_pss = max(r["peak_pss_total_bytes"] for r in rel)
        copy_peak = max(r["peak_rss_total_bytes"] for r in cp)
        rcpu, ccpu = min(r["cpu_s"] for r in rel), min(r["cpu_s"] for r in cp)
        headline = m == sizes[-1]
        label = f"store {n:,}x{m:,} ({g:.0e} gt)"
        summary[m] = {
            "release_wall_s": rw,
            "copy_wall_s": cw,
            "ratio": ratio,
            "peak_rss_total": peak_total,
            "peak_rss_single": peak_single,
            "peak_pss_total": peak_pss,
            "release_cpu_s": rcpu,
            "copy_cpu_s": ccpu,
            "release_walls": [r["wall"] for r in rel],
            "copy_walls": [r["wall"] for r in cp],
            "release_minor_faults": br["minor_faults"],
            "copy_minor_faults": bc["minor_faults"],
        }
        rows.append(
            Row(
                f"{label}: CLI release end to end (best of {len(rel)})",
                fmt_s(rw),
                f"zarr copy {fmt_s(cw)}",
                f"{ratio:.2f}x",
                f"release/copy <= {TARGET_RATIO:g}x" if headline else "",
                (ratio <= TARGET_RATIO) if headline else None,
                {
                    "release_s": [r["wall"] for r in rel],
                    "copy_s": [r["wall"] for r in cp],
                    "ratio": ratio,
                    "loadavg": {"release": [r["loadavg"] for r in rel], "copy": [r["loadavg"] for r in cp]},
                },
            )
        )
        rows.append(
            Row(
                f"{label}:   CPU s, whole tree, user+sys (least of {len(rel)}; load-insensitive)",
                f"{rcpu:.1f} s (sys {min(r['sys_s'] for r in rel):.1f})",
                f"copy {ccpu:.1f} s (sys {min(r['sys_s'] for r in cp):.1f})",
                f"{rcpu / ccpu:.2f}x",
                "",
                None,
                {
                    "release_cpu_s": [r["cpu_s"] for r in rel],
                    "copy_cpu_s": [r["cpu_s"] for r in cp],
                    "release_sys_s": [r["sys_s"] for r in rel],
                    "copy_sys_s": [r["sys_s"] for r in cp],
                    "release_minor_faults": [r["minor_faults"] for r in rel],
                    "copy_minor_faults": [r["minor_faults"] for r in cp],
                },
            )
        )
        rows.append(
            Row(
                f"{label}: peak RSS, whole process tree (max of {len(rel)})",
                fmt_bytes(peak_total),
                f"zarr copy {fmt_bytes(copy_peak)}",
                "",
                f"<= {fmt_bytes(TARGET_RSS)}",
                peak_total <= TARGET_RSS,
                {
                    "rss_total": peak_total,
                    "pss_total": peak_pss,
                    "rss_single": peak_single,
                    "copy_rss_total": copy_peak,
                },
            )
        )
        rows.append(
            Row(
                f"{label}:   largest single process / tree PSS",
                f"{fmt_bytes(peak_single)} / {fmt_bytes(peak_pss)}",
                "",
                "",
                "",
                None,
                {"rss_single": peak_single, "pss_total": peak_pss},
            )
        )
        if headline:
            in_steps = 0.0
            for k2, v in br["timings"].items():
                rows.append(
                    Row(
                        f"{label}:   manifest timing (best run): {k2}",
                        fmt_s(v),
                        "",
                        "",
                        "",
                        None,
                        {"s": v, "all_runs": [r["timings"].get(k2) for r in rel]},
                    )
                )
                in_steps += v
            rows.append(
                Row(
                    f"{label}:   outside the timed steps (start, imports, cluster, check-release, ledger)",
                    fmt_s(rw - in_steps),
                    "",
                    "",
                    "",
                    None,
                    {"s": rw - in_steps},
                )
            )
            ci = bc["inner"]
            rows.append(
                Row(
                    f"{label}:   zarr copy (best run): da.store part / start+imports+cluster",
                    f"{fmt_s(ci['copy_s'])} / {fmt_s(ci['import_s'] + ci['cluster_start_s'] + ci['cluster_close_s'])}",
                    "",
                    "",
                    "",
                    None,
                    {"inner": [c["inner"] for c in cp]},
                )
            )
            pass_ratio = br["timings"]["release"] / ci["copy_s"]
            rows.append(
                Row(
                    f"{label}:   release passes / da.store copy (no start-up on either side)",
                    fmt_s(br["timings"]["release"]),
                    f"copy {fmt_s(ci['copy_s'])}",
                    f"{pass_ratio:.2f}x",
                    "",
                    None,
                    {"ratio": pass_ratio},
                )
            )

    # Linear scaling: the time each further genotype costs is the same at every size (a constant slope).
    # End-to-end seconds per genotype also contain the fixed start-up (interpreter, imports, cluster,
    # ~5 s) and so fall with size for any pipeline; they are reported beside it.
    incr = {
        f"{a * n:.0e}->{b * n:.0e}": (best[b]["release"]["wall"] - best[a]["release"]["wall"]) / ((b - a) * n)
        for a, b in zip(sizes, sizes[1:])
    }
    scal = max(incr.values()) / min(incr.values())
    rows.append(
        Row(
            "store: release seconds per additional genotype, end to end (" + ", ".join(incr) + ")",
            " / ".join(f"{v * 1e9:.1f} ns" for v in incr.values()),
            "",
            f"max/min {scal:.2f}",
            f"max/min <= {TARGET_SCALING:.2f} (+-20%)" if len(incr) > 1 else "needs 3 sizes (full run)",
            scal <= TARGET_SCALING if len(incr) > 1 else None,
            {"s_per_additional_genotype": incr, "max_over_min": scal},
        )
    )
    gts = " / ".join(f"{m * n:.0e}" for m in sizes)
    rows.append(
        Row(
            f"store:   release seconds per genotype, end to end incl. fixed start-up ({gts})",
            " / ".join(f"{spg[m] * 1e9:.1f} ns" for m in sizes),
            "",
            f"max/min {max(spg.values()) / min(spg.values()):.2f}",
            "",
            None,
            {"s_per_genotype": {str(m): spg[m] for m in sizes}},
        )
    )
    a, b = _fit([m * n for m in sizes], [best[m]["release"]["wall"] for m in sizes])
    ac, bc_ = _fit([m * n for m in sizes], [best[m]["release"]["cpu_s"] for m in sizes])
    rows.append(
        Row(
            "store:   release wall = fixed + per genotype (least squares over the sizes)",
            f"{a:.1f} s + {b * 1e9:.1f} ns/gt",
            "",
            "",
            "",
            None,
            {"fixed_s": a, "s_per_genotype": b},
        )
    )
    rows.append(
        Row(
            "store:   release CPU s = fixed + per genotype (least squares over the sizes)",
            f"{ac:.1f} s + {bc_ * 1e9:.1f} ns/gt",
            "",
            "",
            "",
            None,
            {"fixed_s": ac, "s_per_genotype": bc_},
        )
    )
    lo2, hi2 = min(spg_pass.values()), max(spg_pass.values())
    rows.append(
        Row(
            "store:   same, manifest 'release' step only (passes 1+2, no start-up)",
            " / ".join(f"{spg_pass[m] * 1e9:.1f} ns" for m in sizes),
            "",
            f"max/min {hi2 / lo2:.2f}",
            "",
            None,
            {"s_per_genotype": {str(m): spg_pass[m] for m in sizes}},
        )
    )
    cspg = {m: best[m]["copy"]["wall"] / (m * n) for m in sizes}
    rows.append(
        Row(
            "store:   zarr copy seconds per genotype, end to end",
            " / ".join(f"{cspg[m] * 1e9:.1f} ns" for m in sizes),
            "",
            f"max/min {max(cspg.values()) / min(cspg.values()):.2f}",
            "",
            None,
            {"s_per_genotype": {str(m): cspg[m] for m in sizes}},
        )
    )

    ld_per = {s["m"]: s["best_s"] / s["kept"] for s in ld["sizes"]}
    ld_scal = max(ld_per.values()) / min(ld_per.values())
    rows.append(
        Row(
            f"store: LD stats per SNP, panel {PARAMS['panel']:,}, window {WINDOW} (m = "
            + " / ".join(f"{m:.0e}" for m in ld_per)
            + f"; best of {LD_REPEATS}, warm cluster)",
            " / ".join(f"{v * 1e6:.0f} us" for v in ld_per.values()),
            "",
            f"max/min {ld_scal:.2f}",
            f"max/min <= {TARGET_LD_SCALING:.2f}",
            ld_scal <= TARGET_LD_SCALING,
            {"s_per_snp": {str(k): v for k, v in ld_per.items()}, "max_over_min": ld_scal},
        )
    )
    man_ld = {m: min(r["timings"]["ldstats"] for r in per_size[m]["release"]) / m for m in sizes}
    rows.append(
        Row(
            "store:   LD stats per SNP in the release manifests (cold workers: numba load, tables)",
            " / ".join(f"{v * 1e6:.0f} us" for v in man_ld.values()),
            "",
            f"max/min {max(man_ld.values()) / min(man_ld.values()):.2f}",
            "",
            None,
            {"s_per_snp": {str(k): v for k, v in man_ld.items()}},
        )
    )
    if experiment is not None:
        m, er, ec = experiment["m"], experiment["release"], experiment["copy"]
        lab = f"store {n:,}x{m:,} EXPERIMENT workers' malloc {MALLOC_ENV}"
        rows.append(
            Row(
                f"{lab}: release (1 run)",
                f"{fmt_s(er['wall'])}, CPU {er['cpu_s']:.1f} s (sys {er['sys_s']:.1f})",
                f"copy {fmt_s(ec['wall'])}, CPU {ec['cpu_s']:.1f} s",
                f"{er['wall'] / ec['wall']:.2f}x",
                "",
                None,
                {"release": _slim(er), "copy": _slim(ec)},
            )
        )
        rows.append(
            Row(
                f"{lab}: peak RSS tree / single; minor faults release, copy",
                f"{fmt_bytes(er['peak_rss_total_bytes'])} / {fmt_bytes(er['peak_rss_single_bytes'])}; "
                f"{er['minor_faults'] / 1e6:.2f}M, {ec['minor_faults'] / 1e6:.2f}M",
                f"default: {best[m]['release']['minor_faults'] / 1e6:.2f}M, "
                f"{best[m]['copy']['minor_faults'] / 1e6:.2f}M",
                "",
                "",
                None,
                {},
            )
        )
    rc, cc = best[sizes[-1]]["release"]["codecs"], best[sizes[-1]]["copy"]["codecs"]
    same_chunks = all(rc[k]["chunks"] == cc[k]["chunks"] for k in rc)
    rows.append(
        Row(
            "store: copy writes the release's chunks (call_genotype, _mask, _phased)",
            "same" if same_chunks else "DIFFERENT",
            "",
            "",
            "same",
            same_chunks,
            {"release": rc, "copy": cc},
        )
    )
    levels = {k: (rc[k]["compressor"].get("clevel"), cc[k]["compressor"].get("clevel")) for k in rc}
    rows.append(
        Row(
            "store:   zstd level release / copy (the copy keeps the store's codec, as the issue defines it)",
            ", ".join(f"{k.replace('call_genotype', 'gt')} {a}/{b}" for k, (a, b) in levels.items()),
            "",
            "",
            "",
            None,
            {"levels": levels},
        )
    )
    for m in sizes:
        rs = per_size[m]["copy_release_codec"]
        if rs:
            cw = min(r["wall"] for r in rs)
            rw = best[m]["release"]["wall"]
            rows.append(
                Row(
                    f"store {n:,}x{m:,}:   informational: zarr copy writing the release's zstd level "
                    f"(best of {len(rs)})",
                    fmt_s(cw),
                    f"release {fmt_s(rw)}",
                    f"{rw / cw:.2f}x",
                    "",
                    None,
                    {"copy_s": [r["wall"] for r in rs]},
                )
            )
    rows.append(
        Row(
            f"store: data ({'cached' if datainfo['cached'] else 'made this run'}): simulate_cohort / subsets",
            f"{fmt_s(datainfo['simulation_s'])} / {fmt_s(datainfo['subsets_s'])}",
            "",
            "",
            "",
            None,
            {k: datainfo[k] for k in ("simulation_s", "subsets_s", "bytes_on_disk")},
        )
    )
    total = time.perf_counter() - t_begin
    load_end = os.getloadavg()
    rows.append(
        Row(
            f"store: benchmark duration{' (QUICK: no 1e9)' if QUICK else ''}; load average start/end",
            f"{fmt_s(total)}; {load_start[0]:.1f} / {load_end[0]:.1f}",
            "",
            "",
            "",
            None,
            {"s": total, "quick": QUICK, "loadavg_start": load_start, "loadavg_end": load_end},
        )
    )

    details = {
        "params": PARAMS,
        "sizes": list(sizes),
        "quick": QUICK,
        "repeats": {str(k): v for k, v in REPEATS.items()},
        "window": WINDOW,
        "data": datainfo,
        "warmup_s": warm,
        "summary": {str(k): v for k, v in summary.items()},
        "runs": {str(m): {kind: [_slim(r) for r in rs] for kind, rs in per_size[m].items()} for m in sizes},
        "release_codecs": rc,
        "copy_codecs": cc,
        "ld": ld,
        "duration_s": total,
        "malloc_experiment": None
        if experiment is None
        else {
            "m": experiment["m"],
            "env": MALLOC_ENV,
            "release": _slim(experiment["release"]),
            "copy": _slim(experiment["copy"]),
        },
        "rss_method": "sum of VmRSS over the child's process tree sampled every 0.2 s (psutil + /proc); "
        "largest single process = its VmHWM",
        "statistic": "best (minimum) wall of the runs; CPU = least user+sys over the tree",
    }
    return rows, details


if __name__ == "__main__":  # python -m benchmarks.store: this benchmark alone, through the harness
    from benchmarks import run as _run

    sys.exit(_run.main(["--only", "store", *sys.argv[1:]]))
