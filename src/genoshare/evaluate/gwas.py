"""Case/control association tests per SNP (SPEC 5), SNP retention, and blockwise GWAS over files.

All tests start from per-group genotype counts ((m, 3): genotypes 0, 1, 2 per SNP), so they work the same on a
whole matrix or on blocks of variants. Missing genotypes are excluded per SNP.

- ``allelic``: Pearson chi-square (no continuity correction) on the 2x2 table of allele counts, 1 df; what PLINK
  1.9 ``--assoc`` prints as CHISQ / P.
- ``genotypic``: Pearson chi-square on the 2x3 table of genotype counts; genotype columns empty in both groups are
  dropped (df = non-empty columns - 1); what PLINK 1.9 ``--model --cell 0`` prints on its GENO rows.
- ``dominant``: log odds ratio of carrying an ALT allele (1 or 2 copies vs 0) with 0.5 added to every cell, over
  its standard error; two-sided normal p. The statistic is the signed z.

A statistic and p are NaN (written "NA") when a group has no called genotype at the SNP or the table has fewer
than two non-empty columns (monomorphic in both groups).

Files (:func:`gwas_counts`): a CSV matrix (read in memory: the small-cohort format), a VCF Zarr store (read one
(variant chunk, sample chunk) at a time: memory is bounded by a few store chunks whatever the cohort size), a
release directory (its ``release.vcz`` or ``release.csv.gz``), or PLINK / VCF files (ingested to a temporary
VCF Zarr store first). Two designs:

- one cohort with a phenotype (``phenotype=TSV``, or the .fam of a PLINK cohort): cases and controls are samples of
  the same file, matched by id;
- cases against a separate control set (``controls=FILE``): SNPs are matched by variant id; when both files carry
  real REF/ALT alleles, sites whose alleles are swapped are re-oriented and sites with other alleles are dropped.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from scipy import stats

from genoshare.errors import GenoshareError, InputError

__all__ = [
    "TESTS",
    "genotype_counts",
    "allelic_test",
    "genotypic_test",
    "dominant_or_test",
    "association",
    "run_test",
    "retention",
    "count_by_group",
    "count_calls_by_group",
    "read_phenotype",
    "GenotypeSource",
    "open_genotypes",
    "GwasCounts",
    "gwas_counts",
    "gwas_table",
    "run_gwas",
    "write_table",
]


# --------------------------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------------------------


def genotype_counts(G: np.ndarray) -> np.ndarray:
    """(m, n) int8 with -1 missing -> (m, 3) counts of genotypes 0, 1, 2."""
    return np.stack([(G == g).sum(axis=1) for g in (0, 1, 2)], axis=1).astype(np.float64)


def _chi2_table(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson chi-square of (m, 2, k) tables without continuity correction; columns empty
    in both rows are dropped (df = non-empty columns - 1). NaN where df < 1."""
    obs = np.asarray(obs, dtype=np.float64)
    col = obs.sum(axis=1)  # (m, k)
    row = obs.sum(axis=2)  # (m, 2)
    total = row.sum(axis=1)  # (m,)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = row[:, :, None] * col[:, None, :] / total[:, None, None]
        terms = np.where(expected > 0, (obs - expected) ** 2 / expected, 0.0)
    stat = terms.sum(axis=(1, 2))
    df = (col > 0).sum(axis=1) - 1
    ok = (df >= 1) & (row.min(axis=1) > 0)
    stat = np.where(ok, stat, np.nan)
    p = np.where(ok, stats.chi2.sf(stat, np.maximum(df, 1)), np.nan)
    return stat, p


def allelic_test(case_counts: np.ndarray, control_counts: np.ndarray):
    """Allelic chi-square on the 2x2 allele table (what PLINK 1.9 --assoc reports)."""

    def alleles(c):
        c = np.asarray(c, dtype=np.float64)
        return np.stack([2 * c[:, 2] + c[:, 1], 2 * c[:, 0] + c[:, 1]], axis=1)

    return _chi2_table(np.stack([alleles(case_counts), alleles(control_counts)], axis=1))


