"""Cheap checks of PLINK 1 and VCF/BCF inputs BEFORE conversion, so that bad files give one clear line.

bio2zarr and htslib either fail deep inside a conversion with messages that do not name the file, or (for a BGZF
file cut at a block boundary, or a plain VCF cut after a full line) do not fail at all and convert the truncated
prefix. These checks catch those cases up front; each raises ``InputError(path, problem)``.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

from genoshare.errors import InputError

__all__ = ["PlinkFileset", "plink_paths", "check_plink", "check_vcf", "BED_MAGIC", "BGZF_EOF"]

BED_MAGIC = b"\x6c\x1b"
BED_VARIANT_MAJOR = 0x01
#: the empty BGZF block that bgzip/htslib append as an end-of-file marker (SAM/BAM spec 4.1.2)
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_HEAD = 1 << 16


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise InputError(path, f"cannot read the file: {e.strerror or _one_line(e)}") from None


def _read(path: Path, start: int = 0, n: int = -1) -> bytes:
    try:
        with open(path, "rb") as f:
            if start:
                f.seek(start)
            return f.read(n)
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except OSError as e:
        raise InputError(path, f"cannot read the file: {e.strerror or _one_line(e)}") from None


def read_text(path, what: str) -> str:
    """The UTF-8 text of a small input table (a BOM is dropped); a missing file, a directory or undecodable bytes
    are one-line InputErrors naming the file and ``what`` it should be (e.g. "a phenotype table")."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, f"is a directory, not {what}") from None
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text") from None
    except OSError as e:
        raise InputError(path, f"cannot read the file: {e.strerror or _one_line(e)}") from None


# --------------------------------------------------------------------------------------------------------------
# PLINK 1 binary filesets
# --------------------------------------------------------------------------------------------------------------


@dataclass
class PlinkFileset:
    prefix: Path
    bed: Path
    bim: Path
    fam: Path
    n_variants: int = 0
    n_samples: int = 0


def plink_paths(path) -> PlinkFileset:
    """The fileset named by ``X.bed`` / ``X.bim`` / ``X.fam`` or by the prefix ``X``."""
    path = Path(path)
    prefix = path.with_suffix("") if path.suffix in (".bed", ".bim", ".fam") else path
    return PlinkFileset(
        prefix=prefix,
        bed=prefix.with_name(prefix.name + ".bed"),
        bim=prefix.with_name(prefix.name + ".bim"),
        fam=prefix.with_name(prefix.name + ".fam"),
    )


