"""``genoshare check-release DIR``: is this directory safe to hand out?

A release passes only if nothing in it can undo or bypass the noise and nothing reveals more about the cohort than
the release itself: no seed or key, no noise, no original genotypes, no statistics of the original cohort that were
not asked for, no file or directory that others could modify, and no symlink out of the directory.

What may be in a release directory
----------------------------------
``manifest.json`` (required); the release itself, ``release.csv.gz`` and/or ``release.vcz``; ``frequencies.tsv``
(the release's own allele frequencies); exports ``release.bed/.bim/.fam``, ``release.vcf.gz`` with
``release.vcf.gz.tbi``; ``phenotypes.tsv`` only when the manifest's ``privacy.phenotype`` stage lists columns;
``retention.json`` (the owner's expected-retention table); ``README``/``LICENSE`` text (optionally
``.md``/``.txt``/``.rst``). Anything else, hidden files included, is a problem.

``release.vcz`` may hold only the arrays genoshare writes plus the VCF Zarr header tables: call_genotype,
call_genotype_mask, call_genotype_phased, sample_id, region_index, variant_position, variant_contig,
variant_allele, variant_id, variant_id_mask, variant_length, contig_id, contig_length, filter_id,
filter_description; array attributes ``_ARRAY_DIMENSIONS`` and ``description``; root attributes
``vcf_zarr_version``, ``source`` and ``genoshare_manifest``; and, inside every array, only its metadata and chunk
files that lie on the array's chunk grid. Decision: this is an explicit list, not "variant_*": other per-site
arrays of a VCF Zarr store (variant_AC, variant_AF, variant_DP, variant_quality, variant_filter... from the
original's INFO/QUAL/FILTER) are statistics of the original cohort, and call_* arrays other than the three above
(call_DS, call_GQ...) are original per-genotype data. An array added to the release format must be added here.

Manifest rules (manifest.json, the store's ``genoshare_manifest``, and retention.json)
-------------------------------------------------------------------------------------
Key names are split into words (``master_key`` -> master, key):

- secret words (seed, key, master, secret, password, passphrase, nonce, iv, keystream, prng, rng): a problem
  unless the value is a boolean or null (``seed_given: true`` states a fact, it reveals nothing);
- original, unperturbed, plaintext, cleartext, private: statistics of the original cohort, always a problem;
- genotype(s), dosage(s), calls, haplotype(s), raw holding non-scalar values: genotype data, a problem;
- noise holding anything but scalars (the ``noise`` summary of flip probabilities is fine): a problem;
- per-SNP allele frequencies or counts (af, maf, freq..., count...) as lists of more than 64 numbers: allowed when
  ``af_source.kind`` is ``published`` (the released frequencies equal the cohort's own by design and the manifest
  says the guarantee is conditional on them being public), a problem otherwise;
- kinship, relatives, related, relatedness, king holding lists (pairs, groups, ids): who is related to whom in the
  cohort is a private statistic, a problem; so are exact kinship counts in ``relatives`` (related_pairs, groups,
  largest_group: statistics of the cohort outside the accounting, kept in the owner's ledger);
- ``inputs.cohort`` / ``inputs.phenotypes`` with a path or a SHA-256 of the private file (its base name and format
  are fine; the path and hash are kept in the owner's ledger), and ``af_source.kind: published`` with fewer than
  ``MIN_PUBLISHED_SAMPLES`` (20) individuals (the restoration would release most genotypes unchanged; see
  genoshare.privacy.release_safety);
- per-column flip probabilities / thresholds (keys thresholds, flip_probabilities, p, p_j, noise_rates,
  flip_rates). Decision: allowed with a warning. They are a function of the public panel and epsilon only, the
  noise distribution is public by design (Kerckhoffs) and they do not help undo the noise, whose randomness is
  the secret key; they are simply not needed (the manifest's ``noise`` summary and ``epsilon_xor`` suffice);
- per-SNP frequencies inside ``af_source`` (the target frequencies of a public or DP source): allowed;
- accounting tables (keys with the words epsilon, delta, eps, curve, grid, sweep, pld, retention): allowed, they
  are functions of the public noise rates;
- any other list of more than 64 numbers (per-SNP or per-individual values): a problem;
- strings of >= 32 hex digits or >= 43 base64 characters, and integers >= 2^64, look like key material: a problem,
  except under checksum keys (sha256, sha1, md5, checksum, digest, fingerprint, sites_digest). A checksum of an
  input file identifies it; it reveals nothing about the genotypes that the release does not.

Data checks (``verify_data``, default on; the CLI's ``--quick`` skips them)
--------------------------------------------------------------------------
A file with an allowed name could still hold the wrong thing (e.g. the original cohort saved as release.csv.gz
next to release.vcz). So every export is compared genotype by genotype with the release (release.vcz, else
release.csv.gz), read one variant chunk at a time, and frequencies.tsv must equal the allele counts of the
release. The manifest's ``release_digest`` (the cohort-fingerprint encoding of the released genotypes, computed
blockwise at release time) is recomputed from the data: a release whose genotypes were replaced, e.g. by the
original cohort, fails, and so does a manifest without one.

Owner mode: when the owner's ledger exists (``--private-dir``, ``$GENOSHARE_PRIVATE_DIR``, ...; see
genoshare.privacy.ledger), the release is also compared with every ledger row: it fails if its genotypes have the
fingerprint of a recorded cohort (whole, or at the released sites), if release.csv.gz is byte-identical to a
recorded cohort file, or if the row of this directory recorded another release digest; a directory checksum that
differs from the row's is a warning (retention.json or a README may have been added).

Phenotypes: ``phenotypes.tsv`` must hold exactly ``sample_id`` and the columns the ``privacy.phenotype`` stage lists
(randomized and in the clear), the release's individuals in its order, and only binary codes (0/1 or 1/2, missing
NA/-9/empty) in randomized columns. A listed column without the file is a problem too. ``release.fam`` column 6
may carry phenotypes only if the manifest declares a phenotype release, and then only the released values of the
column its ``phenotypes.plink_fam.column`` names (else -9 everywhere).

A release made with ``--seed`` (``reproducible_test_release: true``) passes with the warning
"reproducible test release: not for sharing".
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genoshare.errors import InputError

__all__ = ["Report", "check_release", "check_manifest", "ALLOWED_FILES", "ALLOWED_ARRAYS", "TEST_RELEASE_WARNING"]

TEST_RELEASE_WARNING = (
    "reproducible test release: not for sharing (made with --seed: anyone with the seed can regenerate the noise)"
)
MANIFEST = "manifest.json"
RELEASE_CSV = "release.csv.gz"
RELEASE_VCZ = "release.vcz"
FREQ = "frequencies.tsv"
PHENO = "phenotypes.tsv"
ALLOWED_FILES = frozenset(
    {
        MANIFEST,
        RELEASE_CSV,
        FREQ,
        PHENO,
        "release.bed",
        "release.bim",
        "release.fam",
        "release.vcf.gz",
        "release.vcf.gz.tbi",
        "retention.json",
    }
)
ALLOWED_DIRS = frozenset({RELEASE_VCZ})
TEXT_FILE = re.compile(r"^(README|LICENSE|LICENCE|COPYING|NOTICE)(\.(md|txt|rst))?$", re.IGNORECASE)
TEXT_MAX_BYTES = 1 << 20
ALLOWED_ARRAYS = frozenset(
    {
        "call_genotype",
        "call_genotype_mask",
        "call_genotype_phased",
        "sample_id",
        "region_index",
        "variant_position",
        "variant_contig",
        "variant_allele",
        "variant_id",
        "variant_id_mask",
        "variant_length",
        "contig_id",
        "contig_length",
        "filter_id",
        "filter_description",
    }
)
ROOT_ATTRS = frozenset({"vcf_zarr_version", "source", "genoshare_manifest"})
ARRAY_ATTRS = frozenset({"_ARRAY_DIMENSIONS", "description"})
ZARR_META = frozenset({".zgroup", ".zattrs", ".zmetadata", "zarr.json"})
ARRAY_META = frozenset({".zarray", ".zattrs", "zarr.json"})
FREQ_COLUMNS = ("id", "contig", "position", "ref", "alt", "alt_count", "n_called", "af")
FAM_MISSING = frozenset({"-9", "0", "NA", ""})
PHENO_MISSING = frozenset({"-9", "NA", ""})
VCF_META_KEYS = frozenset({"fileformat", "source", "FILTER", "FORMAT", "contig", "reference", "assembly", "ALT"})

SECRET_WORDS = frozenset(
    {
        "seed",
        "seeds",
        "key",
        "keys",
        "master",
        "secret",
        "secrets",
        "password",
        "passphrase",
        "nonce",
        "iv",
        "keystream",
        "prng",
        "rng",
    }
)
ORIGINAL_WORDS = frozenset({"original", "unperturbed", "plaintext", "cleartext", "private"})
DATA_WORDS = frozenset({"genotype", "genotypes", "dosage", "dosages", "calls", "haplotype", "haplotypes", "raw"})
FREQ_WORDS = frozenset({"af", "afs", "maf", "freq", "freqs", "frequency", "frequencies", "count", "counts"})
KINSHIP_WORDS = frozenset({"kinship", "relatives", "related", "relatedness", "king"})
PUBLIC_RATE_KEYS = frozenset({"thresholds", "flip_probabilities", "p", "p_j", "noise_rates", "flip_rates"})
TABLE_WORDS = frozenset(
    {"epsilon", "epsilons", "eps", "delta", "deltas", "curve", "grid", "sweep", "pld", "retention", "timings"}
)
CHECKSUM_KEYS = frozenset(
    {
        "sha256",
        "sha1",
        "md5",
        "checksum",
        "digest",
        "fingerprint",
        "sites_digest",
        "sha256sum",
        "output_checksum",
        "release_digest",
    }
)
LIST_LIMIT = 64
MAX_LISTED = 10  # paths named per kind of problem before "... and K more"

_HEX = re.compile(r"^(0x)?[0-9a-fA-F]{32,}$")
_B64 = re.compile(r"^[A-Za-z0-9+_\-]{43,}={0,2}$")
_HEX_IN_TEXT = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64,}(?![0-9a-fA-F])")


@dataclass
class Report:
    ok: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return (
            ["PASS" if self.ok else "FAIL"]
            + [f"problem: {p}" for p in self.problems]
            + [f"warning: {w}" for w in self.warnings]
        )

    def to_dict(self) -> dict:
        return {"ok": self.ok, "problems": list(self.problems), "warnings": list(self.warnings)}


class _Collector:
    def __init__(self):
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self._grouped: dict[str, list[str]] = {}

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def grouped(self, kind: str, path: str) -> None:
        """Many paths with the same problem (e.g. every chunk of a store): name the first few, count the rest."""
        self._grouped.setdefault(kind, []).append(path)

    def finish(self) -> Report:
        for kind, paths in self._grouped.items():
            shown = ", ".join(paths[:MAX_LISTED])
            more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
            self.problem(f"{kind}: {shown}{more}")
        return Report(ok=not self.problems, problems=self.problems, warnings=self.warnings)


# ------------------------------------------------------------------------------------------------------------------
# manifest-like JSON


def _words(key: str) -> set[str]:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", str(key)).lower()
    return {w for w in re.split(r"[^a-z0-9]+", snake) if w}


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float)) or (isinstance(v, str) and len(v) <= 200)


def _all_scalar(v) -> bool:
    if isinstance(v, dict):
        return all(_all_scalar(x) for x in v.values())
    if isinstance(v, list):
        return False
    return _is_scalar(v)


def _has_list(v) -> bool:
    if isinstance(v, dict):
        return any(_has_list(x) for x in v.values())
    return isinstance(v, list)


def _numbers(v) -> int:
    """How many numbers a (nested) list holds."""
    if isinstance(v, list):
        return sum(_numbers(x) for x in v)
    return int(isinstance(v, (int, float)) and not isinstance(v, bool))


def _string_problem(s: str) -> bool:
    t = s.strip()
    return bool(
        _HEX.match(t) or (_B64.match(t) and re.search(r"\d", t) and re.search(r"[A-Z]", t) and re.search(r"[a-z]", t))
    )


def check_manifest(
    obj, where: str = MANIFEST, af_kind: str | None = None, tables: bool = False, _out: _Collector | None = None
) -> tuple[list[str], list[str]]:
    """Apply the manifest rules (module docstring) to a JSON object; returns (problems, warnings).
    ``tables``: the object is a table (retention.json), so long numeric lists are not a problem by themselves."""
    out = _out or _Collector()
    if af_kind is None and isinstance(obj, dict) and isinstance(obj.get("af_source"), dict):
        af_kind = obj["af_source"].get("kind")

    def walk(v, path: str, key: str | None, noise: bool = False):
        words = _words(key) if key is not None else set()
        if key is not None:
            if words & SECRET_WORDS and not (v is None or isinstance(v, bool)):
                out.problem(
                    f"{where}: '{path}' holds secret material (a seed or key lets anyone regenerate "
                    "and remove the noise)"
                )
                return
            if words & ORIGINAL_WORDS:
                out.problem(f"{where}: '{path}' holds data or statistics of the original cohort")
                return
            if words & DATA_WORDS and not _all_scalar(v):
                out.problem(f"{where}: '{path}' holds genotype data")
                return
            if words & KINSHIP_WORDS and _has_list(v):
                out.problem(
                    f"{where}: '{path}' lists related individuals of the cohort (who is related to whom "
                    "is a private statistic; a summary such as the largest group size is enough)"
                )
                return
            if key.lower() in PUBLIC_RATE_KEYS and not _all_scalar(v):
                out.warn(
                    f"{where}: '{path}' lists per-column flip probabilities: public (panel + epsilon), "
                    "harmless, but not needed in a release"
                )
                return
            noise = noise or "noise" in words
            if words & FREQ_WORDS and isinstance(v, list) and _numbers(v) > LIST_LIMIT and not noise:
                if af_kind != "published" and not path.startswith("af_source."):
                    out.problem(
                        f"{where}: '{path}' lists per-SNP allele frequencies/counts of the cohort, but "
                        f"af_source is {af_kind or 'not published'} (they were not asked for)"
                    )
                return
        if noise and not _is_scalar(v) and not isinstance(v, dict):
            out.problem(f"{where}: '{path}' holds noise values (anyone could XOR them out)")
            return
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}.{k}" if path else str(k), str(k), noise)
            return
        if isinstance(v, list):
            if not tables and not (words & TABLE_WORDS) and _numbers(v) > LIST_LIMIT:
                out.problem(
                    f"{where}: '{path}' lists {_numbers(v)} values (per-SNP or per-individual data; a "
                    "manifest holds summaries only)"
                )
                return
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]", None, noise)
            return
        leaf = (key or "").lower()
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**64 and leaf not in CHECKSUM_KEYS:
            out.problem(f"{where}: '{path}' holds a {v.bit_length()}-bit number (looks like key material)")
        if isinstance(v, str) and leaf not in CHECKSUM_KEYS and _string_problem(v):
            out.problem(f"{where}: '{path}' holds a long hex/base64 string that looks like key material")

    walk(obj, "", None)
    if _out is None:
        rep = out.finish()
        return rep.problems, rep.warnings
    return out.problems, out.warnings


def _load_json(path: Path, out: _Collector, name: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        out.problem(f"{name}: not readable JSON ({' '.join(str(e).split())[:120]})")
        return None


# ------------------------------------------------------------------------------------------------------------------
# file system


def _rel(path: Path, root: Path) -> str:
    r = path.relative_to(root).as_posix()
    return r if r != "." else "."


def _walk_fs(root: Path, out: _Collector) -> None:
    """Permissions, symlinks and special files of everything under root (not following links)."""
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        entries = [d] if d == root else []
        entries += [d / x for x in dirnames] + [d / x for x in filenames]
        for p in entries:
            try:
                st = os.lstat(p)
            except OSError:
                continue
            rel = _rel(p, root)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(p)
                resolved = (p.parent / target).resolve()
                if not resolved.exists():
                    out.problem(f"{rel}: dangling symlink (-> {target})")
                elif resolved != real_root and real_root not in resolved.parents:
                    out.problem(f"{rel}: symlink pointing outside the release (-> {target})")
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                out.problem(f"{rel}: not a regular file or directory")
                continue
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o002:
                out.grouped("world-writable (anyone could replace the release)", f"{rel} ({mode:04o})")
            elif mode & 0o020:
                out.grouped("group-writable (others could replace the release)", f"{rel} ({mode:04o})")


# ------------------------------------------------------------------------------------------------------------------
# release.vcz


def _chunk_grid(meta: dict) -> tuple[list[int], str, str] | None:
    """(number of chunks per dimension, separator, key prefix) of a Zarr v2 .zarray or v3 zarr.json array."""
    try:
        if "zarr_format" in meta and meta["zarr_format"] == 3:
            shape = meta["shape"]
            chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
            enc = meta.get("chunk_key_encoding", {"name": "default"})
            sep = enc.get("configuration", {}).get("separator", "/" if enc.get("name") == "default" else ".")
            prefix = "c" + sep if enc.get("name", "default") == "default" else ""
        else:
            shape, chunks = meta["shape"], meta["chunks"]
            sep = meta.get("dimension_separator") or "."
            prefix = ""
        grid = [max(1, math.ceil(s / c)) if c else 1 for s, c in zip(shape, chunks)]
        return grid, sep, prefix
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def _check_array_dir(adir: Path, name: str, root: Path, out: _Collector) -> dict | None:
    """Metadata and chunk files of one array directory; returns its metadata (or None)."""
    meta = None
    for mname in (".zarray", "zarr.json"):
        if (adir / mname).is_file():
            meta = _load_json(adir / mname, out, _rel(adir / mname, root))
            break
    if meta is None:
        out.problem(f"{_rel(adir, root)}: array without Zarr metadata")
        return None
    if meta.get("node_type") == "group" or (adir / ".zgroup").exists():
        out.problem(f"{_rel(adir, root)}: a group where an array is expected")
        return None
    grid = _chunk_grid(meta)
    attrs = meta.get("attributes", {}) if "zarr_format" in meta and meta["zarr_format"] == 3 else {}
    if (adir / ".zattrs").is_file():
        attrs = _load_json(adir / ".zattrs", out, _rel(adir / ".zattrs", root)) or {}
    _check_attrs(attrs, ARRAY_ATTRS, f"{RELEASE_VCZ}/{name}", out)
    for dirpath, _dirs, files in os.walk(adir, followlinks=False):
        for f in files:
            p = Path(dirpath) / f
            key = p.relative_to(adir).as_posix()
            if key in ARRAY_META:
                continue
            if grid is None or not _on_grid(key, *grid):
                out.grouped(f"unexpected file inside {RELEASE_VCZ} (not a chunk of its array)", _rel(p, root))
    return meta


def _on_grid(key: str, grid: list[int], sep: str, prefix: str) -> bool:
    if prefix:
        if not key.startswith(prefix):
            return False
        key = key[len(prefix) :]
    parts = key.split(sep) if sep else [key]
    if sep == "." and "/" in key or sep == "/" and "." in key:
        return False
    if not grid:
        return parts == ["0"]
    if len(parts) != len(grid) or not all(p.isdigit() for p in parts):
        return False
    return all(int(p) < g for p, g in zip(parts, grid))


def _check_attrs(attrs, allowed, where: str, out: _Collector) -> None:
    if not isinstance(attrs, dict):
        out.problem(f"{where}: attributes are not a JSON object")
        return
    for k, v in attrs.items():
        if k == "genoshare_manifest":
            continue
        if k not in allowed:
            out.problem(f"{where}: unexpected attribute '{k}'")
        elif isinstance(v, str) and _string_problem(v):
            out.problem(f"{where}: attribute '{k}' looks like key material")


def _check_vcz(store: Path, root: Path, manifest, out: _Collector):
    """Structure and metadata of release.vcz; returns (n_variants, n_samples) of call_genotype or None."""
    if not store.is_dir() or store.is_symlink():
        out.problem(f"{RELEASE_VCZ}: expected a VCF Zarr directory store")
        return None
    root_attrs = {}
    if (store / ".zattrs").is_file():
        root_attrs = _load_json(store / ".zattrs", out, f"{RELEASE_VCZ}/.zattrs") or {}
    elif (store / "zarr.json").is_file():
        root_attrs = (_load_json(store / "zarr.json", out, f"{RELEASE_VCZ}/zarr.json") or {}).get("attributes", {})
    _check_attrs(root_attrs, ROOT_ATTRS, RELEASE_VCZ, out)
    gm = root_attrs.get("genoshare_manifest") if isinstance(root_attrs, dict) else None
    if gm is not None:
        check_manifest(gm, f"{RELEASE_VCZ} attribute genoshare_manifest", _out=out)
        from genoshare.privacy.release_safety import manifest_problems

        for p in manifest_problems(gm, f"{RELEASE_VCZ} attribute genoshare_manifest"):
            out.problem(p)
        if manifest is not None and gm != manifest:
            out.warn(f"{RELEASE_VCZ}: its genoshare_manifest attribute differs from manifest.json")
    shapes = {}
    for entry in sorted(store.iterdir()):
        name = entry.name
        if entry.is_symlink():
            if name not in ALLOWED_ARRAYS and name not in ZARR_META:
                out.problem(f"{RELEASE_VCZ}: unexpected link '{name}'")
            continue  # not followed; the file-system walk reports links leaving the release
        if entry.is_file() and name in ZARR_META:
            if name == ".zmetadata":
                _check_consolidated(entry, out)
            continue
        if entry.is_dir() and name in ALLOWED_ARRAYS:
            meta = _check_array_dir(entry, name, root, out)
            if meta is not None:
                shapes[name] = meta.get("shape")
            continue
        what = "array" if entry.is_dir() else "file"
        hint = ""
        if name.startswith("call_"):
            hint = " (per-genotype data other than the released calls)"
        elif name.startswith("variant_"):
            hint = " (per-site data of the original, e.g. INFO fields)"
        out.problem(f"{RELEASE_VCZ}: unexpected {what} '{name}'{hint}")
    gt = shapes.get("call_genotype")
    if not gt or len(gt) != 3:
        out.problem(f"{RELEASE_VCZ}: no call_genotype array (variants, samples, ploidy)")
        return None
    m, n = int(gt[0]), int(gt[1])
    if isinstance(manifest, dict):
        for key, val in (("n_variants", m), ("n_samples", n)):
            if key in manifest and manifest[key] != val:
                out.problem(f"{RELEASE_VCZ}: call_genotype has {val} {key[2:]} but the manifest says {manifest[key]}")
    return m, n


def _check_consolidated(path: Path, out: _Collector) -> None:
    meta = _load_json(path, out, f"{RELEASE_VCZ}/.zmetadata")
    if not isinstance(meta, dict):
        return
    for key, value in (meta.get("metadata") or {}).items():
        parts = key.split("/")
        if len(parts) == 1:
            if key == ".zattrs":
                _check_attrs(value, ROOT_ATTRS, f"{RELEASE_VCZ}/.zmetadata", out)
            continue
        if parts[0] not in ALLOWED_ARRAYS or len(parts) != 2:
            out.problem(f"{RELEASE_VCZ}/.zmetadata: unexpected entry '{key}'")
        elif parts[1] == ".zattrs":
            _check_attrs(value, ARRAY_ATTRS, f"{RELEASE_VCZ}/.zmetadata {parts[0]}", out)


# ------------------------------------------------------------------------------------------------------------------
# exports and data


class _Release:
    """The released genotypes, read in variant chunks: release.vcz if present, else release.csv.gz."""

    def __init__(self, root: Path, has_vcz: bool, out: _Collector):
        self.ok = False
        self.matrix = None
        try:
            if has_vcz:
                from genoshare.io.vcz import open_vcz

                self.info = open_vcz(root / RELEASE_VCZ)
                self.sample_ids = list(self.info.sample_ids)
                self.variant_ids = [str(v) for v in self.info.variant_id]
                self.alleles = self.info.variant_allele
                self.position = self.info.variant_position
                self.step = max(1, self.info.chunks[0])
                self._gt = self.info.open()["call_genotype"]
            else:
                from genoshare.io.csvmatrix import read_matrix

                self.matrix = read_matrix(root / RELEASE_CSV)
                self.sample_ids = self.matrix.sample_ids
                self.variant_ids = self.matrix.variant_ids
                self.alleles = self.position = None
                self.step = 4096
            self.ok = True
        except Exception as e:  # noqa: BLE001 - any unreadable release is a problem, reported in one line
            name = RELEASE_VCZ if has_vcz else RELEASE_CSV
            out.problem(f"{name}: cannot be read ({' '.join(str(e).split())[:160]})")

    @property
    def n_variants(self) -> int:
        return len(self.variant_ids)

    def chunks(self):
        for v0 in range(0, self.n_variants, self.step):
            v1 = min(self.n_variants, v0 + self.step)
            if self.matrix is not None:
                yield v0, self.matrix.genotypes[v0:v1]
            else:
                from genoshare.io.vcz import calls_to_dosage

                yield v0, calls_to_dosage(self._gt[v0:v1])


class _CsvExport:
    name = RELEASE_CSV

    def __init__(self, root: Path, rel: _Release, out: _Collector):
        from genoshare.io.csvmatrix import read_matrix

        self.out, self.failed = out, False
        try:
            self.m = read_matrix(root / RELEASE_CSV)
        except Exception as e:  # noqa: BLE001
            self.fail(f"cannot be read ({' '.join(str(e).split())[:160]})")
            return
        if self.m.sample_ids != rel.sample_ids or self.m.variant_ids != rel.variant_ids:
            self.fail("individual or SNP ids differ from release.vcz")

    def fail(self, text: str) -> None:
        if not self.failed:
            self.out.problem(f"{self.name}: {text}")
            self.failed = True

    def feed(self, v0: int, g: np.ndarray) -> None:
        if not self.failed and not np.array_equal(self.m.genotypes[v0 : v0 + g.shape[0]], g):
            self.fail("genotypes differ from release.vcz (it is not an export of this release)")

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


class _PlinkExport(_CsvExport):
    name = "release.bed"
    # PLINK 1 .bed two-bit codes with A1 = ALT: 00 hom A1 (2 ALT), 01 missing, 10 het, 11 hom A2 (0 ALT)
    _CODE = np.array([2, -1, 1, 0], dtype=np.int8)

    def __init__(self, root: Path, rel: _Release, out: _Collector, declared: bool, fam_pheno: list[str] | None):
        self.out, self.failed = out, False
        self.n = len(rel.sample_ids)
        self.bpv = (self.n + 3) // 4
        fam = self._table(root / "release.fam", 6, "release.fam")
        bim = self._table(root / "release.bim", 6, "release.bim")
        if fam is None or bim is None:
            self.failed = True
            return
        if [r[1] for r in fam] != rel.sample_ids:
            self.fail("release.fam individuals differ from the release")
        carried = [r[5] for r in fam]
        if not declared and any(v not in FAM_MISSING for v in carried):
            out.problem("release.fam carries phenotypes but the manifest declares no phenotype release")
        elif (
            declared
            and fam_pheno is not None
            and not all(a == b or (a in FAM_MISSING and b in FAM_MISSING) for a, b in zip(carried, fam_pheno))
        ):
            out.problem(
                "release.fam: column 6 differs from what the manifest assigns it (the released values of "
                "its phenotypes.plink_fam column, else -9)"
            )
        if [r[1] for r in bim] != rel.variant_ids:
            self.fail("release.bim SNPs differ from the release")
        elif rel.alleles is not None:
            a = rel.alleles
            if any(r[4] != a[j, 1] or r[5] != a[j, 0] for j, r in enumerate(bim)):
                self.fail("release.bim alleles differ from the release (expected A1 = ALT, A2 = REF)")
        try:
            self.fh = open(root / "release.bed", "rb")
        except OSError as e:
            self.fail(f"cannot be read ({e.strerror})")
            return
        if self.fh.read(3) != b"\x6c\x1b\x01":
            self.fail("not a variant-major PLINK 1 .bed file")
        size = (root / "release.bed").stat().st_size
        if size != 3 + self.bpv * len(rel.variant_ids):
            self.fail(f"size {size} bytes does not fit {len(rel.variant_ids)} SNPs x {self.n} individuals")

    def _table(self, path: Path, ncol: int, name: str):
        try:
            rows = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError) as e:
            self.out.problem(f"{name}: cannot be read ({e})")
            return None
        if any(len(r) != ncol for r in rows):
            self.out.problem(f"{name}: expected {ncol} columns on every line")
            return None
        return rows

    def feed(self, v0: int, g: np.ndarray) -> None:
        if self.failed:
            return
        k = g.shape[0]
        raw = np.frombuffer(self.fh.read(self.bpv * k), dtype=np.uint8)
        if raw.size != self.bpv * k:
            self.fail("truncated")
            return
        codes = np.stack([(raw >> s) & 3 for s in (0, 2, 4, 6)], axis=1).reshape(k, -1)[:, : self.n]
        if not np.array_equal(self._CODE[codes], np.where(g < 0, -1, g)):
            self.fail("genotypes differ from the release (it is not an export of this release)")

    def finish(self) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "fh", None):
            self.fh.close()


class _VcfExport(_CsvExport):
    name = "release.vcf.gz"

    def __init__(self, root: Path, rel: _Release, out: _Collector):
        self.out, self.failed = out, False
        self.rel = rel
        try:
            self.fh = gzip.open(root / "release.vcf.gz", "rb")
            header = self._header()
        except (OSError, EOFError) as e:
            self.fail(f"cannot be read ({e})")
            return
        if header is None:
            return
        if header[9:] != rel.sample_ids:
            self.fail("individuals differ from the release")

    def _header(self):
        for raw in self.fh:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("##"):
                key = line[2:].split("=", 1)[0]
                if key == "FORMAT" and "ID=GT," not in line:
                    self.out.problem(f"{self.name}: FORMAT field other than GT in the header ({line[:80]})")
                elif key == "INFO":
                    self.out.problem(f"{self.name}: INFO field in the header (per-site statistics: {line[:80]})")
                elif key not in VCF_META_KEYS:
                    self.out.problem(f"{self.name}: unexpected header line {line[:80]}")
                elif _HEX_IN_TEXT.search(line):
                    self.out.problem(f"{self.name}: header line with a long hex string (key material?)")
                continue
            if line.startswith("#CHROM"):
                return line.split("\t")
            break
        self.fail("no #CHROM header line")
        return None

    def feed(self, v0: int, g: np.ndarray) -> None:
        if self.failed:
            return
        for j in range(g.shape[0]):
            raw = self.fh.readline()
            if not raw:
                self.fail("fewer records than the release has SNPs")
                return
            fields = raw.rstrip(b"\r\n").split(b"\t", 9)  # the samples stay one blob
            if len(fields) < 10:
                self.fail("malformed record")
                return
            vid = fields[2].decode("utf-8", "replace")
            if vid != self.rel.variant_ids[v0 + j] and vid != ".":
                self.fail(f"record {v0 + j + 1} is {vid!r}, expected {self.rel.variant_ids[v0 + j]!r}")
                return
            if fields[8] != b"GT" or fields[7] != b".":
                self.fail(
                    f"record {v0 + j + 1} carries fields other than GT (INFO "
                    f"{fields[7][:30].decode('utf-8', 'replace')!r}, FORMAT "
                    f"{fields[8][:30].decode('utf-8', 'replace')!r})"
                )
                return
            got = self._dosage(fields[9], g.shape[1])
            if got is None:
                self.fail(f"record {v0 + j + 1} does not have {g.shape[1]} diploid calls")
                return
            if not np.array_equal(got, np.where(g[j] < 0, -1, g[j])):
                self.fail("genotypes differ from the release (it is not an export of this release)")
                return

    @staticmethod
    def _dosage(blob: bytes, n: int) -> np.ndarray | None:
        """ALT dosages of the sample columns of one record (-1 missing); None if it is not n diploid calls."""
        if len(blob) == 4 * n - 1:  # every call is "a/b" or "a|b" with one-character alleles: vectorised
            a = np.frombuffer(blob + b"\t", dtype=np.uint8).reshape(n, 4)
            if (a[:, 3] == ord("\t")).all() and np.isin(a[:, 1], (ord("/"), ord("|"))).all():
                miss = (a[:, 0] == ord(".")) | (a[:, 2] == ord("."))
                d = (a[:, 0] != ord("0")).astype(np.int8) + (a[:, 2] != ord("0"))
                d[miss] = -1
                return d
        calls = blob.split(b"\t")
        if len(calls) != n:
            return None
        out = np.empty(n, dtype=np.int8)
        for i, c in enumerate(calls):
            alleles = c.split(b":", 1)[0].replace(b"|", b"/").split(b"/")
            if any(x in (b".", b"") for x in alleles):
                out[i] = -1
            else:
                out[i] = sum(x != b"0" for x in alleles)
        return out

    def finish(self) -> None:
        if not self.failed and self.fh.readline().strip():
            self.fail("more records than the release has SNPs")
        self.close()

    def close(self) -> None:
        if getattr(self, "fh", None):
            self.fh.close()


class _FreqFile:
    name = FREQ

    def __init__(self, root: Path, rel: _Release, out: _Collector):
        self.out, self.failed = out, False
        import pandas as pd

        try:
            self.df = pd.read_csv(
                root / FREQ,
                sep="\t",
                dtype={"id": str, "contig": str, "ref": str, "alt": str},
                keep_default_na=False,
                na_values={"af": ["nan", "NaN", ""]},
            )
        except Exception as e:  # noqa: BLE001
            self.fail(f"cannot be read ({' '.join(str(e).split())[:120]})")
            return
        extra = [c for c in self.df.columns if c not in FREQ_COLUMNS]
        if extra:
            out.problem(
                f"{FREQ}: unexpected column(s) {', '.join(map(str, extra))} (only the release's own "
                f"frequencies belong here: {', '.join(FREQ_COLUMNS)})"
            )
        if list(self.df.get("id", [])) != rel.variant_ids:
            self.fail("SNP ids differ from the release")
        self.alt = np.zeros(rel.n_variants, dtype=np.int64)
        self.called = np.zeros(rel.n_variants, dtype=np.int64)

    fail = _CsvExport.fail
    close = _CsvExport.close

    def feed(self, v0: int, g: np.ndarray) -> None:
        if self.failed:
            return
        ok = g >= 0
        self.alt[v0 : v0 + g.shape[0]] = np.where(ok, g, 0).sum(axis=1)
        self.called[v0 : v0 + g.shape[0]] = ok.sum(axis=1)

    def finish(self) -> None:
        if self.failed:
            return
        df = self.df
        for col, want in (("alt_count", self.alt), ("n_called", self.called)):
            if col in df.columns and not np.array_equal(df[col].to_numpy(dtype=np.int64), want):
                self.fail(
                    f"column {col} differs from the released genotypes (statistics of something other than the release)"
                )
                return
        if "af" in df.columns:
            with np.errstate(invalid="ignore", divide="ignore"):
                want = np.where(self.called > 0, self.alt / (2.0 * self.called), np.nan)
            got = df["af"].to_numpy(dtype=np.float64)
            if not np.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True):
                self.fail(
                    "column af differs from the released genotypes (statistics of something other than the release)"
                )


def _phenotype_columns(manifest) -> tuple[list[str], list[str]]:
    """(randomized, in the clear) columns of the manifest's privacy.phenotype stage."""
    priv = manifest.get("privacy") if isinstance(manifest, dict) else None
    stage = priv.get("phenotype") if isinstance(priv, dict) else None
    if not isinstance(stage, dict):
        return [], []
    rr = [str(c.get("name")) for c in stage.get("randomized") or [] if isinstance(c, dict)]
    clear = [str(c) for c in stage.get("in_clear") or []]
    return rr, clear