def genotypic_test(case_counts: np.ndarray, control_counts: np.ndarray):
    """Genotypic 2x3 chi-square (PLINK 1.9 --model GENO)."""
    return _chi2_table(np.stack([case_counts, control_counts], axis=1))


def dominant_or_test(case_counts: np.ndarray, control_counts: np.ndarray):
    """Dominant-model odds ratio z test with 0.5 added to every cell; returns (z, p)."""
    case_counts = np.asarray(case_counts, dtype=np.float64)
    control_counts = np.asarray(control_counts, dtype=np.float64)
    a = case_counts[:, 1] + case_counts[:, 2] + 0.5
    b = case_counts[:, 0] + 0.5
    c = control_counts[:, 1] + control_counts[:, 2] + 0.5
    d = control_counts[:, 0] + 0.5
    z = np.log(a * d / (b * c)) / np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return z, 2 * stats.norm.sf(np.abs(z))


TESTS = {"allelic": allelic_test, "genotypic": genotypic_test, "dominant": dominant_or_test}


def _check_test(test: str) -> None:
    if test not in TESTS:
        raise GenoshareError(f"unknown test {test!r} (choose from {', '.join(TESTS)})")


def run_test(case_counts: np.ndarray, control_counts: np.ndarray, test: str = "allelic"):
    """(statistic, p) of one test from (m, 3) genotype counts per group; NaN where a group has no call."""
    _check_test(test)
    stat, p = TESTS[test](case_counts, control_counts)
    empty = (np.asarray(case_counts).sum(axis=1) == 0) | (np.asarray(control_counts).sum(axis=1) == 0)
    if empty.any():
        stat = np.where(empty, np.nan, stat)
        p = np.where(empty, np.nan, p)
    return stat, p


def association(cases: np.ndarray, controls: np.ndarray, test: str = "allelic"):
    """Run one test on variant-major case and control matrices; returns (statistic, p)."""
    return TESTS[test](genotype_counts(cases), genotype_counts(controls))


def retention(p_original: np.ndarray, p_release: np.ndarray, alpha: float = 0.05, tau: float = 0.8) -> float:
    """|S_rep and S_ver| / |S_rep| with S_rep = {p < alpha} on the original and S_ver =
    {p < alpha / tau} on the release (the verifier's relaxed threshold). NaN if S_rep is empty."""
    rep = np.nan_to_num(p_original, nan=1.0) < alpha
    ver = np.nan_to_num(p_release, nan=1.0) < alpha / tau
    return float((rep & ver).sum() / rep.sum()) if rep.any() else float("nan")


# --------------------------------------------------------------------------------------------------------------
# counting genotypes per group, blockwise
# --------------------------------------------------------------------------------------------------------------


def count_by_group(D: np.ndarray, labels: np.ndarray, n_groups: int = 2) -> np.ndarray:
    """Dosage block D (v, s) int8 (-1 missing) and labels (s,) in -1..n_groups-1 (-1: not counted) ->
    (v, n_groups, 3) int64 counts of genotypes 0, 1, 2 per group."""
    D = np.asarray(D)
    labels = np.asarray(labels)
    out = np.zeros((D.shape[0], n_groups, 3), dtype=np.int64)
    for g in range(n_groups):
        sel = labels == g
        if not sel.any():
            continue
        sub = D if sel.all() else D[:, sel]
        for x in range(3):
            out[:, g, x] = np.count_nonzero(sub == x, axis=1)
    return out


@numba.njit(cache=True, nogil=True)
def _count_calls(gt, labels, out):  # pragma: no cover - compiled
    """Add the genotype counts of a (v, s, 2) call block to out (v, n_groups, 3); calls < 0 are missing."""
    v, s = gt.shape[0], gt.shape[1]
    for j in range(v):
        for i in range(s):
            g = labels[i]
            if g < 0:
                continue
            a = gt[j, i, 0]
            b = gt[j, i, 1]
            if a < 0 or b < 0:
                continue
            out[j, g, (a > 0) + (b > 0)] += 1


