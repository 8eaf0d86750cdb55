"""Alignment of a cohort with a reference panel and with allele-frequency tables (genoshare.io.align)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from genoshare.errors import GenoshareError, InputError
from genoshare.io.align import (
    MATCH_REASONS,
    SITE_REASONS,
    Alignment,
    align,
    align_af_table,
    normalise_contig,
    read_af_table,
    site_filter,
)

COMP = {"A": "T", "T": "A", "C": "G", "G": "C"}


@dataclass
class Info:
    """The minimal protocol align.py needs (a stand-in for genoshare.io.vcz.VczInfo)."""

    contig_ids: list
    variant_contig: np.ndarray
    variant_position: np.ndarray
    variant_allele: np.ndarray
    ploidy: int = 2
    attrs: dict = field(default_factory=dict)

    @property
    def n_variants(self) -> int:
        return int(self.variant_position.size)


def make(sites, contig_ids=None, width=None) -> Info:
    """sites: (contig, position, allele, allele, ...) tuples."""
    if contig_ids is None:
        contig_ids = list(dict.fromkeys(s[0] for s in sites))
    width = width or max([len(s) - 2 for s in sites] + [2])
    alleles = np.full((len(sites), width), "", dtype=object)
    for i, s in enumerate(sites):
        alleles[i, : len(s) - 2] = s[2:]
    return Info(
        contig_ids=list(contig_ids),
        variant_contig=np.array([contig_ids.index(s[0]) for s in sites], dtype=np.int64),
        variant_position=np.array([s[1] for s in sites], dtype=np.int64),
        variant_allele=alleles,
    )


def pairs(al: Alignment):
    return list(
        zip(al.cohort_index.tolist(), al.panel_index.tolist(), al.panel_swap.tolist(), al.panel_strand_flip.tolist())
    )


def check_invariants(al: Alignment):
    cohort_counts = sum(v for k, v in al.dropped.items() if not k.startswith("panel_"))
    assert al.n_kept + cohort_counts == al.n_cohort_sites
    assert al.n_kept == al.cohort_index.size == al.panel_index.size == al.panel_swap.size == al.panel_strand_flip.size
    assert np.all(np.diff(al.cohort_index) > 0)
    assert len(set(al.panel_index.tolist())) == al.n_kept
    assert al.cohort_index.dtype == np.int64 and al.panel_index.dtype == np.int64
    assert al.panel_swap.dtype == bool and al.panel_strand_flip.dtype == bool
    for key in SITE_REASONS + MATCH_REASONS:
        assert key in al.dropped
    for key in SITE_REASONS:
        assert f"panel_{key}" in al.dropped


# ------------------------------------------------------------------------------------------------------------------
# matching rules


def test_identical():
    c = make([("1", 100, "A", "G"), ("1", 200, "C", "T"), ("2", 50, "G", "A")])
    al = align(c, make([("1", 100, "A", "G"), ("1", 200, "C", "T"), ("2", 50, "G", "A")]))
    check_invariants(al)
    assert pairs(al) == [(0, 0, False, False), (1, 1, False, False), (2, 2, False, False)]
    assert sum(al.dropped.values()) == 0


def test_swapped_is_recoded_not_dropped():
    c = make([("1", 100, "A", "G"), ("1", 200, "C", "T")])
    p = make([("1", 100, "G", "A"), ("1", 200, "C", "T")])
    al = align(c, p)
    check_invariants(al)
    assert pairs(al) == [(0, 0, True, False), (1, 1, False, False)]
    assert al.n_swapped == 1


def test_strand_flipped():
    # A/G on the other strand is T/C (no swap) or C/T (swap)
    c = make([("1", 1, "A", "G"), ("1", 2, "A", "G"), ("1", 3, "C", "A"), ("1", 4, "T", "G")])
    p = make([("1", 1, "T", "C"), ("1", 2, "C", "T"), ("1", 3, "G", "T"), ("1", 4, "C", "A")])
    al = align(c, p)
    check_invariants(al)
    assert pairs(al) == [(0, 0, False, True), (1, 1, True, True), (2, 2, False, True), (3, 3, True, True)]


def test_case_insensitive_alleles():
    al = align(make([("1", 1, "a", "g")]), make([("1", 1, "G", "A")]))
    assert pairs(al) == [(0, 0, True, False)]


def test_direct_match_takes_precedence_over_strand():
    # the panel has both A/G and the complement T/C at one position: the direct one is used, the other not twice
    c = make([("1", 1, "A", "G"), ("1", 1, "T", "C")])
    p = make([("1", 1, "T", "C"), ("1", 1, "A", "G")])
    al = align(c, p)
    check_invariants(al)
    assert pairs(al) == [(0, 1, False, False), (1, 0, False, False)]
    # only A/G in the panel: the cohort's T/C site must not re-use it through the other strand
    al = align(c, make([("1", 1, "A", "G")]))
    check_invariants(al)
    assert pairs(al) == [(0, 0, False, False)]
    assert al.dropped["allele_mismatch"] == 1


@pytest.mark.parametrize("ref,alt", [("A", "T"), ("T", "A"), ("C", "G"), ("G", "C")])
def test_ambiguous_drop_default(ref, alt):
    c = make([("1", 1, ref, alt), ("1", 2, "A", "G")])
    for p_alleles in [(ref, alt), (alt, ref)]:
        al = align(c, make([("1", 1, *p_alleles), ("1", 2, "A", "G")]))
        check_invariants(al)
        assert pairs(al) == [(1, 1, False, False)]
        assert al.dropped["strand_ambiguous"] == 1
        assert "strand-ambiguous" in al.summary()


@pytest.mark.parametrize("ref,alt", [("A", "T"), ("C", "G")])
def test_ambiguous_keep_assumes_same_strand(ref, alt):
    c = make([("1", 1, ref, alt), ("1", 2, "A", "G")])
    al = align(c, make([("1", 1, ref, alt), ("1", 2, "A", "G")]), ambiguous="keep")
    check_invariants(al)
    assert pairs(al) == [(0, 0, False, False), (1, 1, False, False)]
    al = align(c, make([("1", 1, alt, ref), ("1", 2, "A", "G")]), ambiguous="keep")
    assert pairs(al) == [(0, 0, True, False), (1, 1, False, False)]
    assert al.dropped["strand_ambiguous"] == 0
    assert "ambiguous=keep" in al.summary()


def test_ambiguous_not_in_panel_counts_as_not_in_panel():
    al = align(make([("1", 1, "A", "T"), ("1", 2, "A", "G")]), make([("1", 2, "A", "G")]))
    assert al.dropped["not_in_panel"] == 1 and al.dropped["strand_ambiguous"] == 0


def test_unmatched_drop():
    c = make([("1", 1, "A", "G"), ("1", 2, "A", "G"), ("1", 3, "A", "G"), ("2", 3, "A", "G")])
    p = make([("1", 1, "A", "G"), ("1", 2, "A", "C"), ("1", 4, "A", "G")])
    al = align(c, p)
    check_invariants(al)
    assert pairs(al) == [(0, 0, False, False)]
    assert al.dropped["not_in_panel"] == 2
    assert al.dropped["allele_mismatch"] == 1
    assert al.examples["not_in_panel"] == "1:3"
    assert al.examples["allele_mismatch"] == "1:2"


def test_unmatched_error():
    c = make([("chr1", 1, "A", "G"), ("chr1", 2, "A", "G"), ("chr1", 3, "A", "G"), ("chr2", 3, "A", "G")])
    p = make([("1", 1, "A", "G"), ("1", 2, "A", "C")])
    with pytest.raises(GenoshareError) as exc:
        align(c, p, unmatched="error")
    msg = str(exc.value)
    assert "\n" not in msg
    assert "2 cohort sites not in the reference panel (first: chr1:3)" in msg
    assert "1 cohort sites with alleles incompatible" in msg and "(first: chr1:2)" in msg
    # nothing unmatched: no error
    al = align(make([("1", 1, "A", "G")]), p, unmatched="error")
    assert al.n_kept == 1


def test_bad_policy():
    c = make([("1", 1, "A", "G")])
    with pytest.raises(GenoshareError, match="ambiguous"):
        align(c, c, ambiguous="flip")
    with pytest.raises(GenoshareError, match="unmatched"):
        align(c, c, unmatched="keep")


def test_non_diploid_refused():
    c = make([("1", 1, "A", "G")])
    p = make([("1", 1, "A", "G")])
    p.ploidy = 1
    with pytest.raises(GenoshareError, match="ploidy"):
        align(c, p)


# ------------------------------------------------------------------------------------------------------------------
# site filter


def test_site_filter_reasons_and_counts():
    info = make(
        [
            ("1", 1, "A", "G"),  # ok
            ("1", 2, "A", "G", "T"),  # multiallelic
            ("1", 3, "A", ""),  # monoallelic
            ("1", 4, "A", "."),  # monoallelic
            ("1", 5, "0", "G"),  # monoallelic (PLINK missing allele)
            ("1", 6, "C", "c"),  # ref_equals_alt
            ("1", 1, "G", "A"),  # duplicate of site 0 (alleles in the other order)
            ("chr1", 1, "A", "G"),  # duplicate of site 0 after the chr prefix
            ("1", 1, "A", "C"),  # same position, other alleles: a different site
            ("2", 1, "A", "G"),  # other contig: ok
        ],
        width=3,
    )
    keep, dropped = site_filter(info)
    assert keep.tolist() == [True, False, False, False, False, False, False, False, True, True]
    assert dropped == {"multiallelic": 1, "monoallelic": 3, "ref_equals_alt": 1, "duplicate_site": 2}


def test_multiallelic_and_duplicates_counted_in_alignment():
    c = make([("1", 1, "A", "G"), ("1", 2, "A", "G", "T"), ("1", 1, "A", "G"), ("1", 3, "C", "T")], width=3)
    p = make(
        [
            ("1", 1, "A", "G"),
            ("1", 2, "A", "G"),
            ("1", 3, "C", "T", "G"),
            ("1", 3, "C", "T"),
            ("1", 1, "A", "G"),
            ("1", 4, "A", ""),
        ],
        width=3,
    )
    al = align(c, p)
    check_invariants(al)
    # cohort duplicate: the first record (0) is kept; panel's multiallelic site 3 is skipped, record 3 is used
    assert pairs(al) == [(0, 0, False, False), (3, 3, False, False)]
    assert al.dropped["multiallelic"] == 1 and al.dropped["duplicate_site"] == 1
    assert al.dropped["panel_multiallelic"] == 1 and al.dropped["panel_duplicate_site"] == 1
    assert al.dropped["panel_monoallelic"] == 1
    s = al.summary()
    assert "2 of 4 cohort sites" in s and "panel" in s and "\n" not in s


def test_panel_site_removed_by_filter_is_not_in_panel():
    al = align(make([("1", 1, "A", "G"), ("1", 2, "A", "G")]), make([("1", 1, "A", "G"), ("1", 2, "A", "G", "T")]))
    assert al.dropped["not_in_panel"] == 1 and al.dropped["panel_multiallelic"] == 1


# ------------------------------------------------------------------------------------------------------------------
# contigs


@pytest.mark.parametrize(
    "name,expected",
    [("chr1", "1"), ("CHRX", "X"), ("Chr22", "22"), ("1", "1"), ("chr", "chr"), ("chrM", "M"), ("MT", "MT")],
)
def test_normalise_contig(name, expected):
    assert normalise_contig(name) == expected


def test_chr_prefix():
    c = make([("chr1", 10, "A", "G"), ("chrX", 5, "C", "T")])
    p = make([("1", 10, "A", "G"), ("X", 5, "T", "C")])
    al = align(c, p)
    assert pairs(al) == [(0, 0, False, False), (1, 1, True, False)]
    al = align(p, c)
    assert pairs(al) == [(0, 0, False, False), (1, 1, True, False)]


def test_different_contig_order():
    c = make([("1", 10, "A", "G"), ("1", 20, "C", "T"), ("2", 10, "G", "T")], contig_ids=["1", "2", "3"])
    # the panel lists contig 2 first, has an unused contig, and its own contig table order
    p = make(
        [("chr2", 10, "G", "T"), ("chr1", 20, "C", "T"), ("chr1", 10, "G", "A")], contig_ids=["chr3", "chr2", "chr1"]
    )
    al = align(c, p)
    check_invariants(al)
    assert pairs(al) == [(0, 2, True, False), (1, 1, False, False), (2, 0, False, False)]
    # same position on different contigs must not match
    al = align(make([("1", 10, "A", "G"), ("2", 10, "A", "G")]), make([("2", 10, "A", "G")]))
    assert pairs(al) == [(1, 0, False, False)]


def test_no_overlap_error():
    c = make([("1", 1, "A", "G"), ("1", 2, "A", "T")])
    p = make([("2", 1, "A", "G"), ("1", 2, "A", "T")])
    with pytest.raises(GenoshareError) as exc:
        align(c, p)
    msg = str(exc.value)
    assert msg.startswith("no overlap between cohort and reference panel after alignment: ")
    assert "not_in_panel 1" in msg and "strand_ambiguous 1" in msg and "\n" not in msg


# ------------------------------------------------------------------------------------------------------------------
# property: a panel made from the cohort by permuting, swapping and flipping is aligned back exactly


@pytest.mark.parametrize("seed", range(20))
def test_property_recovers_correspondence(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 300))
    bases = np.array(list("ACGT"))
    contigs = ["1", "2", "X"]
    # distinct (contig, position) sites, random non-ambiguous SNPs (plus a few multi-base alleles)
    flat = rng.choice(3 * 1000, size=m, replace=False)
    cc, pos = flat // 1000, flat % 1000 + 1
    sites = []
    for i in range(m):
        while True:
            r, a = rng.choice(bases, 2, replace=False)
            if COMP[r] != a:
                break
        if rng.random() < 0.1:
            a = a + "".join(rng.choice(bases, 2))  # an indel-like allele: never strand-flipped
        sites.append((contigs[cc[i]], int(pos[i]), str(r), str(a)))
    order = np.argsort(cc * 10_000 + pos, kind="stable")
    sites = [sites[i] for i in order]
    cohort = make(sites, contig_ids=contigs)

    perm = rng.permutation(m)
    swap = rng.random(m) < 0.5
    flip = rng.random(m) < 0.5
    panel_sites = [None] * m
    for i in range(m):
        contig, p, r, a = sites[i]
        if flip[i] and len(r) == 1 and len(a) == 1:
            r, a = COMP[r], COMP[a]
        else:
            flip[i] = False
        if swap[i]:
            r, a = a, r
        if rng.random() < 0.5:
            r, a = r.lower(), a.lower()
        panel_sites[perm[i]] = ("chr" + contig, p, r, a)
    panel_contigs = ["chrX", "chr2", "chr1"]
    panel = make(panel_sites, contig_ids=panel_contigs)

    al = align(cohort, panel)
    check_invariants(al)
    assert al.n_kept == m
    np.testing.assert_array_equal(al.cohort_index, np.arange(m))
    np.testing.assert_array_equal(al.panel_index, perm)
    np.testing.assert_array_equal(al.panel_swap, swap)
    np.testing.assert_array_equal(al.panel_strand_flip, flip)

    # and the AF table made from the panel gives the cohort's ALT frequency back
    true_af = rng.random(m)
    panel_af = np.where(swap, 1 - true_af, true_af)
    table = pd.DataFrame(
        {
            "contig": [panel_sites[perm[i]][0] for i in range(m)],
            "position": [panel_sites[perm[i]][1] for i in range(m)],
            "ref": [panel_sites[perm[i]][2] for i in range(m)],
            "alt": [panel_sites[perm[i]][3] for i in range(m)],
            "af": panel_af,
        }
    ).sample(frac=1.0, random_state=seed)
    af, counts = align_af_table(cohort, al, table)
    np.testing.assert_allclose(af, true_af, rtol=0, atol=1e-12)
    assert counts["found"] == m and counts["swapped"] == int(swap.sum()) and counts["strand_flipped"] == int(flip.sum())


# ------------------------------------------------------------------------------------------------------------------
# allele-frequency tables


def _af_setup():
    c = make(
        [
            ("chr1", 1, "A", "G"),
            ("chr1", 2, "C", "T"),
            ("chr1", 3, "A", "C"),
            ("chr1", 4, "A", "T"),
            ("chr1", 5, "G", "T"),
            ("chr2", 6, "A", "G"),
        ]
    )
    p = make(
        [
            ("1", 1, "A", "G"),
            ("1", 2, "C", "T"),
            ("1", 3, "A", "C"),
            ("1", 4, "A", "T"),
            ("1", 5, "G", "T"),
            ("2", 6, "A", "G"),
        ]
    )
    return c, p


def test_align_af_table_swap_flip_missing():
    c, p = _af_setup()
    al = align(c, p, ambiguous="keep")
    table = pd.DataFrame(
        {
            "contig": ["1", "1", "1", "1", "1"],
            "position": [1, 2, 3, 4, 5],
            "ref": ["A", "T", "T", "T", "G"],
            "alt": ["G", "C", "G", "A", "C"],
            "af": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    af, counts = align_af_table(c, al, table)
    # site 1 same; 2 swapped -> 0.8; 3 strand flip (T/G = complement of A/C) -> 0.3; 4 ambiguous kept, swapped ->
    # 0.6; 5 G/C vs G/T -> mismatch; 6 not in file
    np.testing.assert_allclose(af[:4], [0.1, 0.8, 0.3, 0.6])
    assert np.isnan(af[4]) and np.isnan(af[5])
    assert counts == {
        "rows": 5,
        "sites": 6,
        "found": 4,
        "swapped": 2,
        "strand_flipped": 1,
        "not_in_file": 1,
        "allele_mismatch": 1,
        "strand_ambiguous": 0,
    }
    # with the default alignment (ambiguous dropped) site 4 is not among the aligned sites at all
    al = align(c, p)
    af, counts = align_af_table(c, al, table)
    assert al.cohort_index.tolist() == [0, 1, 2, 4, 5]
    np.testing.assert_allclose(af[:3], [0.1, 0.8, 0.3])
    # explicit drop policy on an alignment that kept the ambiguous site
    al = align(c, p, ambiguous="keep")
    af, counts = align_af_table(c, al, table, ambiguous="drop")
    assert counts["strand_ambiguous"] == 1 and np.isnan(af[3])


def test_align_af_table_rejects_duplicates():
    c, p = _af_setup()
    al = align(c, p)
    table = pd.DataFrame(
        {"contig": ["1", "chr1"], "position": [1, 1], "ref": ["A", "G"], "alt": ["G", "A"], "af": [0.1, 0.9]}
    )
    with pytest.raises(GenoshareError, match="duplicate site"):
        align_af_table(c, al, table)


def _write(tmp_path, text, name="af.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_af_table_ok(tmp_path):
    path = _write(tmp_path, "#contig\tposition\tref\talt\taf\textra\nchr1\t10\tA\tG\t0.25\tx\n1\t11\tNA\tT\t1\ty\n")
    df = read_af_table(path)
    assert list(df.columns) == ["contig", "position", "ref", "alt", "af"]
    assert df["position"].dtype == np.int64 and df["af"].dtype == np.float64
    assert df["ref"].tolist() == ["A", "NA"]
    np.testing.assert_allclose(df["af"], [0.25, 1.0])


@pytest.mark.parametrize(
    "text,problem",
    [
        ("", "file is empty"),
        ("contig\tposition\tref\talt\taf\n", "no rows"),
        ("contig\tpos\tref\talt\taf\n1\t1\tA\tG\t0.1\n", "missing column(s) position"),
        ("contig\tposition\tref\talt\n1\t1\tA\tG\n", "missing column(s) af"),
        ("contig\tposition\tref\talt\taf\n1\t1\tA\tG\tabc\n", "row 2: af 'abc' is not a number in [0, 1]"),
        ("contig\tposition\tref\talt\taf\n1\t1\tA\tG\t0.1\n1\t2\tA\tG\t1.5\n", "row 3: af '1.5'"),
        ("contig\tposition\tref\talt\taf\n1\t1\tA\tG\t\n", "row 2: af ''"),
        ("contig\tposition\tref\talt\taf\n1\tx\tA\tG\t0.1\n", "row 2: position 'x' is not a positive integer"),
        ("contig\tposition\tref\talt\taf\n1\t1.5\tA\tG\t0.1\n", "position '1.5'"),
        ("contig\tposition\tref\talt\taf\n1\t1\t\tG\t0.1\n", "row 2: empty ref"),
        (
            "contig\tposition\tref\talt\taf\n1\t1\tA\tG\t0.1\nchr1\t1\tg\ta\t0.9\n",
            "duplicate site 1:1 A/G (rows 2 and 3)",
        ),
    ],
)
def test_read_af_table_errors(tmp_path, text, problem):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        read_af_table(path)
    msg = str(exc.value)
    assert str(path) in msg and problem in msg and "\n" not in msg


def test_read_af_table_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_af_table(tmp_path / "absent.tsv")
    with pytest.raises(InputError, match="directory"):
        read_af_table(tmp_path)


# ------------------------------------------------------------------------------------------------------------------
# speed (printed, not asserted)


def _random_sites(rng, m, contigs):
    """m distinct bi-allelic SNP sites as an Info (vectorised)."""
    bases = np.array(["A", "C", "G", "T"], dtype=object)
    cc = np.sort(rng.integers(0, len(contigs), m))
    pos = np.empty(m, dtype=np.int64)
    for c in range(len(contigs)):
        sel = cc == c
        pos[sel] = np.sort(rng.choice(250_000_000, size=int(sel.sum()), replace=False)) + 1
    r = rng.integers(0, 4, m)
    a = (r + rng.integers(1, 4, m)) % 4
    alleles = np.stack([bases[r], bases[a]], axis=1)
    return Info(contig_ids=list(contigs), variant_contig=cc, variant_position=pos, variant_allele=alleles)


def test_speed_1e6(capsys):
    rng = np.random.default_rng(0)
    m = 1_000_000
    cohort = _random_sites(rng, m, [str(i) for i in range(1, 23)])
    # panel: a shuffled copy with 90% of the sites, half of them swapped, some flipped, chr-prefixed, plus extras
    keep = rng.random(m) < 0.9
    idx = rng.permutation(np.flatnonzero(keep))
    alle = cohort.variant_allele[idx].copy()
    sw = rng.random(idx.size) < 0.5
    alle[sw] = alle[sw][:, ::-1]
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    fl = rng.random(idx.size) < 0.1
    alle[fl] = np.vectorize(comp.get, otypes=[object])(alle[fl])
    extra = _random_sites(rng, m - idx.size, [str(i) for i in range(1, 23)])
    panel = Info(
        contig_ids=["chr" + c for c in cohort.contig_ids],
        variant_contig=np.concatenate([cohort.variant_contig[idx], extra.variant_contig]),
        variant_position=np.concatenate([cohort.variant_position[idx], extra.variant_position]),
        variant_allele=np.concatenate([alle, extra.variant_allele]),
    )
    t0 = time.perf_counter()
    al = align(cohort, panel, ambiguous="keep")
    dt = time.perf_counter() - t0
    check_invariants(al)
    assert al.n_kept >= keep.sum() - 1000  # a few random extras may collide
    t0 = time.perf_counter()
    al_drop = align(cohort, panel)
    dt2 = time.perf_counter() - t0
    with capsys.disabled():
        print(
            f"\n[align speed] 1e6 cohort x 1e6 panel: {dt:.2f} s (ambiguous=keep, kept {al.n_kept:,}), "
            f"{dt2:.2f} s (ambiguous=drop, kept {al_drop.n_kept:,})"
        )
