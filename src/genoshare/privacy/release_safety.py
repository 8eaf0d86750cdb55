"""Checks that stop a release from undoing itself (issue 15, items 1-3).

Small cohorts restored to their own frequencies
-----------------------------------------------
``--af-source published`` restores every SNP to the cohort's own ALT count. With few individuals there are few
ways to hit that count, and the restoration mostly undoes the noise: one individual is released byte-identical,
two are released ~3/4 identical (docs/privacy.md has the measured table). A release with published frequencies
is refused below :data:`MIN_PUBLISHED_SAMPLES` individuals, and check-release fails such a directory.

The release digest
------------------
``release_digest`` in the manifest is the ledger's cohort fingerprint (genoshare.privacy.ledger, SHA-256 over
the ids and per-variant additive digests) computed over the *released* genotypes: blockwise, independent of
compression, chunking and file format (a CSV and a VCF Zarr release of the same calls have the same digest).
check-release recomputes it from the data and fails on a mismatch; the release step refuses to finish when it
equals the fingerprint of the cohort at the released sites (the released genotypes are the original ones).

What stays private
------------------
The private inputs (cohort, phenotypes) appear in the manifest by base name and format only; their absolute
path and SHA-256, and the exact kinship counts (related pairs, groups, largest group), go to the owner's ledger
(its ``details`` column). check-release fails a manifest that carries them.
"""

from __future__ import annotations

from pathlib import Path

from genoshare.errors import GenoshareError, InputError

__all__ = [
    "MIN_PUBLISHED_SAMPLES",
    "check_published_n",
    "private_input_entry",
    "private_input_details",
    "manifest_problems",
    "RELEASE_DIGEST",
    "IdenticalRelease",
    "refuse_identical",
    "ledger_problems",
]

#: Fewest individuals a release restored to the cohort's own (published) allele frequencies may have. Measured on
#: the lactose cohort (docs/privacy.md, benchmarks/small_n.py): the restoration leaves +27 points more genotypes
#: unchanged than the noise alone at n = 1 (100 % identical), +15 at n = 2, +2.4 at n = 10 and +0.7 at n = 20
#: (e = 3 per SNP; e = 1 and 5 alike).
MIN_PUBLISHED_SAMPLES = 20
RELEASE_DIGEST = "release_digest"
PRIVATE_INPUTS = ("cohort", "phenotypes")
PRIVATE_INPUT_KEYS = ("path", "sha256", "sha1", "md5", "checksum", "fingerprint", "size")
#: Keys of a ``relatives`` summary that may appear in a manifest (everything numeric else is a cohort count).
KINSHIP_PUBLIC_KEYS = frozenset({"checked", "threshold", "reason", "group_privacy", "refused"})


class IdenticalRelease(GenoshareError):
    """The released genotypes equal the cohort's: nothing was released."""


def check_published_n(n_samples: int, af_kind: str, cohort_path) -> None:
    """Refuse (InputError naming the cohort) a published-frequency release of fewer than the minimum."""
    if af_kind == "published" and n_samples < MIN_PUBLISHED_SAMPLES:
        raise InputError(
            cohort_path,
            f"{n_samples} individual(s): restoring the cohort's own allele frequencies "
            f"(--af-source published) needs at least {MIN_PUBLISHED_SAMPLES}, fewer "
            "would release most genotypes unchanged; use --af-source reference, "
            "public:FILE or dp:EPS",
        )


def private_input_entry(path, kind: str | None = None) -> dict:
    """Manifest entry of a private input: its base name (and format), never its path or hash."""
    entry = {"name": Path(str(path)).name}
    if kind:
        entry["format"] = kind
    return entry


def private_input_details(path, kind: str | None = None) -> dict:
    """Ledger details of a private input: absolute path and SHA-256 (genoshare.manifest.sha256_path)."""
    from genoshare.manifest import sha256_path

    entry = {"path": str(Path(path).expanduser().absolute()), "sha256": sha256_path(path)}
    if kind:
        entry["format"] = kind
    return entry


