"""One function per command: what the CLI calls, usable from Python too."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from genoshare.errors import GenoshareError, InputError
from genoshare.evaluate.utility import utility_metrics
from genoshare.io.affile import read_af_tsv
from genoshare.io.atomic import check_output
from genoshare.io.csvmatrix import (
    GenotypeMatrix,
    read_matrix,
    validate_same_variants,
    write_matrix,
)
from genoshare.io.vcz import atomic_store
from genoshare.manifest import af_info, build_manifest, input_entry
from genoshare.mechanism.calibrate import calibrate
from genoshare.mechanism.keystream import (
    derive_keys,
    master_key_from_seed,
    new_master_key,
)
from genoshare.mechanism.ldstats import compute_ldstats
from genoshare.mechanism.release import (
    DEFAULT_SAMPLE_BLOCK,
    release_genotypes,
    target_counts_from_af,
    target_counts_published,
)
from genoshare.privacy.ledger import cancels_reservations_on_failure
from genoshare.privacy.release_safety import (
    RELEASE_DIGEST,
    check_published_n,
    private_input_details,
    private_input_entry,
    refuse_identical,
)

RELEASE_CSV = "release.csv.gz"
RELEASE_VCZ = "release.vcz"
MANIFEST_FILE = "manifest.json"
FREQ_FILE = "frequencies.tsv"
DEFAULT_ZERO_CELL = "haldane"  # chosen by measurement at equal true epsilon: docs/zero-cell.md
DEFAULT_WINDOW = 1000  # SNPs; LD decays to ~2x the unlinked level by then: docs/window.md
EXPORTS = ("plink", "vcf", "csv")


class Timer:
    def __init__(self):
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 4)


def parse_window(window: str | int | None) -> int | None:
    if window is None or str(window).lower() == "all":
        return None
    try:
        w = int(window)
    except ValueError:
        raise GenoshareError(f"--window must be 'all' or a number of SNPs, not {window!r}") from None
    if w < 0:
        raise GenoshareError("--window must be >= 0")
    return w


def parse_exports(exports) -> tuple[str, ...]:
    if not exports:
        return ()
    items = [e.strip().lower() for e in (exports.split(",") if isinstance(exports, str) else exports) if e.strip()]
    bad = [e for e in items if e not in EXPORTS]
    if bad:
        raise GenoshareError(f"--export: unknown format {bad[0]!r} (choose from {', '.join(EXPORTS)})")
    return tuple(dict.fromkeys(items))


def _check_af_source(af_source: str) -> None:
    if af_source in ("published", "reference") or af_source.startswith("public:"):
        return
    if af_source.startswith("dp:"):
        parse_dp(af_source, 1)
        return
    raise GenoshareError(f"--af-source must be published, reference, public:FILE or dp:EPS[:DELTA], not {af_source!r}")


def parse_dp(af_source: str, n: int) -> tuple[float, float]:
    """dp:EPS[:DELTA] -> (epsilon_af, delta_af); delta defaults to the accountant's default for n."""
    from genoshare.privacy.accountant import default_delta

    parts = af_source.split(":")[1:]
    try:
        eps = float(parts[0])
        delta = float(parts[1]) if len(parts) > 1 else default_delta(n)
    except (ValueError, IndexError):
        raise GenoshareError(f"--af-source dp takes dp:EPS or dp:EPS:DELTA, not {af_source!r}") from None
    if not (eps > 0 and np.isfinite(eps) and 0 < delta < 1) or len(parts) > 2:
        raise GenoshareError(f"--af-source {af_source!r}: need epsilon > 0 and 0 < delta < 1")
    return eps, delta


def dp_targets(original, n_called, v0, *, epsilon, delta, key, m):
    """Target ALT counts from the Gaussian mechanism (picklable: runs on Dask workers per chunk)."""
    from genoshare.privacy.dp_af import dp_allele_counts

    return dp_allele_counts(original, n_called, epsilon, delta, key, v0=v0, n_snps=m)[0]


def _privacy(cal, n: int, af_source: str, af_cal=None, af_file=None, phenotype=None) -> tuple[dict, float]:
    """The manifest's per-stage privacy object (accountant) and the total epsilon for the ledger.
    phenotype: the phenotype stage (:meth:`PhenotypePlan.privacy_entry`), None when none is released."""
    from genoshare.privacy.accountant import default_delta, privacy_object, xor_account
    from genoshare.privacy.dp_af import af_dp_entry, af_public_entry, af_published_entry

    acct = xor_account(cal.p, default_delta(n))
    if af_source == "published":
        af = af_published_entry()
    elif af_source.startswith("dp:"):
        af = af_dp_entry(af_cal)
    else:
        af = af_public_entry("reference" if af_source == "reference" else "public", af_file)
    obj = privacy_object(acct, af=af, phenotype=phenotype)
    return obj, float(obj["total"]["epsilon"])


def _af_file(af_source: str):
    return af_source[len("public:") :] if af_source.startswith("public:") else None


def _check_common(epsilon: float, af_source: str) -> None:
    if not (epsilon > 0 and np.isfinite(epsilon)):
        raise GenoshareError(f"--epsilon must be a positive number, not {epsilon}")
    _check_af_source(af_source)


def _master(seed) -> bytes:
    return new_master_key() if seed is None else master_key_from_seed(seed)


