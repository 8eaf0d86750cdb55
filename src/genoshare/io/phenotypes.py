"""Phenotypes and covariates in a release: the owner's table (``--phenotypes FILE``) and the columns a release
lists (``--release-phenotype COL`` or ``COL:rr=EPS``). Nothing else from the table is released.

The table
---------
A header line, then one row per individual. Fields are tab-separated when the header holds a tab, else
comma-separated (quotes as in CSV) when it holds a comma, else separated by whitespace (PLINK's ``--pheno`` files).
A leading ``#`` of the header is ignored (PLINK 2 writes ``#FID``/``#IID``). The sample id column is the first of
``IID``, ``sample_id``, ``sample``, ``id`` (any case) in the header, else the first column; a ``FID`` column is
ignored. Missing values: ``NA``, ``nan``, an empty field, ``-9``. Sample ids must be unique.

Binary columns
--------------
A column is binary when every non-missing value in the file is 0, 1 or 2 (as numbers) and there is at least one:
PLINK coding (1 control, 2 case, 0 missing) when any value is 2, else 0/1 coding (0 control, 1 case). The coding is
decided on the whole file column, not on the cohort's rows: a PLINK-coded file whose cohort rows happen to hold only
1s (all controls) must not be read as all cases. A randomized column is written back in its own coding.

Matching
--------
Rows are matched to the cohort by sample id. Cohort individuals without a row are released with missing values;
rows of people outside the cohort are dropped. Both are counted in the manifest. ``phenotypes.tsv`` holds
``sample_id`` and the listed columns in the cohort's sample order, tab-separated, missing as ``NA``. Clear columns
hold the file's values as written (stripped); randomized columns ``0``/``1`` or ``1``/``2``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genoshare.errors import GenoshareError, InputError

PHENOTYPES_FILE = "phenotypes.tsv"
SAMPLE_COLUMN = "sample_id"
ID_COLUMNS = ("iid", "sample_id", "sample", "id")
FID_COLUMN = "fid"
MISSING_WORDS = frozenset({"", "na", "nan"})
MISSING_OUT = "NA"
CODINGS = {"01": "0/1 (0 control, 1 case)", "plink": "PLINK 1/2 (1 control, 2 case; 0 missing)"}


# ------------------------------------------------------------------------------------------------------------------
# --release-phenotype


@dataclass(frozen=True)
class ColumnRequest:
    name: str
    epsilon: float | None = None  # None: released in the clear

    @property
    def randomized(self) -> bool:
        return self.epsilon is not None


def parse_release_specs(specs) -> list[ColumnRequest]:
    """``COL`` (in the clear) or ``COL:rr=EPS`` (randomized response), each column at most once."""
    out: list[ColumnRequest] = []
    for spec in specs or ():
        spec = str(spec).strip()
        name, sep, option = spec.rpartition(":")
        if sep and option.lower().startswith("rr="):
            try:
                eps = float(option[3:])
            except ValueError:
                raise GenoshareError(f"--release-phenotype {spec!r}: rr= takes an epsilon, e.g. {name}:rr=1") from None
            if not (eps > 0 and math.isfinite(eps)):
                raise GenoshareError(f"--release-phenotype {spec!r}: the epsilon must be a positive number")
            req = ColumnRequest(name.strip(), eps)
        else:
            req = ColumnRequest(spec)
        if not req.name:
            raise GenoshareError(f"--release-phenotype {spec!r}: no column name (COL or COL:rr=EPS)")
        if any(r.name == req.name for r in out):
            raise GenoshareError(f"--release-phenotype lists column {req.name!r} twice")
        out.append(req)
    return out


# ------------------------------------------------------------------------------------------------------------------
# the table


def _is_missing(value: str) -> bool:
    if value.lower() in MISSING_WORDS:
        return True
    try:
        return float(value) == -9.0
    except ValueError:
        return False


@dataclass
class PhenotypeTable:
    path: Path
    id_column: str
    columns: list[str]  # releasable columns: neither the id nor FID
    ids: list[str]
    values: dict[str, list[str | None]]  # None = missing
    lines: list[int]  # file line of each row, for messages

    def binary_coding(self, column: str) -> str | None:
        """'01', 'plink', or None when the column is not binary (module docstring)."""
        codes = set()
        for v in self.values[column]:
            if v is None:
                continue
            try:
                x = float(v)
            except ValueError:
                return None
            if x not in (0.0, 1.0, 2.0):
                return None
            codes.add(int(x))
        if not codes:
            return None
        return "plink" if 2 in codes else "01"

    def not_binary_reason(self, column: str) -> str:
        for v, line in zip(self.values[column], self.lines):
            if v is None:
                continue
            try:
                ok = float(v) in (0.0, 1.0, 2.0)
            except ValueError:
                ok = False
            if not ok:
                return f"line {line} has {v[:40]!r}"
        return "it has no value"


def _split_rows(text: str):
    """(line number, fields) of every non-blank line, with the separator the header uses."""
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        return []
    header = lines[0][1]
    if "\t" in header:
        return [(n, [f.strip() for f in ln.split("\t")]) for n, ln in lines]
    if "," in header:
        return [(n, [f.strip() for f in next(csv.reader(io.StringIO(ln)))]) for n, ln in lines]
    return [(n, ln.split()) for n, ln in lines]


def read_phenotype_table(path) -> PhenotypeTable:
    from genoshare.io.validate import read_text

    path = Path(path)
    text = read_text(path, "a phenotype table")
    try:
        rows = _split_rows(text)
    except csv.Error as e:
        raise InputError(path, f"not a readable table ({e})") from None
    if not rows:
        raise InputError(path, "empty file (expected a header line naming the columns, then one row per individual)")
    header = rows[0][1]
    header[0] = header[0].lstrip("#").strip()
    if any(not h for h in header):
        raise InputError(path, "the header has an empty column name")
    dup = next((h for i, h in enumerate(header) if h in header[:i]), None)
    if dup is not None:
        raise InputError(path, f"the header names column {dup!r} twice")
    lower = [h.lower() for h in header]
    fid = lower.index(FID_COLUMN) if FID_COLUMN in lower else None
    candidates = [lower.index(c) for c in ID_COLUMNS if c in lower] + [i for i in range(len(header)) if i != fid]
    if not candidates:
        raise InputError(path, "no sample id column (the header names only FID)")
    id_col = candidates[0]
    columns = [h for i, h in enumerate(header) if i not in (id_col, fid)]
    ids: list[str] = []
    lines: list[int] = []
    values: dict[str, list[str | None]] = {c: [] for c in columns}
    seen: dict[str, int] = {}
    for lineno, fields in rows[1:]:
        if len(fields) != len(header):
            raise InputError(path, f"line {lineno} has {len(fields)} fields, the header {len(header)}")
        sid = fields[id_col]
        if _is_missing(sid):
            raise InputError(path, f"line {lineno}: no sample id")
        if sid in seen:
            raise InputError(path, f"duplicate sample id {sid[:40]!r} (lines {seen[sid]} and {lineno})")
        seen[sid] = lineno
        ids.append(sid)
        lines.append(lineno)
        for i, c in enumerate(header):
            if c in values:
                values[c].append(None if _is_missing(fields[i]) else fields[i])
    if not ids:
        raise InputError(path, "no individuals: the file has a header but no rows")
    return PhenotypeTable(path, header[id_col], columns, ids, values, lines)


# ------------------------------------------------------------------------------------------------------------------
# what a release does with it


@dataclass
class PhenotypePlan:
    """The checked request: made before any genotype work, so a bad table or spec stops the release at once."""

    table: PhenotypeTable | None = None
    requests: list[ColumnRequest] = field(default_factory=list)
    codings: dict[str, str | None] = field(default_factory=dict)

    @property
    def released(self) -> bool:
        return bool(self.requests)

    def privacy_entry(self) -> dict | None:
        """The privacy object's phenotype stage (None: nothing released)."""
        from genoshare.privacy.phenotype import phenotype_entry

        if not self.requests:
            return None
        return phenotype_entry(
            rr={r.name: r.epsilon for r in self.requests if r.randomized},
            clear=[r.name for r in self.requests if not r.randomized],
        )

    def apply(self, sample_ids, master: bytes) -> ReleasedPhenotypes:
        """The released columns in cohort order: randomized response with s0 = the cohort index, so the flips
        depend on the key and the individual's position only (never on chunking)."""
        from genoshare.privacy.phenotype import derive_phenotype_key, randomize_binary

        t = self.table
        sample_ids = [str(s) for s in sample_ids]
        row = {sid: i for i, sid in enumerate(t.ids)}
        take = [row.get(s) for s in sample_ids]
        cohort = set(sample_ids)
        key = derive_phenotype_key(master)
        columns: dict[str, list[str]] = {}
        for req in self.requests:
            raw = [None if i is None else t.values[req.name][i] for i in take]
            if req.randomized:
                coding = self.codings[req.name]
                flipped = randomize_binary(_to01(raw, coding), req.epsilon, key, req.name, s0=0)
                columns[req.name] = _from01(flipped, coding)
            else:
                columns[req.name] = [MISSING_OUT if v is None else v for v in raw]
        return ReleasedPhenotypes(
            self,
            sample_ids,
            columns,
            n_without_row=sum(i is None for i in take),
            n_dropped=sum(s not in cohort for s in t.ids),
        )