def count_calls_by_group(gt: np.ndarray, labels: np.ndarray, n_groups: int = 2) -> np.ndarray:
    """Diploid calls (v, s, 2) (allele indices, < 0 missing) and labels (s,) -> (v, n_groups, 3) int64 counts of
    ALT dosage 0, 1, 2 per group (numba; releases the GIL)."""
    gt = np.ascontiguousarray(gt)
    out = np.zeros((gt.shape[0], n_groups, 3), dtype=np.int64)
    _count_calls(gt, np.ascontiguousarray(labels, dtype=np.int64), out)
    return out


# --------------------------------------------------------------------------------------------------------------
# phenotypes
# --------------------------------------------------------------------------------------------------------------

CASE, CONTROL = 0, 1  # group indices in count arrays
_MISSING_PHENO = frozenset({"", "na", "nan", ".", "-9"})


def _pheno_labels(values: list[str], path, where: list[str]) -> list[int]:
    """Phenotype strings -> group labels (CASE, CONTROL, -1 missing).

    PLINK coding (1 control, 2 case; 0 / -9 / NA missing) when any value is 2; otherwise 0/1 coding (0 control,
    1 case). The words case / control are accepted too. Anything else (a quantitative trait) is an error.
    """
    norm = [v.strip().lower() for v in values]
    words = {"case": CASE, "control": CONTROL}
    numeric = []
    for v, w in zip(norm, where):
        if v in _MISSING_PHENO or v in words:
            numeric.append(None)
            continue
        try:
            x = float(v)
        except ValueError:
            raise InputError(
                path, f"{w}: phenotype {v[:40]!r} is not 1/2 (PLINK), 0/1, case/control or missing"
            ) from None
        if x not in (0.0, 1.0, 2.0):
            raise InputError(
                path,
                f"{w}: phenotype {v[:40]!r} is not a case/control code "
                "(1 control / 2 case, or 0 control / 1 case; -9, 0 or NA missing)",
            )
        numeric.append(int(x))
    plink = any(x == 2 for x in numeric if x is not None)
    out = []
    for v, x in zip(norm, numeric):
        if v in words:
            out.append(words[v])
        elif x is None:
            out.append(-1)
        elif plink:
            out.append({1: CONTROL, 2: CASE}.get(x, -1))
        else:
            out.append({0: CONTROL, 1: CASE}[x])
    return out


def read_phenotype(path) -> dict[str, int]:
    """A case/control phenotype TSV -> {sample id: CASE or CONTROL} (missing phenotypes left out).

    Tab-separated with a header naming the columns ``id`` (or ``iid`` / ``sample``) and ``phenotype`` (or
    ``pheno``); other columns are ignored. Codes: see :func:`_pheno_labels`.
    """
    from genoshare.io.validate import read_text

    path = Path(path)
    text = read_text(path, "a phenotype TSV")
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise InputError(path, "empty file (expected a header 'id<TAB>phenotype' and one row per individual)")
    header = [h.strip().lower() for h in lines[0][1].split("\t")]
    id_col = next((header.index(c) for c in ("id", "iid", "sample", "sample_id") if c in header), None)
    ph_col = next((header.index(c) for c in ("phenotype", "pheno") if c in header), None)
    if id_col is None or ph_col is None:
        raise InputError(path, "header must name the columns 'id' and 'phenotype' (tab-separated)")
    ids, values, where = [], [], []
    seen: dict[str, int] = {}
    for lineno, ln in lines[1:]:
        fields = ln.split("\t")
        if len(fields) <= max(id_col, ph_col):
            raise InputError(path, f"line {lineno} has {len(fields)} fields, fewer than the header")
        sid = fields[id_col].strip()
        if not sid:
            raise InputError(path, f"line {lineno}: empty id")
        if sid in seen:
            raise InputError(path, f"duplicate id {sid[:40]!r} (lines {seen[sid]} and {lineno})")
        seen[sid] = lineno
        ids.append(sid)
        values.append(fields[ph_col])
        where.append(f"line {lineno}")
    if not ids:
        raise InputError(path, "no individuals: the file has a header but no data rows")
    labels = _pheno_labels(values, path, where)
    return {s: lab for s, lab in zip(ids, labels) if lab >= 0}


