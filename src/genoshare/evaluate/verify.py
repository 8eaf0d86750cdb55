"""The reviewer's check of a reported GWAS against a released copy, and the owner's expected-retention table.

Owner (has the original cohort): :func:`retention_table` repeats the release k times on the original with the
settings of the shipped manifest and fresh keys, and writes the distribution of the SNP retention of each test to
``DIR/retention.json`` (:func:`expected_retention` is the same on in-memory matrices).

Reviewer (has the release, the paper's list of significant SNPs and the controls): :func:`verify_release`
recomputes the GWAS on the release, measures the retention of the reported SNPs at alpha / tau and compares it with
the owner's table: a FLAG when it is more than the tolerance below the expected mean.

Default tolerance (:func:`tolerance_for`): a one-sided bound for one more draw of the retention,

    tolerance = sqrt( (t_{k-1}(0.999) sd sqrt(1 + 1/k))^2 + (z(0.999) sqrt(R (1 - R) / n * (N - n) / (N - 1)))^2 )

with R, sd the mean and standard deviation of the k shipped retentions, N the number of SNPs significant on the
original (the owner's report) and n the number of reported SNPs checked (the second term only when n < N). The
first term is the Student-t prediction bound for a new release given k draws (spread between releases plus the
uncertainty of the mean and of sd itself); the second is the extra spread of a report that lists only n of the N
significant SNPs (sampling without replacement). A correct report is flagged with probability about 0.1%.
docs/verify.md shows the measured false-flag rate and power.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from datetime import datetime, UTC
from pathlib import Path

import numpy as np

from genoshare.errors import GenoshareError, InputError
from genoshare.evaluate.gwas import (
    CASE,
    CONTROL,
    TESTS,
    GenotypeSource,
    GwasCounts,
    count_by_group,
    counts_with_controls,
    counts_with_phenotype,
    gwas_counts,
    open_genotypes,
    read_phenotype,
    retention,
)

RETENTION_FILE = "retention.json"
MANIFEST_FILE = "manifest.json"
DEFAULT_ALPHA = 0.05
DEFAULT_TAU = 0.8
DEFAULT_K = 10
DEFAULT_TEST = "genotypic"
FALSE_FLAG_RATE = 0.001
ALL_TESTS = tuple(TESTS)
QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}
PRIVACY_NOTE = (
    "retention.json holds k retention fractions per test and the number of SNPs significant on the "
    "original (what the paper reports): statistics of the cohort outside the epsilon of the release, "
    "like published frequencies; nothing per individual or per SNP"
)


# --------------------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------------------


def _check_params(alpha: float, tau: float, k: int | None = None, tests=None) -> tuple[str, ...]:
    if not (0 < alpha < 1):
        raise GenoshareError(f"--alpha must be in (0, 1), not {alpha}")
    if not (0 < tau <= 1):
        raise GenoshareError(f"--tau must be in (0, 1], not {tau}")
    if k is not None and (not isinstance(k, (int, np.integer)) or k < 2):
        raise GenoshareError(f"-k must be an integer >= 2 (a spread needs two releases), not {k}")
    if tests is None:
        return ALL_TESTS
    if isinstance(tests, str):
        tests = [t.strip() for t in tests.split(",") if t.strip()]
    bad = [t for t in tests if t not in TESTS]
    if bad or not tests:
        raise GenoshareError(f"unknown test {bad[0] if bad else ''!r} (choose from {', '.join(TESTS)})")
    return tuple(dict.fromkeys(tests))


def summarise(values) -> dict:
    """mean, sd (ddof 1), min, quantiles, max and the values themselves (NaN-free list)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "sd": None, "min": None, **{q: None for q in QUANTILES}, "max": None, "values": []}
    out = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0, "min": float(v.min())}
    out.update({name: float(np.quantile(v, q)) for name, q in QUANTILES.items()})
    out.update({"max": float(v.max()), "values": [float(x) for x in v]})
    return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: Path, obj: dict) -> None:
    from genoshare.io.atomic import atomic_file

    try:
        with atomic_file(path) as tmp, open(tmp, "w") as f:
            f.write(json.dumps(obj, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
            tmp.chmod(0o644)
    except PermissionError:
        raise InputError(path, "permission denied (cannot write)") from None


def _read_manifest(release_dir: Path) -> dict:
    if not release_dir.is_dir():
        raise InputError(release_dir, "not a release directory (no such directory)")
    path = release_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(release_dir, f"not a release directory (no {MANIFEST_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"is not valid JSON ({' '.join(str(e).split())})") from None
    if not isinstance(manifest, dict) or manifest.get("tool") != "genoshare" or "epsilon_requested" not in manifest:
        raise InputError(path, "is not a genoshare release manifest")
    return manifest


def _subset(c: GwasCounts, ids) -> GwasCounts:
    pos = {v: j for j, v in enumerate(c.variant_ids.tolist())}
    idx = np.fromiter((pos[v] for v in ids), dtype=np.int64, count=len(ids))
    return GwasCounts(
        variant_ids=c.variant_ids[idx],
        cases=c.cases[idx],
        controls=c.controls[idx],
        n_cases=c.n_cases,
        n_controls=c.n_controls,
        design=c.design,
        notes=c.notes,
    )


def _matrix_source(path, sample_ids, variant_ids, G) -> GenotypeSource:
    return GenotypeSource(
        path=Path(path),
        kind="csv",
        sample_ids=list(sample_ids),
        variant_ids=np.asarray(variant_ids, dtype=object),
        matrix=G,
    )


# --------------------------------------------------------------------------------------------------------------
# the owner's side
# --------------------------------------------------------------------------------------------------------------


def _distribution(orig: GwasCounts, release_counts, k: int, alpha: float, tau: float, tests, progress=None) -> dict:
    """Retention per test over k releases; ``release_counts(i)`` -> GwasCounts in the order of ``orig``."""
    p_orig = {t: orig.test(t)[1] for t in tests}
    values = {t: [] for t in tests}
    for i in range(k):
        rc = release_counts(i)
        if not np.array_equal(rc.variant_ids, orig.variant_ids):
            raise GenoshareError("internal: released SNPs are not aligned with the original's")
        for t in tests:
            values[t].append(retention(p_orig[t], rc.test(t)[1], alpha, tau))
        if progress is not None:
            progress(i + 1, k)
    out = {}
    for t in tests:
        n_rep = int((np.nan_to_num(p_orig[t], nan=1.0) < alpha).sum())
        out[t] = {"n_reported": n_rep, **summarise(values[t])}
    return out


def expected_retention(
    G_cases_original,
    G_controls,
    release_fn,
    k: int = DEFAULT_K,
    alpha: float = DEFAULT_ALPHA,
    tau: float = DEFAULT_TAU,
    tests=ALL_TESTS,
    labels=None,
    progress=None,
) -> dict:
    """Distribution of the SNP retention over k releases of the original, per test.

    ``G_cases_original`` (m, n) int8 variant-major, -1 missing; ``release_fn(i)`` returns a released copy of it
    (same shape) for i = 0..k-1, each with fresh keys. Two designs:

    - ``labels`` None: every individual of ``G_cases_original`` is a case; ``G_controls`` (m, n_c) is a separate
      control set with the same SNPs in the same order, not released;
    - ``labels`` (n,): True / 1 case, False / 0 control, -1 excluded, for individuals of ``G_cases_original``
      (the whole cohort is released); ``G_controls`` must be None.

    Returns {"k", "alpha", "tau", "tests": {test: {n_reported, mean, sd, min, q05, q25, median, q75, q95, max,
    values}}}; n_reported = |{p < alpha on the original}| (the report whose retention is measured).
    """
    tests = _check_params(alpha, tau, k, tests)
    G = np.asarray(G_cases_original)
    m = G.shape[0]
    ids = np.arange(m).astype(str).astype(object)
    if labels is None:
        if G_controls is None:
            raise GenoshareError("expected_retention: give G_controls (separate controls) or labels (phenotype)")
        C = np.asarray(G_controls)
        if C.shape[0] != m:
            raise ValueError("G_controls must have the same SNPs (rows) as G_cases_original")
        cc = count_by_group(C, np.zeros(C.shape[1], dtype=np.int64), 1)[:, 0]

        def counts(X):
            xc = count_by_group(X, np.zeros(X.shape[1], dtype=np.int64), 1)[:, 0]
            return GwasCounts(ids, xc, cc, X.shape[1], C.shape[1], "controls")
    else:
        if G_controls is not None:
            raise GenoshareError("expected_retention: give G_controls or labels, not both")
        lab = np.asarray(labels)
        lab = np.where(lab.astype(np.int64) < 0, -1, np.where(lab.astype(bool), CASE, CONTROL)).astype(np.int64)
        if lab.shape != (G.shape[1],):
            raise ValueError("labels must have one entry per individual (column) of G_cases_original")

        def counts(X):
            c = count_by_group(X, lab, 2)
            return GwasCounts(
                ids, c[:, CASE], c[:, CONTROL], int((lab == CASE).sum()), int((lab == CONTROL).sum()), "phenotype"
            )

    def release_counts(i):
        S = np.asarray(release_fn(i))
        if S.shape != G.shape:
            raise ValueError(f"release_fn returned shape {S.shape}, expected {G.shape}")
        return counts(S)

    dist = _distribution(counts(G), release_counts, k, alpha, tau, tests, progress)
    return {"k": int(k), "alpha": float(alpha), "tau": float(tau), "tests": dist}


def _rep_seed(seed: int, i: int) -> int:
    digest = hashlib.sha256(f"genoshare retention table {int(seed)} {i}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def _af_source(manifest: dict, af_file=None, check: bool = True) -> str:
    """The release's --af-source, rebuilt exactly from its manifest: published, reference, dp:EPS:DELTA (the
    manifest's epsilon_af / delta_af) or public:FILE (``af_file`` if the owner gives it, else the manifest's file;
    its SHA-256 must match the manifest's)."""
    af = manifest.get("af_source") or {}
    kind = af.get("kind", "published") if isinstance(af, dict) else str(af)
    if kind in ("published", "reference"):
        return kind
    if kind == "dp":
        try:
            return f"dp:{float(af['epsilon_af'])!r}:{float(af['delta_af'])!r}"
        except (KeyError, TypeError, ValueError):
            raise GenoshareError("the manifest's dp allele-frequency source has no epsilon_af / delta_af") from None
    if kind != "public":
        raise GenoshareError(f"the manifest's allele-frequency source {kind!r} is not one genoshare knows")
    path = Path(af_file) if af_file is not None else Path(str(af.get("file") or ""))
    if af_file is None and (not af.get("file") or not path.is_file()):
        raise GenoshareError(
            f"the release used public allele frequencies from {af.get('file') or '(no file named)'!r}, which is "
            "not there: pass --af-file FILE"
        )
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "is not a file")
    from genoshare.manifest import sha256_path

    expected = ((manifest.get("inputs") or {}).get("af_file") or {}).get("sha256")
    if check and expected is not None and sha256_path(path) != expected:
        raise InputError(path, "is not the allele-frequency file this release was made with (SHA-256 differs)")
    return f"public:{path}"


def _settings(manifest: dict, af_file=None, check: bool = True) -> dict:
    af_source = _af_source(manifest, af_file, check)
    window = manifest.get("window", "all")
    return {
        "epsilon_requested": float(manifest["epsilon_requested"]),
        "epsilon_xor": float(manifest.get("epsilon_xor", math.nan)),
        "calibration": manifest.get("calibration", "exact"),
        "zero_cell": manifest.get("zero_cell", "haldane"),
        "window": window,
        "af_source": af_source,
        "sample_block": manifest.get("sample_block"),
    }


def _ledger_cohort_sha256(release_dir) -> str | None:
    """The cohort SHA-256 the owner's ledger recorded for the release in ``release_dir`` (None: no ledger/row);
    the manifest no longer carries it (it is private: genoshare.privacy.release_safety)."""
    from genoshare.privacy.checkrelease import _owner_ledger

    led = _owner_ledger("auto")
    if led is None:
        return None
    try:
        here = str(Path(release_dir).absolute())
        rows = [e for e in led.releases() if e.output_dir == here and (e.details or {}).get("cohort")]
    finally:
        led.close()
    return rows[-1].details["cohort"].get("sha256") if rows else None


def _check_input_hash(manifest: dict, role: str, path, release_dir=None) -> None:
    from genoshare.manifest import sha256_path

    entry = (manifest.get("inputs") or {}).get(role) or {}
    expected, source = entry.get("sha256"), "the manifest"
    if expected is None and role == "cohort" and release_dir is not None:
        expected, source = _ledger_cohort_sha256(release_dir), "the owner's ledger"
    if expected is None:
        return
    if sha256_path(path) != expected:
        what = "cohort" if role == "cohort" else "reference panel"
        raise InputError(path, f"is not the {what} this release was made from (SHA-256 differs from {source})")


def _design(src: GenotypeSource, controls_src, pheno, pheno_path, threads, control_counts=None) -> GwasCounts:
    if controls_src is not None:
        return counts_with_controls(src, controls_src, threads, control_counts=control_counts)
    return counts_with_phenotype(src, pheno, pheno_path, threads)


def _in_memory_reps(
    original, reference, settings, manifest, k, seed, ctrl_src, pheno, pheno_path, threads, tests, alpha, tau, progress
):
    """The CSV path: LD statistics and calibration once, then k releases with the in-memory engine."""
    from genoshare.api import _csv_targets
    from genoshare.io.csvmatrix import read_matrix, validate_same_variants
    from genoshare.mechanism.calibrate import calibrate
    from genoshare.mechanism.keystream import derive_keys, master_key_from_seed, new_master_key
    from genoshare.mechanism.ldstats import compute_ldstats
    from genoshare.mechanism.release import DEFAULT_SAMPLE_BLOCK, release_genotypes

    cohort = read_matrix(original)
    ref = read_matrix(reference)
    validate_same_variants(cohort, ref, original, reference)
    G = cohort.genotypes

    af = settings["af_source"]
    if not af.startswith("dp:"):  # fixed targets; dp frequencies are drawn afresh per rerun (below)
        targets = _csv_targets(af, cohort, ref, b"")[0]
    window = None if str(settings["window"]).lower() == "all" else int(settings["window"])
    stats = compute_ldstats(ref.genotypes, zero_cell=settings["zero_cell"], window=window, threads=threads)
    try:
        cal = calibrate(stats, settings["epsilon_requested"], settings["calibration"])
    except ValueError as e:
        raise GenoshareError(f"cannot recalibrate the manifest's settings: {e}") from None
    if np.isfinite(settings["epsilon_xor"]) and not math.isclose(
        cal.epsilon_xor, settings["epsilon_xor"], rel_tol=1e-6
    ):
        raise GenoshareError(
            f"the manifest's settings give a true epsilon of {cal.epsilon_xor:.6g}, not the "
            f"{settings['epsilon_xor']:.6g} it states: reference or settings differ"
        )
    block = int(settings["sample_block"] or DEFAULT_SAMPLE_BLOCK)
    orig_src = _matrix_source(original, cohort.sample_ids, cohort.variant_ids, G)
    cc = None
    if ctrl_src is not None:
        cc = ctrl_src.count(np.zeros(ctrl_src.n_samples, dtype=np.int64), 1, threads)[:, 0]
    orig = _design(orig_src, ctrl_src, pheno, pheno_path, threads, cc)

    def release_counts(i):
        master = new_master_key() if seed is None else master_key_from_seed(_rep_seed(seed, i))
        rep_targets = _csv_targets(af, cohort, ref, master)[0] if af.startswith("dp:") else targets
        S = release_genotypes(
            G, cal.thresholds, rep_targets, derive_keys(master), sample_block=block, threads=threads
        ).genotypes
        return _design(
            _matrix_source(original, cohort.sample_ids, cohort.variant_ids, S), ctrl_src, pheno, pheno_path, threads, cc
        )

    return orig, _distribution(orig, release_counts, k, alpha, tau, tests, progress)


def _pipeline_reps(
    original,
    reference,
    release_dir,
    settings,
    manifest,
    k,
    seed,
    ctrl_src,
    pheno,
    pheno_path,
    threads,
    tests,
    alpha,
    tau,
    progress,
    workdir,
    scheduler,
    cluster_config,
    workers,
):
    """Any other input: k full releases through the blockwise pipeline (api.release_store) into temporary
    directories, each counted blockwise and removed."""
    from genoshare import api
    from genoshare.io.vcz import open_vcz

    shipped = release_dir / manifest.get("release_file", "release.vcz")
    if shipped.name != "release.vcz" or not shipped.exists():
        raise InputError(
            release_dir, "the release is a CSV matrix: give the original cohort and the reference as CSV matrices too"
        )
    released_ids = list(open_vcz(shipped).variant_id)
    chunks = manifest.get("chunks") or {}
    al = manifest.get("alignment") or {}
    with open_genotypes(original, workdir) as src:
        orig = _subset(_design(src, ctrl_src, pheno, pheno_path, threads), released_ids)
    cc = None
    if ctrl_src is not None:
        cc = ctrl_src.count(np.zeros(ctrl_src.n_samples, dtype=np.int64), 1, threads)[:, 0]
    work = Path(tempfile.mkdtemp(prefix="genoshare-retention-", dir=workdir))

    def release_counts(i):
        out = work / f"rep{i}"
        try:
            man = api.release_store(
                original,
                reference,
                settings["epsilon_requested"],
                out,
                calibration=settings["calibration"],
                zero_cell=settings["zero_cell"],
                window=settings["window"],
                af_source=settings["af_source"],
                seed=None if seed is None else _rep_seed(seed, i),
                scheduler=scheduler,
                cluster_config=cluster_config,
                workers=workers,
                chunk_variants=chunks.get("variants"),
                chunk_samples=chunks.get("samples"),
                ambiguous=al.get("ambiguous", "drop"),
                unmatched=al.get("unmatched", "drop"),
                bookkeeping=False,  # never shared: no ledger row, no kinship, no check-release
            )
            if np.isfinite(settings["epsilon_xor"]) and not math.isclose(
                man["epsilon_xor"], settings["epsilon_xor"], rel_tol=1e-6
            ):
                raise GenoshareError(
                    f"the manifest's settings give a true epsilon of {man['epsilon_xor']:.6g}, "
                    f"not the {settings['epsilon_xor']:.6g} it states: inputs or settings differ"
                )
            with open_genotypes(out / "release.vcz", workdir) as rel:
                return _subset(_design(rel, ctrl_src, pheno, pheno_path, threads, cc), list(orig.variant_ids))
        finally:
            shutil.rmtree(out, ignore_errors=True)

    try:
        return orig, _distribution(orig, release_counts, k, alpha, tau, tests, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def retention_table(
    original,
    reference,
    release_dir,
    controls=None,
    phenotype=None,
    k: int = DEFAULT_K,
    alpha: float = DEFAULT_ALPHA,
    tau: float = DEFAULT_TAU,
    tests=ALL_TESTS,
    seed: int | None = None,
    overwrite: bool = False,
    threads: int | None = None,
    workdir=None,
    progress=None,
    scheduler: str = "local",
    cluster_config=None,
    workers: int | None = None,
    check_inputs: bool = True,
    af_file=None,
) -> dict:
    """The owner's expected-retention table: rerun the release of ``release_dir`` (settings from its manifest,
    fresh keys; ``seed`` makes the k keys reproducible, for tests) k times on the original and write
    ``release_dir/retention.json``. Returns the table.

    CSV originals are released k times with the in-memory engine (LD statistics and calibration computed once);
    any other input goes through k full runs of the blockwise pipeline (k times the cost of the release).
    The reruns use exactly the release's allele-frequency source (``af_file``: the public frequency file of a
    ``public:`` release, if not at the path in the manifest) and no owner bookkeeping: no ledger row, no
    kinship or panel-overlap check, no check-release; their outputs live in a private scratch directory.
    """
    t0 = time.perf_counter()
    tests = _check_params(alpha, tau, k, tests)
    release_dir = Path(release_dir)
    manifest = _read_manifest(release_dir)
    target = release_dir / RETENTION_FILE
    if target.exists() and not overwrite:
        raise InputError(target, "already exists; pass --overwrite to replace it")
    if controls is not None and phenotype is not None:
        raise GenoshareError("give either --controls FILE or --phenotype TSV, not both")
    if controls is None and phenotype is None:
        raise GenoshareError(
            "give --controls FILE (a separate control set) or --phenotype TSV (case/control "
            "status of the cohort's individuals)"
        )
    if check_inputs:
        _check_input_hash(manifest, "cohort", original, release_dir)
        _check_input_hash(manifest, "reference", reference)
    settings = _settings(manifest, af_file, check_inputs)
    pheno = read_phenotype(phenotype) if phenotype is not None else None
    from genoshare.io.ingest import detect_format
    from genoshare.manifest import sha256_path

    csv_inputs = detect_format(original) == "csv" and detect_format(reference) == "csv"
    with _maybe_open(controls, workdir) as ctrl_src:
        common = dict(
            settings=settings,
            manifest=manifest,
            k=k,
            seed=seed,
            ctrl_src=ctrl_src,
            pheno=pheno,
            pheno_path=phenotype,
            threads=threads,
            tests=tests,
            alpha=alpha,
            tau=tau,
            progress=progress,
        )
        if csv_inputs and manifest.get("release_file", "release.csv.gz").startswith("release.csv"):
            engine = "in-memory"
            orig, dist = _in_memory_reps(original, reference, **common)
        else:
            engine = "pipeline"
            orig, dist = _pipeline_reps(
                original,
                reference,
                release_dir,
                workdir=workdir,
                scheduler=scheduler,
                cluster_config=cluster_config,
                workers=workers,
                **common,
            )
    group_file = {
        "kind": "controls" if controls is not None else "phenotype",
        "path": str(controls if controls is not None else phenotype),
        "sha256": sha256_path(controls if controls is not None else phenotype),
    }
    table = {
        "tool": "genoshare",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "k": int(k),
        "alpha": float(alpha),
        "tau": float(tau),
        "design": orig.design,
        "groups": group_file,
        "n_cases": orig.n_cases,
        "n_controls": orig.n_controls,
        "n_variants_tested": int(len(orig.variant_ids)),
        "tests": dist,
        "settings": settings,
        "release": {
            "manifest": {"file": MANIFEST_FILE, "sha256": _sha256_file(release_dir / MANIFEST_FILE)},
            "release_file": manifest.get("release_file"),
        },
        "engine": engine,
        "reproducible_keys": seed is not None,
        "privacy_note": PRIVACY_NOTE,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    from genoshare import __version__

    table["version"] = __version__
    _write_json_atomic(target, table)
    return table


class _maybe_open:
    def __init__(self, path, workdir):
        self.path, self.workdir, self.cm = path, workdir, None

    def __enter__(self):
        if self.path is None:
            return None
        self.cm = open_genotypes(self.path, self.workdir)
        return self.cm.__enter__()

    def __exit__(self, *exc):
        if self.cm is not None:
            return self.cm.__exit__(*exc)
        return False


# --------------------------------------------------------------------------------------------------------------
# the reviewer's side
# --------------------------------------------------------------------------------------------------------------


def tolerance_for(entry: dict, n_reported: int, false_flag_rate: float = FALSE_FLAG_RATE) -> float:
    """Default tolerance (see the module docstring) for a report of ``n_reported`` SNPs against the table entry
    ``entry`` (mean, sd, values/k, n_reported)."""
    from scipy import stats

    mean, sd = float(entry["mean"]), float(entry["sd"] or 0.0)
    k = int(entry.get("k") or len(entry.get("values") or []) or 2)
    N = int(entry.get("n_reported") or 0)
    between = stats.t.ppf(1.0 - false_flag_rate, df=max(k - 1, 1)) * sd * math.sqrt(1.0 + 1.0 / k)
    subset = 0.0
    n = int(n_reported)
    if n > 0 and N > 1 and n < N:
        subset = stats.norm.ppf(1.0 - false_flag_rate) * math.sqrt(
            max(mean * (1.0 - mean), 0.0) / n * (N - n) / (N - 1)
        )
    return float(math.hypot(between, subset))


def decide(observed: float, entry: dict, n_reported: int, tolerance: float | None = None) -> dict:
    """{"flag", "tolerance", "gap", "rule"}: flag when observed < expected mean - tolerance."""
    mean = float(entry["mean"])
    tol = tolerance_for(entry, n_reported) if tolerance is None else float(tolerance)
    gap = mean - observed
    flag = bool(not np.isfinite(observed) or gap > tol + 1e-12)
    rule = (
        "given"
        if tolerance is not None
        else f"t_(k-1)({1 - FALSE_FLAG_RATE:g}) sd sqrt(1 + 1/k), combined with the subset term of a short list"
    )
    return {"flag": flag, "tolerance": tol, "gap": gap, "rule": rule}


def read_reported(path):
    """The reported SNPs: a TSV (or CSV) with a header naming ``id`` (or snp / variant_id / rsid) and optionally
    ``p``. Returns (ids in order, duplicates removed; p array or None)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "is not a file")
    try:
        head = path.read_text(encoding="utf-8-sig").splitlines()[:1]
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text") from None
    if not head or not head[0].strip():
        raise InputError(path, "empty file (expected a header with a column 'id' and one reported SNP per line)")
    sep = "\t" if "\t" in head[0] or "," not in head[0] else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as e:  # pandas raises several parser errors
        raise InputError(path, f"cannot read the table ({' '.join(str(e).split())})") from None
    cols = {c.strip().lower(): c for c in df.columns}
    id_col = next((cols[c] for c in ("id", "snp", "variant_id", "rsid", "variant") if c in cols), None)
    if id_col is None:
        raise InputError(path, "no 'id' column (the header must name the column of SNP ids 'id')")
    p_col = next((cols[c] for c in ("p", "pvalue", "p_value", "p-value") if c in cols), None)
    ids = [s.strip() for s in df[id_col].tolist()]
    p = None
    if p_col is not None:
        raw = [s.strip() for s in df[p_col].tolist()]
        try:
            p = np.array([float(x) if x.lower() not in ("", "na", "nan") else np.nan for x in raw])
        except ValueError:
            bad = next(x for x in raw if not _is_float(x))
            raise InputError(path, f"p-value {bad[:40]!r} is not a number") from None
        if ((p < 0) | (p > 1)).any():
            raise InputError(path, "p-values must be between 0 and 1")
    keep = [i for i, s in enumerate(ids) if s]
    seen = set()
    uniq = []
    for i in keep:
        if ids[i] not in seen:
            seen.add(ids[i])
            uniq.append(i)
    if not uniq:
        raise InputError(path, "no reported SNP (the id column is empty)")
    return [ids[i] for i in uniq], (None if p is None else p[uniq])


def _is_float(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def load_table(path) -> dict:
    path = Path(path)
    try:
        table = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            path, "no expected-retention table: the owner makes it with `genoshare retention-table`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"is not valid JSON ({' '.join(str(e).split())})") from None
    if not isinstance(table, dict) or not isinstance(table.get("tests"), dict) or "alpha" not in table:
        raise InputError(path, "is not a genoshare expected-retention table")
    return table


def verify_release(
    release_dir,
    reported,
    controls=None,
    phenotype=None,
    test: str = DEFAULT_TEST,
    alpha: float | None = None,
    tau: float | None = None,
    tolerance: float | None = None,
    table=None,
    threads: int | None = None,
    workdir=None,
    counts: GwasCounts | None = None,
) -> dict:
    """Recompute the GWAS on the release, measure the retention of the reported SNPs at alpha / tau and compare
    it with the owner's table (``table``: a dict or a path; default ``release_dir/retention.json``).

    Returns a dict with status "pass" / "flag", a one-line reason and the details. ``counts`` (the release's
    GwasCounts) may be given to skip the GWAS.
    """
    release_dir = Path(release_dir)
    if not isinstance(table, dict):
        table = load_table(release_dir / RETENTION_FILE if table is None else table)
    notes = []
    shipped = ((table.get("release") or {}).get("manifest") or {}).get("sha256")
    if shipped:
        man = release_dir / MANIFEST_FILE
        if man.exists() and _sha256_file(man) != shipped:
            raise GenoshareError(
                f"{RETENTION_FILE} was made for another release (its manifest SHA-256 differs from {man})"
            )
    t_alpha, t_tau = float(table["alpha"]), float(table["tau"])
    alpha = t_alpha if alpha is None else float(alpha)
    tau = t_tau if tau is None else float(tau)
    _check_params(alpha, tau)
    if not (math.isclose(alpha, t_alpha) and math.isclose(tau, t_tau)):
        raise GenoshareError(
            f"the owner's table is for alpha {t_alpha:g}, tau {t_tau:g}; verify with the same "
            f"(got alpha {alpha:g}, tau {tau:g})"
        )
    if test not in TESTS:
        raise GenoshareError(f"unknown test {test!r} (choose from {', '.join(TESTS)})")
    entry = table["tests"].get(test)
    if entry is None:
        raise GenoshareError(f"the owner's table has no {test} test (it has {', '.join(table['tests'])})")
    if entry.get("mean") is None:
        raise GenoshareError(
            f"the owner's table has no expected {test} retention (no SNP was significant on the original)"
        )
    entry = {**entry, "k": int(table.get("k") or len(entry.get("values") or []))}

    ids, p_reported = read_reported(reported)
    n_listed = len(ids)
    ignored = 0
    if p_reported is not None:
        claimed = ~(p_reported >= alpha)  # NaN p: keep
        ignored = int((~claimed).sum())
        ids = [s for s, c in zip(ids, claimed) if c]
        if not ids:
            raise InputError(reported, f"no reported SNP has p < alpha = {alpha:g}")

    if counts is None:
        counts = gwas_counts(release_dir, controls, phenotype, threads=threads, workdir=workdir)
    groups = table.get("groups") or {}
    given = controls if controls is not None else phenotype
    if given is not None and groups.get("sha256"):
        from genoshare.manifest import sha256_path

        kind = "controls" if controls is not None else "phenotype"
        if groups.get("kind") != kind:
            notes.append(f"the owner's table used a {groups.get('kind')} design, this check a {kind} design")
        elif sha256_path(given) != groups["sha256"]:
            notes.append(f"the {kind} file differs from the owner's (SHA-256): expected retention may not apply")
    _, p_rel = counts.test(test)
    pos = {v: j for j, v in enumerate(counts.variant_ids.tolist())}
    idx = np.array([pos[s] for s in ids if s in pos], dtype=np.int64)
    missing = [s for s in ids if s not in pos]
    if idx.size == 0:
        raise InputError(
            reported,
            f"none of the {len(ids)} reported SNPs is in the release (ids are matched to the release's variant ids)",
        )
    threshold = alpha / tau
    retained = int((np.nan_to_num(p_rel[idx], nan=1.0) < threshold).sum())
    observed = retained / idx.size
    d = decide(observed, entry, idx.size, tolerance)
    status = "flag" if d["flag"] else "pass"
    exp_txt = f"expected {entry['mean']:.3f} (sd {entry['sd']:.3f}, k={entry['k']})"
    if d["flag"]:
        reason = (
            f"{test} retention {observed:.3f} ({retained} of {idx.size} reported SNPs have p < {threshold:.4g} "
            f"on the release) is {d['gap']:.3f} below the {exp_txt}, more than the tolerance "
            f"{d['tolerance']:.3f}: the report is not supported by the released data"
        )
    else:
        reason = (
            f"{test} retention {observed:.3f} ({retained} of {idx.size} reported SNPs have p < {threshold:.4g} "
            f"on the release) is within {d['tolerance']:.3f} of the {exp_txt}"
        )
    if missing:
        reason += f"; {len(missing)} reported SNP(s) not in the release were not checked"
    return {
        "status": status,
        "reason": reason,
        "test": test,
        "alpha": alpha,
        "tau": tau,
        "threshold": threshold,
        "retention": observed,
        "retained": retained,
        "n_checked": int(idx.size),
        "n_listed": n_listed,
        "n_ignored_p_not_below_alpha": ignored,
        "not_in_release": len(missing),
        "not_in_release_ids": missing[:20],
        "expected": {
            "mean": entry["mean"],
            "sd": entry["sd"],
            "k": entry["k"],
            "n_reported": entry.get("n_reported"),
            "min": entry.get("min"),
            "q05": entry.get("q05"),
        },
        "gap": d["gap"],
        "tolerance": d["tolerance"],
        "tolerance_rule": d["rule"],
        "gwas": {
            "design": counts.design,
            "n_cases": counts.n_cases,
            "n_controls": counts.n_controls,
            "n_variants": int(len(counts.variant_ids)),
        },
        "notes": notes,
    }


def injection_evaluation(
    original,
    release_dir,
    controls=None,
    phenotype=None,
    test: str = DEFAULT_TEST,
    modes=("flipping", "noise", "shifting", "replacing"),
    rates=(0, 0.1, 0.2, 0.3, 0.5),
    reps: int = 20,
    seed: int = 0,
    tolerance: float | None = None,
    table=None,
    threads: int | None = None,
    workdir=None,
):
    """Error-injection curves on one release (``genoshare verify --inject``): the original's p-values of ``test``
    are corrupted (see :mod:`genoshare.evaluate.inject`) and each corrupted report is scored on the release."""
    from genoshare.evaluate.inject import injection_curves

    release_dir = Path(release_dir)
    if not isinstance(table, dict):
        table = load_table(release_dir / RETENTION_FILE if table is None else table)
    entry = table["tests"].get(test)
    if entry is None or entry.get("mean") is None:
        raise GenoshareError(f"the owner's table has no expected {test} retention")
    entry = {**entry, "k": int(table["k"])}
    rel = gwas_counts(release_dir, controls, phenotype, threads=threads, workdir=workdir)
    orig = gwas_counts(original, controls, phenotype, threads=threads, workdir=workdir)
    have = set(orig.variant_ids.tolist())
    orig = _subset(orig, [v for v in rel.variant_ids.tolist() if v in have])
    rel = _subset(rel, list(orig.variant_ids))
    return injection_curves(
        orig.test(test)[1],
        rel.test(test)[1][None, :],
        entry,
        modes=modes,
        rates=rates,
        reps=reps,
        alpha=float(table["alpha"]),
        tau=float(table["tau"]),
        seed=seed,
        tolerance=tolerance,
    )


__all__ = [
    "RETENTION_FILE",
    "FALSE_FLAG_RATE",
    "summarise",
    "expected_retention",
    "retention_table",
    "tolerance_for",
    "decide",
    "read_reported",
    "load_table",
    "verify_release",
    "injection_evaluation",
]