def prepare_phenotypes(path, specs) -> PhenotypePlan:
    """Check --phenotypes / --release-phenotype: every listed column exists, randomized ones are binary."""
    try:
        requests = parse_release_specs(specs)
    except GenoshareError as e:
        if path is None:
            raise
        raise InputError(path, str(e)) from None
    if requests and path is None:
        raise GenoshareError(
            f"--release-phenotype {requests[0].name!r} needs --phenotypes FILE (the table holding the column)"
        )
    if path is None:
        return PhenotypePlan()
    table = read_phenotype_table(path)
    codings = {}
    for req in requests:
        if req.name not in table.columns:
            if req.name == table.id_column or req.name.lower() == FID_COLUMN:
                raise InputError(path, f"column {req.name!r} is the sample id / family id, not a phenotype")
            raise InputError(path, f"no column {req.name!r} (columns: {', '.join(table.columns) or 'none'})")
        if req.name == SAMPLE_COLUMN or "\t" in req.name or "\n" in req.name:
            raise InputError(
                path,
                f"column {req.name!r} cannot be a column of {PHENOTYPES_FILE} (its first column is "
                f"{SAMPLE_COLUMN}; names hold no tab or line break): rename it",
            )
        codings[req.name] = table.binary_coding(req.name)
        if req.randomized and codings[req.name] is None:
            raise InputError(
                path,
                f"column {req.name!r} is not binary ({table.not_binary_reason(req.name)}); "
                "randomized response needs 0/1 or PLINK 1/2 codes",
            )
        if req.randomized:
            from genoshare.privacy.phenotype import rr_threshold

            try:
                rr_threshold(req.epsilon)
            except GenoshareError as e:
                raise GenoshareError(f"--release-phenotype {req.name}: {e}") from None
        bad = next((v for v in table.values[req.name] if v is not None and ("\t" in v or "\n" in v)), None)
        if bad is not None:
            raise InputError(path, f"column {req.name!r} holds a value with a tab or line break ({bad[:40]!r})")
    return PhenotypePlan(table, requests, codings)


