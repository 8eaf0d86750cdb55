"""Per-chromosome inputs: a path pattern holding ``{chrom}`` names one cohort split into several files.

``cohort.chr{chrom}.vcf.gz`` (VCF/BCF), ``plink/chr{chrom}`` or ``plink/chr{chrom}.bed`` (PLINK 1 filesets) or
``stores/chr{chrom}.vcz`` (VCF Zarr): every existing file the pattern matches is one part (the ``{chrom}`` value
holds no '.' or '/'), in natural order of that value (``2`` before ``10``, ``X`` after ``22``). The parts form
ONE cohort (one store, one
calibration, one epsilon, one ledger row, one manifest), so they must all have the same format and the same
sample ids in the same order. Quote the pattern on the command line so that the shell leaves the braces alone.

Refused (one-line :class:`~genoshare.errors.InputError`): a pattern matching nothing (naming the pattern), parts
of different formats, CSV matrices, numeric chromosomes with gaps (e.g. 1, 2, 4: naming the missing one), and a
part whose sample ids differ from the first part's (naming that file).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from genoshare.errors import InputError

__all__ = [
    "PLACEHOLDER",
    "Parts",
    "is_pattern",
    "resolve_parts",
    "sample_ids_of",
    "check_same_samples",
    "sha256_parts",
    "natural_key",
    "manifest_parts",
]

PLACEHOLDER = "{chrom}"
_PLINK_EXT = (".bed", ".bim", ".fam")


def is_pattern(path) -> bool:
    """True for a path holding the ``{chrom}`` placeholder."""
    return path is not None and PLACEHOLDER in str(path)


def natural_key(value: str):
    """Sort key: digit runs compare as numbers and before letters ('2' < '10' < '22' < 'X' < 'Y')."""
    v = value.lower()
    v = v[3:] if v.startswith("chr") and len(v) > 3 else v
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", v))


@dataclass(frozen=True)
class Parts:
    pattern: Path
    files: tuple[Path, ...]  # for PLINK: the .bed file of each fileset
    chroms: tuple[str, ...]
    fmt: str  # 'vcf', 'plink' or 'vcz'

    def __len__(self) -> int:
        return len(self.files)


def _matches(pattern: Path) -> list[tuple[str, Path]]:
    parent, name = pattern.parent, pattern.name
    if PLACEHOLDER in str(parent):
        raise InputError(pattern, f"{PLACEHOLDER} may only appear in the file name, not in the directory")
    if not parent.is_dir():
        return []
    head, _, tail = name.partition(PLACEHOLDER)
    rx = re.compile(
        re.escape(head) + r"(?P<chrom>[^/.]+)" + re.escape(tail).replace(re.escape(PLACEHOLDER), r"(?P=chrom)") + r"\Z"
    )
    plink_prefix = not name.lower().endswith(_PLINK_EXT)
    found: dict[str, Path] = {}
    for p in parent.iterdir():
        m = rx.match(p.name)
        if m and (p.is_file() or p.is_dir()):
            found.setdefault(m["chrom"], p)
        elif plink_prefix and p.name.lower().endswith(".bed"):
            m = rx.match(p.name[:-4])
            if m and p.is_file():
                found.setdefault(m["chrom"], p)
    return sorted(found.items(), key=lambda kv: natural_key(kv[0]))


def _format(path: Path) -> str:
    from genoshare.io.ingest import detect_format

    return detect_format(path)


def resolve_parts(pattern) -> Parts:
    """The parts of ``pattern`` in natural ``{chrom}`` order; InputError for the refusals above."""
    pattern = Path(str(pattern))
    hits = _matches(pattern)
    if not hits:
        raise InputError(pattern, f"the {PLACEHOLDER} pattern matches no file")
    chroms = [c for c, _ in hits]
    files = [p for _, p in hits]
    fmts = [_format(p) for p in files]
    if "csv" in fmts:
        raise InputError(
            files[fmts.index("csv")],
            "a CSV matrix cannot be one part of a per-chromosome cohort "
            "(it holds no contigs); use VCF, PLINK or VCF Zarr parts",
        )
    odd = next((i for i, f in enumerate(fmts) if f != fmts[0]), None)
    if odd is not None:
        raise InputError(
            files[odd],
            f"is {fmts[odd]} but {files[0].name} is {fmts[0]}: all parts of {pattern.name} must have one format",
        )
    nums = sorted(
        int(c[3:] if c.lower().startswith("chr") else c)
        for c in chroms
        if (c[3:] if c.lower().startswith("chr") else c).isdigit()
    )
    if nums:
        missing = sorted(set(range(nums[0], nums[-1] + 1)) - set(nums))
        if missing:
            gap = pattern.name.replace(PLACEHOLDER, str(missing[0]))
            raise InputError(
                pattern, f"leaves a gap: no part for chromosome {missing[0]} ({gap}) between {nums[0]} and {nums[-1]}"
            )
    if fmts[0] == "plink":
        files = [p if p.name.lower().endswith(".bed") else p.with_name(p.name + ".bed") for p in files]
    return Parts(pattern, tuple(files), tuple(chroms), fmts[0])


def sample_ids_of(path: Path, fmt: str) -> list[str]:
    """Sample ids of one part, as the ingest will read them (PLINK: the .fam IIDs)."""
    if fmt == "vcf":
        import cyvcf2

        vcf = cyvcf2.VCF(str(path), lazy=True)
        try:
            return list(vcf.samples)
        finally:
            vcf.close()
    if fmt == "plink":
        fam = Path(path).with_suffix(".fam")
        return [line.split()[1] for line in fam.read_text().splitlines() if line.strip()]
    from genoshare.io.vcz import open_vcz

    return list(open_vcz(path).sample_ids)


def check_same_samples(parts: Parts) -> list[str]:
    """The common sample ids; InputError naming the first part that disagrees with the first part."""
    first = sample_ids_of(parts.files[0], parts.fmt)
    for f in parts.files[1:]:
        ids = sample_ids_of(f, parts.fmt)
        if ids == first:
            continue
        if len(ids) != len(first):
            why = f"{len(ids)} samples, {parts.files[0].name} has {len(first)}"
        elif set(ids) == set(first):
            why = "the same samples in a different order"
        else:
            k = next(i for i, (a, b) in enumerate(zip(ids, first)) if a != b)
            why = f"sample {k + 1} is {ids[k]!r} where {parts.files[0].name} has {first[k]!r}"
        raise InputError(f, f"sample ids differ from the other parts of {parts.pattern.name}: {why}")
    return first


def sha256_parts(pattern) -> str:
    """SHA-256 over the parts of ``pattern`` (their names and each part's hash, in order)."""
    from genoshare.manifest import sha256_path

    parts = resolve_parts(pattern)
    h = hashlib.sha256()
    for f in parts.files:
        members = [f.with_suffix(e) for e in _PLINK_EXT] if parts.fmt == "plink" else [f]
        for m in members:
            h.update(m.name.encode() + b"\0" + sha256_path(m).encode())
    return h.hexdigest()


def manifest_parts(path) -> dict:
    """{'parts': n} for a ``{chrom}`` pattern (the manifest names the pattern's base name and this), else {}."""
    return {"parts": len(resolve_parts(path))} if is_pattern(path) else {}
