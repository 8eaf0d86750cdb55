"""Aligning a cohort with a reference panel (and with an allele-frequency file).

genoshare needs the reference panel on the same SNPs as the cohort, with the same ALT allele: a genotype counts
copies of the ALT allele, and the noise for a SNP is computed from the panel's genotypes at that SNP. This module
decides, for every cohort site, which panel site (if any) is the same SNP, and how the panel must be recoded.

Which sites are usable
----------------------
Only bi-allelic sites are used, in the cohort and in the panel alike: exactly two alleles (REF and one ALT), both
present, and different from each other. Alleles are compared case-insensitively. A site is dropped, and counted
under exactly one reason (the first that applies), when it is

- ``multiallelic``: it has more than one ALT allele;
- ``monoallelic``: REF or ALT is absent (VCF ``.``, PLINK ``0``, or empty), e.g. a monomorphic record;
- ``ref_equals_alt``: REF and ALT are the same allele;
- ``duplicate_site``: an earlier record has the same contig, position and allele pair (in either order, so A/G and
  G/A at one position are duplicates). The FIRST record is kept and every later copy is dropped (as
  ``bcftools norm --rm-dup`` does).

(Ploidy is checked when the data are ingested; a dataset whose ploidy is not 2 is refused here.)

How sites are matched
---------------------
Two sites are the same SNP when they have the same contig, the same position and the same two alleles. Contig
names are compared after removing a leading ``chr`` (any case): ``chr1`` matches ``1`` and ``chrX`` matches ``X``;
nothing else is renamed (``chrM`` matches ``M`` but not ``MT``, because those are often different sequences). The
order of contigs and of sites may differ between the two files. For every usable cohort site with REF/ALT = r/a:

1. the panel has r/a at that position: kept as is;
2. the panel has a/r: kept, and the panel genotypes are recoded g -> 2 - g (``panel_swap``) so that they count the
   cohort's ALT allele;
3. only for single-base SNPs whose alleles are not complementary: the panel has the complementary alleles (A<->T,
   C<->G), i.e. it reports the other DNA strand: kept (``panel_strand_flip``), with the swap of rule 2 when the
   complement of the panel's REF is the cohort's ALT. A direct match (rules 1-2) always takes precedence over a
   strand match, and a panel site is never matched to two cohort sites.
4. strand-ambiguous SNPs (A/T, T/A, C/G, G/C) that match the panel: their complement is the same allele pair, so a
   strand flip cannot be told apart from a REF/ALT swap. Policy ``ambiguous``:

   - ``"drop"`` (default): dropped and counted as ``strand_ambiguous``;
   - ``"keep"``: kept, ASSUMING BOTH FILES REPORT THE SAME STRAND (rules 1-2 only). If they do not, the panel's
     genotypes are silently coded for the other allele at that SNP: its allele frequency is reflected (f -> 1 - f)
     and its LD with neighbouring SNPs changes sign, which distorts the noise calibration for that SNP (and, with a
     public allele-frequency file, moves the restored frequency to the wrong value). Use ``keep`` only when both
     files are known to be on the forward strand of the same genome build.
5. cohort sites that cannot be matched: ``not_in_panel`` (the usable panel has no site at that contig and position;
   a panel record dropped by the panel's own site filter does not count) or ``allele_mismatch`` (the panel has a
   site there, but with alleles that match neither directly, swapped, nor on the other strand). Policy
   ``unmatched``:

   - ``"drop"`` (default): dropped and counted;
   - ``"error"``: the alignment stops with an error naming the counts and the first such site (``contig:pos``).

Strand-ambiguous and unmatched checks are applied in the order 5 then 4: an A/T site absent from the panel is
counted as ``not_in_panel``.

What is reported
----------------
:class:`Alignment` holds the matched pairs (cohort order, increasing) and ``dropped``, a dictionary reason ->
count that always has every key. Keys without a prefix count COHORT sites, and they add up:
``n_kept + sum(those counts) == n_cohort_sites``. Keys with the ``panel_`` prefix count PANEL records removed by
the panel's site filter before matching (panel sites that are usable but not in the cohort are not counted).
If no cohort site is left the alignment stops with an error listing the counts.

Allele-frequency files (``--af-source public:FILE``)
----------------------------------------------------
A tab-separated file with a header holding (at least) the columns ``contig``, ``position``, ``ref``, ``alt``, ``af``
(the frequency of ``alt``, in [0, 1]); the header may start with ``#``. Every row must be a different site (contig,
position and allele pair in either order). :func:`read_af_table` refuses, with one line naming the file, a missing,
unreadable or empty file, missing columns, a position that is not a positive integer, an empty allele, an ``af``
that is not a number in [0, 1], and a duplicate site. :func:`align_af_table` matches the file's rows to the aligned
cohort sites with the same rules as the panel (``chr`` prefix, swap -> ``1 - af``, strand flip, the alignment's
``ambiguous`` policy); sites the file does not have get NaN (their frequency is not restored) and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genoshare.errors import GenoshareError, InputError

__all__ = [
    "Alignment",
    "align",
    "site_filter",
    "align_af_table",
    "read_af_table",
    "normalise_contig",
    "SITE_REASONS",
    "MATCH_REASONS",
    "AF_COLUMNS",
]

#: alleles that mean "no allele" (VCF '.', PLINK '0', empty padding of variant_allele)
MISSING_ALLELES = ("", ".", "0")
#: reasons of :func:`site_filter`, in the order they are tested
SITE_REASONS = ("multiallelic", "monoallelic", "ref_equals_alt", "duplicate_site")
#: reasons a usable cohort site is not matched
MATCH_REASONS = ("not_in_panel", "allele_mismatch", "strand_ambiguous")
AF_COLUMNS = ("contig", "position", "ref", "alt", "af")

_AMBIGUOUS = ("drop", "keep")
_UNMATCHED = ("drop", "error")

# Allele codes 0..3 are always A, C, G, T (see _encode_alleles); complement of code c < 4 is 3 - c.
_BASES = ("A", "C", "G", "T")
_POS_LIMIT = 1 << 32

# match outcome codes
_KEPT, _NOT_IN_PANEL, _MISMATCH, _AMBIG = 0, 1, 2, 3


def normalise_contig(name: str) -> str:
    """Contig name without a leading ``chr`` (any case): ``chr1`` -> ``1``; a bare ``chr`` is left as is."""
    name = str(name)
    return name[3:] if len(name) > 3 and name[:3].lower() == "chr" else name


# ----------------------------------------------------------------------------------------------------------------
# encoding


def _encode_alleles(*arrays) -> list[np.ndarray]:
    """Shared integer codes for allele strings of several arrays (any shape).

    Case-insensitive; A, C, G, T are 0..3; a missing allele (None, NaN, '', '.', '0') is -1.
    """
    flat = [np.asarray(a, dtype=object).reshape(-1) for a in arrays]
    allv = np.concatenate([np.array(_BASES, dtype=object)] + flat)
    codes, uniques = pd.factorize(allv, use_na_sentinel=True)
    upper = pd.Index(uniques).map(lambda x: str(x).upper())
    ucodes, uvals = pd.factorize(upper)
    missing = np.asarray(pd.Index(uvals).isin(MISSING_ALLELES))
    ucodes = np.where(missing[ucodes], -1, ucodes).astype(np.int64)
    lut = np.append(ucodes, -1)  # index -1 (NaN/None sentinel) -> -1
    out = lut[codes][len(_BASES) :]
    result, start = [], 0
    for a, f in zip(arrays, flat):
        result.append(out[start : start + f.size].reshape(np.shape(a)))
        start += f.size
    return result


def _complement(codes: np.ndarray) -> np.ndarray:
    """Allele code of the complementary base (A<->T, C<->G); -1 for anything that is not a single base."""
    codes = np.asarray(codes)
    return np.where((codes >= 0) & (codes < 4), 3 - codes, -1)


def _contig_codes(names_per_source: list[list[str]]) -> list[np.ndarray]:
    """For each list of contig names, the code of every name in one shared space of normalised names."""
    space: dict[str, int] = {}
    out = []
    for names in names_per_source:
        out.append(np.array([space.setdefault(normalise_contig(n), len(space)) for n in names], dtype=np.int64))
    return out


def _key1(contig: np.ndarray, pos: np.ndarray, what: str) -> np.ndarray:
    pos = np.asarray(pos, dtype=np.int64)
    if pos.size and (pos.min() < 0 or pos.max() >= _POS_LIMIT):
        raise GenoshareError(f"{what}: variant positions must be in [0, 2^32)")
    return (np.asarray(contig, dtype=np.int64) << 32) | pos


def _key2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Order-free key of an allele pair."""
    return (np.minimum(a, b).astype(np.int64) << 32) | np.maximum(a, b).astype(np.int64)