# Set by genoshare.sweep around the members of one epsilon sweep: epsilon-free results (the CSV inputs as read,
# the LD statistics) are computed by the first member and reused by the others; None outside a sweep.
_SWEEP_SHARED: dict | None = None


def _sweep_shared(key: tuple, compute):
    shared = _SWEEP_SHARED
    if shared is None:
        return compute()
    with shared["lock"]:  # the store sweep's members run in threads: the first computes, the others wait
        lock = shared.setdefault(("lock",) + key, __import__("threading").Lock())
    with lock:
        if key not in shared:
            shared[key] = compute()
    return shared[key]


def _sweep_client(dask_client, scheduler, cluster_config, workers):
    """The sweep's one Dask client for all its members (genoshare.sweep), else a client of their own."""
    if _SWEEP_SHARED is not None and "client" in _SWEEP_SHARED:
        return contextlib.nullcontext(_SWEEP_SHARED["client"])
    return dask_client(scheduler, config=cluster_config, n_workers=workers)


def is_csv(path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


# ------------------------------------------------------------------------------------------------------------------
# release


def release(cohort, reference, epsilon: float, out, **options) -> dict:
    """Release a cohort: CSV matrices in memory (release.csv.gz), anything else through the
    blockwise VCF Zarr pipeline (release.vcz plus exports)."""
    if is_csv(cohort) and is_csv(reference):
        csv_only = {
            "calibration",
            "zero_cell",
            "window",
            "af_source",
            "seed",
            "sample_block",
            "threads",
            "overwrite",
            "progress",
            "ldstats",
            "private_dir",
            "budget",
            "relatives",
            "notify",
            "phenotypes",
            "release_phenotype",
        }
        unused = [k for k, v in options.items() if k not in csv_only and v not in (None, (), "", False)]
        if unused:
            raise GenoshareError(
                f"option(s) {', '.join('--' + u.replace('_', '-') for u in unused)} apply to "
                "VCF Zarr/PLINK/VCF inputs, not to CSV matrices"
            )
        return release_csv(cohort, reference, epsilon, out, **{k: v for k, v in options.items() if k in csv_only})
    options.pop("sample_block", None)
    options.pop("threads", None)
    return release_store(cohort, reference, epsilon, out, **options)


def _csv_targets(af_source: str, cohort: GenotypeMatrix, reference: GenotypeMatrix, master: bytes):
    G = cohort.genotypes
    if af_source == "published":
        return target_counts_published(G), af_info("published"), None, None
    if af_source.startswith("dp:"):
        from genoshare.privacy.dp_af import derive_af_key, dp_allele_counts

        eps, delta = parse_dp(af_source, cohort.n_samples)
        counts, gcal = dp_allele_counts(
            target_counts_published(G), (G >= 0).sum(axis=1), eps, delta, derive_af_key(master)
        )
        return counts, af_info("dp", epsilon_af=eps, delta_af=delta), None, gcal
    if af_source == "reference":
        R = reference.genotypes
        af = np.where(R >= 0, R, 0).sum(axis=1) / (2.0 * np.maximum((R >= 0).sum(axis=1), 1))
        return target_counts_from_af(G, af), af_info("reference"), None, None
    path = Path(af_source[len("public:") :])
    af = read_af_tsv(path, cohort.variant_ids)
    return (
        target_counts_from_af(G, af),
        af_info("public", file=str(path), snps_without_frequency=int(np.isnan(af).sum())),
        path,
        None,
    )


@cancels_reservations_on_failure
def _csv_af_plan(af_source: str, cohort: GenotypeMatrix):
    """(public AF file or None, DP frequency calibration or None): what the accountant needs, without genotypes."""
    if af_source.startswith("dp:"):
        from genoshare.privacy.dp_af import gaussian_calibration

        return None, gaussian_calibration(*parse_dp(af_source, cohort.n_samples), cohort.n_variants)
    return (Path(af_source[len("public:") :]) if af_source.startswith("public:") else None), None


@cancels_reservations_on_failure
def release_csv(
    cohort_path,
    reference_path,
    epsilon: float,
    out,
    calibration: str = "exact",
    zero_cell: str = DEFAULT_ZERO_CELL,
    window=DEFAULT_WINDOW,
    af_source: str = "published",
    seed: int | None = None,
    sample_block: int = DEFAULT_SAMPLE_BLOCK,
    threads: int | None = None,
    overwrite: bool = False,
    progress=None,
    ldstats: str | Path | None = None,
    private_dir=None,
    budget: float | None = None,
    relatives: str = "auto",
    notify=None,
    phenotypes=None,
    release_phenotype=(),
) -> dict:
    """Release a CSV-matrix cohort in memory; returns the manifest written to OUT/manifest.json."""
    timer = Timer()
    w = parse_window(window)
    _check_common(epsilon, af_source)
    pheno = _phenotype_plan(phenotypes, release_phenotype, notify)
    if sample_block is None or sample_block < 1:
        raise GenoshareError("--sample-block must be at least 1")
    from genoshare.io.outputs import check_output_location, check_phenotype_match

    check_output_location(out, cohort_path, reference_path, ldstats, phenotypes, _af_file(af_source))
    check_output(out, overwrite, notify)  # before any work; removes what killed runs left beside it
    with timer("read"):
        cohort = _sweep_shared(("read", str(cohort_path)), lambda: read_matrix(cohort_path))
        check_phenotype_match(pheno, cohort.sample_ids)
        reference = _sweep_shared(("read", str(reference_path)), lambda: read_matrix(reference_path))
        validate_same_variants(cohort, reference, cohort_path, reference_path)
        if reference.n_missing:
            raise InputError(
                reference_path,
                f"reference panel has {reference.n_missing} missing genotypes; impute or drop them first",
            )
        _check_disjoint(cohort.sample_ids, reference.sample_ids, reference_path)
        check_published_n(cohort.n_samples, af_source, cohort_path)
        from genoshare.privacy.panel_overlap import check_matrices

        overlap = check_matrices(
            cohort.genotypes, reference.genotypes, cohort.sample_ids, reference.sample_ids, reference_path
        )
        master = _master(seed)
        af_path, af_cal = _csv_af_plan(af_source, cohort)
    with timer("ldstats"):
        if ldstats is None:
            stats = _sweep_shared(
                ("csv-ldstats", str(reference_path), zero_cell, w),
                lambda: compute_ldstats(reference.genotypes, zero_cell=zero_cell, window=w),
            )
        else:
            from genoshare.io.ldstore import load_ldstats, sites_digest

            stats, _ = load_ldstats(ldstats, sites=sites_digest(cohort.variant_ids), zero_cell=zero_cell, window=w)
    with timer("calibrate"):
        cal = calibrate(stats, epsilon, calibration)
    with timer("account"):
        privacy, eps_total = _privacy(
            cal, cohort.n_samples, af_source, af_cal, af_path and str(af_path), pheno.privacy_entry()
        )
    book = _Bookkeeping(out, private_dir, budget, relatives, notify)
    book.panel_overlap = overlap  # owner-side only (notify / ledger), never the manifest
    book.notify(overlap["message"])
    with timer("bookkeeping"):
        from genoshare.privacy.kinship import GenotypeSource
        from genoshare.privacy.ledger import cohort_ids_key, fingerprint_matrix

        kin = book.before(
            cohort_ids_key(cohort.sample_ids, cohort.variant_ids),
            privacy,
            GenotypeSource.from_matrix(cohort.genotypes, cohort.sample_ids, max_variants=KINSHIP_MAX_VARIANTS),
            cohort_path=cohort_path,
            af_source=af_source,
            test_release=seed is not None,
        )
    with timer("release"):
        cohort_fp = fingerprint_matrix(cohort)
        targets, af, af_path, af_cal = _csv_targets(af_source, cohort, reference, master)
        res = release_genotypes(
            cohort.genotypes,
            cal.thresholds,
            targets,
            derive_keys(master),
            sample_block=sample_block,
            threads=threads,
            progress=progress,
        )
        release_fp = fingerprint_matrix(dataclasses.replace(cohort, genotypes=res.genotypes))
        refuse_identical(release_fp, cohort_fp)
    book.private_input("cohort", cohort_path, "csv", release_fp)
    inputs = {"cohort": private_input_entry(cohort_path, "csv"), "reference": input_entry(reference_path, "csv")}
    if af_path is not None:
        inputs["af_file"] = input_entry(af_path)
    if ldstats is not None:
        inputs["ldstats"] = input_entry(ldstats)
    extra = {"relatives": kin, RELEASE_DIGEST: release_fp}
    with atomic_store(out, overwrite=overwrite) as tmp:
        tmp.mkdir(mode=0o755)
        with timer("write"):
            write_matrix(
                tmp / RELEASE_CSV, cohort.sample_ids, cohort.variant_ids, res.genotypes, id_column=cohort.id_column
            )
            ph_text, _ = _write_phenotypes(tmp, pheno, cohort.sample_ids, master, inputs, extra, book=book)
        manifest = build_manifest(
            release_file=RELEASE_CSV,
            inputs=inputs,
            n_samples=cohort.n_samples,
            n_variants=cohort.n_variants,
            n_reference=reference.n_samples,
            n_missing=res.n_missing,
            cal=cal,
            zero_cell=zero_cell,
            window=w,
            af=af,
            sample_block=res.sample_block,
            flips=(res.flips_down, res.flips_up),
            seed_given=seed is not None,
            timings=timer.timings,
            extra=extra,
            privacy=privacy,
            phenotypes=ph_text,
        )
        _finish_release_dir(tmp, manifest)
        book.check(tmp)
    book.after(manifest, cohort_fp)
    return manifest


RELATIVES_AUTO_MAX = 2_000  # above this many people the kinship check runs only when asked (it is O(n^2 m))
KINSHIP_MAX_VARIANTS = 20_000


class _Bookkeeping:
    """The owner-side checks around a release (issue: ledger, budget, relatives, check-release).

    before(): reserve the ledger row against the budget, then related individuals (reserve() and
    relatives_check(), which the store pipeline calls separately); reserve() comes before any genotype work;
    check(): check-release on the finished directory before it is renamed into place;
    after(): finalize the reservation with the genotype fingerprint (the budget is re-checked atomically).
    The release functions are decorated with cancels_reservations_on_failure: a failed release leaves no row.
    """

    def __init__(self, out, private_dir=None, budget=None, relatives: str = "auto", notify=None):
        from genoshare.privacy.ledger import Ledger

        if relatives not in ("auto", "check", "refuse", "skip"):
            raise GenoshareError(f"--relatives must be auto, check, refuse or skip, not {relatives!r}")
        self.out, self.budget, self.relatives = Path(out), budget, relatives
        self.notify = notify or (lambda line: None)
        self.ledger = Ledger.open(private_dir, release_dir=out)
        self.details: dict = {}  # private facts for the ledger row, never for the manifest

    def private_input(self, role: str, path, kind, release_fp: str | None = None) -> None:
        """Keep a private input's absolute path and SHA-256 (and the release digest) for the ledger row."""
        self.details[role] = private_input_details(path, kind)
        if release_fp is not None:
            self.details[RELEASE_DIGEST] = release_fp

    def before(self, cohort_key: str, privacy: dict, source, **row) -> dict:
        self.reserve(cohort_key, privacy, **row)
        return self.relatives_check(len(source.sample_ids), lambda: source, lambda: privacy["total"]["epsilon"])

    def reserve(self, cohort_key: str, privacy: dict, **row) -> None:
        """Reserve this release's ledger row under the cohort's id key (ledger.cohort_ids_key: no genotype
        read), atomically refused if it would exceed --budget; print the cohort's cumulative loss so far.
        ``row``: cohort_path, af_source, test_release (ledger.reservation_entry)."""
        from genoshare.privacy.ledger import format_cumulative, reservation_entry

        self.reservation = self.ledger.reserve(
            reservation_entry(cohort_key, privacy, output_dir=self.out, **row), budget=self.budget
        )
        self.notify(
            format_cumulative(self.ledger.cumulative(cohort_key, cohort_ids=cohort_key, exclude_id=self.reservation))
        )

    def relatives_check(self, n: int, source_fn, epsilon_fn) -> dict:
        """Related individuals (KING kinship) when asked or for small cohorts; ``source_fn()`` gives the
        genotypes and ``epsilon_fn()`` the release's total epsilon, only if the check runs."""
        from genoshare.privacy.kinship import check_relatives, format_relatives

        if self.relatives == "skip" or (self.relatives == "auto" and n > RELATIVES_AUTO_MAX):
            reason = (
                "--relatives skip"
                if self.relatives == "skip"
                else (f"{n:,} individuals > {RELATIVES_AUTO_MAX:,}: run 'genoshare kinship' or --relatives check")
            )
            self.notify(f"relatives: not checked ({reason})")
            return {"checked": False, "reason": reason}
        report = check_relatives(source_fn(), epsilon_fn(), refuse=self.relatives == "refuse")
        self.notify(format_relatives(report))
        if report.get("skipped"):
            return {"checked": False, "reason": report["skipped"]}
        # The counts are statistics of the cohort outside the accounting: the ledger keeps them, not the manifest.
        self.details["relatives"] = {
            "threshold": report["threshold"],
            "related_pairs": len(report["pairs"]),
            "groups": len(report["groups"]),
            "largest_group": report["largest_group"],
        }
        return {
            "checked": True,
            "threshold": report["threshold"],
            "group_privacy": "a group of k related individuals is protected with k x epsilon (group sizes "
            "are in the owner's ledger)",
        }

    def check(self, directory: Path, verify_data: bool = True) -> None:
        from genoshare.privacy.checkrelease import check_release

        # ledger=None: the owner-mode comparison with the cohort ran already (refuse_identical, before writing)
        report = check_release(directory, verify_data=verify_data, ledger=None)
        for line in report.warnings:
            self.notify(f"check-release warning: {line}")
        if not report.ok:
            raise GenoshareError(f"check-release failed: {report.problems[0]}")

    def after(self, manifest: dict, fingerprint: str) -> None:
        """Finalize the reservation: the genotype ``fingerprint``, the release's checksum and stages."""
        from genoshare.privacy.ledger import ledger_entry_from_manifest

        try:
            self.ledger.finalize(
                self.reservation,
                entry=ledger_entry_from_manifest(manifest, fingerprint, self.out, details=self.details),
                budget=self.budget,
            )
        except BaseException:
            shutil.rmtree(self.out, ignore_errors=True)  # not counted (the reservation is deleted): not released
            raise
        self.notify(f"ledger: recorded release {self.reservation} of cohort {fingerprint[:12]}")


class _NoBookkeeping(_Bookkeeping):
    """No owner layer (release_store(bookkeeping=False)): nothing reserved, checked or recorded."""

    def __init__(self):
        self.notify, self.details, self.relatives = (lambda line: None), {}, "skip"

    def private_input(self, *args, **kwargs) -> None:
        pass  # the ledger's facts (it would hash the cohort): nothing is recorded

    def reserve(self, *args, **kwargs) -> None:
        pass

    def relatives_check(self, n, source_fn, epsilon_fn) -> dict:
        return {"checked": False, "reason": "not a release (a retention-table rerun)"}

    def check(self, directory, verify_data=True) -> None:
        pass

    def after(self, manifest, fingerprint) -> None:
        pass


def _check_disjoint(cohort_ids, panel_ids, panel_path) -> None:
    shared = set(cohort_ids) & set(panel_ids)
    if shared:
        raise InputError(
            panel_path,
            f"reference panel shares {len(shared)} individual id(s) with the cohort "
            f"(e.g. {sorted(shared)[0]!r}); it must be public or disjoint",
        )


def _finish_release_dir(tmp: Path, manifest: dict) -> None:
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    for f in [tmp, *tmp.rglob("*")]:
        f.chmod(0o755 if f.is_dir() else 0o644)  # nothing group- or world-writable


def _phenotype_plan(path, specs, notify):
    from genoshare.io.phenotypes import prepare_phenotypes

    plan = prepare_phenotypes(path, specs)
    if path is not None and not plan.released and notify is not None:
        notify(f"phenotypes: no column listed with --release-phenotype, nothing from {path} is released")
    return plan


def _write_phenotypes(
    tmp: Path, plan, sample_ids, master: bytes, inputs: dict, extra: dict, plink: bool = False, book=None
):
    """DIR/phenotypes.tsv and its manifest entries. Returns (privacy text, .fam phenotype codes): (None, None)
    when nothing is released; codes None (-9) without a PLINK export or unless exactly one column is binary."""
    from genoshare.io.phenotypes import PHENOTYPES_FILE

    if not plan.released:
        return None, None
    released = plan.apply(sample_ids, master)
    released.write(tmp / PHENOTYPES_FILE)
    inputs["phenotypes"] = private_input_entry(plan.table.path)  # path and hash: the ledger (book.details)
    if book is not None:
        book.details["phenotypes"] = private_input_details(plan.table.path)
    fam, fam_text = released.fam_phenotype() if plink else (None, None)
    extra["phenotypes"] = released.manifest_entry(fam_text)
    return released.statement(), fam


def _as_vcz(path, work: Path, name: str, chunks):
    """A VCF Zarr view of any supported input: the store itself, or an ingested copy in ``work``."""
    from genoshare.io.ingest import detect_format, ingest
    from genoshare.io.vcz import open_vcz

    from genoshare.io.parts import is_pattern

    kind = detect_format(path)
    if kind == "vcz" and not is_pattern(path):
        return open_vcz(path), kind
    target = work / f"{name}.vcz"
    ingest(path, target, chunk_variants=chunks[0], chunk_samples=chunks[1])
    return open_vcz(target), kind


class _StoreInputs:
    """Cohort and panel as VCF Zarr (ingested into a private work directory when they are not),
    aligned. The work directory holds copies of the original genotypes: it lives beside the
    output, never inside it, and is removed on exit whatever happens."""

    def __init__(self, cohort_path, reference_path, out, chunks, ambiguous, unmatched, timer):
        self.args = (cohort_path, reference_path, Path(out), chunks, ambiguous, unmatched, timer)

    def __enter__(self):
        from genoshare.io.align import align
        from genoshare.io.atomic import filesystem_errors_as
        from genoshare.io.workdir import work_dir

        cohort_path, reference_path, out, chunks, ambiguous, unmatched, timer = self.args
        self.work = work_dir(out)  # 0700, named with host and pid: a killed run's is removed by the next one
        try:
            with (
                timer("ingest"),
                filesystem_errors_as(out, f"cannot write the work directory in {self.work.parent}", inside=self.work),
            ):
                self.cohort, self.cohort_kind = _as_vcz(cohort_path, self.work, "cohort", chunks)
                self.panel, self.panel_kind = _as_vcz(reference_path, self.work, "panel", chunks)
            _check_disjoint(self.cohort.sample_ids, self.panel.sample_ids, reference_path)
            with timer("align"):
                self.alignment = align(self.cohort, self.panel, ambiguous=ambiguous, unmatched=unmatched)
        except BaseException:
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc):
        from genoshare.io.workdir import remove_own

        shutil.rmtree(self.work, ignore_errors=True)
        if exc[0] is not None:  # the Dask cluster is closed by now: what its last tasks wrote goes too
            remove_own(self.args[2])

    @property
    def index(self) -> np.ndarray:
        return self.alignment.cohort_index

    def sites(self) -> str:
        from genoshare.io.ldstore import sites_digest

        c, idx = self.cohort, self.index
        alleles = c.variant_allele[idx]
        contigs = np.asarray(c.contig_ids, dtype=object)[c.variant_contig[idx]]
        return sites_digest(contigs, c.variant_position[idx], alleles[:, 0], alleles[:, 1])

    def ldstats(self, client, window, zero_cell, ldstats_path=None, progress=None):
        """(LDStats, panel ALT frequencies): from a cached file if given, else computed."""
        from genoshare import pipeline
        from genoshare.io.ldstore import load_ldstats

        if ldstats_path is not None:
            return load_ldstats(ldstats_path, sites=self.sites(), zero_cell=zero_cell, window=window)
        return pipeline.panel_ldstats(
            client,
            str(self.panel.path),
            self.alignment.panel_index,
            self.alignment.panel_swap,
            self.cohort.variant_contig[self.index],
            self.panel.n_samples,
            window,
            zero_cell,
            progress=progress,
        )

    def alignment_summary(self, ambiguous, unmatched) -> dict:
        al = self.alignment
        from genoshare.io.ingest import dropped_at_ingest

        return {
            "cohort_sites": al.n_cohort_sites,
            "kept": al.n_kept,
            "panel_swapped": int(al.panel_swap.sum()),
            "panel_strand_flipped": int(al.panel_strand_flip.sum()),
            "dropped": al.dropped,
            "ambiguous": ambiguous,
            "unmatched": unmatched,
            **dropped_at_ingest(self.cohort, "dropped_at_ingest"),
            **dropped_at_ingest(self.panel, "panel_dropped_at_ingest"),
        }


