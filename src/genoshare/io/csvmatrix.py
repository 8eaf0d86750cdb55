"""The CSV genotype-matrix layout (the format of the PROVGEN artifact and of ``genoshare simulate``).

Layout::

    PATIENT_ID,rs1,rs2,rs3          <- header: first column = individual id (any name), then one column per SNP
    7322,0,1,2                      <- one row per individual; values are ALT-allele counts 0/1/2
    7006,1,,0                       <- an empty cell is a missing genotype

Plain text or gzip (detected from the magic bytes, not the suffix). In memory the matrix is VARIANT-MAJOR:
``genotypes[j, i]`` is SNP j of individual i (int8, -1 = missing), i.e. transposed relative to the file.

Reading is strict: every problem raises :class:`genoshare.errors.InputError` with a one-line message naming the
file and, where it applies, the line, individual id, SNP column and offending value. Accepted cell spellings:
``0``, ``1``, ``2`` (also ``0.0``/``1.0``/``2.0`` and surrounding blanks), and for missing: empty, ``NA``, ``NaN``.
Anything else (``3``, ``-1``, ``1.5``, ``AG``) is an error, as are duplicate ids and rows with the wrong number of
fields. Rows are parsed with numpy (one vectorised pass per row); only rows that are not in the plain
``id,d,d,...`` form go through the slower ``csv``-module path, which also produces the error messages.

The whole (decompressed) file is held in memory while reading: this layout is meant for cohorts of up to a few
thousand individuals by tens of thousands of SNPs; larger data belongs in VCF Zarr.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genoshare.errors import InputError

__all__ = [
    "GenotypeMatrix",
    "read_matrix",
    "write_matrix",
    "validate_same_variants",
    "DEFAULT_ID_COLUMN",
]

DEFAULT_ID_COLUMN = "PATIENT_ID"
#: gzip level used by write_matrix. Measured on 401 x 28,396 (22.8 MB of text): simulated cohort (msprime, LD)
#: level 1 0.19 s / 4.03 MB, level 4 0.35 s / 3.18 MB, level 6 1.43 s / 2.96 MB; i.i.d. random genotypes
#: level 1 0.20 s / 4.25 MB, level 4 0.38 s / 3.39 MB, level 6 1.6 s / 3.20 MB. Level 4 keeps most of level 6's
#: compression at a quarter of its time.
DEFAULT_GZIP_LEVEL = 4

_MISSING_TOKENS = frozenset({"", "na", "nan"})
_BOM = b"\xef\xbb\xbf"
_COMMA = ord(",")
_ZERO = ord("0")
_MAX_SHOWN = 40  # longest cell value / id quoted verbatim in an error message


@dataclass
class GenotypeMatrix:
    """A genotype matrix read from (or to be written to) the CSV layout.

    ``genotypes`` is int8 of shape (n_variants, n_samples), variant-major, values 0/1/2 and -1 for missing.
    ``id_column`` is the header name of the individual-id column (kept so a round trip preserves it).
    """

    sample_ids: list[str]
    variant_ids: list[str]
    genotypes: np.ndarray
    id_column: str = field(default=DEFAULT_ID_COLUMN)

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    @property
    def n_variants(self) -> int:
        return len(self.variant_ids)

    @property
    def n_missing(self) -> int:
        return int(np.count_nonzero(self.genotypes < 0))


# --------------------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------------------


def _show(s: str) -> str:
    """repr() of a user string, shortened: always one line."""
    if len(s) > _MAX_SHOWN:
        s = s[:_MAX_SHOWN] + "..."
    return repr(s)


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _read_raw(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a CSV file") from None
    except PermissionError:
        raise InputError(path, "permission denied (cannot read the file)") from None
    except OSError as e:
        raise InputError(path, f"cannot read the file: {e.strerror or _one_line(e)}") from None

    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(path, f"corrupt or truncated gzip data ({_one_line(e)})") from None
    elif raw[:4] == b"\x28\xb5\x2f\xfd":
        raise InputError(path, "is zstd-compressed; only plain or gzip-compressed CSV is supported")
    elif raw[:3] == b"BZh":
        raise InputError(path, "is bzip2-compressed; only plain or gzip-compressed CSV is supported")
    elif raw[:6] == b"\xfd7zXZ\x00":
        raise InputError(path, "is xz-compressed; only plain or gzip-compressed CSV is supported")
    elif raw[:4] == b"PK\x03\x04":
        raise InputError(path, "is a zip archive; only plain or gzip-compressed CSV is supported")
    elif path.name.endswith(".gz") and raw:
        raise InputError(path, "is named .gz but is not gzip-compressed (no gzip magic bytes)")
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    return raw


def _decode(path: Path, b: bytes, lineno: int) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(path, f"line {lineno} is not valid UTF-8 text") from None


def _split_csv(path: Path, text: str, lineno: int) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as e:
        raise InputError(path, f"line {lineno} is not valid CSV ({_one_line(e)})") from None
    return rows[0] if rows else [""]


def _fast_row(line: bytes, m: int, out: np.ndarray) -> bytes | None:
    """Parse ``id,d,d,...`` (d in 0/1/2 or empty) into ``out``; return the raw id or None if not that simple."""
    c = line.find(b",")
    if c <= 0 or line[:1] == b'"':
        return None
    arr = np.frombuffer(line, dtype=np.uint8, offset=c + 1)
    n = arr.size
    if n == 2 * m - 1:  # no missing: digit, comma, digit, ...
        d = arr[0::2] - np.uint8(_ZERO)  # wraps below '0' to large values
        if (d <= 2).all() and (arr[1::2] == _COMMA).all():
            out[:] = d
            return line[:c]
    commas = np.flatnonzero(arr == _COMMA)
    if commas.size != m - 1:
        return None
    starts = np.empty(m, dtype=np.int64)
    starts[0] = 0
    starts[1:] = commas + 1
    ends = np.empty(m, dtype=np.int64)
    ends[:-1] = commas
    ends[-1] = n
    lens = ends - starts
    if (lens > 1).any():
        return None
    one = lens == 1
    d = arr[starts[one]] - np.uint8(_ZERO)
    if (d > 2).any():
        return None
    out[:] = -1
    out[one] = d
    return line[:c]


def _slow_row(path: Path, line: bytes, lineno: int, snp_ids: list[str], out: np.ndarray) -> str:
    """Parse one row with the csv module, validating every cell; raise InputError naming the first problem."""
    m = len(snp_ids)
    fields = _split_csv(path, _decode(path, line, lineno), lineno)
    rid = fields[0].strip()
    where = f"line {lineno} (individual {_show(rid)})"
    if len(fields) != m + 1:
        raise InputError(
            path,
            f"{where} has {len(fields)} fields but the header has {m + 1} (1 id column + {m} SNP columns)",
        )
    if not rid:
        raise InputError(path, f"line {lineno}: empty individual id")
    for k, cell in enumerate(fields[1:]):
        s = cell.strip()
        if s in ("0", "1", "2"):
            out[k] = ord(s) - _ZERO
            continue
        if s.lower() in _MISSING_TOKENS:
            out[k] = -1
            continue
        try:
            x = float(s)
        except ValueError:
            raise InputError(
                path,
                f"{where}, SNP column {_show(snp_ids[k])}: non-numeric value {_show(cell)} "
                "(expected 0, 1, 2, or an empty cell for missing)",
            ) from None
        if x in (0.0, 1.0, 2.0):
            out[k] = int(x)
            continue
        raise InputError(
            path,
            f"{where}, SNP column {_show(snp_ids[k])}: value {_show(cell)} is not a genotype "
            "(expected 0, 1, 2, or an empty cell for missing)",
        )
    return rid


def read_matrix(path) -> GenotypeMatrix:
    """Read a CSV (or gzip-compressed CSV) genotype matrix; see the module docstring. Raises InputError."""
    path = Path(path)
    raw = _read_raw(path)
    if not raw.strip():
        raise InputError(path, "empty file (expected a header line ID,SNP1,SNP2,... and one row per individual)")
    if b"\x00" in raw[:65536]:
        raise InputError(path, "contains binary data (NUL bytes); expected CSV text")

    lines = raw.split(b"\n")
    del raw
    # line numbers are 1-based; blank lines (e.g. a trailing newline) are skipped
    numbered = [(i + 1, ln[:-1] if ln.endswith(b"\r") else ln) for i, ln in enumerate(lines)]
    del lines
    numbered = [(i, ln) for i, ln in numbered if ln.strip()]

    header_no, header_line = numbered[0]
    header = [h.strip() for h in _split_csv(path, _decode(path, header_line, header_no), header_no)]
    id_column, snp_ids = header[0], header[1:]
    if not snp_ids:
        hint = ""
        if "\t" in header[0] or ";" in header[0]:
            hint = " (the file looks tab- or semicolon-separated; genoshare expects commas)"
        raise InputError(path, f"no SNP columns: the header has only the individual-id column{hint}")
    seen: dict[str, int] = {}
    for k, s in enumerate(snp_ids):
        if not s:
            raise InputError(path, f"SNP column {k + 1} (header field {k + 2}) has an empty name")
        if s in seen:
            raise InputError(path, f"duplicate SNP id {_show(s)} (header fields {seen[s] + 2} and {k + 2})")
        seen[s] = k
    del seen

    m = len(snp_ids)
    rows = numbered[1:]
    if not rows:
        raise InputError(path, "no individuals: the file has a header but no data rows")
    n = len(rows)
    g = np.empty((n, m), dtype=np.int8)
    sample_ids: list[str] = []
    first_line: dict[str, int] = {}
    for r, (lineno, line) in enumerate(rows):
        rid_b = _fast_row(line, m, g[r])
        if rid_b is not None:
            rid = _decode(path, rid_b, lineno).strip()
            if not rid:
                raise InputError(path, f"line {lineno}: empty individual id")
        else:
            rid = _slow_row(path, line, lineno, snp_ids, g[r])
        if rid in first_line:
            raise InputError(path, f"duplicate individual id {_show(rid)} (lines {first_line[rid]} and {lineno})")
        first_line[rid] = lineno
        sample_ids.append(rid)
    return GenotypeMatrix(
        sample_ids=sample_ids,
        variant_ids=list(snp_ids),
        genotypes=np.ascontiguousarray(g.T),
        id_column=id_column,
    )


def validate_same_variants(a: GenotypeMatrix, b: GenotypeMatrix, path_a, path_b) -> None:
    """Raise InputError(path_b, ...) unless ``b`` has exactly the SNP columns of ``a``, in the same order."""
    na, nb = len(a.variant_ids), len(b.variant_ids)
    if na != nb:
        raise InputError(path_b, f"has {nb} SNP columns but {path_a} has {na}")
    for k, (va, vb) in enumerate(zip(a.variant_ids, b.variant_ids)):
        if va != vb:
            extra = ""
            if set(a.variant_ids) == set(b.variant_ids):
                extra = " (same SNP ids in a different order)"
            raise InputError(
                path_b,
                f"SNP column {k + 1} is {_show(vb)} but in {path_a} it is {_show(va)}{extra}; "
                "the SNP columns must match in the same order",
            )


# --------------------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------------------


def _csv_field(s: str) -> str:
    if any(ch in s for ch in ',"'):
        return '"' + s.replace('"', '""') + '"'
    return s


def _check_ids(ids, what: str) -> list[str]:
    ids = [str(x) for x in ids]
    seen = set()
    for s in ids:
        if not s or s != s.strip():
            raise ValueError(f"{what} id {s!r} is empty or has leading/trailing blanks")
        if "\n" in s or "\r" in s:
            raise ValueError(f"{what} id {s!r} contains a line break")
        if s in seen:
            raise ValueError(f"duplicate {what} id {s!r}")
        seen.add(s)
    return ids


def _as_genotypes(genotypes, m: int, n: int) -> np.ndarray:
    g = np.asarray(genotypes)
    if g.shape != (m, n):
        raise ValueError(
            f"genotypes must be variant-major with shape (n_variants, n_samples) = {(m, n)}, got {g.shape}"
        )
    if g.dtype.kind == "f":
        miss = np.isnan(g)
        g = np.where(miss, -1, g)
    elif g.dtype.kind not in "biu":
        raise ValueError(f"genotypes must be integers, got dtype {g.dtype}")
    if g.size and (g.min() < -1 or g.max() > 2 or (g.dtype.kind == "f" and (g != np.round(g)).any())):
        raise ValueError("genotypes must be 0, 1, 2 or -1 (missing)")
    return g.astype(np.int8, copy=False)


def _text_chunks(sample_ids: list[str], g: np.ndarray, header: bytes):
    """Yield the file's bytes: header, then blocks of rows built with numpy (no per-cell Python)."""
    yield header
    m, n = g.shape
    rows_per_chunk = max(1, (8 << 20) // (2 * m))
    prefixes = [(_csv_field(s) + ",").encode("utf-8") for s in sample_ids]
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        block = np.ascontiguousarray(g[:, start:stop].T)  # (rows, m) sample-major
        buf = np.empty((stop - start, 2 * m), dtype=np.uint8)
        buf[:, 0::2] = block.view(np.uint8) + np.uint8(_ZERO)
        buf[:, 1::2] = _COMMA
        buf[:, -1] = ord("\n")
        miss = block < 0
        any_miss = miss.any(axis=1)
        keep = None
        if any_miss.any():
            keep = np.ones(buf.shape, dtype=bool)
            keep[:, 0::2] = ~miss
        parts = []
        for r in range(stop - start):
            parts.append(prefixes[start + r])
            parts.append(buf[r][keep[r]].tobytes() if any_miss[r] else buf[r].tobytes())
        yield b"".join(parts)


def write_matrix(
    path,
    sample_ids,
    variant_ids,
    genotypes_variant_major,
    *,
    id_column: str = DEFAULT_ID_COLUMN,
    compresslevel: int = DEFAULT_GZIP_LEVEL,
) -> Path:
    """Write the CSV layout atomically (temp file in the same directory, then os.replace).

    gzip-compressed when ``path`` ends with ``.gz`` (header mtime 0 and no file name, so equal inputs give
    byte-identical files). ``genotypes_variant_major`` has shape (n_variants, n_samples); -1 (or NaN) is missing
    and is written as an empty cell. Raises ValueError for inputs read_matrix would refuse.
    """
    path = Path(path)
    sample_ids = _check_ids(sample_ids, "individual")
    variant_ids = _check_ids(variant_ids, "SNP")
    if not variant_ids:
        raise ValueError("no SNPs to write")
    if not sample_ids:
        raise ValueError("no individuals to write")
    g = _as_genotypes(genotypes_variant_major, len(variant_ids), len(sample_ids))
    sbuf = io.StringIO()
    csv.writer(sbuf, lineterminator="\n").writerow([id_column, *variant_ids])
    header = sbuf.getvalue().encode("utf-8")

    from genoshare.io.atomic import atomic_file

    with atomic_file(path) as tmp, open(tmp, "xb") as f:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=compresslevel) as z:
                for chunk in _text_chunks(sample_ids, g, header):
                    z.write(chunk)
        else:
            for chunk in _text_chunks(sample_ids, g, header):
                f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    return path
