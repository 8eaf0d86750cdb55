"""KING-robust kinship, relative pairs and group privacy.

Two simulated populations, because "unrelated" needs care in a coalescent:

- ``simulate_cohort`` (genoshare's simulator) draws everyone from ONE constant population of 10,000 on ONE contig
  (its docstring: cryptic relatedness). Pairs whose haplotypes coalesced a few generations ago share them along
  the whole contig, so KING sees many "relatives" there (3,317 pairs above 0.0884 among 300 people on 4,000 SNPs;
  25 among 200 on a 54 Mb contig). They are real shared ancestry in that model, not estimator errors. So on
  that cohort the planted families are built from individuals with no kinship above the 3rd-degree cutoff to
  anyone, and the test checks that exactly the pre-existing pairs plus the planted ones are found afterwards.
- A population that grew 100-fold over the last 400 generations to 1,000,000 (msprime directly), on ten
  independent 5 Mb chromosomes: there unrelated people really are unrelated (largest kinship ~0.05), so the test
  asks for NO pair before planting and exactly the planted pairs after.

The same short contig also makes some people "inbred": their own two haplotypes coalesced recently, so they are
homozygous along much of it (heterozygosity down to ~60% of the median). KING-robust assumes no inbreeding and
underestimates the kinship of inbred people with their relatives (a planted parent-child pair of such a parent
scored 0.07), so the simulate_cohort founders also need a heterozygosity within 10% of the median. For the same
reason (one short contig: few independent genealogies, heterozygosity varying between people) second-degree
kinship is biased low there (grandparent-grandchild ~0.075 instead of 0.125), so on that cohort only first-degree
families (parents, full siblings) are planted; second-degree relatives are tested in the grown population.

Planted relatives: a child gets one allele from each parent at every SNP (ALT with probability g/2 from a parent
of genotype g: independent SNPs, so the expected kinships are exact: parent-child and full siblings 1/4,
grandparent-grandchild and avuncular 1/8).
"""

import json
import math

import numpy as np
import pytest
from tools import require_tool
from click.testing import CliRunner

from genoshare.errors import GenoshareError
from genoshare.io.csvmatrix import read_matrix, write_matrix
from genoshare.privacy.kinship import (
    MAX_SAMPLES,
    GenotypeSource,
    degree_label,
    find_related,
    group_privacy,
    king_robust,
    kinship_report,
    related_pairs,
    relative_groups,
)


def _brute(G, estimator="between"):
    n = G.shape[1]
    P = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            a, b = G[:, i], G[:, j]
            ok = (a >= 0) & (b >= 0)
            a, b = a[ok], b[ok]
            hh = np.sum((a == 1) & (b == 1))
            ibs0 = np.sum(((a == 0) & (b == 2)) | ((a == 2) & (b == 0)))
            ni, nj = np.sum(a == 1), np.sum(b == 1)
            if estimator == "between":  # Manichaikul et al. 2010, eq. 11
                P[i, j] = 0.5 + (2 * hh - 4 * ibs0 - ni - nj) / (4 * min(ni, nj))
            else:
                P[i, j] = (hh - 2 * ibs0) / (ni + nj)
    np.fill_diagonal(P, 0.5)
    return P


def _random(m, n, seed, missing):
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 0.95, size=(m, 1))
    G = rng.binomial(2, f, size=(m, n)).astype(np.int8)
    G[rng.random((m, n)) < missing] = -1
    return G


@pytest.mark.parametrize("estimator", ["between", "within"])
def test_matches_literal_formula_with_missing(estimator):
    G = _random(400, 25, 0, 0.08)
    ref = _brute(G, estimator)
    for step in (400, 37, 1):
        got = king_robust((G[v : v + step] for v in range(0, 400, step)), 25, estimator)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_blockwise_pairs_equal_full_matrix():
    G = _random(300, 41, 1, 0.05)
    ids = [f"s{i}" for i in range(41)]
    full = related_pairs(king_robust([G], 41), ids, threshold=-1.0)
    assert len(full) == 41 * 40 // 2
    for block, chunk in ((41, 300), (7, 50), (1, 1000), (16, 3)):
        src = GenotypeSource.from_matrix(G, ids, chunk_variants=chunk)
        got = find_related(src, -1.0, sample_block=block)
        assert [(a, b) for a, b, _, _ in got] == [(a, b) for a, b, _, _ in full]
        np.testing.assert_allclose([p for _, _, p, _ in got], [p for _, _, p, _ in full], rtol=0, atol=1e-12)


