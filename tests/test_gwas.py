"""GWAS tests (SPEC 5) over files, checked against PLINK 1.9 run for real on the same PLINK files."""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from tools import require_tool
from click.testing import CliRunner

from genoshare.cli.verify import gwas as gwas_cmd
from genoshare.errors import GenoshareError, InputError
from genoshare.evaluate.gwas import (
    association,
    count_by_group,
    genotype_counts,
    gwas_counts,
    read_phenotype,
    retention,
    run_gwas,
    run_test,
)
from genoshare.io.csvmatrix import read_matrix, write_matrix
from genoshare.io.vcz import export_plink, open_vcz, write_vcz

PLINK = shutil.which("plink1.9") or shutil.which("plink")


@pytest.fixture
def needs_plink():
    """PLINK 1.9 on PATH (tests/tools.py: missing fails in CI, skips elsewhere)."""
    return require_tool("plink1.9", "plink")


# ----------------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A simulated cohort (150 cases, 150 controls, 500 SNPs) as CSV, VCF Zarr and PLINK (phenotype in the .fam),
    plus a copy with 3% missing genotypes and 10 missing phenotypes."""
    from genoshare.simulate import simulate_cohort

    d = tmp_path_factory.mktemp("gwas-sim")
    simulate_cohort(
        d / "sim", cases=150, controls=150, panel=10, variants=500, seed=21, holdout=0, formats=("csv", "vcz", "plink")
    )
    s = d / "sim"
    info = open_vcz(s / "cohort.vcz")
    G = read_matrix(s / "cohort.csv.gz").genotypes.copy()
    rng = np.random.default_rng(5)
    G[rng.random(G.shape) < 0.03] = -1
    pheno = pd.read_csv(s / "phenotype.tsv", sep="\t", dtype={"id": str})["phenotype"].to_numpy().copy()
    pheno[rng.choice(pheno.size, 10, replace=False)] = -9
    write_vcz(
        d / "miss.vcz",
        G,
        sample_ids=info.sample_ids,
        contig_ids=info.contig_ids,
        variant_contig=info.variant_contig,
        variant_position=info.variant_position,
        variant_allele=info.variant_allele,
        variant_id=info.variant_id,
        chunks=(64, 50),
    )
    export_plink(d / "miss.vcz", d / "miss", phenotype=pheno)
    return {"dir": s, "miss": d / "miss", "miss_vcz": d / "miss.vcz", "G_miss": G, "pheno_miss": pheno, "work": d}


def plink(*args, cwd):
    proc = subprocess.run(
        [PLINK, "--allow-no-sex", "--silent", *map(str, args)], cwd=cwd, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def read_plink_table(path) -> pd.DataFrame:
    return pd.read_csv(path, sep=r"\s+", dtype=str, keep_default_na=False)


def agrees(ours: float, printed: str) -> bool:
    """``ours`` equals PLINK's printed value to the precision PLINK prints (4 significant digits)."""
    if printed == "NA":
        return not np.isfinite(ours)
    x = float(printed)
    if not np.isfinite(ours):
        return False
    if x == 0:
        return ours < 1e-300
    digits = len(printed.split("e")[0].replace("-", "").replace(".", "").lstrip("0")) or 1
    half_unit = 0.5 * 10.0 ** (np.floor(np.log10(abs(x))) - (digits - 1))
    return abs(ours - x) <= half_unit * (1 + 1e-6) + 1e-12 * abs(x)


def assert_matches(ours: pd.DataFrame, ids, chisq, p, what):
    ours = ours.set_index("id").loc[list(ids)]
    bad = [
        (i, s, c, q, pp)
        for i, s, c, q, pp in zip(ids, ours["statistic"], chisq, ours["p"], p)
        if not (agrees(s, c) and agrees(q, pp))
    ]
    assert not bad, f"{what}: {len(bad)} of {len(ids)} SNPs differ from PLINK, e.g. {bad[:3]}"