def _read_fam_phenotype(fam: Path) -> dict[str, int]:
    rows = [ln.split() for ln in fam.read_text().splitlines() if ln.strip()]
    ids = [r[1] for r in rows]
    labels = _pheno_labels([r[5] for r in rows], fam, [f"line {i + 1}" for i in range(len(rows))])
    return {s: lab for s, lab in zip(ids, labels) if lab >= 0}


# --------------------------------------------------------------------------------------------------------------
# genotype sources
# --------------------------------------------------------------------------------------------------------------

_PLACEHOLDER_ALLELES = frozenset({"N", "<ALT>", "", ".", "0"})


@dataclass
class GenotypeSource:
    """Genotypes of one file, read blockwise. ``alleles`` is (m, 2) REF/ALT or None when the file has none
    (CSV matrices). ``pheno`` holds the phenotype of a PLINK .fam, if the input was PLINK."""

    path: Path
    kind: str  # "csv" or "vcz"
    sample_ids: list[str]
    variant_ids: np.ndarray
    alleles: np.ndarray | None = None
    matrix: np.ndarray | None = None  # csv: (m, n) int8
    vcz: object = None  # VczInfo
    pheno: dict | None = None
    block: int = 4096  # variants per block when counting an in-memory matrix

    @property
    def n_variants(self) -> int:
        return len(self.variant_ids)

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    def count(self, labels: np.ndarray, n_groups: int = 2, threads: int | None = None) -> np.ndarray:
        """(m, n_groups, 3) int64 genotype counts per group; labels (n_samples,) in -1..n_groups-1."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (self.n_samples,):
            raise ValueError("labels must have one entry per sample")
        m = self.n_variants
        out = np.zeros((m, n_groups, 3), dtype=np.int64)
        if self.kind == "csv":
            for v0 in range(0, m, self.block):
                v1 = min(v0 + self.block, m)
                out[v0:v1] = count_by_group(self.matrix[v0:v1], labels, n_groups)
            return out
        return _count_vcz(self.vcz, labels, n_groups, out, threads)


def _count_vcz(info, labels: np.ndarray, n_groups: int, out: np.ndarray, threads: int | None) -> np.ndarray:
    """Stream a VCF Zarr store in (variant chunk, sample chunk) blocks; sample chunks without a labelled
    sample are never read. Memory: about ``threads`` x (one chunk of calls + its dosage)."""
    from genoshare.io.vcz import open_group

    gt = open_group(info.path)["call_genotype"]
    m, n = info.n_variants, info.n_samples
    cv, cs = max(1, info.chunks[0]), max(1, info.chunks[1])
    sranges = [(s0, min(s0 + cs, n)) for s0 in range(0, n, cs)]
    sranges = [(a, b) for a, b in sranges if (labels[a:b] >= 0).any()]

    def task(v0: int) -> None:
        v1 = min(v0 + cv, m)
        acc = np.zeros((v1 - v0, n_groups, 3), dtype=np.int64)
        for s0, s1 in sranges:
            acc += count_calls_by_group(gt[v0:v1, s0:s1], labels[s0:s1], n_groups)
        out[v0:v1] = acc

    starts = list(range(0, m, cv))
    nthreads = min(threads or min(4, os.cpu_count() or 1), max(1, len(starts)))
    try:
        if nthreads <= 1:
            for v0 in starts:
                task(v0)
        else:
            with ThreadPoolExecutor(max_workers=nthreads) as pool:
                list(pool.map(task, starts))
    except (OSError, ValueError, RuntimeError) as e:
        raise InputError(
            info.path, f"cannot read call_genotype ({' '.join(str(e).split()) or type(e).__name__})"
        ) from None
    return out


def _real_alleles(alleles: np.ndarray) -> np.ndarray | None:
    a = np.asarray(alleles, dtype=object)
    if a.ndim != 2 or a.shape[1] < 2:
        return None
    a = a[:, :2]
    if np.isin(a, list(_PLACEHOLDER_ALLELES)).all(axis=1).any() or np.isin(a[:, 1], ["<ALT>"]).any():
        return None
    return a


def _release_file(d: Path) -> Path | None:
    for name in ("release.vcz", "release.csv.gz", "release.csv"):
        if (d / name).exists():
            return d / name
    return None


@contextlib.contextmanager
def open_genotypes(path, workdir=None):
    """A :class:`GenotypeSource` for a CSV matrix, VCF Zarr store, release directory, PLINK fileset or VCF.

    PLINK and VCF inputs are ingested into a temporary VCF Zarr store under ``workdir`` (default: the system
    temporary directory, ``TMPDIR``), removed on exit.
    """
    from genoshare.io.ingest import detect_format

    path = Path(path)
    if path.is_dir() and not ((path / ".zgroup").exists() or (path / "zarr.json").exists()):
        inner = _release_file(path)
        if inner is None:
            raise InputError(
                path,
                "is a directory but neither a VCF Zarr store nor a release directory "
                "(no release.vcz or release.csv.gz)",
            )
        path = inner
    kind = detect_format(path)
    if kind == "csv":
        from genoshare.io.csvmatrix import read_matrix

        mat = read_matrix(path)
        yield GenotypeSource(
            path=path,
            kind="csv",
            sample_ids=list(mat.sample_ids),
            variant_ids=np.asarray(mat.variant_ids, dtype=object),
            matrix=mat.genotypes,
        )
        return
    if kind == "vcz":
        from genoshare.io.vcz import open_vcz

        info = open_vcz(path)
        yield _vcz_source(info, path)
        return
    # PLINK or VCF: ingest to a temporary store
    from genoshare.io.ingest import ingest
    from genoshare.io.vcz import open_vcz

    pheno = None
    if kind == "plink":
        from genoshare.io.validate import check_plink

        fs = check_plink(path)
        pheno = _read_fam_phenotype(fs.fam)
    tmp = Path(tempfile.mkdtemp(prefix="genoshare-gwas-", dir=workdir))
    try:
        target = tmp / "input.vcz"
        ingest(path, target)
        src = _vcz_source(open_vcz(target), path)
        src.pheno = pheno
        yield src
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _vcz_source(info, path: Path) -> GenotypeSource:
    if info.ploidy != 2:
        raise InputError(path, f"has ploidy {info.ploidy}; only diploid genotypes are supported")
    return GenotypeSource(
        path=path,
        kind="vcz",
        sample_ids=list(info.sample_ids),
        variant_ids=np.asarray(info.variant_id, dtype=object),
        alleles=_real_alleles(info.variant_allele),
        vcz=info,
    )


# --------------------------------------------------------------------------------------------------------------
# GWAS on files
# --------------------------------------------------------------------------------------------------------------


@dataclass
class GwasCounts:
    """Genotype counts (m, 3) of cases and controls per SNP, in the order of ``variant_ids``."""

    variant_ids: np.ndarray
    cases: np.ndarray
    controls: np.ndarray
    n_cases: int  # individuals in the case group
    n_controls: int
    design: str  # "phenotype" or "controls"
    notes: dict = field(default_factory=dict)

    def test(self, test: str):
        return run_test(self.cases, self.controls, test)


def _unique_index(ids: np.ndarray, path: Path) -> dict[str, int]:
    pos: dict[str, int] = {}
    for j, v in enumerate(ids.tolist()):
        if v in pos:
            raise InputError(
                path,
                f"duplicate variant id {str(v)[:40]!r} (variants {pos[v] + 1} and {j + 1}); "
                "cases and controls are matched by variant id",
            )
        pos[v] = j
    return pos


def match_variants(cases: GenotypeSource, controls: GenotypeSource):
    """(case index, control index, swapped (bool per matched SNP), notes): SNPs of the cases file found in the
    controls file by id, in the cases' order. Raises InputError if none match."""
    same = cases.n_variants == controls.n_variants and np.array_equal(cases.variant_ids, controls.variant_ids)
    if same:
        ci = np.arange(cases.n_variants)
        ki = ci.copy()
    else:
        pos = _unique_index(controls.variant_ids, controls.path)
        _unique_index(cases.variant_ids, cases.path)
        pairs = [(j, pos[v]) for j, v in enumerate(cases.variant_ids.tolist()) if v in pos]
        if not pairs:
            raise InputError(controls.path, f"no variant id in common with {cases.path}")
        ci = np.fromiter((a for a, _ in pairs), dtype=np.int64, count=len(pairs))
        ki = np.fromiter((b for _, b in pairs), dtype=np.int64, count=len(pairs))
    notes = {
        "matched": int(ci.size),
        "only_in_cases": int(cases.n_variants - ci.size),
        "only_in_controls": int(controls.n_variants - ki.size),
        "allele_swapped": 0,
        "allele_mismatch": 0,
        "alleles_checked": cases.alleles is not None and controls.alleles is not None,
    }
    swapped = np.zeros(ci.size, dtype=bool)
    if notes["alleles_checked"]:
        a, b = cases.alleles[ci], controls.alleles[ki]
        same_al = (a[:, 0] == b[:, 0]) & (a[:, 1] == b[:, 1])
        swapped = (a[:, 0] == b[:, 1]) & (a[:, 1] == b[:, 0]) & ~same_al
        keep = same_al | swapped
        notes["allele_swapped"] = int(swapped.sum())
        notes["allele_mismatch"] = int((~keep).sum())
        if not keep.any():
            raise InputError(controls.path, f"no SNP has the same REF/ALT alleles as in {cases.path}")
        ci, ki, swapped = ci[keep], ki[keep], swapped[keep]
    return ci, ki, swapped, notes