def _table_lines(path: Path, what: str, n_fields: int) -> list[list[str]]:
    raw = _read(path)
    if b"\x00" in raw[:_HEAD]:
        raise InputError(path, f"contains binary data (NUL bytes); expected a text {what} file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, f"is not UTF-8 text (byte {e.start})") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != n_fields:
            raise InputError(path, f"line {lineno} has {len(fields)} fields, a {what} line has {n_fields}")
        rows.append(fields)
    return rows


def check_plink(path) -> PlinkFileset:
    """Validate a PLINK 1 binary fileset; return it with its variant and sample counts.

    Checks: the three files exist; .bim has 6 fields per line with an integer position; .fam has 6 fields per
    line and no duplicate individual id (bio2zarr keeps only the IID); the .bed starts with the magic bytes
    6c 1b 01 (variant-major) and has exactly 3 + m * ceil(n / 4) bytes for m .bim lines and n .fam lines.
    """
    fs = plink_paths(path)
    missing = [p.name for p in (fs.bed, fs.bim, fs.fam) if not p.is_file()]
    if missing:
        raise InputError(path, f"incomplete PLINK fileset: missing {', '.join(missing)}")

    bim = _table_lines(fs.bim, ".bim", 6)
    if not bim:
        raise InputError(fs.bim, "is empty: no variants")
    for lineno, row in enumerate(bim, 1):
        if not row[3].lstrip("-").isdigit():
            raise InputError(fs.bim, f"variant {lineno} ({row[1][:40]!r}): position {row[3][:20]!r} is not an integer")
    fam = _table_lines(fs.fam, ".fam", 6)
    if not fam:
        raise InputError(fs.fam, "is empty: no samples")
    seen: dict[str, int] = {}
    for i, row in enumerate(fam, 1):
        iid = row[1]
        if iid in seen:
            raise InputError(fs.fam, f"duplicate individual id {iid[:40]!r} (samples {seen[iid]} and {i})")
        seen[iid] = i
    m, n = len(bim), len(fam)

    head = _read(fs.bed, 0, 3)
    if head[:2] != BED_MAGIC:
        raise InputError(fs.bed, "is not a PLINK 1 .bed file (the first bytes are not the magic 6c 1b)")
    if len(head) < 3 or head[2] != BED_VARIANT_MAJOR:
        raise InputError(fs.bed, "is a sample-major (PLINK < 1.0) .bed; rewrite it variant-major with plink --make-bed")
    size = _size(fs.bed)
    per_variant = (n + 3) // 4
    expected = 3 + m * per_variant
    if size != expected:
        payload = size - 3
        problem = (
            f"has {size} bytes but {fs.bim.name} ({m} variants) and {fs.fam.name} ({n} samples) "
            f"require 3 + {m} x {per_variant} = {expected} bytes: "
        )
        if payload % per_variant == 0:
            problem += (
                f"the .bed holds {payload // per_variant} variants of {n} samples, "
                f"so the .bed and .bim variant counts disagree"
            )
        elif payload % m == 0:
            b = payload // m
            problem += (
                f"the .bed holds {m} variants of {max(1, 4 * b - 3)}..{4 * b} samples, "
                f"so the .bed and .fam sample counts disagree"
            )
        else:
            problem += "the .bed is truncated or corrupt, or does not belong to this .bim/.fam"
        raise InputError(fs.bed, problem)
    fs.n_variants, fs.n_samples = m, n
    return fs


# --------------------------------------------------------------------------------------------------------------
# VCF / BCF
# --------------------------------------------------------------------------------------------------------------


def _gunzip_head(path: Path, raw: bytes) -> bytes:
    """Decompress what the first bytes of a (b)gzip file hold (a truncated stream is fine here)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return d.decompress(raw, _HEAD)
    except zlib.error as e:
        raise InputError(path, f"corrupt gzip data at the start of the file ({_one_line(e)})") from None


def check_vcf(path) -> int:
    """Validate a VCF (plain or bgzip/gzip-compressed) or BCF file cheaply; return its number of samples.

    Checks: a non-empty readable file; compressed files end with the BGZF end-of-file block (bgzip) or, for plain
    gzip, decompress completely; the content starts with ``##fileformat=VCF`` (or the BCF magic); a plain VCF
    ends with a complete line with as many fields as its #CHROM line; htslib (cyvcf2) parses the header; there
    is at least one sample.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not a VCF/BCF file")
    size = _size(path)
    if size == 0:
        raise InputError(path, "is empty")
    raw = _read(path, 0, _HEAD)
    compressed = raw[:2] == b"\x1f\x8b"
    if compressed:
        bgzf = len(raw) >= 18 and raw[3] & 0x04 and raw[12:14] == b"BC"
        if bgzf:
            if size < len(BGZF_EOF) or _read(path, size - len(BGZF_EOF)) != BGZF_EOF:
                raise InputError(
                    path, "is truncated: it does not end with the BGZF end-of-file block (incomplete copy?)"
                )
        else:  # plain gzip: htslib reads it, but only a full pass shows whether it is complete
            try:
                with gzip.open(path, "rb") as f:
                    while f.read(1 << 22):
                        pass
            except (OSError, EOFError, zlib.error) as e:
                raise InputError(path, f"corrupt or truncated gzip data ({_one_line(e)})") from None
        text = _gunzip_head(path, raw)
    else:
        text = raw
    is_bcf = text[:3] == b"BCF"
    if not is_bcf and not text.startswith(b"##fileformat=VCF"):
        if not compressed and raw[:3] == b"BCF":
            is_bcf = True
        elif not text:
            raise InputError(path, "holds no data after decompression")
        else:
            raise InputError(path, "is not a VCF or BCF file (it does not start with ##fileformat=VCF)")
    if is_bcf and not compressed:
        pass  # uncompressed BCF: htslib reads it; nothing cheap to check beyond the header

    if not compressed and not is_bcf:
        _check_plain_vcf_tail(path, size)

    try:
        import cyvcf2

        vcf = cyvcf2.VCF(str(path), lazy=True)
        n = len(vcf.samples)
        vcf.close()
    except Exception as e:  # cyvcf2 raises bare Exception / OSError for unparseable headers
        raise InputError(path, f"cannot parse the VCF header ({_one_line(e)})") from None
    if n == 0:
        raise InputError(path, "has no samples (a sites-only VCF); genotypes are needed")
    return n


def _check_plain_vcf_tail(path: Path, size: int) -> None:
    n_header = None
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(b"#CHROM"):
                    n_header = len(line.rstrip(b"\r\n").split(b"\t"))
                    break
                if not line.startswith(b"##"):
                    break
    except OSError as e:
        raise InputError(path, f"cannot read the file: {e.strerror or _one_line(e)}") from None
    if n_header is None:
        raise InputError(path, "has no #CHROM header line")
    tail = _read(path, max(0, size - (1 << 20)))
    if not tail.endswith(b"\n"):
        raise InputError(path, "is truncated: the last line is incomplete (no final newline)")
    last = tail.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    if not last.startswith(b"#"):
        n_last = len(last.split(b"\t"))
        if n_last != n_header:
            raise InputError(
                path, f"is truncated or corrupt: the last line has {n_last} fields, the #CHROM line {n_header}"
            )
