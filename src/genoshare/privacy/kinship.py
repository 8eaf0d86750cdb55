"""Related individuals in a cohort: KING-robust kinship, relative pairs, and their group-privacy cost.

Why
---
Differential privacy protects one individual. Relatives share large parts of their genomes, so a release also
reveals, through a relative, information about a person (and a family is only protected as a group): a group of
k related people in the cohort is protected with k x epsilon (group privacy; for (eps, delta)-DP the group
guarantee is (k eps, k e^((k-1) eps) delta)). genoshare reports every pair of 2nd degree or closer
(phi > 0.0884) and the cost of each connected group of relatives, and ``--refuse-relatives`` stops the release
(:func:`check_relatives`). Note that genoshare's own simulator (one constant population of 10,000 on one contig)
produces many such pairs by chance: see tests/test_kinship.py.

Estimator
---------
KING-robust, Manichaikul et al. 2010 (Bioinformatics 26:2867), between-family estimator (their equation 11; the
one plink2 ``--make-king``, Hail ``king`` and SNPRelate "KING-robust" compute)::

    phi_ij = 1/2 + (2 N_AaAa - 4 N_AA,aa - N_Aa(i) - N_Aa(j)) / (4 min(N_Aa(i), N_Aa(j)))

where, over the SNPs at which both i and j are called, N_AaAa counts SNPs where both are heterozygous,
N_AA,aa SNPs where they are opposite homozygotes (IBS0), N_Aa(i) SNPs where i is heterozygous. The numerator is
minus the genetic distance d_ij = sum (g_i - g_j)^2 = 4 N_AA,aa + N_Aa(i) + N_Aa(j) - 2 N_AaAa, so
phi_ij = 1/2 - d_ij / (4 min(N_Aa(i), N_Aa(j))). The "within-family" form (N_AaAa - 2 N_AA,aa) /
(N_Aa(i) + N_Aa(j)) (the paper's equation for pairs known to be in one family; it overestimates kinship when the
two heterozygosities differ) is available as ``estimator="within"``. Like every KING-robust estimate it assumes
no inbreeding: for an inbred individual (long runs of homozygosity, low heterozygosity) the kinship with true
relatives is underestimated (KING's own caveat), so such relatives can be missed. Degree cutoffs are KING's:
> 0.354 duplicate / MZ twin, (0.177, 0.354] 1st degree, (0.0884, 0.177] 2nd degree, (0.0442, 0.0884] 3rd degree.

Computation
-----------
All counts are accumulated blockwise over variant chunks as exact integer matrix products of per-chunk indicator
matrices (float32 BLAS products of 0/1/2 values are exact below 2^24 per chunk and are added into int64
accumulators): XX = X_I' X_J (X = dosage, 0 where missing) and HH = het_I' het_J for every chunk, and only for
chunks with missing calls the corrections het_I' miss_J, miss_I' het_J, (X^2)_I' miss_J and miss_I' (X^2)_J that
restrict the per-individual totals to the SNPs both individuals have called. Then
d_ij = (sum X_i^2 - (X^2)_I' miss_J) + (sum X_j^2 - miss_I' (X^2)_J) - 2 XX_ij and
N_Aa(i) over the pair = n_het_i - het_I' miss_J. Memory is O(rows x columns of the block), never O(n m).

Limits (honest)
---------------
Cost is about 2 m n^2 / 2 multiply-adds for the upper triangle (plus the same again for chunks with missing
calls). :func:`king_robust` returns the full n x n matrix: meant for up to a few thousand individuals.
:func:`find_related` works in block rows of ``sample_block`` individuals against all later individuals (memory
~60 x sample_block x n bytes, reading the cohort n / sample_block times) and keeps only the pairs above the
threshold: it is meant for n up to ~20,000 (the default refuses more, :data:`MAX_SAMPLES`). Measured on the 2-core
development machine while it was shared (load ~8): 2,000 individuals x 20,000 SNPs 12 s, 4,000 x 10,000 20 s,
i.e. ~2.5e-10 s per SNP and pair; 1% missing calls about doubles it. Extrapolated: 20,000 individuals x 100,000
SNPs ~1.4 h, ~17 min with ``max_variants=20_000``. A biobank (n ~ 1e5, 5e9 pairs) needs a dedicated tool (plink2
``--make-king-table``, KING with its IBS0 pre-screen) on a cluster; thinning to a few tens of thousands of SNPs
(``max_variants``, evenly spaced over the whole genome) keeps the estimates precise enough for 2nd-degree calls
and divides the cost accordingly. Precision depends on the genome span more than on the SNP count (independent
genealogies along the genome): on a few Mb of sequence, even a large population shows spurious "relatives"
(measured: 20,000 SNPs from 13 Mb of a population grown to 1e6 gave false 2nd-degree pairs, every 4th SNP of
50 Mb on ten chromosomes gave none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genoshare.errors import GenoshareError, InputError

__all__ = [
    "SECOND_DEGREE",
    "FIRST_DEGREE",
    "DUPLICATE",
    "THIRD_DEGREE",
    "MAX_SAMPLES",
    "king_robust",
    "related_pairs",
    "degree_label",
    "relative_groups",
    "group_privacy",
    "GenotypeSource",
    "find_related",
    "kinship_report",
    "check_relatives",
    "format_relatives",
]

DUPLICATE = 0.354  # 2^-1.5
FIRST_DEGREE = 0.177  # 2^-2.5
SECOND_DEGREE = 0.0884  # 2^-3.5
THIRD_DEGREE = 0.0442  # 2^-4.5
MAX_SAMPLES = 20_000
_MAX_CHUNK = 1 << 21  # rows per BLAS product: 4 * rows < 2^24 keeps float32 sums exact
SUSPICIOUS_FRACTION = 0.05  # of all pairs above the threshold: see kinship_report's warning
_BYTES_PER_CELL = 60  # accumulators + temporaries per (row, column) of a block, for the default block size


def degree_label(phi: float) -> str:
    if phi > DUPLICATE:
        return "duplicate/MZ twin"
    if phi > FIRST_DEGREE:
        return "1st degree"
    if phi > SECOND_DEGREE:
        return "2nd degree"
    if phi > THIRD_DEGREE:
        return "3rd degree"
    return "unrelated"


class _Block:
    """Integer KING counts of rows I (b individuals) against columns J (c individuals)."""

    def __init__(self, b: int, c: int, square: bool):
        self.b, self.c, self.square = b, c, square
        self.xx = np.zeros((b, c), dtype=np.int64)
        self.hh = np.zeros((b, c), dtype=np.int64)
        self.het_i = np.zeros(b, dtype=np.int64)
        self.sq_i = np.zeros(b, dtype=np.int64)
        self.het_j = np.zeros(c, dtype=np.int64)
        self.sq_j = np.zeros(c, dtype=np.int64)
        self.hm = self.mh = self.qm = self.mq = None  # corrections, allocated at the first missing call
        self.n_variants = 0

    @staticmethod
    def _prod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.rint(a.T @ b).astype(np.int64)

    def update(self, gi: np.ndarray, gj: np.ndarray | None = None) -> None:
        """Add a chunk: gi (k, b) and gj (k, c) int8 dosages of the same variants (gj None: square block)."""
        # sub-chunks: small enough for the cache and for the float32 temporaries (~50M cells each), far below
        # the 2^22 rows at which float32 sums of 0..4 values would stop being exact
        step = int(min(_MAX_CHUNK, max(256, min(8192, 50_000_000 // max(self.b, self.c, 1)))))
        for k0 in range(0, gi.shape[0], step):
            self._update(gi[k0 : k0 + step], None if gj is None else gj[k0 : k0 + step])

    def _update(self, gi: np.ndarray, gj: np.ndarray | None) -> None:
        k = gi.shape[0]
        if k == 0:
            return
        self.n_variants += k

        def parts(g):
            miss = g < 0
            x = np.where(miss, 0, g).astype(np.float32)
            het = (g == 1).astype(np.float32)
            return x, het, miss

        xi, hi, mi = parts(gi)
        if gj is None:
            xj, hj, mj = xi, hi, mi
        else:
            xj, hj, mj = parts(gj)
        self.xx += self._prod(xi, xj)
        self.hh += self._prod(hi, hj)
        self.het_i += hi.sum(axis=0, dtype=np.int64)
        self.sq_i += (xi * xi).sum(axis=0, dtype=np.float64).astype(np.int64)
        if gj is None:
            self.het_j, self.sq_j = self.het_i, self.sq_i
        else:
            self.het_j += hj.sum(axis=0, dtype=np.int64)
            self.sq_j += (xj * xj).sum(axis=0, dtype=np.float64).astype(np.int64)
        any_i, any_j = bool(mi.any()), bool(mj.any())
        if not (any_i or any_j):
            return
        if self.hm is None:
            self.hm = np.zeros((self.b, self.c), dtype=np.int64)
            self.qm = np.zeros((self.b, self.c), dtype=np.int64)
            if not self.square:
                self.mh = np.zeros((self.b, self.c), dtype=np.int64)
                self.mq = np.zeros((self.b, self.c), dtype=np.int64)
        if any_j:
            mjf = mj.astype(np.float32)
            self.hm += self._prod(hi, mjf)
            self.qm += self._prod(xi * xi, mjf)
        if not self.square and any_i:
            mif = mi.astype(np.float32)
            self.mh += self._prod(mif, hj)
            self.mq += self._prod(mif, xj * xj)

    def counts(self):
        """(d, n_het_i, n_het_j, hethet): pairwise over SNPs both called; int64 (b, c) arrays."""
        sq_i = self.sq_i[:, None]
        sq_j = self.sq_j[None, :]
        ni = np.broadcast_to(self.het_i[:, None], (self.b, self.c)).copy()
        nj = np.broadcast_to(self.het_j[None, :], (self.b, self.c)).copy()
        d = sq_i + sq_j - 2 * self.xx
        if self.hm is not None:
            mh = self.hm.T if self.square else self.mh
            mq = self.qm.T if self.square else self.mq
            d -= self.qm + mq
            ni -= self.hm
            nj -= mh
        return d, ni, nj, self.hh

    def phi(self, estimator: str = "between") -> np.ndarray:
        d, ni, nj, _ = self.counts()
        with np.errstate(divide="ignore", invalid="ignore"):
            if estimator == "between":
                den = 4.0 * np.minimum(ni, nj)
            else:
                den = 2.0 * (ni + nj)
            phi = 0.5 - d / den
        phi[den <= 0] = np.nan
        return phi


def _check_estimator(estimator: str) -> str:
    if estimator not in ("between", "within"):
        raise GenoshareError(f"kinship estimator must be 'between' or 'within', not {estimator!r}")
    return estimator


def king_robust(genotype_chunks: Iterable, n: int, estimator: str = "between") -> np.ndarray:
    """KING-robust kinship (n, n) float64 from variant-major dosage chunks (k, n) (0/1/2, negative = missing).

    Diagonal 0.5; NaN for pairs without a heterozygous call. Memory O(n^2): for large n use
    :func:`find_related`."""
    _check_estimator(estimator)
    acc = _Block(n, n, square=True)
    for chunk in genotype_chunks:
        g = np.asarray(chunk)
        if g.ndim != 2 or g.shape[1] != n:
            raise GenoshareError(f"kinship: genotype chunk of shape {g.shape}, expected (k, {n})")
        acc.update(g.astype(np.int8, copy=False))
    phi = acc.phi(estimator)
    phi = (phi + phi.T) / 2  # exact already; removes rounding asymmetry of min()
    np.fill_diagonal(phi, 0.5)
    return phi


def related_pairs(
    phi: np.ndarray, sample_ids: Sequence[str], threshold: float = SECOND_DEGREE, offset: tuple[int, int] = (0, 0)
) -> list[tuple[str, str, float, str]]:
    """Pairs (id1, id2, phi, degree) with phi > threshold, i < j, sorted by decreasing phi.

    ``phi`` may be a block whose rows/columns start at ``offset`` in ``sample_ids``."""
    phi = np.asarray(phi)
    r0, c0 = offset
    rows, cols = np.nonzero(np.nan_to_num(phi, nan=-np.inf) > threshold)
    gi, gj = rows + r0, cols + c0
    keep = gi < gj
    out = [
        (str(sample_ids[i]), str(sample_ids[j]), float(phi[r, c]), degree_label(float(phi[r, c])))
        for i, j, r, c in zip(gi[keep].tolist(), gj[keep].tolist(), rows[keep].tolist(), cols[keep].tolist())
    ]
    out.sort(key=lambda p: (-p[2], p[0], p[1]))
    return out


def relative_groups(pairs, sample_ids: Sequence[str] | None = None) -> list[list[str]]:
    """Connected groups of related individuals (union-find over the pairs), largest first; members in cohort
    order when ``sample_ids`` is given, else sorted."""
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        a, b = find(p[0]), find(p[1])
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    order = {s: i for i, s in enumerate(sample_ids)} if sample_ids is not None else None
    out = [sorted(g, key=(order.__getitem__ if order else None)) for g in groups.values()]
    out.sort(key=lambda g: (-len(g), order[g[0]] if order else g[0]))
    return out


def group_privacy(groups, epsilon: float | None = None, delta: float = 0.0) -> list[dict]:
    """Per group of k relatives: the guarantee for the group as a whole, (k eps, k e^((k-1) eps) delta)."""
    out = []
    for g in groups:
        k = len(g)
        entry = {"members": list(g), "size": k, "epsilon_multiplier": k}
        if epsilon is not None:
            entry["epsilon"] = k * float(epsilon)
            if delta:
                with np.errstate(over="ignore"):
                    entry["delta"] = float(min(1.0, k * math.exp(min((k - 1) * float(epsilon), 700.0)) * delta))
            else:
                entry["delta"] = 0.0
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------------------------------
# cohorts on disk, blockwise


@dataclass
class GenotypeSource:
    """Blockwise access to a cohort's dosages: ``read(v0, v1, s0, s1)`` -> int8 (v1 - v0, s1 - s0) for the
    source's variant list (already restricted to bi-allelic / thinned sites)."""

    sample_ids: list[str]
    n_variants: int
    read: Callable[[int, int, int, int], np.ndarray]
    chunk_variants: int = 4096
    description: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    @classmethod
    def from_matrix(
        cls, genotypes: np.ndarray, sample_ids, max_variants: int | None = None, chunk_variants: int = 4096
    ) -> GenotypeSource:
        g = np.asarray(genotypes)
        idx = _thin(g.shape[0], max_variants)
        if idx is not None:
            g = g[idx]
        return cls(
            sample_ids=[str(s) for s in sample_ids],
            n_variants=g.shape[0],
            read=lambda v0, v1, s0, s1: g[v0:v1, s0:s1],
            chunk_variants=chunk_variants,
            description={"variants_total": int(np.asarray(genotypes).shape[0])},
        )

    @classmethod
    def from_path(cls, path, max_variants: int | None = None) -> GenotypeSource:
        """A CSV matrix (.csv/.csv.gz) or a VCF Zarr store; stores use their bi-allelic sites only."""
        p = Path(path)
        name = p.name.lower()
        if name.endswith(".csv") or name.endswith(".csv.gz"):
            from genoshare.io.csvmatrix import read_matrix

            m = read_matrix(p)
            src = cls.from_matrix(m.genotypes, m.sample_ids, max_variants)
            src.description["format"] = "csv"
            return src
        if not p.exists():
            raise InputError(p, "no such file or directory")
        if not (p.is_dir() or name.endswith(".zip")):
            raise InputError(p, "kinship needs a CSV matrix or a VCF Zarr store (ingest PLINK/VCF inputs first)")
        from genoshare.io.vcz import calls_to_dosage, open_vcz

        info = open_vcz(p)
        gt = info.open()["call_genotype"]
        sites = np.flatnonzero(info.biallelic)
        thin = _thin(sites.size, max_variants)
        if thin is not None:
            sites = sites[thin]
        step = max(1, info.chunks[0])

        def read(v0, v1, s0, s1):
            want = sites[v0:v1]
            if want.size == 0:
                return np.empty((0, s1 - s0), dtype=np.int8)
            out = []
            lo = int(want[0])
            while lo <= want[-1]:  # read whole store chunks, keep the wanted rows
                hi = min((lo // step + 1) * step, info.n_variants)
                sel = want[(want >= lo) & (want < hi)] - lo
                if sel.size:
                    out.append(calls_to_dosage(gt[lo:hi, s0:s1])[sel])
                nxt = want[want >= hi]
                if nxt.size == 0:
                    break
                lo = int(nxt[0])
            return np.concatenate(out)

        return cls(
            sample_ids=list(info.sample_ids),
            n_variants=int(sites.size),
            read=read,
            chunk_variants=step * max(1, 4096 // step),
            description={"format": "vcz", "variants_total": info.n_variants, "biallelic": int(info.biallelic.sum())},
        )


def _thin(m: int, max_variants: int | None):
    """Evenly spaced indices (floor(t * m / k)) when thinning to k < m variants, else None."""
    if max_variants is None or max_variants >= m:
        return None
    if max_variants < 1:
        raise GenoshareError("--max-variants must be at least 1")
    return (np.arange(max_variants, dtype=np.int64) * m) // max_variants


def default_sample_block(n: int, memory_bytes: float = 1.5e9) -> int:
    return int(max(256, min(n, memory_bytes // (_BYTES_PER_CELL * max(n, 1)))))


def find_related(
    source: GenotypeSource,
    threshold: float = SECOND_DEGREE,
    *,
    estimator: str = "between",
    sample_block: int | None = None,
    allow_large: bool = False,
    progress=None,
) -> list[tuple[str, str, float, str]]:
    """Pairs with KING-robust phi > threshold, computed in block rows (module docstring); sorted by phi."""
    _check_estimator(estimator)
    n = source.n_samples
    if n > MAX_SAMPLES and not allow_large:
        raise GenoshareError(
            f"kinship: {n} individuals is above the {MAX_SAMPLES:,} this implementation supports ({n * (n - 1) // 2:,} "
            "pairs); use plink2 --make-king-table or KING on a cluster"
        )
    if source.n_variants == 0:
        raise GenoshareError("kinship: no bi-allelic variants to estimate kinship from")
    b = int(sample_block or default_sample_block(n))
    if b < 1:
        raise GenoshareError("kinship: sample block must be at least 1")
    pairs = []
    starts = list(range(0, n, b))
    for t, s0 in enumerate(starts):
        s1 = min(n, s0 + b)
        acc = _Block(s1 - s0, n - s0, square=False)
        for v0 in range(0, source.n_variants, source.chunk_variants):
            v1 = min(source.n_variants, v0 + source.chunk_variants)
            gj = np.asarray(source.read(v0, v1, s0, n), dtype=np.int8)
            acc.update(gj[:, : s1 - s0], gj)
        phi = acc.phi(estimator)
        pairs.extend(related_pairs(phi, source.sample_ids, threshold, offset=(s0, s0)))
        if progress:
            progress(t + 1, len(starts))
    pairs.sort(key=lambda p: (-p[2], p[0], p[1]))
    return pairs


def kinship_report(
    cohort,
    threshold: float = SECOND_DEGREE,
    *,
    epsilon: float | None = None,
    delta: float = 0.0,
    estimator: str = "between",
    sample_block: int | None = None,
    max_variants: int | None = None,
    allow_large: bool = False,
    progress=None,
) -> dict:
    """Relatives in a cohort (a path, or a :class:`GenotypeSource`) with their group-privacy cost.

    Returns {n_samples, n_variants_used, estimator, threshold, pairs: [{id1, id2, phi, degree}], groups:
    [{members, size, epsilon_multiplier[, epsilon, delta]}], largest_group, epsilon_multiplier}."""
    if not (threshold > 0 and math.isfinite(threshold)):
        raise GenoshareError(f"kinship threshold must be a positive number, not {threshold}")
    source = cohort if isinstance(cohort, GenotypeSource) else GenotypeSource.from_path(cohort, max_variants)
    pairs = find_related(
        source, threshold, estimator=estimator, sample_block=sample_block, allow_large=allow_large, progress=progress
    )
    groups = group_privacy(relative_groups(pairs, source.sample_ids), epsilon, delta)
    largest = max((g["size"] for g in groups), default=1)
    report = {
        "n_samples": source.n_samples,
        "n_variants_used": source.n_variants,
        **source.description,
        "estimator": f"KING-robust ({estimator}-family, Manichaikul et al. 2010)",
        "threshold": threshold,
        "pairs": [{"id1": a, "id2": b, "phi": round(p, 6), "degree": d} for a, b, p, d in pairs],
        "groups": groups,
        "largest_group": largest,
        "epsilon_multiplier": largest,
        "group_privacy": "a group of k relatives is protected with k x epsilon",
    }
    if epsilon is not None:
        report["epsilon"] = float(epsilon)
        report["epsilon_largest_group"] = largest * float(epsilon)
    n_pairs = source.n_samples * (source.n_samples - 1) // 2
    if n_pairs >= 100 and len(pairs) > SUSPICIOUS_FRACTION * n_pairs:
        report["warning"] = (
            f"{len(pairs)} of {n_pairs} pairs ({100 * len(pairs) / n_pairs:.0f}%) are above the "
            "threshold, far more than in a real cohort: the SNPs may span too little of the genome "
            "(a few Mb) for KING to tell relatives from unrelated people"
        )
    return report


def format_relatives(report: dict) -> str:
    """One line for the release command."""
    if report.get("skipped"):
        return f"relatives: not checked ({report['skipped']})"
    pairs, groups = report["pairs"], report["groups"]
    if not pairs:
        return (
            f"relatives: none above kinship {report['threshold']} among {report['n_samples']} individuals "
            f"({report['n_variants_used']} SNPs)"
        )
    k = report["largest_group"]
    warn = f" (warning: {report['warning']})" if report.get("warning") else ""
    cost = f"{k} x epsilon" + (f" = {report['epsilon_largest_group']:.6g}" if "epsilon_largest_group" in report else "")
    return (
        f"relatives: {len(pairs)} pair(s) above kinship {report['threshold']} in {len(groups)} group(s); the "
        f"largest group ({k} people) is protected only as a group, with {cost}{warn}"
    )


def check_relatives(
    cohort,
    epsilon: float | None = None,
    *,
    delta: float = 0.0,
    refuse: bool = False,
    threshold: float = SECOND_DEGREE,
    **options,
) -> dict:
    """:func:`kinship_report` for the release flow; with ``refuse`` raise GenoshareError (one line) when the cohort
    has related pairs above ``threshold``. Above :data:`MAX_SAMPLES` individuals the check is skipped (report with
    ``skipped``) unless ``refuse``, which then fails: relatives cannot be excluded at that size here."""
    source = (
        cohort
        if isinstance(cohort, GenotypeSource)
        else GenotypeSource.from_path(cohort, options.pop("max_variants", None))
    )
    options.pop("max_variants", None)
    if source.n_samples > MAX_SAMPLES and not options.get("allow_large"):
        reason = (
            f"{source.n_samples:,} individuals is above the {MAX_SAMPLES:,} genoshare's kinship supports; "
            "use plink2 --make-king-table"
        )
        if refuse:
            raise GenoshareError(f"--refuse-relatives: cannot check relatives: {reason}")
        return {
            "skipped": reason,
            "n_samples": source.n_samples,
            "pairs": [],
            "groups": [],
            "largest_group": 1,
            "epsilon_multiplier": 1,
            "threshold": threshold,
        }
    report = kinship_report(source, threshold, epsilon=epsilon, delta=delta, **options)
    if refuse and report["pairs"]:
        a = report["pairs"][0]
        raise GenoshareError(
            f"--refuse-relatives: the cohort has {len(report['pairs'])} related pair(s) above kinship {threshold} "
            f"(closest: {a['id1']} and {a['id2']}, {a['phi']:.3f}, {a['degree']}; largest group "
            f"{report['largest_group']} people); remove relatives first (genoshare kinship lists them)"
        )
    return report


# ------------------------------------------------------------------------------------------------------------------
# cohort against reference panel (a panel must be public or disjoint: issue 15 item 4)


def cross_kinship(
    cohort_read: Callable[[int, int], np.ndarray],
    cohort_ids: Sequence[str],
    panel: np.ndarray,
    panel_ids: Sequence[str],
    *,
    duplicate: float,
    related: float,
    max_discordance: float = 0.02,
    memory_bytes: float = 1.5e9,
) -> dict:
    """KING-robust phi between every cohort individual and every panel individual, on the same k SNPs.

    ``cohort_read(s0, s1)`` -> int8 (k, s1 - s0) dosages of cohort individuals s0..s1 (negative = missing);
    ``panel`` (k, n_panel) int8 dosages recoded to the cohort's ALT allele. Work in blocks of cohort rows against
    all panel columns (memory ~60 x block x n_panel bytes). Returns counts only: {n_snps, usable_snps (polymorphic
    in the panel), max_phi, closest (cohort id, panel id) or None, n_duplicate_pairs (phi > duplicate and
    genotypes differing at no more than ``max_discordance`` of the SNPs both have called), n_related_pairs (other
    pairs with phi > related), duplicate: (cohort id, panel id, phi, discordance) of the first duplicate or None}.

    Why the discordance: on little genome (e.g. msprime simulations of a few hundred kb) unrelated people can
    reach phi ~0.45 by chance, but their genotypes still differ at >= 5% of the SNPs (measured); a duplicate or MZ
    twin differs only by genotyping errors (< 1%)."""
    panel = np.ascontiguousarray(panel, dtype=np.int8)
    k, n_p = panel.shape
    n_c = len(cohort_ids)
    out = {
        "n_snps": int(k),
        "usable_snps": int((panel != panel[:, :1]).any(axis=1).sum()) if n_p else 0,
        "max_phi": None,
        "closest": None,
        "n_duplicate_pairs": 0,
        "n_related_pairs": 0,
        "duplicate": None,
    }
    if k == 0 or n_p == 0 or n_c == 0:
        return out
    b = int(max(1, min(n_c, memory_bytes // (_BYTES_PER_CELL * n_p))))
    best = -np.inf
    for s0 in range(0, n_c, b):
        s1 = min(n_c, s0 + b)
        gi = np.asarray(cohort_read(s0, s1), dtype=np.int8)
        acc = _Block(s1 - s0, n_p, square=False)
        acc.update(gi, panel)
        phi = acc.phi("between")
        finite = np.nan_to_num(phi, nan=-np.inf)
        rows, cols = np.nonzero(finite > duplicate)
        n_dup = 0
        for t in range(0, rows.size, 1024):  # candidates only: their genotype discordance, pair by pair
            a, b = gi[:, rows[t : t + 1024]], panel[:, cols[t : t + 1024]]
            both = (a >= 0) & (b >= 0)
            differ = ((a != b) & both).sum(axis=0) / np.maximum(both.sum(axis=0), 1)
            dup = np.flatnonzero(differ <= max_discordance)
            if dup.size and out["duplicate"] is None:
                r, c = int(rows[t + dup[0]]), int(cols[t + dup[0]])
                out["duplicate"] = (
                    str(cohort_ids[s0 + r]),
                    str(panel_ids[c]),
                    round(float(phi[r, c]), 4),
                    round(float(differ[dup[0]]), 4),
                )
            n_dup += int(dup.size)
        out["n_duplicate_pairs"] += n_dup
        out["n_related_pairs"] += int((finite > related).sum()) - n_dup
        r, c = np.unravel_index(int(np.argmax(finite)), finite.shape)
        if finite[r, c] > best:
            best = float(finite[r, c])
            out["closest"] = (str(cohort_ids[s0 + r]), str(panel_ids[c]))
    out["max_phi"] = None if not np.isfinite(best) else round(best, 4)
    return out
