"""The release ledger: one row per release of a cohort, in the data owner's private work directory.

Why it exists
-------------
Every release of the same cohort spends privacy: the losses compose. The ledger records each release with the
cohort's fingerprint, so that before the next release of that cohort genoshare can print the cumulative loss and,
with ``--budget EPS``, refuse a release that would take it over budget.

Where it lives
--------------
:func:`private_dir` picks the owner's private work directory: an explicit ``--private-dir``, else
``$GENOSHARE_PRIVATE_DIR``, else ``$XDG_DATA_HOME/genoshare``, else ``~/.local/share/genoshare``. It is created
with mode 0700 (tightened to 0700 if it exists with group or world access) and is refused if it lies inside the
release directory: the ledger holds cohort paths and fingerprints, which never go out with a release.
The database is ``<private dir>/ledger.sqlite`` (mode 0600; SQLite gives its -wal/-shm files the same mode).

Private details
---------------
Each row's ``details`` (JSON, schema 2) keeps what the release manifest must not carry
(genoshare.privacy.release_safety): the cohort's (and phenotype file's) absolute path and SHA-256, the exact
kinship counts, the release digest and, for store releases, the cohort's fingerprint at the released sites.
check-release in owner mode compares releases with them. A schema-1 ledger gains the column in place on first
open; its rows keep their checksums (the checksum covers ``details`` only when it is set).

Cohort fingerprint
------------------
SHA-256 over a canonical byte encoding of what genoshare sees of a cohort::

    b"genoshare-cohort-fingerprint/v2\n"
    u64le(n_samples)  then for each sample id:  u64le(len(utf8)) utf8
    u64le(n_variants) then for each variant id: u64le(len(utf8)) utf8
    for each variant, its two-lane digest H[j, 0], H[j, 1] as u64le (genoshare.kernels.fingerprint)

A variant's digest is a weighted sum over samples of its ALT dosages (+1, missing 0) modulo 2^64, so it can be
computed in parts over any (variant, sample) chunks and added up: ``release`` computes it blockwise on its Dask
workers (``pipeline.cohort_digests``), :func:`fingerprint_vcz` and :func:`fingerprint_matrix` one variant chunk at
a time in this process; all give the same digest. The same cohort as a CSV matrix and as a VCF Zarr store (same
ids, same order) has the same fingerprint, and so does any chunking of the store. Phase and which ALT allele a
multi-allelic call carries are not part of it (genoshare releases dosages of bi-allelic sites only). Limitation:
the fingerprint identifies one exact cohort; a subset or superset of it (one individual or one SNP dropped) is a
different cohort to the ledger, so composition over overlapping cohorts is the owner's responsibility.

Concurrency
-----------
Snakemake runs several releases at once. Each process opens its own connection; the database runs in WAL mode
with a busy timeout, every write is one ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so
"read the cumulative loss, check the budget, insert the row" is atomic and two parallel releases cannot both fit
under a budget that only one fits), and ``synchronous=FULL``. Each row also stores the SHA-256 of its own content,
checked on every read, so a damaged row is reported instead of silently miscounted. WAL needs a local file
system (or one with working POSIX locks and shared memory): keep the private directory off NFS.

Accounting
----------
Composition is basic (sum of epsilons, sum of deltas) over the cohort's releases with status ``recorded`` or
``reserved``; ``cancelled`` rows are kept for the audit trail and not counted. Test releases (``--seed``) are
counted like any other: the tool cannot know whether they were shared. A row can be recorded in one step
(:meth:`Ledger.record`) or reserved before the release runs and finalised after it succeeded
(:meth:`Ledger.reserve` / :meth:`Ledger.finalize` / :meth:`Ledger.cancel`). ``genoshare release`` does the latter:

1. before any genotype work it reserves the row under :func:`cohort_ids_key` (sample and variant ids only,
   read from the metadata), in one ``BEGIN IMMEDIATE`` transaction against ``--budget``: of two parallel
   releases that together exceed the budget, the second is refused before it reads a genotype;
2. after the release directory is renamed into place it finalizes the row: the genotype fingerprint (computed
   on the way by pass 1), the output checksum and the stages, with the budget checked again over every row
   that shares either key;
3. if the release fails (an error, Ctrl-C, SIGTERM) the reservation is deleted, nothing is left
   (:func:`cancels_reservations_on_failure`); a run killed outright (SIGKILL) leaves the reservation, which
   keeps counting (``genoshare ledger list`` shows it as reserved) until ``genoshare ledger cancel ID``.

A budget check counts every row whose fingerprint or ids key matches: cohorts with the same ids and other
genotypes are checked together (conservative). The ids key is kept in the row's ``details``; rows
written before it have none and are counted from the genotype fingerprint, at finalize.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import math
import os
import random
import sqlite3
import stat
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path

import numpy as np

from genoshare import __version__
from genoshare.errors import GenoshareError, InputError

__all__ = [
    "ENV_PRIVATE_DIR",
    "LEDGER_FILE",
    "SCHEMA_VERSION",
    "COMPOSITION",
    "private_dir",
    "ledger_path",
    "cohort_fingerprint",
    "fingerprint_matrix",
    "fingerprint_vcz",
    "fingerprint_path",
    "cohort_ids_key",
    "reservation_entry",
    "cancels_reservations_on_failure",
    "release_checksum",
    "LedgerEntry",
    "Ledger",
    "ledger_entry_from_manifest",
    "format_cumulative",
]

ENV_PRIVATE_DIR = "GENOSHARE_PRIVATE_DIR"
LEDGER_FILE = "ledger.sqlite"
SCHEMA_VERSION = 2  # 2: the details column (private facts of a release: cohort path and hash, kinship)
COMPOSITION = "basic (sum)"
BUSY_TIMEOUT_MS = 120_000
FINGERPRINT_MAGIC = b"genoshare-cohort-fingerprint/v2\n"
COHORT_IDS_MAGIC = b"genoshare-cohort-ids/v1\n"
STATUSES = ("reserved", "recorded", "cancelled")
_COUNTED = ("reserved", "recorded")
_HEX64 = frozenset("0123456789abcdef")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------------------------
# private directory


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def private_dir(explicit=None, release_dir=None, create: bool = True) -> Path:
    """The owner's private work directory (see the module docstring), created 0700.

    Raises GenoshareError if it is inside ``release_dir`` (or is it), or cannot be created.
    """
    if explicit:
        d = Path(explicit).expanduser()
    elif os.environ.get(ENV_PRIVATE_DIR):
        d = Path(os.environ[ENV_PRIVATE_DIR]).expanduser()
    elif os.environ.get("XDG_DATA_HOME"):
        d = Path(os.environ["XDG_DATA_HOME"]).expanduser() / "genoshare"
    else:
        d = Path.home() / ".local" / "share" / "genoshare"
    d = d.absolute()
    resolved = d.resolve()
    if release_dir is not None:
        rel = Path(release_dir).expanduser().absolute().resolve()
        if _inside(resolved, rel):
            raise GenoshareError(
                f"private directory {d} is inside the release directory {release_dir}; "
                "the ledger must never be shared: choose another --private-dir"
            )
    if not create:
        return d
    try:
        if not d.exists():
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            d.chmod(0o700)  # mkdir honours the umask, which may only remove bits; make it exact
        elif not d.is_dir():
            raise GenoshareError(f"private directory {d} exists and is not a directory")
        mode = stat.S_IMODE(d.stat().st_mode)
        if mode & 0o077:
            d.chmod(mode & 0o700 | 0o700)
    except PermissionError:
        raise GenoshareError(f"private directory {d}: permission denied") from None
    except OSError as e:
        raise GenoshareError(f"private directory {d}: {e.strerror or e}") from None
    return d


def ledger_path(explicit=None, release_dir=None) -> Path:
    """``<private dir>/ledger.sqlite``."""
    return private_dir(explicit, release_dir) / LEDGER_FILE


# ------------------------------------------------------------------------------------------------------------------
# fingerprints


def _u64(x: int) -> bytes:
    return struct.pack("<Q", int(x))


def _hash_ids(h, sample_ids, variant_ids) -> None:
    for ids in (sample_ids, variant_ids):
        h.update(_u64(len(ids)))
        for s in ids:
            b = str(s).encode("utf-8")
            h.update(_u64(len(b)))
            h.update(b)


def cohort_ids_key(sample_ids, variant_ids) -> str:
    """SHA-256 (hex) of a cohort's sample and variant ids alone (the fingerprint's encoding without the
    genotype digests, under its own magic): computable from the metadata, before any genotype is read. A release
    reserves its ledger row under this key, before any genotype work, and records the genotype fingerprint when
    it finishes; the budget check counts every row that shares either. Two cohorts with the same ids but other
    genotypes share the key, so their budgets are checked together: conservative, never an undercount."""
    h = hashlib.sha256(COHORT_IDS_MAGIC)
    _hash_ids(h, list(sample_ids), list(variant_ids))
    return h.hexdigest()


def fingerprint_from_digests(sample_ids, variant_ids, digests) -> str:
    """SHA-256 (hex) of the canonical encoding (module docstring) from per-variant digests (m, 2) uint64."""
    from genoshare.kernels.fingerprint import LANES

    sample_ids = [str(s) for s in sample_ids]
    variant_ids = [str(v) for v in variant_ids]
    digests = np.asarray(digests)
    if digests.shape != (len(variant_ids), LANES) or digests.dtype != np.uint64:
        raise GenoshareError(
            f"fingerprint: digests of shape {digests.shape} ({digests.dtype}), expected "
            f"({len(variant_ids)}, {LANES}) uint64"
        )
    h = hashlib.sha256(FINGERPRINT_MAGIC)
    _hash_ids(h, sample_ids, variant_ids)
    h.update(np.ascontiguousarray(digests, dtype="<u8").tobytes())
    return h.hexdigest()


def cohort_fingerprint(sample_ids, variant_ids, genotype_chunks: Iterable) -> str:
    """SHA-256 (hex) of the canonical encoding of a cohort (module docstring).

    ``genotype_chunks`` yields variant-major dosage blocks of shape (k, n_samples), values 0/1/2 and negative for
    missing, in variant order; any chunking gives the same digest. Raises GenoshareError if the blocks do not add
    up to ``len(variant_ids)`` rows of ``len(sample_ids)`` columns or hold values above 2.
    """
    from genoshare.kernels.fingerprint import row_digests

    n, m = len(sample_ids), len(variant_ids)
    parts = []
    for chunk in genotype_chunks:
        g = np.asarray(chunk)
        if g.ndim != 2 or g.shape[1] != n:
            raise GenoshareError(f"fingerprint: genotype block of shape {g.shape}, expected (k, {n})")
        if g.size and g.max() > 2:
            raise GenoshareError("fingerprint: genotype values above 2 (expected ALT dosages 0/1/2)")
        parts.append(row_digests(np.where(g < 0, -1, g).astype(np.int8, copy=False)))
    rows = sum(p.shape[0] for p in parts)
    if rows != m:
        raise GenoshareError(f"fingerprint: genotype blocks hold {rows} variants, expected {m}")
    digests = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.uint64)
    return fingerprint_from_digests(sample_ids, variant_ids, digests)


def fingerprint_matrix(matrix, chunk_variants: int = 4096) -> str:
    """Fingerprint of an in-memory :class:`genoshare.io.csvmatrix.GenotypeMatrix`."""
    g = matrix.genotypes
    return cohort_fingerprint(
        matrix.sample_ids,
        matrix.variant_ids,
        (g[v0 : v0 + chunk_variants] for v0 in range(0, g.shape[0], chunk_variants)),
    )


def fingerprint_vcz(path, chunk_variants: int | None = None) -> str:
    """Fingerprint of a VCF Zarr store, reading ``call_genotype`` one chunk row (all samples) at a time."""
    from genoshare.io.vcz import calls_to_dosage, open_vcz

    info = open_vcz(path)
    gt = info.open()["call_genotype"]
    step = int(chunk_variants or info.chunks[0])

    def blocks():
        for v0 in range(0, info.n_variants, step):
            yield calls_to_dosage(gt[v0 : v0 + step])

    return cohort_fingerprint(info.sample_ids, list(info.variant_id), blocks())


def fingerprint_path(path) -> str:
    """Fingerprint of a CSV matrix (``.csv``/``.csv.gz``) or a VCF Zarr store. PLINK and VCF inputs are ingested
    to VCF Zarr by the release first: fingerprint the ingested store (same dosages, same ids)."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        from genoshare.io.csvmatrix import read_matrix

        return fingerprint_matrix(read_matrix(p))
    if p.is_dir() or name.endswith(".zip"):
        return fingerprint_vcz(p)
    raise InputError(p, "fingerprint needs a CSV matrix or a VCF Zarr store (ingest PLINK/VCF inputs first)")