def _check_phenotypes(path: Path, manifest: dict, sample_ids: list[str], out: _Collector) -> list[str] | None:
    """phenotypes.tsv against the manifest and the release; returns the expected .fam column 6 (module
    docstring)."""
    from genoshare.io.phenotypes import CODINGS, SAMPLE_COLUMN, plink_codes

    rr, clear = _phenotype_columns(manifest)
    listed = rr + clear
    try:
        rows = [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        out.problem(f"{PHENO}: cannot be read ({e})")
        return None
    if not rows or rows[0][0] != SAMPLE_COLUMN:
        out.problem(f"{PHENO}: the first column must be {SAMPLE_COLUMN}")
        return None
    header = rows[0][1:]
    unlisted = [c for c in header if c not in listed]
    if unlisted:
        out.problem(
            f"{PHENO}: column(s) {', '.join(map(repr, unlisted))} not listed by the manifest's "
            "privacy.phenotype stage (only listed columns may be released)"
        )
    absent = [c for c in listed if c not in header]
    if absent:
        out.problem(f"{PHENO}: listed column(s) {', '.join(map(repr, absent))} missing")
    if len(set(header)) != len(header):
        out.problem(f"{PHENO}: a column appears twice")
    if any(len(r) != len(rows[0]) for r in rows[1:]):
        out.problem(f"{PHENO}: every line must have {len(rows[0])} tab-separated fields")
        return None
    if [r[0] for r in rows[1:]] != list(sample_ids):
        out.problem(f"{PHENO}: sample ids differ from the release (its individuals, in its order)")
        return None
    col = {c: [r[i + 1] for r in rows[1:]] for i, c in enumerate(header)}
    for c in rr:
        observed = {v for v in col.get(c, []) if v not in PHENO_MISSING}
        if not (observed <= {"0", "1"} or observed <= {"1", "2"}):
            bad = sorted(observed - {"0", "1", "2"}) or sorted(observed)
            out.problem(
                f"{PHENO}: column {c!r} is released by randomized response but is not binary (value {bad[0][:40]!r})"
            )
    ph = manifest.get("phenotypes")
    fam = ph.get("plink_fam") if isinstance(ph, dict) else None
    name = fam.get("column") if isinstance(fam, dict) else None
    if name is None:
        return ["-9"] * len(sample_ids)
    coding = next(
        (c.get("coding") for c in ph.get("columns") or [] if isinstance(c, dict) and c.get("name") == name), None
    )
    coding = {text: key for key, text in CODINGS.items()}.get(coding)
    if name not in col or coding is None:
        out.problem(f"{MANIFEST}: phenotypes.plink_fam names {str(name)[:40]!r}, which is not a released binary column")
        return None
    return [str(v) for v in plink_codes(col[name], coding)]


def _check_text(path: Path, out: _Collector) -> None:
    try:
        data = path.read_bytes()
    except OSError as e:
        out.problem(f"{path.name}: cannot be read ({e.strerror})")
        return
    if len(data) > TEXT_MAX_BYTES:
        out.problem(f"{path.name}: {len(data)} bytes; a README/LICENSE is short text")
    if b"\0" in data:
        out.problem(f"{path.name}: binary data in a text file")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.problem(f"{path.name}: not UTF-8 text")
        return
    if _HEX_IN_TEXT.search(text):
        out.problem(f"{path.name}: holds a long hex string (key material?)")


# ------------------------------------------------------------------------------------------------------------------


def _owner_ledger(ledger):
    """The owner's ledger for check-release: ``"auto"`` the default private directory's if it exists, a path (a
    private directory), a Ledger, or None (no owner checks)."""
    if ledger is None or not isinstance(ledger, (str, Path)):
        return ledger
    from genoshare.errors import GenoshareError
    from genoshare.privacy.ledger import LEDGER_FILE, Ledger, private_dir

    try:
        path = private_dir(None if ledger == "auto" else ledger, create=False) / LEDGER_FILE
    except GenoshareError:
        return None
    return Ledger(path) if path.is_file() else None


def check_release(directory, verify_data: bool = True, ledger="auto") -> Report:
    """Check a release directory (module docstring). Raises InputError if it is not a directory.
    ``ledger``: owner mode against the owner's ledger (``"auto"``: if one exists; see :func:`_owner_ledger`)."""
    from genoshare.privacy.release_safety import ledger_problems, manifest_problems

    root = Path(directory)
    if not root.exists():
        raise InputError(root, "no such directory")
    if not root.is_dir():
        raise InputError(root, "not a directory")
    out = _Collector()
    _walk_fs(root, out)

    names = sorted(p.name for p in root.iterdir())
    for name in names:
        p = root / name
        if p.is_symlink():
            if name not in ALLOWED_FILES:
                out.problem(f"{name}: unexpected file (not part of a release)")
            continue
        if p.is_dir():
            if name not in ALLOWED_DIRS:
                out.problem(f"{name}/: unexpected directory (not part of a release)")
        elif name not in ALLOWED_FILES and not TEXT_FILE.match(name):
            out.problem(f"{name}: unexpected file (not part of a release)")

    manifest = None
    af_kind = None
    if MANIFEST not in names:
        out.problem("no manifest.json")
    else:
        manifest = _load_json(root / MANIFEST, out, MANIFEST)
        if manifest is not None and not isinstance(manifest, dict):
            out.problem(f"{MANIFEST}: not a JSON object")
            manifest = None
        if manifest is not None:
            check_manifest(manifest, MANIFEST, _out=out)
            for p in manifest_problems(manifest, MANIFEST):
                out.problem(p)
            af = manifest.get("af_source")
            af_kind = af.get("kind") if isinstance(af, dict) else None
            if manifest.get("reproducible_test_release"):
                out.warn(TEST_RELEASE_WARNING)
            rf = manifest.get("release_file")
            if rf is not None and rf not in names:
                out.problem(f"{MANIFEST}: release_file {rf!r} is missing")
    declared = any(_phenotype_columns(manifest))
    if PHENO in names and not declared:
        out.problem(f"{PHENO}: phenotypes the manifest does not declare (its privacy.phenotype stage lists no column)")
    if declared and PHENO not in names:
        out.problem(f"{MANIFEST}: lists phenotype columns but {PHENO} is missing")
    if "retention.json" in names:
        ret = _load_json(root / "retention.json", out, "retention.json")
        if ret is not None:
            check_manifest(ret, "retention.json", af_kind=af_kind, tables=True, _out=out)
    for name in names:
        if TEXT_FILE.match(name) and (root / name).is_file():
            _check_text(root / name, out)

    has_vcz = RELEASE_VCZ in names and (root / RELEASE_VCZ).is_dir() and not (root / RELEASE_VCZ).is_symlink()
    has_csv = RELEASE_CSV in names and (root / RELEASE_CSV).is_file()
    if not (has_vcz or has_csv):
        out.problem(f"no released genotypes ({RELEASE_CSV} or {RELEASE_VCZ})")
    if has_vcz:
        _check_vcz(root / RELEASE_VCZ, root, manifest, out)
    plink = [n for n in ("release.bed", "release.bim", "release.fam") if n in names]
    if plink and len(plink) != 3:
        out.problem(f"incomplete PLINK export: {', '.join(plink)} without the rest of .bed/.bim/.fam")
    if ("release.vcf.gz.tbi" in names) != ("release.vcf.gz" in names):
        out.problem("release.vcf.gz and release.vcf.gz.tbi come together")

    data_fp = _verify_data(root, names, has_vcz, has_csv, manifest, out, verify_data)
    owner = _owner_ledger(ledger)
    if owner is not None and (has_vcz or has_csv):
        from genoshare.manifest import sha256_path

        csv_sha = sha256_path(root / RELEASE_CSV) if has_csv else None
        try:
            problems, warnings = ledger_problems(owner, root, data_fp, csv_sha, manifest)
        finally:
            owner.close()
        for p in problems:
            out.problem(p)
        for w in warnings:
            out.warn(w)
    return out.finish()


def _verify_data(root: Path, names, has_vcz: bool, has_csv: bool, manifest, out: _Collector, full: bool) -> str | None:
    """The data checks; returns the fingerprint of the released genotypes when they were read (full mode)."""
    if not (has_vcz or has_csv):
        return None
    beside = (PHENO, "release.vcf.gz", "release.bed", "release.bim", "release.fam")
    if has_vcz and not full and not any(n in names for n in beside):
        return None  # nothing to compare with release.vcz (its layout is checked by _check_vcz)
    rel = _Release(root, has_vcz, out)
    if not rel.ok:
        return None
    if isinstance(manifest, dict) and not has_vcz:
        for key, val in (("n_variants", rel.n_variants), ("n_samples", len(rel.sample_ids))):
            if key in manifest and manifest[key] != val:
                out.problem(f"{RELEASE_CSV}: holds {val} {key[2:]} but the manifest says {manifest[key]}")
    consumers = []
    declared = any(_phenotype_columns(manifest))
    fam_pheno = None  # what .fam column 6 must hold; None: not checked (no phenotypes.tsv, or it failed)
    if PHENO in names and declared:
        fam_pheno = _check_phenotypes(root / PHENO, manifest, rel.sample_ids, out)
    if "release.vcf.gz" in names:
        consumers.append(_VcfExport(root, rel, out))
    if all(n in names for n in ("release.bed", "release.bim", "release.fam")):
        consumers.append(_PlinkExport(root, rel, out, declared, fam_pheno))
    if not full:  # headers, ids and sizes only
        for c in consumers:
            c.close()
        return None
    digest = _ReleaseDigest(rel, manifest, out)
    consumers.append(digest)
    if FREQ in names:
        consumers.append(_FreqFile(root, rel, out))
    if has_vcz and has_csv:
        consumers.append(_CsvExport(root, rel, out))
    for c in consumers:
        if c.failed:
            c.close()
    consumers = [c for c in consumers if not c.failed]
    for v0, g in rel.chunks():
        for c in consumers:
            c.feed(v0, g)
    for c in consumers:
        c.finish()
    return digest.fingerprint


class _ReleaseDigest:
    """Recompute the released genotypes' fingerprint and compare it with the manifest's release_digest."""

    name = KEY = "release_digest"

    def __init__(self, rel: _Release, manifest, out: _Collector):
        from genoshare.kernels.fingerprint import LANES

        self.rel, self.out, self.failed = rel, out, False
        self.expected = manifest.get(self.KEY) if isinstance(manifest, dict) else None
        self.digests = np.zeros((rel.n_variants, LANES), dtype=np.uint64)
        self.fingerprint: str | None = None

    def feed(self, v0: int, g: np.ndarray) -> None:
        from genoshare.kernels.fingerprint import row_digests

        self.digests[v0 : v0 + g.shape[0]] = row_digests(g)

    def finish(self) -> None:
        from genoshare.privacy.ledger import fingerprint_from_digests

        self.fingerprint = fingerprint_from_digests(self.rel.sample_ids, self.rel.variant_ids, self.digests)
        what = RELEASE_VCZ if self.rel.matrix is None else RELEASE_CSV
        if not isinstance(self.expected, str):
            self.out.problem(
                f"{MANIFEST}: no release_digest, so the released genotypes cannot be checked against "
                "what was released (re-release with this genoshare)"
            )
        elif self.expected.lower() != self.fingerprint:
            self.out.problem(
                f"{what}: the released genotypes do not match the manifest's release_digest (they were "
                "replaced or modified after the release)"
            )

    def close(self) -> None:
        pass