def ldstats_command(
    cohort_path,
    reference_path,
    out_file,
    zero_cell: str = DEFAULT_ZERO_CELL,
    window=DEFAULT_WINDOW,
    scheduler: str = "local",
    cluster_config=None,
    workers=None,
    chunk_variants=None,
    chunk_samples=None,
    ambiguous: str = "drop",
    unmatched: str = "drop",
    progress=None,
) -> dict:
    """Compute the epsilon-free LD statistics once and save them for every release of a sweep."""
    from genoshare.io.ldstore import save_ldstats, sites_digest
    from genoshare.manifest import sha256_path

    w = parse_window(window)
    timer = Timer()
    if is_csv(cohort_path) and is_csv(reference_path):
        cohort, reference = read_matrix(cohort_path), read_matrix(reference_path)
        validate_same_variants(cohort, reference, cohort_path, reference_path)
        if reference.n_missing:
            raise InputError(reference_path, f"reference panel has {reference.n_missing} missing genotypes")
        with timer("ldstats"):
            stats = compute_ldstats(reference.genotypes, zero_cell=zero_cell, window=w)
        R = reference.genotypes
        panel_af = R.sum(axis=1) / (2.0 * R.shape[1])
        sites, n = sites_digest(cohort.variant_ids), cohort.n_variants
    else:
        from genoshare.cluster import dask_client

        with (
            _StoreInputs(
                cohort_path, reference_path, out_file, (chunk_variants, chunk_samples), ambiguous, unmatched, timer
            ) as inp,
            dask_client(scheduler, config=cluster_config, n_workers=workers) as client,
        ):
            with timer("ldstats"):
                stats, panel_af = inp.ldstats(client, w, zero_cell, progress=progress)
            sites, n = inp.sites(), inp.alignment.n_kept
    save_ldstats(out_file, stats, panel_af, sites, sha256_path(reference_path))
    return {
        "out": str(out_file),
        "n_variants": n,
        "zero_cell": zero_cell,
        "window": "all" if w is None else w,
        "f2": stats.f2,
        "timings": timer.timings,
    }