def test_degree_labels_and_groups():
    assert degree_label(0.5) == "duplicate/MZ twin"
    assert degree_label(0.25) == "1st degree"
    assert degree_label(0.177) == "2nd degree"  # KING: (0.0884, 0.177] is 2nd degree
    assert degree_label(0.125) == "2nd degree"
    assert degree_label(0.0884) == "3rd degree"
    assert degree_label(0.01) == "unrelated"
    pairs = [("a", "b", 0.25, ""), ("b", "c", 0.25, ""), ("x", "y", 0.12, ""), ("d", "c", 0.1, "")]
    groups = relative_groups(pairs)
    assert groups == [["a", "b", "c", "d"], ["x", "y"]]
    cost = group_privacy(groups, epsilon=2.0, delta=1e-6)
    assert [g["epsilon"] for g in cost] == [8.0, 4.0]
    assert cost[1]["delta"] == pytest.approx(2 * math.exp(2.0) * 1e-6)  # k e^((k-1) eps) delta
    assert group_privacy(groups)[0]["epsilon_multiplier"] == 4


def _child(rng, g1, g2):
    """One allele from each parent at every SNP: ALT with probability g/2."""
    return (rng.random(g1.shape) < g1 / 2).astype(np.int8) + (rng.random(g2.shape) < g2 / 2).astype(np.int8)


def _plant(G, ids, founders, rng):
    """Append a family to (m, n) genotypes: parents P1, P2 (existing), children C1, C2 (full sibs), and, when a
    third founder P3 is given, GC, the child of C1 and P3. Returns genotypes, ids, expected {(id1, id2): degree}."""
    p1, p2 = founders[:2]
    c1 = _child(rng, G[:, p1], G[:, p2])
    c2 = _child(rng, G[:, p1], G[:, p2])
    P1, P2 = ids[p1], ids[p2]
    first, second = "1st degree", "2nd degree"
    expected = {(P1, "C1"): first, (P2, "C1"): first, (P1, "C2"): first, (P2, "C2"): first, ("C1", "C2"): first}
    new, names = [c1, c2], ["C1", "C2"]
    if len(founders) > 2:
        p3 = founders[2]
        new.append(_child(rng, c1, G[:, p3]))
        names.append("GC")
        expected.update(
            {("C1", "GC"): first, (ids[p3], "GC"): first, (P1, "GC"): second, (P2, "GC"): second, ("C2", "GC"): second}
        )
    return np.concatenate([G, np.stack(new, axis=1)], axis=1), list(ids) + names, expected


def _as_dict(pairs):
    return {tuple(sorted((a, b))): d for a, b, _, d in pairs}


@pytest.fixture(scope="module")
def grown_population():
    """200 people of a population grown to 1e6, ten independent 5 Mb chromosomes, MAF >= 0.05."""
    import msprime

    dem = msprime.Demography()
    dem.add_population(name="pop", initial_size=1_000_000, growth_rate=math.log(100) / 400)
    dem.add_population_parameters_change(time=400, initial_size=10_000, growth_rate=0)
    blocks = []
    for c in range(10):
        ts = msprime.sim_ancestry(
            200, demography=dem, sequence_length=5e6, recombination_rate=1e-8, random_seed=100 + c
        )
        ts = msprime.sim_mutations(ts, rate=1.25e-8, random_seed=200 + c, model=msprime.BinaryMutationModel())
        h = ts.genotype_matrix()
        g = (h[:, 0::2] + h[:, 1::2]).astype(np.int8)
        f = g.mean(axis=1) / 2
        blocks.append(g[(f >= 0.05) & (f <= 0.95)])
    return np.concatenate(blocks)