def _labels_from(source: GenotypeSource, pheno: dict[str, int], pheno_path) -> tuple[np.ndarray, dict]:
    labels = np.fromiter((pheno.get(s, -1) for s in source.sample_ids), dtype=np.int64, count=source.n_samples)
    n_case, n_ctrl = int((labels == CASE).sum()), int((labels == CONTROL).sum())
    notes = {
        "samples": source.n_samples,
        "without_phenotype": int((labels < 0).sum()),
        "phenotype_ids_not_in_cohort": int(len(set(pheno) - set(source.sample_ids))),
    }
    if n_case + n_ctrl == 0:
        raise InputError(
            pheno_path,
            f"no individual of {source.path} has a case/control phenotype here "
            "(ids are matched to the cohort's sample ids)",
        )
    if n_case == 0:
        raise InputError(pheno_path, f"no case among the {n_ctrl} individuals of {source.path} with a phenotype")
    if n_ctrl == 0:
        raise InputError(pheno_path, f"no control among the {n_case} individuals of {source.path} with a phenotype")
    return labels, notes


def counts_with_phenotype(source: GenotypeSource, pheno: dict[str, int], pheno_path, threads=None) -> GwasCounts:
    labels, notes = _labels_from(source, pheno, pheno_path)
    c = source.count(labels, 2, threads)
    return GwasCounts(
        variant_ids=source.variant_ids,
        cases=c[:, CASE],
        controls=c[:, CONTROL],
        n_cases=int((labels == CASE).sum()),
        n_controls=int((labels == CONTROL).sum()),
        design="phenotype",
        notes=notes,
    )