def refuse_identical(release_fp: str, cohort_fp: str) -> None:
    """The paranoid check at release time: refuse if the released genotypes are the cohort's."""
    if release_fp == cohort_fp:
        raise IdenticalRelease(
            "the released genotypes are identical to the cohort's (the noise left or put every "
            "genotype back): nothing was released"
        )


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def manifest_problems(manifest, where: str = "manifest.json") -> list[str]:
    """Problems of a release manifest under issue 15: published frequencies with too few individuals, private
    input paths/hashes, exact kinship counts."""
    if not isinstance(manifest, dict):
        return []
    problems = []
    af = manifest.get("af_source")
    n = manifest.get("n_samples")
    if isinstance(af, dict) and af.get("kind") == "published" and _is_number(n) and n < MIN_PUBLISHED_SAMPLES:
        problems.append(
            f"{where}: {n} individual(s) restored to the cohort's own allele frequencies (published); "
            f"below {MIN_PUBLISHED_SAMPLES} the restoration releases most genotypes unchanged"
        )
    inputs = manifest.get("inputs")
    if isinstance(inputs, dict):
        for role in PRIVATE_INPUTS:
            entry = inputs.get(role)
            if not isinstance(entry, dict):
                continue
            leaked = [k for k in PRIVATE_INPUT_KEYS if k in entry]
            leaked += [
                k
                for k, v in entry.items()
                if k not in leaked and isinstance(v, str) and (v.startswith("/") or "/" in v or "\\" in v)
            ]
            if leaked:
                problems.append(
                    f"{where}: 'inputs.{role}' publishes {', '.join(leaked)} of the private {role} "
                    "file (they belong in the owner's ledger)"
                )
    rel = manifest.get("relatives")
    if isinstance(rel, dict):
        counts = [k for k, v in rel.items() if k not in KINSHIP_PUBLIC_KEYS and (_is_number(v) or isinstance(v, list))]
        if counts:
            problems.append(
                f"{where}: 'relatives' holds exact kinship counts of the cohort ({', '.join(counts)}); "
                "they belong in the owner's ledger"
            )
    return problems


def ledger_problems(
    ledger, directory: Path, data_fp: str | None, release_sha256: str | None, manifest
) -> tuple[list[str], list[str]]:
    """Owner mode of check-release: the release against every ledger row. (problems, warnings).

    - the released genotypes (``data_fp``, their fingerprint) equal a cohort in the ledger (its fingerprint, or
      its fingerprint at the released sites);
    - the release file (``release_sha256``) is byte-identical to a cohort file in the ledger;
    - the ledger row of this directory recorded another release digest (the data was replaced) or another
      checksum of the directory (a warning: retention.json or a README may have been added since).
    """
    from genoshare.privacy.ledger import release_checksum

    problems, warnings = [], []
    try:
        entries = ledger.releases()
    except GenoshareError as e:
        return [f"ledger: {e}"], []
    here = str(Path(directory).absolute())
    for e in entries:
        det = e.details or {}
        cohort = det.get("cohort") or {}
        cohort_fps = {e.fingerprint, det.get("cohort_sites_fingerprint")} - {None}
        if data_fp is not None and data_fp in cohort_fps:
            problems.append(
                f"the released genotypes are identical to the cohort of ledger release {e.id} "
                f"({e.fingerprint[:12]}): this directory holds the original genotypes"
            )
        if release_sha256 is not None and cohort.get("sha256") == release_sha256:
            problems.append(f"the release file is byte-identical to the cohort file of ledger release {e.id}")
        if e.output_dir == here and e.status == "recorded":
            recorded = det.get(RELEASE_DIGEST)
            if data_fp is not None and recorded and recorded != data_fp:
                problems.append(
                    f"the released genotypes differ from what ledger release {e.id} recorded for this "
                    "directory (they were replaced after the release)"
                )
            if e.output_checksum and e.output_checksum != release_checksum(directory):
                warnings.append(
                    f"the directory changed since ledger release {e.id} (its checksum differs; "
                    "fine if only retention.json or a README was added)"
                )
    return list(dict.fromkeys(problems)), list(dict.fromkeys(warnings))