def test_planted_relatives_in_grown_population(grown_population):
    G = grown_population
    n = G.shape[1]
    ids = [f"p{i:03d}" for i in range(n)]
    phi = king_robust([G], n)
    iu = np.triu_indices(n, 1)
    assert np.nanmax(phi[iu]) < 0.07  # unrelated people are unrelated here
    assert related_pairs(phi, ids) == []
    G2, ids2, expected = _plant(G, ids, (3, 50, 120), np.random.default_rng(5))
    src = GenotypeSource.from_matrix(G2, ids2)
    found = find_related(src, sample_block=64)
    assert _as_dict(found) == {tuple(sorted(k)): v for k, v in expected.items()}
    for _a, _b, p, d in found:
        assert (0.2 < p < 0.3) if d == "1st degree" else (0.095 < p < 0.16)
    rep = kinship_report(src, epsilon=1.5)
    assert rep["largest_group"] == 6 and rep["epsilon_largest_group"] == pytest.approx(9.0)
    assert sorted(rep["groups"][0]["members"]) == sorted([ids[3], ids[50], ids[120], "C1", "C2", "GC"])


@pytest.fixture(scope="module")
def simulated_cohort(tmp_path_factory):
    from genoshare.simulate import simulate_cohort

    out = tmp_path_factory.mktemp("kin") / "sim"
    simulate_cohort(out, 100, 100, 10, 20000, seed=7, holdout=0, formats=("csv", "vcz", "plink"))
    return out


def test_planted_relatives_in_simulate_cohort(simulated_cohort):
    c = read_matrix(simulated_cohort / "cohort.csv.gz")
    G, ids, n = c.genotypes, c.sample_ids, c.n_samples
    phi = king_robust([G], n)
    before = _as_dict(related_pairs(phi, ids))
    assert len(before) < 400  # cryptic relatives of the constant-size coalescent (module docstring)
    assert "warning" not in kinship_report(GenotypeSource.from_matrix(G, ids))
    short = kinship_report(GenotypeSource.from_matrix(G[:2000], ids))  # the first 1.5 Mb only: mostly noise
    assert "too little of the genome" in short["warning"]
    np.fill_diagonal(phi, -1)
    het = (G == 1).sum(axis=0)
    clean = np.flatnonzero(
        (np.nanmax(phi, axis=1) < 0.0442)  # no kinship above 3rd degree with anyone
        & (np.abs(het / np.median(het) - 1) < 0.1)
    )  # and not inbred (module docstring)
    assert clean.size >= 3
    G2, ids2, expected = _plant(G, ids, tuple(clean[:2]), np.random.default_rng(11))
    after = _as_dict(find_related(GenotypeSource.from_matrix(G2, ids2), sample_block=50))
    planted = {tuple(sorted(k)): v for k, v in expected.items()}
    assert after == {**before, **planted}  # all planted found with their degree; nothing else new


def test_matches_plink2_make_king_table(simulated_cohort, tmp_path):
    plink2 = require_tool("plink2")
    import subprocess

    import pandas as pd

    subprocess.run(
        [
            plink2,
            "--bfile",
            str(simulated_cohort / "cohort"),
            "--make-king-table",
            "--king-table-filter",
            "-1",
            "--out",
            str(tmp_path / "king"),
        ],
        check=True,
        capture_output=True,
    )
    t = pd.read_csv(tmp_path / "king.kin0", sep="\t")
    c = read_matrix(simulated_cohort / "cohort.csv.gz")
    phi = king_robust([c.genotypes], c.n_samples)
    pos = {s: i for i, s in enumerate(c.sample_ids)}
    ours = phi[t["IID1"].map(pos).to_numpy(), t["IID2"].map(pos).to_numpy()]
    np.testing.assert_allclose(ours, t["KINSHIP"].to_numpy(), rtol=0, atol=1e-6)  # plink2 prints 6 digits


def test_vcz_source_equals_csv_and_thinning(simulated_cohort):
    a = GenotypeSource.from_path(simulated_cohort / "cohort.csv.gz", max_variants=3000)
    b = GenotypeSource.from_path(simulated_cohort / "cohort.vcz", max_variants=3000)
    assert a.n_variants == b.n_variants == 3000 and a.sample_ids == b.sample_ids
    np.testing.assert_array_equal(a.read(0, 3000, 5, 60), b.read(0, 3000, 5, 60))
    np.testing.assert_array_equal(b.read(1234, 2345, 0, 200), a.read(1234, 2345, 0, 200))
    assert find_related(a, 0.05, sample_block=33) == find_related(b, 0.05, sample_block=200)