def release_checksum(out_dir) -> str:
    """SHA-256 over every regular file of a release directory (manifest and release files): relative path, NUL,
    size, content, in sorted path order. Symlinks are not followed."""
    out_dir = Path(out_dir)
    h = hashlib.sha256(b"genoshare-release-checksum/v1\n")
    files = []
    for root, dirs, names in os.walk(out_dir, followlinks=False):
        dirs.sort()
        for nm in names:
            p = Path(root) / nm
            if p.is_file() and not p.is_symlink():
                files.append(p)
    for f in sorted(files, key=lambda p: p.relative_to(out_dir).as_posix()):
        h.update(f.relative_to(out_dir).as_posix().encode("utf-8") + b"\0")
        h.update(_u64(f.stat().st_size))
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------------------------
# entries


def _check_eps(value, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GenoshareError(f"ledger: {what} must be a number, not {value!r}") from None
    if not (x >= 0 and math.isfinite(x)):
        raise GenoshareError(f"ledger: {what} must be finite and >= 0, not {value!r}")
    return x


def _check_delta(value, what: str) -> float:
    x = _check_eps(value, what)
    if x >= 1:
        raise GenoshareError(f"ledger: {what} must be below 1, not {value!r}")
    return x


def _normalise_stages(stages) -> dict[str, dict[str, float]]:
    """{name: {"epsilon": e, "delta": d}} from a mapping or a list of {"stage"/"name", "epsilon", "delta"}."""
    if stages is None:
        return {}
    items = stages.items() if isinstance(stages, Mapping) else None
    if items is None:
        items = []
        for k, s in enumerate(stages):
            if not isinstance(s, Mapping):
                raise GenoshareError(f"ledger: stage {k} is not a mapping")
            items.append((str(s.get("stage") or s.get("name") or f"stage{k + 1}"), s))
    out: dict[str, dict[str, float]] = {}
    for name, s in items:
        if not isinstance(s, Mapping):
            s = {"epsilon": s}
        out[str(name)] = {
            "epsilon": _check_eps(s.get("epsilon", 0.0), f"stage {name} epsilon"),
            "delta": _check_delta(s.get("delta", 0.0) or 0.0, f"stage {name} delta"),
        }
        if s.get("dp") is False:
            out[str(name)]["dp"] = False
    return out


@dataclass
class LedgerEntry:
    """One release. ``epsilon``/``delta`` default to the basic composition (sum) of ``stages``."""

    fingerprint: str
    stages: dict = field(default_factory=dict)
    epsilon: float | None = None
    delta: float | None = None
    cohort_path: str | None = None
    af_source: str | None = None
    output_dir: str | None = None
    output_checksum: str | None = None
    tool_version: str = __version__
    test_release: bool = False
    created: str = field(default_factory=_now)
    status: str = "recorded"
    id: int | None = None
    #: private facts of the release that never go into its manifest (genoshare.privacy.release_safety): the
    #: cohort's absolute path and SHA-256, exact kinship counts, the release digest
    details: dict = field(default_factory=dict)
    #: the id-only identity the release reserved its row under (:func:`cohort_ids_key`); kept in ``details``
    cohort_ids: str | None = None

    def normalised(self) -> LedgerEntry:
        fp = str(self.fingerprint).lower()
        if len(fp) != 64 or not set(fp) <= _HEX64:
            raise GenoshareError(f"ledger: fingerprint must be 64 hex digits (SHA-256), not {self.fingerprint!r}")
        ids = None if self.cohort_ids is None else str(self.cohort_ids).lower()
        if ids is not None and (len(ids) != 64 or not set(ids) <= _HEX64):
            raise GenoshareError(f"ledger: cohort ids key must be 64 hex digits (SHA-256), not {self.cohort_ids!r}")
        stages = _normalise_stages(self.stages)
        eps = (
            sum(s["epsilon"] for s in stages.values()) if self.epsilon is None else _check_eps(self.epsilon, "epsilon")
        )
        delta = sum(s["delta"] for s in stages.values()) if self.delta is None else _check_delta(self.delta, "delta")
        if not stages:
            stages = {"release": {"epsilon": eps, "delta": delta}}
        if self.status not in STATUSES:
            raise GenoshareError(f"ledger: status must be one of {', '.join(STATUSES)}")
        return LedgerEntry(
            fingerprint=fp,
            stages=stages,
            epsilon=eps,
            delta=min(delta, 1.0),
            cohort_path=None if self.cohort_path is None else str(self.cohort_path),
            af_source=None if self.af_source is None else str(self.af_source),
            output_dir=None if self.output_dir is None else str(self.output_dir),
            output_checksum=self.output_checksum,
            tool_version=str(self.tool_version),
            test_release=bool(self.test_release),
            created=str(self.created),
            status=self.status,
            id=self.id,
            details=dict(self.details or {}),
            cohort_ids=ids,
        )

    def to_dict(self) -> dict:
        return asdict(self)


_COLUMNS = (
    "created",
    "fingerprint",
    "cohort_path",
    "stages",
    "epsilon",
    "delta",
    "af_source",
    "output_dir",
    "output_checksum",
    "tool_version",
    "test_release",
    "status",
)

#: columns added after schema 1 (the migration adds those an older ledger lacks)
_ADDED_COLUMNS = {"details": "ALTER TABLE releases ADD COLUMN details TEXT"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created         TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    cohort_path     TEXT,
    stages          TEXT    NOT NULL,
    epsilon         REAL    NOT NULL,
    delta           REAL    NOT NULL,
    af_source       TEXT,
    output_dir      TEXT,
    output_checksum TEXT,
    tool_version    TEXT    NOT NULL,
    test_release    INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    row_sha256      TEXT    NOT NULL,
    details         TEXT
);
CREATE INDEX IF NOT EXISTS releases_fingerprint ON releases (fingerprint);
"""


def _row_values(e: LedgerEntry) -> tuple:
    return (
        e.created,
        e.fingerprint,
        e.cohort_path,
        json.dumps(e.stages, sort_keys=True),
        float(e.epsilon),
        float(e.delta),
        e.af_source,
        e.output_dir,
        e.output_checksum,
        e.tool_version,
        int(e.test_release),
        e.status,
    )


def _details_text(e: LedgerEntry) -> str | None:
    details = {**(e.details or {}), **({"cohort_ids": e.cohort_ids} if e.cohort_ids else {})}
    return json.dumps(details, sort_keys=True, allow_nan=False) if details else None


def _hashed(values: tuple, details: str | None) -> tuple:
    """What a row's checksum covers: the schema-1 columns, plus details when set (rows written before the
    details column keep their checksum)."""
    return values if details is None else (*values, details)


def _row_hash(values: tuple) -> str:
    return hashlib.sha256(json.dumps(list(values), sort_keys=True, allow_nan=False).encode()).hexdigest()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Ledger:
    """The SQLite ledger at ``path`` (created with its schema on first use)."""

    def __init__(self, path, timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.timeout_ms = int(timeout_ms)
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def open(cls, private=None, release_dir=None) -> Ledger:
        """The ledger of the owner's private directory (see :func:`private_dir`)."""
        return cls(ledger_path(private, release_dir))

    # -- connection ---------------------------------------------------------------------------------------------

    def _retry(self, fn):
        """Run ``fn`` again while SQLite reports a lock it did not wait for (e.g. switching to WAL)."""
        deadline = time.monotonic() + self.timeout_ms / 1000
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise GenoshareError(f"ledger {self.path}: {e}") from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if not self.path.parent.is_dir():
            raise GenoshareError(f"ledger {self.path}: directory {self.path.parent} does not exist")
        try:  # create the file 0600 ourselves: SQLite gives -wal/-shm the mode of the database file
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as e:
            raise GenoshareError(f"ledger {self.path}: {e.strerror or e}") from None
        try:
            conn = sqlite3.connect(str(self.path), timeout=self.timeout_ms / 1000, isolation_level=None)
        except sqlite3.Error as e:
            raise GenoshareError(f"ledger {self.path}: {e}") from None
        conn.row_factory = sqlite3.Row

        def setup():
            conn.execute(f"PRAGMA busy_timeout = {self.timeout_ms}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise GenoshareError(f"ledger {self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise GenoshareError(
                        f"ledger {self.path} has schema version {version}; this genoshare "
                        f"({__version__}) knows up to {SCHEMA_VERSION}: upgrade genoshare"
                    )
                if version == 0:  # a new file
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                else:  # an existing ledger: add the columns it lacks (schema 1: details), keeping every row
                    have = {r[1] for r in conn.execute("PRAGMA table_info(releases)").fetchall()}
                    for column, sql in _ADDED_COLUMNS.items():
                        if column not in have:
                            conn.execute(sql)
                if version < SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        try:
            self._retry(setup)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise GenoshareError(f"ledger {self.path}: {e} (not a genoshare ledger?)") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Ledger:
        self._connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, fn):
        """Run ``fn(conn)`` in one BEGIN IMMEDIATE transaction (retried while the lock is busy)."""
        conn = self._connect()

        def attempt():
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
                conn.execute("COMMIT")
                return out
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return self._retry(attempt)

    # -- reading ------------------------------------------------------------------------------------------------

    def _entry(self, row: sqlite3.Row) -> LedgerEntry:
        values = tuple(row[c] for c in _COLUMNS)
        details = row["details"]
        if _row_hash(_hashed(values, details)) != row["row_sha256"]:
            raise GenoshareError(
                f"ledger {self.path}: row {row['id']} is damaged (content does not match its "
                "checksum); the cumulative loss cannot be trusted"
            )
        return LedgerEntry(
            id=row["id"],
            created=row["created"],
            fingerprint=row["fingerprint"],
            cohort_path=row["cohort_path"],
            stages=json.loads(row["stages"]),
            epsilon=row["epsilon"],
            delta=row["delta"],
            af_source=row["af_source"],
            output_dir=row["output_dir"],
            output_checksum=row["output_checksum"],
            tool_version=row["tool_version"],
            test_release=bool(row["test_release"]),
            status=row["status"],
            details=(info := json.loads(details) if details else {}),
            cohort_ids=info.pop("cohort_ids", None),
        )

    def releases(self, fingerprint: str | None = None, include_cancelled: bool = True) -> list[LedgerEntry]:
        """All rows (of one cohort if ``fingerprint``; a unique prefix of >= 8 hex digits works), oldest first."""
        conn = self._connect()
        sql, args = "SELECT * FROM releases", []
        where = []
        if fingerprint is not None:
            where.append("fingerprint = ?")
            args.append(self.resolve_fingerprint(fingerprint))
        if not include_cancelled:
            where.append("status != 'cancelled'")
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._retry(lambda: conn.execute(sql + " ORDER BY id", args).fetchall())
        return [self._entry(r) for r in rows]

    def get(self, release_id: int) -> LedgerEntry:
        conn = self._connect()
        row = self._retry(lambda: conn.execute("SELECT * FROM releases WHERE id = ?", (int(release_id),)).fetchone())
        if row is None:
            raise GenoshareError(f"ledger {self.path}: no release with id {release_id}")
        return self._entry(row)

    def resolve_fingerprint(self, text: str) -> str:
        """A full fingerprint, or the one fingerprint in the ledger starting with ``text`` (>= 8 hex digits)."""
        fp = str(text).strip().lower()
        if len(fp) == 64:
            return fp
        if len(fp) < 8 or not set(fp) <= _HEX64:
            raise GenoshareError(f"not a release id or cohort fingerprint (>= 8 hex digits): {text!r}")
        conn = self._connect()
        rows = self._retry(
            lambda: conn.execute(
                "SELECT DISTINCT fingerprint FROM releases WHERE fingerprint >= ? AND fingerprint < ?", (fp, fp + "g")
            ).fetchall()
        )
        if not rows:
            raise GenoshareError(f"ledger {self.path}: no cohort with fingerprint {fp}...")
        if len(rows) > 1:
            raise GenoshareError(f"ledger {self.path}: fingerprint prefix {fp} is ambiguous ({len(rows)} cohorts)")
        return rows[0][0]

    def cumulative(
        self,
        fingerprint: str,
        conn: sqlite3.Connection | None = None,
        cohort_ids: str | None = None,
        exclude_id: int | None = None,
    ) -> dict:
        """Basic composition over the cohort's counted releases (recorded and reserved):
        {fingerprint, epsilon, delta, n_releases, n_test_releases, n_reserved, stages, composition}.
        With ``cohort_ids`` (:func:`cohort_ids_key`) a row counts if it has either key; ``exclude_id`` leaves
        one row out (the release being checked)."""
        fp = str(fingerprint).lower()
        conn = conn or self._connect()
        placeholders = ",".join("?" * len(_COUNTED))
        keys, args = "fingerprint = ?", [fp]
        if cohort_ids is not None:
            keys += " OR fingerprint = ? OR json_extract(details, '$.cohort_ids') = ?"
            args += [str(cohort_ids).lower()] * 2
        rows = conn.execute(
            f"SELECT * FROM releases WHERE ({keys}) AND status IN ({placeholders}) AND id != ? ORDER BY id",
            (*args, *_COUNTED, -1 if exclude_id is None else int(exclude_id)),
        ).fetchall()
        entries = [self._entry(r) for r in rows]
        stages: dict[str, dict[str, float]] = {}
        for e in entries:
            for name, s in e.stages.items():
                acc = stages.setdefault(name, {"epsilon": 0.0, "delta": 0.0})
                acc["epsilon"] += float(s.get("epsilon", 0.0))
                acc["delta"] += float(s.get("delta", 0.0))
        return {
            "fingerprint": fp,
            "epsilon": float(math.fsum(e.epsilon for e in entries)),
            "delta": float(min(1.0, math.fsum(e.delta for e in entries))),
            "n_releases": len(entries),
            "n_test_releases": sum(e.test_release for e in entries),
            "n_reserved": sum(e.status == "reserved" for e in entries),
            "stages": stages,
            "composition": COMPOSITION,
        }

    # -- budget -------------------------------------------------------------------------------------------------

    @staticmethod
    def _budget_error(cum: dict, new_epsilon: float, budget: float) -> GenoshareError:
        total = cum["epsilon"] + new_epsilon
        return GenoshareError(
            f"privacy budget exceeded for cohort {cum['fingerprint'][:12]}: {cum['n_releases']} earlier release(s) "
            f"spent epsilon {cum['epsilon']:.6g} ({COMPOSITION} composition), this release adds {new_epsilon:.6g}, "
            f"total {total:.6g} > budget {budget:.6g}"
        )

    @staticmethod
    def _over(cum: dict, new_epsilon: float, budget: float) -> bool:
        return cum["epsilon"] + new_epsilon > budget * (1 + 1e-12)

    def check_budget(self, fingerprint: str, new_epsilon: float, budget: float | None) -> dict:
        """Raise GenoshareError (one line with the numbers) if the cohort's cumulative epsilon plus
        ``new_epsilon`` exceeds ``budget``; return the cumulative dict otherwise (also when budget is None)."""
        new_epsilon = _check_eps(new_epsilon, "epsilon of the new release")
        cum = self._retry(lambda: self.cumulative(fingerprint))
        if budget is not None:
            budget = _check_eps(budget, "--budget")
            if self._over(cum, new_epsilon, budget):
                raise self._budget_error(cum, new_epsilon, budget)
        return cum

    # -- writing ------------------------------------------------------------------------------------------------

    def _insert(self, entry: LedgerEntry, status: str, budget: float | None) -> int:
        e = entry.normalised()
        e.status = status
        if budget is not None:
            budget = _check_eps(budget, "--budget")

        def fn(conn):
            if budget is not None:
                cum = self.cumulative(e.fingerprint, conn, e.cohort_ids)
                if self._over(cum, e.epsilon, budget):
                    raise self._budget_error(cum, e.epsilon, budget)
            values, details = _row_values(e), _details_text(e)
            cur = conn.execute(
                f"INSERT INTO releases ({', '.join(_COLUMNS)}, details, row_sha256) "
                f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
                (*values, details, _row_hash(_hashed(values, details))),
            )
            return int(cur.lastrowid)

        rid = self._write(fn)
        if status == "reserved" and (scope := _OPEN.get()) is not None:
            scope.append((self.path, rid))
        return rid

    def record(self, entry: LedgerEntry, budget: float | None = None) -> int:
        """Insert a finished release; with ``budget``, atomically refuse it if it would exceed the budget.
        Returns the new row id."""
        return self._insert(entry, "recorded", budget)

    def reserve(self, entry: LedgerEntry, budget: float | None = None) -> int:
        """Insert a release about to run (status ``reserved``, counted in the cumulative loss) after an atomic
        budget check; finish with :meth:`finalize` or :meth:`cancel`. Inside a function decorated with
        :func:`cancels_reservations_on_failure`, the reservation is deleted if that function raises."""
        return self._insert(entry, "reserved", budget)

    def _update(self, release_id: int, expect: tuple[str, ...], budget: float | None = None, **changes) -> LedgerEntry:
        def fn(conn):
            row = conn.execute("SELECT * FROM releases WHERE id = ?", (int(release_id),)).fetchone()
            if row is None:
                raise GenoshareError(f"ledger {self.path}: no release with id {release_id}")
            e = self._entry(row)
            if e.status not in expect:
                raise GenoshareError(f"ledger: release {release_id} is {e.status}, expected {' or '.join(expect)}")
            for k, v in changes.items():
                if v is not None:
                    setattr(e, k, v)
            e = e.normalised()
            if budget is not None:  # every other counted row under either key, this one with its final numbers
                cum = self.cumulative(e.fingerprint, conn, e.cohort_ids, exclude_id=e.id)
                if self._over(cum, e.epsilon, _check_eps(budget, "--budget")):
                    raise self._budget_error(cum, e.epsilon, budget)
            values, details = _row_values(e), _details_text(e)
            conn.execute(
                f"UPDATE releases SET {', '.join(c + ' = ?' for c in _COLUMNS)}, details = ?, "
                "row_sha256 = ? WHERE id = ?",
                (*values, details, _row_hash(_hashed(values, details)), int(release_id)),
            )
            return e

        return self._write(fn)

    def finalize(
        self,
        release_id: int,
        output_dir=None,
        output_checksum: str | None = None,
        entry: LedgerEntry | None = None,
        budget: float | None = None,
    ) -> LedgerEntry:
        """Mark a reservation as a finished release (optionally setting its output directory and checksum).

        ``entry`` (e.g. :func:`ledger_entry_from_manifest`) replaces the reservation's fingerprint, stages and
        description with the finished release's (the reservation's id key stays); with ``budget`` the budget is
        checked again in the same transaction over every row sharing either key (raises, leaving the row
        reserved, if a release recorded meanwhile under the genotype fingerprint only takes it over)."""
        changes = {}
        if entry is not None:
            entry = entry.normalised()
            changes = {
                k: getattr(entry, k)
                for k in (
                    "fingerprint",
                    "stages",
                    "epsilon",
                    "delta",
                    "cohort_path",
                    "af_source",
                    "tool_version",
                    "test_release",
                    "details",
                )
            }
            output_dir = output_dir if output_dir is not None else entry.output_dir
            output_checksum = output_checksum if output_checksum is not None else entry.output_checksum
        e = self._update(
            release_id,
            ("reserved",),
            budget=budget,
            status="recorded",
            output_dir=None if output_dir is None else str(output_dir),
            output_checksum=output_checksum,
            **changes,
        )
        _forget(self.path, release_id)
        return e

    def cancel(self, release_id: int) -> LedgerEntry:
        """Cancel a reservation (the release did not happen): kept for the record, no longer counted."""
        e = self._update(release_id, ("reserved",), status="cancelled")
        _forget(self.path, release_id)
        return e

    def discard(self, release_id: int) -> None:
        """Delete a reservation whose release failed (nothing was released: no row is left). A reservation
        left by a killed run is cancelled instead (:meth:`cancel`), since only the owner knows what happened."""

        def fn(conn):
            row = conn.execute("SELECT * FROM releases WHERE id = ?", (int(release_id),)).fetchone()
            if row is None or self._entry(row).status != "reserved":
                raise GenoshareError(f"ledger {self.path}: release {release_id} is not a reservation")
            conn.execute("DELETE FROM releases WHERE id = ?", (int(release_id),))

        self._write(fn)
        _forget(self.path, release_id)

    def check_integrity(self) -> None:
        """SQLite's integrity check plus every row's checksum; raises GenoshareError on damage."""
        conn = self._connect()
        res = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if res != ["ok"]:
            raise GenoshareError(f"ledger {self.path}: integrity check failed: {res[0]}")
        self.releases()


# ------------------------------------------------------------------------------------------------------------------
# reservations of a running release

#: (ledger path, row id) of the reservations made inside the innermost cancels_reservations_on_failure call
_OPEN: contextvars.ContextVar[list | None] = contextvars.ContextVar("genoshare_open_reservations", default=None)


def _forget(path: Path, release_id: int) -> None:
    scope = _OPEN.get()
    if scope is not None and (path, release_id) in scope:
        scope.remove((path, release_id))


def cancels_reservations_on_failure(fn):
    """Decorator for a release: every reservation it makes (:meth:`Ledger.reserve`) and does not finalize is
    deleted when it raises (an error, Ctrl-C, SIGTERM turned into SystemExit; the release removes its output
    first), so a failed release leaves no row. Only a run killed outright (SIGKILL, power loss) leaves a
    reservation, which keeps counting until ``genoshare ledger cancel ID``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        token = _OPEN.set([])
        try:
            return fn(*args, **kwargs)
        except BaseException:
            for path, rid in list(_OPEN.get()):
                try:
                    with Ledger(path) as led:
                        led.discard(rid)
                except GenoshareError:
                    pass  # the original error matters more; `genoshare ledger list` shows the row
            raise
        finally:
            _OPEN.reset(token)

    return wrapper


# ------------------------------------------------------------------------------------------------------------------
# from a manifest


def _stages_from_manifest(manifest: Mapping) -> dict:
    """Per-stage (epsilon, delta) of a release manifest.

    1. The accountant's privacy object (``privacy`` with a ``total`` and one entry per stage: xor, af, phenotype,
       each with epsilon and delta): every stage as the accountant states it. A stage with epsilon None is not
       covered by DP (e.g. restoration to published frequencies): recorded with epsilon 0 and ``dp: false``;
       the XOR stage without a finite epsilon (noiseless bits) cannot be accounted and is refused.
    2. An explicit stage list (``privacy.stages`` or ``accountant.stages``: a mapping name -> {epsilon, delta} or
       a list of {stage|name, epsilon, delta}).
    3. Otherwise the XOR stage (``epsilon_xor``, delta 0) plus a DP allele-frequency stage when ``af_source``
       carries its own epsilon/delta.
    """
    priv = manifest.get("privacy")
    if isinstance(priv, Mapping) and isinstance(priv.get("total"), Mapping):
        stages = {}
        for name, st in priv.items():
            if name in ("total", "neighbours", "stages") or not isinstance(st, Mapping) or "epsilon" not in st:
                continue
            if st["epsilon"] is None:
                if name == "xor":
                    raise GenoshareError(
                        "manifest: the XOR stage has no finite epsilon (noiseless bits); the "
                        "release cannot be accounted"
                    )
                stages[str(name)] = {"epsilon": 0.0, "delta": 0.0, "dp": False}
            else:
                stages[str(name)] = {"epsilon": st["epsilon"], "delta": st.get("delta") or 0.0}
                if st.get("in_clear"):  # e.g. phenotype columns released in the clear: not (fully) covered
                    stages[str(name)]["dp"] = False
        if stages:
            return _normalise_stages(stages)
    for holder in (priv, manifest.get("accountant")):
        if isinstance(holder, Mapping) and holder.get("stages"):
            return _normalise_stages(holder["stages"])
    stages = {}
    eps_xor = manifest.get("epsilon_xor")
    if eps_xor is None and isinstance(manifest.get("privacy"), Mapping):
        eps_xor = manifest["privacy"].get("epsilon_xor")
    if eps_xor is None:
        raise GenoshareError("manifest has no epsilon_xor and no privacy stages: cannot record it in the ledger")
    stages["xor"] = {"epsilon": _check_eps(eps_xor, "epsilon_xor"), "delta": 0.0}
    af = manifest.get("af_source")
    if isinstance(af, Mapping) and af.get("epsilon") is not None:
        stages["allele_frequencies"] = {
            "epsilon": _check_eps(af["epsilon"], "af_source epsilon"),
            "delta": _check_delta(af.get("delta") or 0.0, "af_source delta"),
        }
    return stages


def ledger_entry_from_manifest(
    manifest: Mapping, fingerprint: str, out_dir=None, *, checksum: bool = True, details: Mapping | None = None
) -> LedgerEntry:
    """A ledger entry for the release described by ``manifest`` (and written to ``out_dir``, whose checksum is
    taken unless ``checksum`` is False or ``out_dir`` is None). ``details``: the release's private facts
    (``details["cohort"]["path"]`` is the cohort path; older manifests carried it in ``inputs.cohort.path``)."""
    stages = _stages_from_manifest(manifest)
    af = manifest.get("af_source")
    if isinstance(af, Mapping):
        af_text = str(af.get("kind", "unknown"))
        if af.get("file"):
            af_text += f":{af['file']}"
    else:
        af_text = None if af is None else str(af)
    inputs = manifest.get("inputs") or {}
    cohort = inputs.get("cohort") if isinstance(inputs, Mapping) else None
    cohort_path = cohort.get("path") if isinstance(cohort, Mapping) else None
    private_cohort = (details or {}).get("cohort")
    if isinstance(private_cohort, Mapping) and private_cohort.get("path"):
        cohort_path = private_cohort["path"]
    if cohort_path is not None:
        cohort_path = str(Path(cohort_path).expanduser().absolute())
    out = None if out_dir is None else str(Path(out_dir).absolute())
    return LedgerEntry(
        fingerprint=fingerprint,
        stages=stages,
        cohort_path=cohort_path,
        af_source=af_text,
        output_dir=out,
        output_checksum=release_checksum(out_dir) if (checksum and out_dir is not None) else None,
        tool_version=str(manifest.get("version", __version__)),
        test_release=bool(manifest.get("reproducible_test_release", False)),
        details=dict(details or {}),
    ).normalised()


def reservation_entry(
    cohort_ids: str,
    privacy: Mapping,
    cohort_path=None,
    af_source: str | None = None,
    test_release: bool = False,
    output_dir=None,
) -> LedgerEntry:
    """The row a release reserves before any genotype work: under its :func:`cohort_ids_key` (also as the
    fingerprint until :meth:`Ledger.finalize` sets the genotype one), with the stages of its accountant's
    ``privacy`` object (the manifest's, so the numbers are those the finished release records)."""
    return LedgerEntry(
        fingerprint=cohort_ids,
        cohort_ids=cohort_ids,
        stages=_stages_from_manifest({"privacy": privacy}),
        cohort_path=None if cohort_path is None else str(Path(cohort_path).expanduser().absolute()),
        af_source=af_source,
        test_release=bool(test_release),
        status="reserved",
        output_dir=None if output_dir is None else str(Path(output_dir).absolute()),
    ).normalised()


def format_cumulative(cum: dict) -> str:
    """One line for the release command: the cohort's cumulative loss so far."""
    if not cum["n_releases"]:
        return f"ledger: first release of cohort {cum['fingerprint'][:12]}"
    extra = []
    if cum["n_test_releases"]:
        extra.append(f"{cum['n_test_releases']} test")
    if cum["n_reserved"]:
        extra.append(f"{cum['n_reserved']} in progress")
    more = f" ({', '.join(extra)})" if extra else ""
    return (
        f"ledger: cohort {cum['fingerprint'][:12]} has {cum['n_releases']} earlier release(s){more}: cumulative "
        f"epsilon {cum['epsilon']:.6g}, delta {cum['delta']:.3g} ({cum['composition']} composition)"
    )