def _allele_matrix(info) -> np.ndarray:
    a = np.asarray(info.variant_allele, dtype=object)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    return a


def _check_ploidy(info, what: str) -> None:
    ploidy = getattr(info, "ploidy", 2)
    if ploidy is not None and int(ploidy) != 2:
        raise GenoshareError(f"{what} has ploidy {ploidy}; genoshare uses diploid sites only")


# ----------------------------------------------------------------------------------------------------------------
# site filter


def _filter(key1: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """keep mask and counts by reason from site keys and allele codes (m, A)."""
    m = key1.size
    present = codes >= 0
    if codes.shape[1] >= 2:
        ref, alt = codes[:, 0], codes[:, 1]
        extra = present[:, 2:].any(axis=1)
    else:
        ref = codes[:, 0] if codes.shape[1] else np.full(m, -1, np.int64)
        alt = np.full(m, -1, np.int64)
        extra = np.zeros(m, dtype=bool)
    multi = extra
    mono = ~multi & ((ref < 0) | (alt < 0))
    same = ~multi & ~mono & (ref == alt)
    ok = ~(multi | mono | same)
    dup = np.zeros(m, dtype=bool)
    if ok.any():
        idx = np.flatnonzero(ok)
        frame = pd.DataFrame({"k1": key1[idx], "k2": _key2(ref[idx], alt[idx])})
        dup[idx] = frame.duplicated(keep="first").to_numpy()
    keep = ok & ~dup
    counts = {
        "multiallelic": int(multi.sum()),
        "monoallelic": int(mono.sum()),
        "ref_equals_alt": int(same.sum()),
        "duplicate_site": int(dup.sum()),
    }
    return keep, counts


def site_filter(info) -> tuple[np.ndarray, dict[str, int]]:
    """Usable sites of one dataset: ``(keep bool (m,), dropped reason -> count)``.

    ``info`` is anything with ``contig_ids``, ``variant_contig``, ``variant_position`` and ``variant_allele``
    (a :class:`genoshare.io.vcz.VczInfo`). Reasons are :data:`SITE_REASONS` (every key present), see the module
    documentation; of duplicate sites the first record is kept.
    """
    (ccodes,) = _contig_codes([list(info.contig_ids)])
    (codes,) = _encode_alleles(_allele_matrix(info))
    key1 = _key1(ccodes[np.asarray(info.variant_contig, dtype=np.int64)], info.variant_position, "dataset")
    return _filter(key1, codes)


# ----------------------------------------------------------------------------------------------------------------
# matching core


def _merge(left_k1, left_k2, right_k1, right_k2) -> tuple[np.ndarray, np.ndarray]:
    """Positions (i, j) with left[i] == right[j] on both keys; keys are unique on each side."""
    if left_k1.size == 0 or right_k1.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    left = pd.DataFrame({"k1": left_k1, "k2": left_k2, "i": np.arange(left_k1.size)})
    right = pd.DataFrame({"k1": right_k1, "k2": right_k2, "j": np.arange(right_k1.size)})
    merged = left.merge(right, on=["k1", "k2"], how="inner", sort=False)
    return merged["i"].to_numpy(np.int64), merged["j"].to_numpy(np.int64)


def _match(c_k1, c_ref, c_alt, p_k1, p_ref, p_alt, ambiguous: str):
    """Match unique cohort sites to unique panel sites.

    Returns (pidx, swap, flip, outcome) aligned with the cohort rows; pidx is -1 where unmatched.
    """
    n = c_k1.size
    pidx = np.full(n, -1, dtype=np.int64)
    flip = np.zeros(n, dtype=bool)
    # 1-2: direct (identical or swapped)
    i, j = _merge(c_k1, _key2(c_ref, c_alt), p_k1, _key2(p_ref, p_alt))
    pidx[i] = j
    # 3: other strand, single-base non-ambiguous SNPs without a direct match, panel sites not used directly
    c_cref, c_calt = _complement(c_ref), _complement(c_alt)
    flippable = (c_cref >= 0) & (c_calt >= 0)
    ambig = flippable & (c_cref == c_alt)
    cand = np.flatnonzero((pidx < 0) & flippable & ~ambig)
    free = np.ones(p_k1.size, dtype=bool)
    free[j] = False
    pfree = np.flatnonzero(free)
    if cand.size and pfree.size:
        i2, j2 = _merge(c_k1[cand], _key2(c_cref[cand], c_calt[cand]), p_k1[pfree], _key2(p_ref[pfree], p_alt[pfree]))
        pidx[cand[i2]] = pfree[j2]
        flip[cand[i2]] = True
    matched = pidx >= 0
    swap = np.zeros(n, dtype=bool)
    pm = pidx[matched]
    eff_ref = np.where(flip[matched], _complement(p_ref[pm]), p_ref[pm])
    swap[matched] = eff_ref != c_ref[matched]
    outcome = np.full(n, _KEPT, dtype=np.int8)
    unmatched = ~matched
    if unmatched.any():
        has_pos = np.isin(c_k1[unmatched], p_k1)
        outcome[unmatched] = np.where(has_pos, _MISMATCH, _NOT_IN_PANEL)
    if ambiguous == "drop":
        drop = matched & ambig
        outcome[drop] = _AMBIG
        pidx[drop] = -1
        swap[drop] = False
    return pidx, swap, flip, outcome


# ----------------------------------------------------------------------------------------------------------------
# alignment of a cohort with a panel


@dataclass
class Alignment:
    """Cohort sites matched to reference-panel sites (see the module documentation for the rules).

    ``cohort_index`` (increasing) and ``panel_index`` are indices into each dataset's variants, pair by pair.
    ``panel_swap``: the panel's REF/ALT are the cohort's ALT/REF, so panel genotypes must be recoded g -> 2 - g.
    ``panel_strand_flip``: matched on the complementary strand (no recoding needed beyond ``panel_swap``).
    ``dropped``: reason -> count; unprefixed keys count cohort sites and add up with ``n_kept`` to
    ``n_cohort_sites``; ``panel_*`` keys count panel records removed by the panel's site filter.
    """

    cohort_index: np.ndarray
    panel_index: np.ndarray
    panel_swap: np.ndarray
    panel_strand_flip: np.ndarray
    dropped: dict[str, int]
    n_cohort_sites: int
    n_kept: int
    n_panel_sites: int = 0
    ambiguous: str = "drop"
    unmatched: str = "drop"
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def n_swapped(self) -> int:
        return int(np.count_nonzero(self.panel_swap))

    @property
    def n_strand_flipped(self) -> int:
        return int(np.count_nonzero(self.panel_strand_flip))

    def summary(self) -> str:
        """One paragraph for a human: what was kept, recoded and dropped, and why."""
        return alignment_summary(self)


_REASON_TEXT = {
    "multiallelic": "multi-allelic",
    "monoallelic": "without an ALT (or REF) allele",
    "ref_equals_alt": "with REF equal to ALT",
    "duplicate_site": "duplicate records of an earlier site",
    "not_in_panel": "not in the reference panel",
    "allele_mismatch": "with alleles incompatible with the panel's",
    "strand_ambiguous": "strand-ambiguous (A/T or C/G)",
}


def _fmt_counts(counts: dict[str, int], prefix: str = "") -> str:
    parts = [f"{v:,} {_REASON_TEXT.get(k[len(prefix) :], k)}" for k, v in counts.items() if v and k.startswith(prefix)]
    return "; ".join(parts)


def alignment_summary(al: Alignment) -> str:
    """One-paragraph human summary of an :class:`Alignment`."""
    cohort = {k: v for k, v in al.dropped.items() if not k.startswith("panel_")}
    panel = {k: v for k, v in al.dropped.items() if k.startswith("panel_")}
    n_drop = sum(cohort.values())
    text = (
        f"{al.n_kept:,} of {al.n_cohort_sites:,} cohort sites were matched with the reference panel by contig "
        f"(ignoring a leading 'chr'), position and alleles; for {al.n_swapped:,} of them the panel's REF/ALT "
        f"are swapped and its genotypes are recoded to count the cohort's ALT allele, and {al.n_strand_flipped:,} "
        f"were matched on the opposite strand."
    )
    if n_drop:
        text += f" {n_drop:,} cohort sites were dropped: {_fmt_counts(cohort)}."
    else:
        text += " No cohort site was dropped."
    if al.ambiguous == "keep":
        text += (
            " Strand-ambiguous (A/T, C/G) sites were kept assuming both files report the same strand "
            "(policy ambiguous=keep)."
        )
    elif cohort.get("strand_ambiguous"):
        text += (
            " Strand-ambiguous sites are dropped because a strand flip cannot be told from a swap "
            "(policy ambiguous=drop)."
        )
    if sum(panel.values()):
        text += f" Panel records not usable (and not matched): {_fmt_counts(panel, 'panel_')}."
    return text


def _check_policy(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise GenoshareError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}")


def align(cohort, panel, *, ambiguous: str = "drop", unmatched: str = "drop") -> Alignment:
    """Match the cohort's sites with the reference panel's (see the module documentation).

    ``cohort`` and ``panel`` are anything with ``contig_ids``, ``variant_contig``, ``variant_position`` and
    ``variant_allele`` (a :class:`genoshare.io.vcz.VczInfo`). ``ambiguous``: "drop" | "keep";
    ``unmatched``: "drop" | "error". Raises :class:`GenoshareError` when ``unmatched="error"`` and a cohort site
    cannot be matched, or when no site is left.
    """
    _check_policy("ambiguous", ambiguous, _AMBIGUOUS)
    _check_policy("unmatched", unmatched, _UNMATCHED)
    _check_ploidy(cohort, "the cohort")
    _check_ploidy(panel, "the reference panel")
    c_contig, p_contig = _contig_codes([list(cohort.contig_ids), list(panel.contig_ids)])
    c_codes, p_codes = _encode_alleles(_allele_matrix(cohort), _allele_matrix(panel))
    c_k1 = _key1(c_contig[np.asarray(cohort.variant_contig, dtype=np.int64)], cohort.variant_position, "cohort")
    p_k1 = _key1(p_contig[np.asarray(panel.variant_contig, dtype=np.int64)], panel.variant_position, "reference panel")
    c_keep, c_drop = _filter(c_k1, c_codes)
    p_keep, p_drop = _filter(p_k1, p_codes)
    ci = np.flatnonzero(c_keep)
    pi = np.flatnonzero(p_keep)
    pidx, swap, flip, outcome = _match(
        c_k1[ci], c_codes[ci, 0], c_codes[ci, 1], p_k1[pi], p_codes[pi, 0], p_codes[pi, 1], ambiguous
    )
    n_cohort = int(c_k1.size)
    dropped = dict(c_drop)
    dropped["not_in_panel"] = int(np.count_nonzero(outcome == _NOT_IN_PANEL))
    dropped["allele_mismatch"] = int(np.count_nonzero(outcome == _MISMATCH))
    dropped["strand_ambiguous"] = int(np.count_nonzero(outcome == _AMBIG))
    dropped.update({f"panel_{k}": v for k, v in p_drop.items()})

    def first(code: int) -> str:
        hits = np.flatnonzero(outcome == code)
        if not hits.size:
            return ""
        v = ci[hits[0]]
        return f"{cohort.contig_ids[int(cohort.variant_contig[v])]}:{int(cohort.variant_position[v])}"

    examples = {
        k: first(c)
        for k, c in (("not_in_panel", _NOT_IN_PANEL), ("allele_mismatch", _MISMATCH), ("strand_ambiguous", _AMBIG))
    }
    examples = {k: v for k, v in examples.items() if v}
    if unmatched == "error" and (dropped["not_in_panel"] or dropped["allele_mismatch"]):
        parts = []
        for key, what in (
            ("not_in_panel", "not in the reference panel"),
            ("allele_mismatch", "with alleles incompatible with the panel's"),
        ):
            if dropped[key]:
                parts.append(f"{dropped[key]:,} cohort sites {what} (first: {examples[key]})")
        raise GenoshareError("; ".join(parts) + " [unmatched=error; use unmatched=drop to drop them]")
    kept = outcome == _KEPT
    al = Alignment(
        cohort_index=ci[kept].astype(np.int64),
        panel_index=pi[pidx[kept]].astype(np.int64),
        panel_swap=swap[kept],
        panel_strand_flip=flip[kept],
        dropped=dropped,
        n_cohort_sites=n_cohort,
        n_kept=int(np.count_nonzero(kept)),
        n_panel_sites=int(p_k1.size),
        ambiguous=ambiguous,
        unmatched=unmatched,
        examples=examples,
    )
    if al.n_kept == 0:
        counts = ", ".join(f"{k} {v:,}" for k, v in dropped.items() if v) or "no sites"
        raise GenoshareError(
            f"no overlap between cohort and reference panel after alignment: {n_cohort:,} cohort "
            f"sites, {al.n_panel_sites:,} panel sites; dropped: {counts}"
        )
    return al


# ----------------------------------------------------------------------------------------------------------------
# allele-frequency tables


def _frame_problem(df: pd.DataFrame) -> tuple[str | None, pd.DataFrame | None]:
    """(problem, cleaned frame) of an allele-frequency table; the problem names the file row (header = row 1)."""
    missing = [c for c in AF_COLUMNS if c not in df.columns]
    if missing:
        return (f"missing column(s) {', '.join(missing)}; need a header with {', '.join(AF_COLUMNS)}", None)
    if len(df) == 0:
        return "has a header but no rows", None
    out = pd.DataFrame(index=df.index)
    for col in ("contig", "ref", "alt"):
        s = df[col]
        text = s.where(s.notna(), "").astype(str).str.strip()
        empty = (text == "").to_numpy()
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            return f"row {row + 2}: empty {col}", None
        out[col] = text
    pos_raw = df["position"]
    pos = pd.to_numeric(pos_raw, errors="coerce")
    bad = (pos.isna() | (pos < 1) | (pos >= _POS_LIMIT) | (pos != np.floor(pos))).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        return f"row {row + 2}: position {pos_raw.iloc[row]!r} is not a positive integer", None
    out["position"] = pos.to_numpy().astype(np.int64)
    af_raw = df["af"]
    af = pd.to_numeric(af_raw, errors="coerce")
    bad = (af.isna() | (af < 0) | (af > 1)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        return f"row {row + 2}: af {af_raw.iloc[row]!r} is not a number in [0, 1]", None
    out["af"] = af.to_numpy(dtype=np.float64)
    # duplicates: same normalised contig, position and allele pair (either order, case-insensitive)
    contig_codes, contig_names = pd.factorize(out["contig"])
    (norm_codes,) = _contig_codes([list(contig_names)])
    ref, alt = _encode_alleles(out["ref"].to_numpy(object), out["alt"].to_numpy(object))
    k1 = (norm_codes[contig_codes].astype(np.int64) << 32) | out["position"].to_numpy()
    keys = pd.DataFrame({"k1": k1, "k2": _key2(ref, alt)})
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = keys.iloc[rows[0]]
        same = rows[(keys["k1"].to_numpy()[rows] == first["k1"]) & (keys["k2"].to_numpy()[rows] == first["k2"])]
        r = int(same[0])
        return (
            f"duplicate site {out['contig'].iloc[r]}:{out['position'].iloc[r]} "
            f"{out['ref'].iloc[r]}/{out['alt'].iloc[r]} (rows {same[0] + 2} and {same[1] + 2})",
            None,
        )
    return None, out[list(AF_COLUMNS)].reset_index(drop=True)


def read_af_table(path) -> pd.DataFrame:
    """Read and validate an allele-frequency TSV (columns contig, position, ref, alt, af; see module docs).

    Returns a DataFrame with exactly those columns (contig/ref/alt str, position int64, af float64).
    Raises :class:`InputError` (one line naming the file) on any problem.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a directory, expected a tab-separated file")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(path, f"not a readable TSV ({msg})") from None
    df.columns = [str(c).strip().lstrip("#").strip().lower() for c in df.columns]
    if len(set(df.columns)) != len(df.columns):
        raise InputError(path, "the header repeats a column name")
    problem, clean = _frame_problem(df)
    if problem:
        raise InputError(path, problem)
    return clean


def align_af_table(
    cohort, alignment: Alignment, table: pd.DataFrame, *, ambiguous: str | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """ALT-allele frequencies of the aligned cohort sites from an allele-frequency table.

    Returns ``(af, counts)``: ``af`` float64 (k,) in the order of ``alignment.cohort_index`` (NaN where the table
    has no matching site), frequencies of swapped rows replaced by ``1 - af``. ``counts`` (all keys present):
    ``rows`` (table rows), ``sites`` (k), ``found``, ``swapped``, ``strand_flipped``, ``not_in_file``,
    ``allele_mismatch``, ``strand_ambiguous``. ``ambiguous`` defaults to the alignment's policy.
    """
    ambiguous = alignment.ambiguous if ambiguous is None else ambiguous
    _check_policy("ambiguous", ambiguous, _AMBIGUOUS)
    problem, tab = _frame_problem(table)
    if problem:
        raise GenoshareError(f"allele-frequency table: {problem}")
    idx = np.asarray(alignment.cohort_index, dtype=np.int64)
    t_contig_codes, t_contig_names = pd.factorize(tab["contig"])
    c_contig, t_contig = _contig_codes([list(cohort.contig_ids), list(t_contig_names)])
    alleles = _allele_matrix(cohort)[idx]
    if alleles.shape[1] < 2:
        raise GenoshareError("the aligned cohort sites must have REF and ALT alleles")
    c_codes, t_ref, t_alt = _encode_alleles(alleles[:, :2], tab["ref"].to_numpy(object), tab["alt"].to_numpy(object))
    c_k1 = _key1(
        c_contig[np.asarray(cohort.variant_contig, dtype=np.int64)[idx]],
        np.asarray(cohort.variant_position)[idx],
        "cohort",
    )
    t_k1 = _key1(t_contig[t_contig_codes], tab["position"].to_numpy(), "allele-frequency table")
    pidx, swap, flip, outcome = _match(c_k1, c_codes[:, 0], c_codes[:, 1], t_k1, t_ref, t_alt, ambiguous)
    af = np.full(idx.size, np.nan)
    found = pidx >= 0
    t_af = tab["af"].to_numpy(np.float64)
    af[found] = np.where(swap[found], 1.0 - t_af[pidx[found]], t_af[pidx[found]])
    counts = {
        "rows": int(len(tab)),
        "sites": int(idx.size),
        "found": int(found.sum()),
        "swapped": int(swap[found].sum()),
        "strand_flipped": int(flip[found].sum()),
        "not_in_file": int(np.count_nonzero(outcome == _NOT_IN_PANEL)),
        "allele_mismatch": int(np.count_nonzero(outcome == _MISMATCH)),
        "strand_ambiguous": int(np.count_nonzero(outcome == _AMBIG)),
    }
    return af, counts
