"""The release manifest: what a data owner, a reviewer and the ledger read about a release.

It states the true privacy loss next to the nominal one and never holds the key, the seed,
the noise or statistics of the cohort that the release does not already reveal. Private inputs
(cohort, phenotypes) appear by base name only (genoshare.privacy.release_safety.private_input_entry):
their path and SHA-256, and exact kinship counts, are kept in the owner's ledger; public inputs
(reference panel, frequency file, LD statistics) keep path and SHA-256.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, UTC
from pathlib import Path

from genoshare import __version__
from genoshare.mechanism.calibrate import Calibration

AF_PRIVACY = {
    "published": (
        "restored to the cohort's own allele frequencies: the guarantee holds conditionally on "
        "those frequencies being published"
    ),
    "reference": "public reference-panel frequencies: post-processing, no privacy cost",
    "public": "public allele-frequency file: post-processing, no privacy cost",
    "dp": "differentially private allele frequencies (Gaussian mechanism, own epsilon_af and delta_af)",
}
NO_PHENOTYPES = "no phenotypes or covariates are released"
TEST_RELEASE_WARNING = "reproducible test release: not for sharing (made with --seed)"


def sha256_path(path) -> str:
    """SHA-256 of a file, or of a directory tree (relative paths and contents, sorted); of a ``{chrom}``
    pattern: over its parts (genoshare.io.parts.sha256_parts)."""
    from genoshare.io.parts import is_pattern, sha256_parts

    if is_pattern(path):
        return sha256_parts(path)
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if f is not path:
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def input_entry(path, kind: str | None = None) -> dict:
    entry = {"path": str(path), "sha256": sha256_path(path)}
    if kind:
        entry["format"] = kind
    return entry


def af_info(kind: str, **extra) -> dict:
    return {"kind": kind, "privacy": AF_PRIVACY[kind], **extra}


def build_manifest(
    *,
    release_file: str,
    inputs: dict,
    n_samples: int,
    n_variants: int,
    n_reference: int,
    n_missing: int,
    cal: Calibration,
    zero_cell: str,
    window,
    af: dict,
    sample_block: int,
    flips: tuple[int, int],
    seed_given: bool,
    timings: dict,
    extra: dict | None = None,
    privacy: dict | None = None,
    phenotypes: str | None = None,
) -> dict:
    """phenotypes: what the release says about its phenotype columns (None: none released)."""
    down, up = flips
    manifest = {
        "tool": "genoshare",
        "version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "release_file": release_file,
        "inputs": inputs,
        "n_samples": n_samples,
        "n_variants": n_variants,
        "n_reference": n_reference,
        "n_missing": n_missing,
        "epsilon_requested": cal.epsilon_requested,
        "epsilon_xor": cal.epsilon_xor,
        "epsilon_nominal": cal.epsilon_nominal,
        "calibration": cal.method,
        "zero_cell": zero_cell,
        "window": "all" if window is None else window,
        "af_source": af,
        "sample_block": sample_block,
        "noise": {
            "mean_flip_probability": float(cal.p.mean()),
            "min_flip_probability": float(cal.p.min()),
            "max_flip_probability": float(cal.p.max()),
            "columns_lo_nonneg": cal.n_lo_nonneg,
            "randomness": "AES-256-CTR keystream, position-addressed",
        },
        "flips": {"total": down + up, "one_to_zero": down, "zero_to_one": up},
        "privacy": {
            **(privacy or {}),
            "neighbours": "replace one individual (any of their 2m bits may change)",
            "epsilon_xor": cal.epsilon_xor,
            "allele_frequencies": af["privacy"],
            "reference_panel": "assumed public or disjoint from the cohort (no shared individual ids found)",
            "missingness": "missing genotypes are released as missing: the missingness pattern is not protected",
            "phenotypes": phenotypes or NO_PHENOTYPES,
        },
        "reproducible_test_release": seed_given,
        **(extra or {}),
        "timings": timings,
    }
    if seed_given:
        manifest["warning"] = TEST_RELEASE_WARNING
    return manifest