def run_cli(*args):
    res = CliRunner().invoke(gwas_cmd, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


# ----------------------------------------------------------------------------------------------------------------
# PLINK 1.9 agreement


@pytest.mark.usefixtures("needs_plink")
def test_allelic_matches_plink_assoc(sim, tmp_path):
    plink("--bfile", sim["dir"] / "cohort", "--assoc", "--out", tmp_path / "a", cwd=tmp_path)
    ref = read_plink_table(tmp_path / "a.assoc")
    run_cli("--cases", sim["dir"] / "cohort.bed", "--test", "allelic", "--out", tmp_path / "ours.tsv")
    ours = pd.read_csv(tmp_path / "ours.tsv", sep="\t", dtype={"id": str})
    assert list(ours.columns) == ["id", "statistic", "p", "n_cases", "n_controls"]
    assert len(ours) == len(ref) == 500
    assert (ref["P"].astype(float) < 0.05).sum() > 20  # there is signal to compare
    assert_matches(ours, ref["SNP"], ref["CHISQ"], ref["P"], "--assoc")


@pytest.mark.usefixtures("needs_plink")
def test_genotypic_matches_plink_model_geno(sim, tmp_path):
    plink("--bfile", sim["dir"] / "cohort", "--model", "--cell", "0", "--out", tmp_path / "m", cwd=tmp_path)
    ref = read_plink_table(tmp_path / "m.model")
    geno = ref[ref["TEST"] == "GENO"]
    assert len(geno) == 500
    assert (geno["DF"] == "1").any()  # SNPs with an empty genotype column: df 1, as ours
    # from the VCF Zarr store with the phenotype TSV: the same numbers as from the PLINK files
    table, _ = run_gwas(sim["dir"] / "cohort.vcz", phenotype=sim["dir"] / "phenotype.tsv", test="genotypic")
    assert_matches(table, geno["SNP"], geno["CHISQ"], geno["P"], "--model GENO")
    # PLINK's default --cell 5 skips the genotypic test on sparse tables: ours tests them all (documented)
    plink("--bfile", sim["dir"] / "cohort", "--model", "--out", tmp_path / "m5", cwd=tmp_path)
    g5 = read_plink_table(tmp_path / "m5.model")
    assert (g5[g5["TEST"] == "GENO"]["P"] == "NA").sum() > 0


@pytest.mark.usefixtures("needs_plink")
def test_missing_genotypes_and_phenotypes_match_plink(sim, tmp_path):
    plink("--bfile", sim["miss"], "--assoc", "--out", tmp_path / "a", cwd=tmp_path)
    plink("--bfile", sim["miss"], "--model", "--cell", "0", "--out", tmp_path / "m", cwd=tmp_path)
    a = read_plink_table(tmp_path / "a.assoc")
    m = read_plink_table(tmp_path / "m.model")
    m = m[m["TEST"] == "GENO"]
    run_cli("--cases", sim["miss"], "--test", "allelic", "--out", tmp_path / "al.tsv")
    run_cli("--cases", sim["miss"], "--test", "genotypic", "--out", tmp_path / "ge.tsv")
    al = pd.read_csv(tmp_path / "al.tsv", sep="\t", dtype={"id": str})
    ge = pd.read_csv(tmp_path / "ge.tsv", sep="\t", dtype={"id": str})
    assert_matches(al, a["SNP"], a["CHISQ"], a["P"], "--assoc with missing data")
    assert_matches(ge, m["SNP"], m["CHISQ"], m["P"], "--model GENO with missing data")
    # 10 phenotypes are missing: those individuals are in neither group; missing genotypes are not counted
    assert (al["n_cases"] + al["n_controls"]).max() <= 290
    G, pheno = sim["G_miss"], sim["pheno_miss"]
    np.testing.assert_array_equal(al["n_cases"], (G[:, pheno == 2] >= 0).sum(axis=1))


@pytest.mark.usefixtures("needs_plink")
def test_cases_against_separate_controls_match_plink(sim, tmp_path):
    base = sim["dir"] / "cohort"
    # without --keep-allele-order PLINK makes A1 the minor allele of each subset: some sites come out with their
    # alleles swapped between the two files, and genoshare must re-orient them
    plink("--bfile", base, "--filter-cases", "--make-bed", "--out", tmp_path / "cases", cwd=tmp_path)
    plink("--bfile", base, "--filter-controls", "--make-bed", "--out", tmp_path / "controls", cwd=tmp_path)
    plink("--bfile", base, "--assoc", "--out", tmp_path / "a", cwd=tmp_path)
    plink("--bfile", base, "--model", "--cell", "0", "--out", tmp_path / "m", cwd=tmp_path)
    a = read_plink_table(tmp_path / "a.assoc")
    m = read_plink_table(tmp_path / "m.model")
    m = m[m["TEST"] == "GENO"]
    run_cli(
        "--cases",
        tmp_path / "cases.bed",
        "--controls",
        tmp_path / "controls.bed",
        "--test",
        "allelic",
        "--out",
        tmp_path / "al.tsv",
    )
    al = pd.read_csv(tmp_path / "al.tsv", sep="\t", dtype={"id": str})
    assert set(al["n_cases"]) == {150} and set(al["n_controls"]) == {150}
    assert gwas_counts(tmp_path / "cases.bed", controls=tmp_path / "controls.bed").notes["allele_swapped"] > 0
    assert_matches(al, a["SNP"], a["CHISQ"], a["P"], "cases vs controls, allelic")
    # mixed formats: cases as a VCF Zarr store (ingested from PLINK), controls as a CSV matrix (no alleles)
    # (a CSV matrix has no alleles to re-orient by: the cases keep the original allele order here)
    from genoshare.io.ingest import ingest

    plink(
        "--bfile",
        base,
        "--filter-cases",
        "--keep-allele-order",
        "--make-bed",
        "--out",
        tmp_path / "cases_k",
        cwd=tmp_path,
    )
    ingest(tmp_path / "cases_k.bed", tmp_path / "cases.vcz")
    full = read_matrix(sim["dir"] / "cohort.csv.gz")
    fam = pd.read_csv(tmp_path / "controls.fam", sep=r"\s+", header=None, dtype=str)
    keep = [full.sample_ids.index(s) for s in fam[1]]
    write_matrix(tmp_path / "controls.csv.gz", fam[1], full.variant_ids, full.genotypes[:, keep])
    table, summary = run_gwas(tmp_path / "cases.vcz", controls=tmp_path / "controls.csv.gz", test="genotypic")
    assert summary["design"] == "controls" and summary["matched"] == 500
    assert_matches(table, m["SNP"], m["CHISQ"], m["P"], "cases vs controls, genotypic")


# ----------------------------------------------------------------------------------------------------------------
# blockwise reading and the designs


def test_blockwise_store_equals_in_memory(sim):
    """Chunks of 64 variants x 50 samples, 1 or 3 threads: the counts equal a whole-matrix count."""
    G, pheno = sim["G_miss"], sim["pheno_miss"]
    assert open_vcz(sim["miss_vcz"]).chunks == (64, 50)
    tsv = sim["work"] / "pheno_miss.tsv"
    info = open_vcz(sim["miss_vcz"])
    pd.DataFrame({"id": info.sample_ids, "phenotype": pheno}).to_csv(tsv, sep="\t", index=False)
    one = gwas_counts(sim["miss_vcz"], phenotype=tsv, threads=1)
    three = gwas_counts(sim["miss_vcz"], phenotype=tsv, threads=3)
    case, ctrl = pheno == 2, pheno == 1
    np.testing.assert_array_equal(one.cases, genotype_counts(G[:, case]))
    np.testing.assert_array_equal(one.controls, genotype_counts(G[:, ctrl]))
    np.testing.assert_array_equal(one.cases, three.cases)
    np.testing.assert_array_equal(one.controls, three.controls)
    for test in ("allelic", "genotypic", "dominant"):
        s, p = association(G[:, case], G[:, ctrl], test)
        s2, p2 = one.test(test)
        np.testing.assert_allclose(p2, p, rtol=1e-12)


def test_count_by_group_skips_unlabelled():
    D = np.array([[0, 1, 2, -1, 2], [2, 2, 2, 2, 0]], dtype=np.int8)
    c = count_by_group(D, np.array([0, 0, 1, -1, 1]), 2)
    np.testing.assert_array_equal(c[0], [[1, 1, 0], [0, 0, 2]])
    np.testing.assert_array_equal(c[1], [[0, 0, 2], [1, 0, 1]])


def test_release_directory_and_csv_inputs(tmp_path):
    rng = np.random.default_rng(3)
    ids = [f"s{i}" for i in range(40)]
    snps = [f"rs{j}" for j in range(30)]
    G = rng.integers(0, 3, (30, 40)).astype(np.int8)
    G[0] = 0  # monomorphic: NA
    rel = tmp_path / "rel"
    rel.mkdir()
    write_matrix(rel / "release.csv.gz", ids, snps, G)
    (tmp_path / "ph.tsv").write_text("id\tphenotype\n" + "".join(f"s{i}\t{i % 2}\n" for i in range(40)))
    run_cli("--cases", rel, "--phenotype", tmp_path / "ph.tsv", "--test", "dominant", "--out", tmp_path / "o.tsv")
    out = pd.read_csv(tmp_path / "o.tsv", sep="\t", keep_default_na=False)
    assert out["id"].tolist() == snps
    assert out.loc[0, "p"] != "NA"  # dominant z with 0.5 cells is defined on a monomorphic SNP
    run_cli("--cases", rel, "--phenotype", tmp_path / "ph.tsv", "--test", "genotypic", "--out", tmp_path / "g.tsv")
    g = pd.read_csv(tmp_path / "g.tsv", sep="\t", keep_default_na=False)
    assert g.loc[0, "statistic"] == "NA" and g.loc[0, "p"] == "NA"
    case = np.arange(40) % 2 == 1  # 0/1 coding: 1 = case
    _, p = association(G[:, case], G[:, ~case], "genotypic")
    np.testing.assert_allclose(pd.to_numeric(g["p"][1:]).to_numpy(), p[1:], rtol=1e-9)


def test_allele_swapped_controls_are_reoriented(tmp_path):
    rng = np.random.default_rng(8)
    m = 20
    A = rng.integers(0, 3, (m, 30)).astype(np.int8)
    B = rng.integers(0, 3, (m, 25)).astype(np.int8)
    alleles = np.array([["A", "G"]] * m, dtype=object)
    meta = dict(
        contig_ids=["1"],
        variant_contig=np.zeros(m, int),
        variant_position=np.arange(1, m + 1) * 10,
        variant_id=np.array([f"v{j}" for j in range(m)], dtype=object),
    )
    write_vcz(tmp_path / "a.vcz", A, sample_ids=[f"a{i}" for i in range(30)], variant_allele=alleles, **meta)
    swapped = alleles.copy()
    swapped[:5] = ["G", "A"]  # REF/ALT swapped at 5 sites: their dosage counts the other allele
    swapped[5] = ["C", "T"]  # different alleles: dropped
    Bs = B.copy()
    Bs[:5] = 2 - B[:5]
    write_vcz(tmp_path / "b.vcz", Bs, sample_ids=[f"b{i}" for i in range(25)], variant_allele=swapped, **meta)
    c = gwas_counts(tmp_path / "a.vcz", controls=tmp_path / "b.vcz")
    assert c.notes["allele_swapped"] == 5 and c.notes["allele_mismatch"] == 1
    keep = [j for j in range(m) if j != 5]
    assert c.variant_ids.tolist() == [f"v{j}" for j in keep]
    np.testing.assert_array_equal(c.controls, genotype_counts(B[keep]))


def test_phenotype_codings(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("id\tphenotype\tother\na\t2\tx\nb\t1\tx\nc\t-9\tx\nd\t0\tx\ne\tNA\tx\n")
    assert read_phenotype(f) == {"a": 0, "b": 1}  # PLINK: 2 case (group 0), 1 control (group 1)
    f.write_text("IID\tpheno\na\t1\nb\t0\nc\t\n")
    assert read_phenotype(f) == {"a": 0, "b": 1}  # 0/1 coding: 1 case
    f.write_text("id\tphenotype\na\tcase\nb\tcontrol\n")
    assert read_phenotype(f) == {"a": 0, "b": 1}
    f.write_text("id\tphenotype\na\t1.7\n")
    with pytest.raises(InputError, match="not a case/control code"):
        read_phenotype(f)
    f.write_text("id\tstatus\na\t1\n")
    with pytest.raises(InputError, match="'id' and 'phenotype'"):
        read_phenotype(f)
    f.write_text("id\tphenotype\na\t1\na\t2\n")
    with pytest.raises(InputError, match="duplicate id"):
        read_phenotype(f)


def test_errors_are_one_line(tmp_path):
    ids = ["x", "y", "z"]
    write_matrix(tmp_path / "c.csv", ids, ["r1", "r2"], np.array([[0, 1, 2], [1, 1, 0]]))
    (tmp_path / "ph.tsv").write_text("id\tphenotype\nx\t2\ny\t2\nz\t2\n")
    with pytest.raises(InputError, match="no control"):
        gwas_counts(tmp_path / "c.csv", phenotype=tmp_path / "ph.tsv")
    with pytest.raises(GenoshareError, match="no controls: give --controls FILE"):
        gwas_counts(tmp_path / "c.csv")
    with pytest.raises(GenoshareError, match="not both"):
        gwas_counts(tmp_path / "c.csv", controls=tmp_path / "c.csv", phenotype=tmp_path / "ph.tsv")
    with pytest.raises(InputError, match="shares 3 individual"):
        gwas_counts(tmp_path / "c.csv", controls=tmp_path / "c.csv")
    write_matrix(tmp_path / "d.csv", ["u", "v"], ["q1", "q2"], np.array([[0, 1], [1, 1]]))
    with pytest.raises(InputError, match="no variant id in common"):
        gwas_counts(tmp_path / "c.csv", controls=tmp_path / "d.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither a VCF Zarr store nor a release directory"):
        gwas_counts(tmp_path / "empty", phenotype=tmp_path / "ph.tsv")
    res = CliRunner().invoke(
        gwas_cmd,
        [
            "--cases",
            str(tmp_path / "nope.csv"),
            "--phenotype",
            str(tmp_path / "ph.tsv"),
            "--out",
            str(tmp_path / "o.tsv"),
        ],
    )
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "nope.csv" in res.output
    assert not (tmp_path / "o.tsv").exists()


def test_existing_matrix_api_still_works():
    rng = np.random.default_rng(0)
    cases = rng.integers(0, 3, (50, 40)).astype(np.int8)
    controls = rng.integers(0, 3, (50, 45)).astype(np.int8)
    cases[:5] = np.where(rng.random((5, 40)) < 0.7, 2, cases[:5])
    for test in ("allelic", "genotypic", "dominant"):
        s, p = association(cases, controls, test)
        s2, p2 = run_test(genotype_counts(cases), genotype_counts(controls), test)
        np.testing.assert_allclose(p, p2)
    _, p = association(cases, controls, "allelic")
    assert retention(p, p) == 1.0
    assert np.isnan(retention(np.ones(3), np.zeros(3)))
