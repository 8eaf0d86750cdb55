"""One function per command: what the CLI calls, usable from Python too."""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from genoshare import __version__
from genoshare.errors import GenoshareError, InputError
from genoshare.evaluate.utility import utility_metrics
from genoshare.io.affile import read_af_tsv
from genoshare.io.csvmatrix import GenotypeMatrix, read_matrix, validate_same_variants, write_matrix
from genoshare.io.outdir import atomic_directory
from genoshare.mechanism.calibrate import calibrate
from genoshare.mechanism.keystream import derive_keys, master_key_from_seed, new_master_key
from genoshare.mechanism.ldstats import compute_ldstats
from genoshare.mechanism.release import (
    DEFAULT_SAMPLE_BLOCK,
    release_genotypes,
    target_counts_from_af,
    target_counts_published,
)

RELEASE_FILE = "release.csv.gz"
MANIFEST_FILE = "manifest.json"
DEFAULT_ZERO_CELL = "haldane"  # chosen by measurement at equal true epsilon: docs/zero-cell.md


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def _target_counts(af_source: str, cohort: GenotypeMatrix, reference: GenotypeMatrix):
    """Allele counts the restoration aims for, the manifest's description, and the file used."""
    G = cohort.genotypes
    if af_source == "published":
        note = ("restored to the cohort's own allele frequencies: the guarantee holds conditionally on "
                "those frequencies being published")
        return target_counts_published(G), {"kind": "published", "privacy": note}, None
    if af_source == "reference":
        R = reference.genotypes
        af = np.where(R >= 0, R, 0).sum(axis=1) / (2.0 * np.maximum((R >= 0).sum(axis=1), 1))
        return target_counts_from_af(G, af), {
            "kind": "reference", "privacy": "public reference-panel frequencies: post-processing, no privacy cost"}, None
    if af_source.startswith("public:"):
        path = Path(af_source[len("public:"):])
        af = read_af_tsv(path, cohort.variant_ids)
        missing = int(np.isnan(af).sum())
        return target_counts_from_af(G, af), {
            "kind": "public", "file": str(path),
            "privacy": "public allele-frequency file: post-processing, no privacy cost",
            "snps_without_frequency": missing}, path
    raise GenoshareError(f"--af-source must be published, reference or public:FILE, not {af_source!r}")


def release_csv(cohort_path, reference_path, epsilon: float, out, calibration: str = "exact",
                zero_cell: str = DEFAULT_ZERO_CELL, window="all", af_source: str = "published",
                seed: int | None = None, sample_block: int = DEFAULT_SAMPLE_BLOCK, threads: int | None = None,
                overwrite: bool = False, progress=None) -> dict:
    """Release a CSV-matrix cohort; returns the manifest written to OUT/manifest.json."""
    timer = Timer()
    w = parse_window(window)
    if not (epsilon > 0 and np.isfinite(epsilon)):
        raise GenoshareError(f"--epsilon must be a positive number, not {epsilon}")
    if sample_block < 1:
        raise GenoshareError("--sample-block must be at least 1")
    with timer("read"):
        cohort = read_matrix(cohort_path)
        reference = read_matrix(reference_path)
        validate_same_variants(cohort, reference, cohort_path, reference_path)
        if reference.n_missing:
            raise InputError(reference_path, f"reference panel has {reference.n_missing} missing genotypes; "
                                             "impute or drop them first")
        shared = set(cohort.sample_ids) & set(reference.sample_ids)
        if shared:
            raise InputError(reference_path, f"reference panel shares {len(shared)} individual id(s) with the "
                                             f"cohort (e.g. {sorted(shared)[0]!r}); it must be public or disjoint")
        targets, af_info, af_path = _target_counts(af_source, cohort, reference)
    with timer("ldstats"):
        stats = compute_ldstats(reference.genotypes, zero_cell=zero_cell, window=w)
    with timer("calibrate"):
        cal = calibrate(stats, epsilon, calibration)
    master = new_master_key() if seed is None else master_key_from_seed(seed)
    keys = derive_keys(master)
    del master
    with timer("release"):
        res = release_genotypes(cohort.genotypes, cal.thresholds, targets, keys, sample_block=sample_block,
                                threads=threads, progress=progress)
    del keys
    inputs = {"cohort": {"path": str(cohort_path), "sha256": sha256_file(cohort_path)},
              "reference": {"path": str(reference_path), "sha256": sha256_file(reference_path)}}
    if af_path is not None:
        inputs["af_file"] = {"path": str(af_path), "sha256": sha256_file(af_path)}
    manifest = {
        "tool": "genoshare",
        "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "release_file": RELEASE_FILE,
        "inputs": inputs,
        "n_samples": cohort.n_samples,
        "n_variants": cohort.n_variants,
        "n_reference": reference.n_samples,
        "n_missing": res.n_missing,
        "epsilon_requested": cal.epsilon_requested,
        "epsilon_xor": cal.epsilon_xor,
        "epsilon_nominal": cal.epsilon_nominal,
        "calibration": cal.method,
        "zero_cell": zero_cell,
        "window": "all" if w is None else w,
        "af_source": af_info,
        "sample_block": res.sample_block,
        "noise": {
            "mean_flip_probability": float(cal.p.mean()),
            "min_flip_probability": float(cal.p.min()),
            "max_flip_probability": float(cal.p.max()),
            "columns_lo_nonneg": cal.n_lo_nonneg,
            "randomness": "AES-256-CTR keystream, position-addressed",
        },
        "flips": {"total": res.flips, "one_to_zero": res.flips_down, "zero_to_one": res.flips_up},
        "privacy": {
            "neighbours": "replace one individual (any of their 2m bits may change)",
            "epsilon_xor": cal.epsilon_xor,
            "allele_frequencies": af_info["privacy"],
            "reference_panel": "assumed public or disjoint from the cohort (no shared individual ids found)",
        },
        "reproducible_test_release": seed is not None,
    }
    if seed is not None:
        manifest["warning"] = "reproducible test release: not for sharing (made with --seed)"
    with atomic_directory(out, overwrite=overwrite) as tmp:
        with timer("write"):
            write_matrix(tmp / RELEASE_FILE, cohort.sample_ids, cohort.variant_ids, res.genotypes,
                         id_column=cohort.id_column)
        manifest["timings"] = timer.timings
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def evaluate_release(original_path, release_dir) -> dict:
    """Utility metrics of a release against the original cohort (SPEC 5)."""
    release_dir = Path(release_dir)
    rel_path = release_dir / RELEASE_FILE
    if not release_dir.is_dir():
        raise InputError(release_dir, "not a release directory")
    original = read_matrix(original_path)
    released = read_matrix(rel_path)
    validate_same_variants(original, released, original_path, rel_path)
    if original.sample_ids != released.sample_ids:
        raise InputError(rel_path, "individual ids differ from the original cohort")
    return utility_metrics(original.genotypes, released.genotypes)
