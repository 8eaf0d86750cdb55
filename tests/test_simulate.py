"""The msprime case/control simulator: determinism, shapes, disjoint hold-out, association, LD."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tools import require_tool

import genoshare.simulate as simulate_mod
from genoshare.errors import GenoshareError
from genoshare.io.csvmatrix import read_matrix
from genoshare.simulate import simulate_cohort

SMALL = dict(cases=150, controls=150, panel=60, holdout=60, variants=1500, n_causal=5, heritability=0.6)
FILES = [
    "causal.tsv",
    "cohort.csv.gz",
    "holdout.csv.gz",
    "holdout_phenotype.tsv",
    "panel.csv.gz",
    "phenotype.tsv",
    "simulation.json",
]


def _read_tsv(path):
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return header, [ln.split("\t") for ln in lines[1:]]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "out"
    summary = simulate_cohort(out, seed=11, **SMALL)
    return out, summary


def test_files_and_shapes(sim):
    out, summary = sim
    assert sorted(p.name for p in out.iterdir()) == FILES
    # nothing left over next to the output directory
    assert [p.name for p in out.parent.iterdir()] == ["out"]
    cohort = read_matrix(out / "cohort.csv.gz")
    panel = read_matrix(out / "panel.csv.gz")
    hold = read_matrix(out / "holdout.csv.gz")
    assert cohort.genotypes.shape == (1500, 300)
    assert panel.genotypes.shape == (1500, 60)
    assert hold.genotypes.shape == (1500, 60)
    assert cohort.variant_ids == panel.variant_ids == hold.variant_ids
    pos = [int(v.split(":")[1]) for v in cohort.variant_ids]
    assert all(v.startswith("1:") for v in cohort.variant_ids)
    assert pos == sorted(pos) and len(set(pos)) == len(pos)
    for gm in (cohort, panel, hold):
        assert gm.genotypes.dtype == np.int8
        assert set(np.unique(gm.genotypes).tolist()) <= {0, 1, 2}
        assert gm.n_missing == 0
    # every kept SNP is common in the whole simulated sample
    allg = np.concatenate([cohort.genotypes, panel.genotypes, hold.genotypes], axis=1)
    f = allg.mean(axis=1) / 2
    assert np.minimum(f, 1 - f).min() >= 0.05

    header, rows = _read_tsv(out / "phenotype.tsv")
    assert header == ["id", "phenotype"]
    assert [r[0] for r in rows] == cohort.sample_ids
    assert sorted(r[1] for r in rows).count("2") == 150
    assert sorted(r[1] for r in rows).count("1") == 150
    header, rows = _read_tsv(out / "holdout_phenotype.tsv")
    assert [r[0] for r in rows] == hold.sample_ids
    assert [r[1] for r in rows].count("2") == 30

    header, rows = _read_tsv(out / "causal.tsv")
    assert header == ["variant_id", "effect", "alt_freq"]
    assert len(rows) == 5 and {r[0] for r in rows} <= set(cohort.variant_ids)
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["parameters"]["seed"] == 11
    assert summary["parameters"] == meta["parameters"]
    assert summary["model"]["common_snps"] >= 1500


def test_holdout_disjoint(sim):
    out, _ = sim
    cohort = read_matrix(out / "cohort.csv.gz")
    panel = read_matrix(out / "panel.csv.gz")
    hold = read_matrix(out / "holdout.csv.gz")
    ids = [set(cohort.sample_ids), set(panel.sample_ids), set(hold.sample_ids)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    others = {row.tobytes() for row in np.concatenate([cohort.genotypes, panel.genotypes], axis=1).T}
    hold_rows = [row.tobytes() for row in hold.genotypes.T]
    # A constant-size population of 10,000 has many close relatives among ~400 sampled individuals, and on a
    # ~1 Mb contig a few of them are identical at every common SNP (2 pairs among 420 here); on the 22 Mb contig of
    # a 28,396-SNP simulation none are. So: different rows "mostly", not always.
    assert sum(r in others for r in hold_rows) <= 0.05 * len(hold_rows)


def test_deterministic(tmp_path):
    kw = dict(SMALL, variants=400, cases=40, controls=40, panel=20, holdout=20)
    a = simulate_cohort(tmp_path / "a", seed=5, **kw)
    b = simulate_cohort(tmp_path / "b", seed=5, **kw)
    simulate_cohort(tmp_path / "c", seed=6, **kw)
    assert a["model"] == b["model"]
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in ["cohort.csv.gz", "panel.csv.gz", "holdout.csv.gz", "causal.tsv"]:
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    # gzip header: no mtime, no file name
    raw = (tmp_path / "a" / "cohort.csv.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and raw[3] & 0x08 == 0


def _allelic_chi2_p(g: np.ndarray, case: np.ndarray) -> float:
    alt_case, alt_ctrl = g[case].sum(), g[~case].sum()
    table = np.array([[alt_case, 2 * case.sum() - alt_case], [alt_ctrl, 2 * (~case).sum() - alt_ctrl]], dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return math.erfc(math.sqrt(chi2 / 2))  # chi-square survival function, 1 degree of freedom


def test_causal_snps_associated(sim):
    out, _ = sim
    cohort = read_matrix(out / "cohort.csv.gz")
    _, rows = _read_tsv(out / "phenotype.tsv")
    case = np.array([r[1] == "2" for r in rows])
    _, causal = _read_tsv(out / "causal.tsv")
    idx = [cohort.variant_ids.index(r[0]) for r in causal]
    p_causal = [_allelic_chi2_p(cohort.genotypes[j], case) for j in idx]
    assert min(p_causal) < 1e-3, p_causal  # observed ~1e-8 .. 1e-28 over seeds 0-7 at this size
    # and the effect direction of the strongest one matches its sign
    j = int(np.argmin(p_causal))
    g = cohort.genotypes[idx[j]]
    beta = float(causal[j][1])
    assert np.sign(g[case].mean() - g[~case].mean()) == np.sign(beta)


def test_linkage_disequilibrium(sim):
    out, _ = sim
    g = read_matrix(out / "cohort.csv.gz").genotypes.astype(float)
    z = (g - g.mean(1, keepdims=True)) / g.std(1, keepdims=True)
    n = z.shape[1]
    r2_adjacent = np.mean((np.sum(z[:-1] * z[1:], axis=1) / n) ** 2)
    r2_far = np.mean((np.sum(z[:-500] * z[500:], axis=1) / n) ** 2)
    assert r2_adjacent > 0.15, r2_adjacent  # observed ~0.3
    assert r2_adjacent > 10 * r2_far, (r2_adjacent, r2_far)  # far pairs ~0.01


def test_enlarges_when_too_few_snps(tmp_path, monkeypatch):
    monkeypatch.setattr(simulate_mod, "_LENGTH_MARGIN", 0.4)
    s = simulate_cohort(tmp_path / "o", cases=20, controls=20, panel=10, variants=300, seed=3, holdout=0)
    assert s["model"]["simulations_run"] >= 2
    assert read_matrix(tmp_path / "o" / "cohort.csv.gz").genotypes.shape == (300, 40)
    assert not (tmp_path / "o" / "holdout.csv.gz").exists()


def test_refuses_non_empty_out_dir(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(GenoshareError, match="not empty"):
        simulate_cohort(out, cases=5, controls=5, panel=5, variants=50, seed=1)
    assert (out / "keep.txt").exists()
    s = simulate_cohort(out, cases=5, controls=5, panel=5, variants=50, seed=1, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "cohort.csv.gz").exists()
    assert s["parameters"]["holdout"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_no_partial_output_on_failure(tmp_path, monkeypatch):
    calls = []

    def failing_write(path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, *a, **k)

    real = simulate_mod.write_matrix
    monkeypatch.setattr(simulate_mod, "write_matrix", failing_write)
    with pytest.raises(OSError):
        simulate_cohort(tmp_path / "o", cases=5, controls=5, panel=5, variants=50, seed=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kw",
    [
        dict(cases=0),
        dict(variants=0),
        dict(seed=-1),
        dict(heritability=1.5),
        dict(n_causal=100),
        dict(maf_min=0.5),
        dict(holdout=-1),
    ],
)
def test_bad_arguments(tmp_path, kw):
    args = dict(cases=5, controls=5, panel=5, variants=50, seed=1)
    args.update(kw)
    with pytest.raises(GenoshareError):
        simulate_cohort(tmp_path / "o", **args)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_full_size(tmp_path):
    simulate_cohort(tmp_path / "o", cases=200, controls=201, panel=541, variants=28_396, seed=2)
    cohort = read_matrix(tmp_path / "o" / "cohort.csv.gz")
    assert cohort.genotypes.shape == (28_396, 401)
    assert read_matrix(tmp_path / "o" / "holdout.csv.gz").genotypes.shape == (28_396, 401)
    assert read_matrix(tmp_path / "o" / "panel.csv.gz").genotypes.shape == (28_396, 541)


# ---- formats: VCF, PLINK, VCF Zarr --------------------------------------------------------------------------

FMT_SMALL = dict(cases=60, controls=60, panel=30, holdout=40, variants=1500, n_causal=5, heritability=0.6)


def _require(tool):
    return require_tool(tool)


@pytest.fixture(scope="module")
def sim_all(tmp_path_factory):
    for tool in ("bgzip", "tabix"):
        _require(tool)
    out = tmp_path_factory.mktemp("simall") / "out"
    summary = simulate_cohort(out, seed=21, formats="csv,vcf,plink,vcz", **FMT_SMALL)
    return out, summary


def test_formats_files_and_contents(sim_all, tmp_path):
    from genoshare.io.ingest import ingest
    from genoshare.io.vcz import open_vcz, read_dosage

    out, summary = sim_all
    names = sorted(p.name for p in out.iterdir())
    for ds in ("cohort", "panel", "holdout"):
        for suffix in (".csv.gz", ".vcf.gz", ".vcf.gz.tbi", ".bed", ".bim", ".fam", ".vcz"):
            assert f"{ds}{suffix}" in names
    assert not [n for n in names if n.startswith(".")]  # no scratch stores left
    assert summary["files"]["formats"]["cohort"] == {
        "csv": "cohort.csv.gz",
        "vcz": "cohort.vcz",
        "vcf": "cohort.vcf.gz",
        "plink": "cohort.bed",
    }
    for ds, n in (("cohort", 120), ("panel", 30), ("holdout", 40)):
        csv = read_matrix(out / f"{ds}.csv.gz")
        info = open_vcz(out / f"{ds}.vcz")
        assert info.sample_ids == csv.sample_ids and info.n_samples == n
        assert info.variant_id.tolist() == csv.variant_ids
        assert info.variant_position.tolist() == [int(v.split(":")[1]) for v in csv.variant_ids]
        np.testing.assert_array_equal(read_dosage(info, 0, info.n_variants), csv.genotypes)
        # the VCF and the PLINK files carry the same genotypes, alleles and positions
        for src in (f"{ds}.vcf.gz", f"{ds}.bed"):
            ingest(out / src, tmp_path / f"{src}.vcz")
            back = open_vcz(tmp_path / f"{src}.vcz")
            assert back.variant_allele[:, :2].tolist() == info.variant_allele.tolist(), src
            assert back.variant_id.tolist() == csv.variant_ids, src
            np.testing.assert_array_equal(back.variant_position, info.variant_position)
            np.testing.assert_array_equal(read_dosage(back, 0, back.n_variants), csv.genotypes)
    # alleles: nucleotides only, never equal, ~1/6 strand-ambiguous, ~2/3 transitions
    alleles = open_vcz(out / "cohort.vcz").variant_allele
    assert set(alleles.ravel().tolist()) <= {"A", "C", "G", "T"}
    assert (alleles[:, 0] != alleles[:, 1]).all()
    pairs = [frozenset(p) for p in alleles.tolist()]
    ambiguous = sum(p in ({"A", "T"}, {"C", "G"}) for p in pairs)
    transitions = sum(p in ({"A", "G"}, {"C", "T"}) for p in pairs)
    assert 150 <= ambiguous <= 350, ambiguous  # expected 250 of 1500, sd ~14
    assert 900 <= transitions <= 1100, transitions  # expected 1000, sd ~18
    assert summary["model"]["strand_ambiguous_snps"] == ambiguous
    # phenotypes in the .fam files: cohort and holdout from the TSVs, panel missing
    for fam, tsv in (("cohort.fam", "phenotype.tsv"), ("holdout.fam", "holdout_phenotype.tsv")):
        _, rows = _read_tsv(out / tsv)
        fam_rows = [ln.split() for ln in (out / fam).read_text().splitlines()]
        assert [(r[1], r[5]) for r in fam_rows] == [(r[0], r[1]) for r in rows]
    assert {ln.split()[5] for ln in (out / "panel.fam").read_text().splitlines()} == {"-9"}


def test_plink19_reads_simulated_plink(sim_all, tmp_path):
    import subprocess

    plink = _require("plink1.9")
    out, _ = sim_all
    for ds in ("cohort", "panel", "holdout"):
        r = subprocess.run(
            [plink, "--bfile", str(out / ds), "--freq", "--out", str(tmp_path / ds)], capture_output=True
        )
        assert r.returncode == 0, r.stdout.decode()[-2000:]
        rows = [ln.split() for ln in (tmp_path / f"{ds}.frq").read_text().splitlines()[1:]]
        csv = read_matrix(out / f"{ds}.csv.gz")
        assert [r[1] for r in rows] == csv.variant_ids
        alt = csv.genotypes.mean(axis=1) / 2
        np.testing.assert_allclose([float(r[4]) for r in rows], np.minimum(alt, 1 - alt), atol=1e-4)
    # case/control status is read from the .fam (sex is unknown, 0: PLINK 1.9 then needs --allow-no-sex)
    r = subprocess.run(
        [plink, "--bfile", str(out / "cohort"), "--allow-no-sex", "--assoc", "--out", str(tmp_path / "assoc")],
        capture_output=True,
    )
    assert r.returncode == 0
    assert "60 are cases and 60 are controls" in r.stdout.decode()


def test_formats_deterministic(tmp_path):
    for tool in ("bgzip", "tabix"):
        _require(tool)
    kw = dict(cases=20, controls=20, panel=10, holdout=10, variants=300, n_causal=3)
    simulate_cohort(tmp_path / "a", seed=5, formats=("vcf", "plink", "vcz"), **kw)
    simulate_cohort(tmp_path / "b", seed=5, formats="vcf,plink,vcz", **kw)
    simulate_cohort(tmp_path / "c", seed=6, formats=("vcz",), **kw)

    def tree(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert not any(name.endswith(".csv.gz") for name in a)  # csv not requested
    assert a == b
    assert not any(name.endswith((".vcf.gz", ".bed")) for name in c)
    for name in ("cohort.vcz/call_genotype/0.0.0", "cohort.vcz/variant_allele/0.0", "panel.vcz/variant_position/0"):
        assert a[name] != c[name], name


@pytest.mark.parametrize("formats", ["", "csv,bgen", ["vcf", "xls"]])
def test_bad_formats(tmp_path, formats):
    with pytest.raises(GenoshareError, match="format"):
        simulate_cohort(tmp_path / "o", cases=5, controls=5, panel=5, variants=50, seed=1, formats=formats)
    assert not (tmp_path / "o").exists()