def test_refuses_biobank_size_and_bad_input(tmp_path):
    src = GenotypeSource([f"s{i}" for i in range(MAX_SAMPLES + 1)], 10, lambda *a: pytest.fail("must not read"))
    with pytest.raises(GenoshareError, match="plink2 --make-king-table"):
        find_related(src)
    with pytest.raises(GenoshareError, match="threshold"):
        kinship_report(src, threshold=-1)
    with pytest.raises(GenoshareError, match="no such file"):
        GenotypeSource.from_path(tmp_path / "nope.vcz")
    (tmp_path / "x.bed").write_bytes(b"\x6c\x1b\x01")
    with pytest.raises(GenoshareError, match="CSV matrix or a VCF Zarr"):
        GenotypeSource.from_path(tmp_path / "x.bed")


def test_cli_kinship(tmp_path, grown_population):
    from genoshare.cli.privacy import kinship_cmd

    # every 4th SNP: thinning keeps the genome span (ten chromosomes), which is what KING's precision needs
    G2, ids2, expected = _plant(
        grown_population[::4], [f"p{i:03d}" for i in range(200)], (1, 2), np.random.default_rng(3)
    )
    write_matrix(tmp_path / "c.csv.gz", ids2, [f"v{j}" for j in range(G2.shape[0])], G2)
    runner = CliRunner()
    res = runner.invoke(kinship_cmd, [str(tmp_path / "c.csv.gz"), "--json", "--epsilon", "2"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert {tuple(sorted((p["id1"], p["id2"]))) for p in rep["pairs"]} == {tuple(sorted(k)) for k in expected}
    assert rep["groups"][0]["size"] == 4 and rep["groups"][0]["epsilon"] == 8.0
    res = runner.invoke(kinship_cmd, [str(tmp_path / "c.csv.gz"), "--epsilon", "2"])
    assert res.exit_code == 0 and "1st degree" in res.output and "4 x epsilon = 8" in res.output
    res = runner.invoke(kinship_cmd, [str(tmp_path / "c.csv.gz"), "--threshold", "0.4"])
    assert res.exit_code == 0 and "no pairs with kinship above 0.4" in res.output
    res = runner.invoke(kinship_cmd, [str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "missing.csv" in res.output


def test_check_relatives_for_the_release_flow(grown_population):
    from genoshare.privacy.kinship import check_relatives, format_relatives

    ids = [f"p{i:03d}" for i in range(200)]
    G = grown_population[::4]
    clean = check_relatives(GenotypeSource.from_matrix(G, ids), 3.0, refuse=True)
    assert clean["pairs"] == [] and "none above kinship 0.0884" in format_relatives(clean)
    G2, ids2, _ = _plant(G, ids, (1, 2), np.random.default_rng(3))
    rep = check_relatives(GenotypeSource.from_matrix(G2, ids2), 3.0)
    assert "largest group (4 people)" in format_relatives(rep) and "4 x epsilon = 12" in format_relatives(rep)
    with pytest.raises(GenoshareError, match="--refuse-relatives: the cohort has 5 related pair") as err:
        check_relatives(GenotypeSource.from_matrix(G2, ids2), 3.0, refuse=True)
    assert "\n" not in str(err.value)


def test_check_relatives_skips_biobank_size_unless_refusing():
    from genoshare.privacy.kinship import check_relatives, format_relatives

    src = GenotypeSource([f"s{i}" for i in range(MAX_SAMPLES + 1)], 10, lambda *a: pytest.fail("must not read"))
    rep = check_relatives(src, 1.0)
    assert rep["skipped"] and "not checked" in format_relatives(rep) and rep["pairs"] == []
    with pytest.raises(GenoshareError, match="--refuse-relatives: cannot check relatives"):
        check_relatives(src, 1.0, refuse=True)