@cancels_reservations_on_failure
def release_store(
    cohort_path,
    reference_path,
    epsilon: float,
    out,
    calibration: str = "exact",
    zero_cell: str = DEFAULT_ZERO_CELL,
    window=DEFAULT_WINDOW,
    af_source: str = "published",
    seed: int | None = None,
    overwrite: bool = False,
    progress=None,
    scheduler: str = "local",
    cluster_config=None,
    exports=(),
    chunk_variants: int | None = None,
    chunk_samples: int | None = None,
    ambiguous: str = "drop",
    unmatched: str = "drop",
    workers: int | None = None,
    ldstats: str | Path | None = None,
    private_dir=None,
    budget: float | None = None,
    relatives: str = "auto",
    notify=None,
    phenotypes=None,
    release_phenotype=(),
    bookkeeping: bool = True,
) -> dict:
    """Release a cohort through the blockwise VCF Zarr pipeline; returns the manifest.

    ``bookkeeping=False`` (internal: the retention table's never-shared reruns): the release engine alone, no
    ledger row, no panel-overlap or kinship check, no check-release."""
    from genoshare import pipeline
    from genoshare.cluster import dask_client
    from genoshare.io.align import align_af_table, read_af_table
    from genoshare.io.vcz import RELEASE_CALL_CLEVELS, init_vcz, write_deferred

    timer = Timer()
    w = parse_window(window)
    _check_common(epsilon, af_source)
    exports = parse_exports(exports)
    pheno = _phenotype_plan(phenotypes, release_phenotype, notify)
    from genoshare.io.outputs import check_export_ids, check_output_location, check_phenotype_match

    check_output_location(out, cohort_path, reference_path, ldstats, phenotypes, _af_file(af_source))
    check_output(out, overwrite, notify)  # before any work; removes what killed runs left beside it
    af_table = af_path = None
    if af_source.startswith("public:"):
        af_path = Path(af_source[len("public:") :])
        af_table = read_af_table(af_path)
    # The small-cohort refusal (check_published_n) runs once the inputs are read, before a Dask cluster starts.
    with (
        _StoreInputs(
            cohort_path, reference_path, out, (chunk_variants, chunk_samples), ambiguous, unmatched, timer
        ) as inp,
        contextlib.nullcontext(check_published_n(inp.cohort.n_samples, af_source, cohort_path)),
        _sweep_client(dask_client, scheduler, cluster_config, workers) as client,
    ):
        from genoshare.privacy.panel_overlap import check_stores

        cohort, idx = inp.cohort, inp.index
        check_export_ids(exports, cohort.sample_ids, cohort.variant_id[idx], cohort_path)
        check_phenotype_match(pheno, cohort.sample_ids)
        if bookkeeping:
            overlap = check_stores(cohort, inp.panel, inp.alignment, reference_path)
            book = _Bookkeeping(out, private_dir, budget, relatives, notify)
            book.panel_overlap = overlap  # owner-side only (notify / ledger), never the manifest
        else:
            overlap, book = {"message": None}, _NoBookkeeping()
        with timer("ldstats"):
            stats, panel_af = _sweep_shared(
                (
                    "store-ldstats",
                    str(cohort_path),
                    str(reference_path),
                    w,
                    zero_cell,
                    str(ldstats),
                    ambiguous,
                    unmatched,
                    chunk_variants,
                    chunk_samples,
                ),
                lambda: inp.ldstats(client, w, zero_cell, ldstats, progress),
            )
        with timer("calibrate"):
            cal = calibrate(stats, epsilon, calibration)
        master, target_fn, af_cal = _master(seed), None, None
        if af_source.startswith("dp:"):
            import functools

            from genoshare.privacy.dp_af import derive_af_key, gaussian_calibration

            eps_af, delta_af = parse_dp(af_source, cohort.n_samples)
            af_cal = gaussian_calibration(eps_af, delta_af, inp.alignment.n_kept)
            target_fn = functools.partial(
                dp_targets, epsilon=eps_af, delta=delta_af, key=derive_af_key(master), m=inp.alignment.n_kept
            )
        # The accountant (dp-accounting: ~1 s per 10^5 SNPs plus its imports) runs as a task beside the passes,
        # first in line; in this process it would compete for the GIL with the scheduler and the main thread.
        accounted = client.submit(
            _privacy,
            cal,
            cohort.n_samples,
            af_source,
            af_cal,
            af_path and str(af_path),
            pheno.privacy_entry(),
            priority=1,
            pure=False,
        )

        fetched = []

        def privacy():
            """(privacy object, total epsilon), fetched once; "account" times how long this process waited."""
            if not fetched:
                with timer("account"):
                    fetched.append(accounted.result())
            return fetched[0]

        with timer("bookkeeping"):
            from genoshare.privacy.kinship import GenotypeSource
            from genoshare.privacy.ledger import cohort_ids_key, fingerprint_from_digests

            if overlap["message"] is not None:
                book.notify(overlap["message"])
            book.reserve(
                cohort_ids_key(cohort.sample_ids, cohort.variant_id),
                privacy()[0],
                cohort_path=cohort_path,
                af_source=af_source,
                test_release=seed is not None,
            )
            kin = book.relatives_check(
                cohort.n_samples,
                lambda: GenotypeSource.from_path(cohort.path, KINSHIP_MAX_VARIANTS),
                lambda: privacy()[1],
            )
        if af_source == "published":
            target_af, af = None, af_info("published")
        elif af_source.startswith("dp:"):
            target_af, af = None, af_info("dp", epsilon_af=eps_af, delta_af=delta_af)
        elif af_source == "reference":
            target_af, af = panel_af, af_info("reference")
        else:
            target_af, af_counts = align_af_table(cohort, inp.alignment, af_table)
            af = af_info("public", file=str(af_path), **af_counts)
        book.private_input("cohort", cohort_path, inp.cohort_kind)
        from genoshare.io.parts import manifest_parts

        inputs = {
            "cohort": {**private_input_entry(cohort_path, inp.cohort_kind), **manifest_parts(cohort_path)},
            "reference": {**input_entry(reference_path, inp.panel_kind), **manifest_parts(reference_path)},
        }
        if af_path is not None:
            inputs["af_file"] = input_entry(af_path)
        if ldstats is not None:
            inputs["ldstats"] = input_entry(ldstats)
        with atomic_store(out, overwrite=overwrite) as tmp:
            tmp.mkdir(mode=0o755)
            store = tmp / RELEASE_VCZ
            group = init_vcz(
                store,
                sample_ids=cohort.sample_ids,
                contig_ids=cohort.contig_ids,
                variant_contig=cohort.variant_contig[idx],
                variant_position=cohort.variant_position[idx],
                variant_allele=cohort.variant_allele[idx][:, :2],
                variant_id=cohort.variant_id[idx],
                chunks=cohort.chunks,
                contig_lengths=cohort.contig_lengths,
                call_clevels=RELEASE_CALL_CLEVELS,
                deferred_writes=(metadata := []),
            )
            with timer("release"), ThreadPoolExecutor(max_workers=1) as beside:
                # The per-variant metadata arrays are written while the passes run (this process waits anyway).
                written = beside.submit(write_deferred, metadata)
                calls = _sweep_shared(
                    ("calls", str(cohort.path), idx.tobytes(), cohort.chunks),  # one read
                    lambda: pipeline.cohort_calls(str(cohort.path), idx, cohort.chunks),
                )
                # the ledger row is reserved under the cohort's ids before this (book.reserve); pass 1 computes
                # the genotype fingerprint on the way (plus the dropped sites' own read), recorded by book.after
                dropped = np.setdiff1d(np.arange(cohort.n_variants), idx)
                res = pipeline.release_passes(
                    calls,
                    cal.thresholds,
                    derive_keys(master),
                    target_af,
                    group,
                    progress=progress,
                    target_fn=target_fn,
                    digests=True,
                    source=cohort_path,
                    variant_ids=cohort.variant_id[idx],
                    extra=(pipeline.cohort_digests(str(cohort.path), dropped),) if dropped.size else (),
                )
                written.result()
            digests = np.zeros((cohort.n_variants, res.digests.shape[1]), dtype=np.uint64)
            digests[idx] = res.digests
            if dropped.size:
                digests[dropped] = res.extra[0]
            fingerprint = fingerprint_from_digests(cohort.sample_ids, cohort.variant_id, digests)
            # The paranoid check: the released genotypes must not be the cohort's at the released sites.
            release_fp = fingerprint_from_digests(cohort.sample_ids, cohort.variant_id[idx], res.released_digests)
            sites_fp = fingerprint_from_digests(cohort.sample_ids, cohort.variant_id[idx], digests[idx])
            refuse_identical(release_fp, sites_fp)
            book.details.update({RELEASE_DIGEST: release_fp, "cohort_sites_fingerprint": sites_fp})
            _write_frequencies(tmp / FREQ_FILE, cohort, idx, res.released_counts, res.n_called)
            ph_extra = {}
            ph_text, fam = _write_phenotypes(
                tmp, pheno, cohort.sample_ids, master, inputs, ph_extra, plink="plink" in exports, book=book
            )
            with timer("export"):
                _export(store, tmp, exports, fam)
            extra = {
                "alignment": inp.alignment_summary(ambiguous, unmatched),
                "chunks": {"variants": cohort.chunks[0], "samples": cohort.chunks[1]},
                "scheduler": scheduler if scheduler in ("local", "slurm") else "existing",
                "frequencies_file": FREQ_FILE,
                "exports": list(exports),
                "relatives": kin,
                RELEASE_DIGEST: release_fp,
                **ph_extra,
            }
            manifest = build_manifest(
                release_file=RELEASE_VCZ,
                inputs=inputs,
                n_samples=cohort.n_samples,
                n_variants=inp.alignment.n_kept,
                n_reference=inp.panel.n_samples,
                n_missing=res.n_missing,
                cal=cal,
                zero_cell=zero_cell,
                window=w,
                af=af,
                sample_block=cohort.chunks[1],
                flips=(res.flips_down, res.flips_up),
                seed_given=seed is not None,
                timings=timer.timings,
                extra=extra,
                privacy=privacy()[0],
                phenotypes=ph_text,
            )
            group.attrs["genoshare_manifest"] = manifest
            _finish_release_dir(tmp, manifest)
            # Without exports the data check would only re-read release.vcz to recount frequencies.tsv,
            # which release_passes has already checked against what it wrote, blockwise on the workers.
            book.check(tmp, verify_data=bool(exports))
    book.after(manifest, fingerprint)
    return manifest