def counts_with_controls(
    cases: GenotypeSource, controls: GenotypeSource, threads=None, control_counts: np.ndarray | None = None
) -> GwasCounts:
    """Cases file against a separate controls file; ``control_counts`` (controls.n_variants, 3) may be given
    to skip counting the controls again."""
    ci, ki, swapped, notes = match_variants(cases, controls)
    shared = set(cases.sample_ids) & set(controls.sample_ids)
    if shared:
        raise InputError(
            controls.path,
            f"shares {len(shared)} individual id(s) with the cases file "
            f"(e.g. {sorted(shared)[0]!r}); cases and controls must be disjoint",
        )
    cc = cases.count(np.zeros(cases.n_samples, dtype=np.int64), 1, threads)[:, 0]
    if control_counts is None:
        control_counts = controls.count(np.zeros(controls.n_samples, dtype=np.int64), 1, threads)[:, 0]
    kc = control_counts[ki].copy()
    kc[swapped] = kc[swapped][:, ::-1]
    return GwasCounts(
        variant_ids=cases.variant_ids[ci],
        cases=cc[ci],
        controls=kc,
        n_cases=cases.n_samples,
        n_controls=controls.n_samples,
        design="controls",
        notes=notes,
    )


def gwas_counts(cases, controls=None, phenotype=None, *, threads: int | None = None, workdir=None) -> GwasCounts:
    """Genotype counts per group for a cohort file with a phenotype (``phenotype`` TSV, or the .fam of a PLINK
    cohort when neither ``controls`` nor ``phenotype`` is given) or for cases against a separate ``controls``
    file. Files: see :func:`open_genotypes`."""
    if controls is not None and phenotype is not None:
        raise GenoshareError("give either --controls FILE or --phenotype TSV, not both")
    with open_genotypes(cases, workdir) as src:
        if controls is not None:
            with open_genotypes(controls, workdir) as ctrl:
                return counts_with_controls(src, ctrl, threads)
        if phenotype is not None:
            return counts_with_phenotype(src, read_phenotype(phenotype), phenotype, threads)
        if src.pheno is not None:
            return counts_with_phenotype(src, src.pheno, src.path, threads)
        raise GenoshareError(
            "no controls: give --controls FILE (a separate control set) or --phenotype TSV "
            "(case/control status of the cohort's individuals)"
        )