def _to01(raw, coding: str) -> np.ndarray:
    """0/1 with NaN for missing; PLINK's 0 is missing."""
    if coding == "plink":
        table = {1.0: 0.0, 2.0: 1.0}
    else:
        table = {0.0: 0.0, 1.0: 1.0}
    return np.array([np.nan if v is None else table.get(float(v), np.nan) for v in raw], dtype=np.float64)


def _from01(values: np.ndarray, coding: str) -> list[str]:
    codes = ("1", "2") if coding == "plink" else ("0", "1")
    return [MISSING_OUT if np.isnan(v) else codes[int(v)] for v in values]


def plink_codes(values: list[str], coding: str) -> list[int]:
    """Released values of a binary column as a .fam phenotype: 1 control, 2 case, -9 missing."""
    table = {"1": 1, "2": 2} if coding == "plink" else {"0": 1, "1": 2}
    out = []
    for v in values:
        try:
            out.append(table.get(str(int(float(v))), -9))
        except ValueError:
            out.append(-9)
    return out


@dataclass
class ReleasedPhenotypes:
    plan: PhenotypePlan
    sample_ids: list[str]
    columns: dict[str, list[str]]
    n_without_row: int
    n_dropped: int

    def write(self, path: Path) -> None:
        names = list(self.columns)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write("\t".join([SAMPLE_COLUMN, *names]) + "\n")
            for i, sid in enumerate(self.sample_ids):
                fh.write("\t".join([sid, *(self.columns[c][i] for c in names)]) + "\n")

    def binary_columns(self) -> list[str]:
        return [r.name for r in self.plan.requests if self.plan.codings.get(r.name) is not None]

    def fam_phenotype(self) -> tuple[list[int] | None, dict]:
        """(PLINK codes for release.fam column 6, or None for -9; the manifest's ``plink_fam`` entry)."""
        binary = self.binary_columns()
        if len(binary) == 1:
            name = binary[0]
            return (
                plink_codes(self.columns[name], self.plan.codings[name]),
                {"column": name, "note": f"column 6 holds the released {name!r} (1 control, 2 case, -9 missing)"},
            )
        why = (
            "no released column is binary"
            if not binary
            else (
                f"{len(binary)} released columns are binary ({', '.join(repr(b) for b in binary)}); use "
                f"{PHENOTYPES_FILE} with --pheno"
            )
        )
        return None, {"column": None, "note": f"column 6 is -9 (missing): {why}"}

    def manifest_entry(self, plink_fam: dict | None = None) -> dict:
        """The manifest's top-level ``phenotypes`` object (counts only: nothing per individual)."""
        cols = []
        for req in self.plan.requests:
            coding = self.plan.codings.get(req.name)
            entry = {
                "name": req.name,
                "release": "randomized response" if req.randomized else "in the clear (not protected)",
                "coding": CODINGS[coding] if coding else "not binary",
                "n_missing": sum(v == MISSING_OUT for v in self.columns[req.name]),
            }
            if req.randomized:
                entry["epsilon_requested"] = req.epsilon
            cols.append(entry)
        entry = {
            "file": PHENOTYPES_FILE,
            "source": self.plan.table.path.name,  # the path is private (ledger)
            "columns": cols,
            "cohort_without_row": self.n_without_row,
            "rows_not_in_cohort_dropped": self.n_dropped,
        }
        if plink_fam is not None:
            entry["plink_fam"] = plink_fam
        return entry

    def statement(self) -> str:
        """The privacy object's ``phenotypes`` text."""
        parts = []
        for req in self.plan.requests:
            if req.randomized:
                parts.append(
                    f"{req.name!r} by randomized response (epsilon {req.epsilon:g}, accounted in the phenotype stage)"
                )
            else:
                parts.append(f"{req.name!r} in the clear (not protected by differential privacy)")
        return (
            f"released in {PHENOTYPES_FILE} from {self.plan.table.path.name}: {'; '.join(parts)}. "
            f"{self.n_without_row} cohort individual(s) have no row in the file and are released as missing; "
            f"{self.n_dropped} row(s) of people not in the cohort were dropped. Missing values stay missing: "
            "which individuals lack a value is not protected. No other column of the file is released."
        )