def _write_frequencies(path: Path, cohort, idx: np.ndarray, alt_counts: np.ndarray, n_called: np.ndarray) -> None:
    """ALT frequencies of the release (anyone can compute them from release.vcz; a reviewer
    compares them with PLINK's --freq)."""
    import pandas as pd

    alleles = cohort.variant_allele[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        af = np.where(n_called > 0, alt_counts / (2.0 * n_called), np.nan)
    pd.DataFrame(
        {
            "id": cohort.variant_id[idx],
            "contig": np.asarray(cohort.contig_ids, dtype=object)[cohort.variant_contig[idx]],
            "position": cohort.variant_position[idx],
            "ref": alleles[:, 0],
            "alt": alleles[:, 1],
            "alt_count": alt_counts,
            "n_called": n_called,
            "af": af,
        }
    ).to_csv(path, sep="\t", index=False, float_format="%.6g")


def _export(store: Path, outdir: Path, exports, fam_phenotype=None) -> None:
    from genoshare.io.export import export

    export(store, outdir, exports, fam_phenotype=fam_phenotype)


# ------------------------------------------------------------------------------------------------------------------
# evaluate


def _release_dosage(release_dir: Path):
    """(sample_ids, variant_ids, dosage) of a release directory, CSV or VCF Zarr."""
    if (release_dir / RELEASE_CSV).exists():
        rel = read_matrix(release_dir / RELEASE_CSV)
        return rel.sample_ids, rel.variant_ids, rel.genotypes, release_dir / RELEASE_CSV
    if (release_dir / RELEASE_VCZ).exists():
        from genoshare.io.vcz import open_vcz, read_dosage

        info = open_vcz(release_dir / RELEASE_VCZ)
        return info.sample_ids, list(info.variant_id), read_dosage(info, 0, info.n_variants), info.path
    raise InputError(release_dir, f"not a release directory (no {RELEASE_CSV} or {RELEASE_VCZ})")


def evaluate_release(original_path, release_dir) -> dict:
    """Utility metrics of a release against the original cohort (SPEC 5)."""
    release_dir = Path(release_dir)
    if not release_dir.is_dir():
        raise InputError(release_dir, "not a release directory")
    sample_ids, variant_ids, S, rel_path = _release_dosage(release_dir)
    if is_csv(original_path):
        original = read_matrix(original_path)
        G, o_samples, o_variants = original.genotypes, original.sample_ids, original.variant_ids
    else:
        from genoshare.io.ingest import detect_format
        from genoshare.io.vcz import open_vcz, read_dosage

        if detect_format(original_path) != "vcz":
            raise InputError(original_path, "evaluate needs the original as a CSV matrix or VCF Zarr store")
        info = open_vcz(original_path)
        pos = {v: j for j, v in enumerate(info.variant_id)}
        missing = [v for v in variant_ids if v not in pos]
        if missing:
            raise InputError(rel_path, f"variant {missing[0]!r} of the release is not in the original")
        G = read_dosage(info, 0, info.n_variants)[[pos[v] for v in variant_ids]]
        o_samples, o_variants = info.sample_ids, list(variant_ids)
    if list(o_variants) != list(variant_ids):
        raise InputError(rel_path, "SNP ids differ from the original cohort")
    if list(o_samples) != list(sample_ids):
        raise InputError(rel_path, "individual ids differ from the original cohort")
    return utility_metrics(G, S)