def gwas_table(counts: GwasCounts, test: str):
    """pandas DataFrame: id, statistic, p, n_cases, n_controls (called genotypes per group at that SNP)."""
    import pandas as pd

    stat, p = counts.test(test)
    return pd.DataFrame(
        {
            "id": counts.variant_ids,
            "statistic": stat,
            "p": p,
            "n_cases": counts.cases.sum(axis=1).astype(np.int64),
            "n_controls": counts.controls.sum(axis=1).astype(np.int64),
        }
    )


def write_table(path, df) -> Path:
    """Write a DataFrame as TSV atomically (temp file in the same directory, then rename); NaN as NA."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(path, f"cannot write: directory {parent} does not exist")
    if path.is_dir():
        raise InputError(path, "is a directory; give a file name for the output table")
    from genoshare.io.atomic import atomic_file

    try:
        with atomic_file(path) as tmp:
            df.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.10g", quoting=csv.QUOTE_MINIMAL)
    except PermissionError:
        raise InputError(path, "permission denied (cannot write the output)") from None
    return path


def run_gwas(
    cases, controls=None, phenotype=None, test: str = "allelic", out=None, *, threads: int | None = None, workdir=None
):
    """Run one test over a file (see :func:`gwas_counts`); write ``out`` (TSV) if given. Returns (table, summary)."""
    _check_test(test)
    counts = gwas_counts(cases, controls, phenotype, threads=threads, workdir=workdir)
    table = gwas_table(counts, test)
    if out is not None:
        write_table(out, table)
    p = table["p"].to_numpy()
    summary = {
        "test": test,
        "design": counts.design,
        "n_variants": int(len(table)),
        "n_cases": counts.n_cases,
        "n_controls": counts.n_controls,
        "n_tested": int(np.isfinite(p).sum()),
        "n_p_below_0.05": int((np.nan_to_num(p, nan=1.0) < 0.05).sum()),
        "min_p": float(np.nanmin(p)) if np.isfinite(p).any() else math.nan,
        **counts.notes,
    }
    return table, summary
