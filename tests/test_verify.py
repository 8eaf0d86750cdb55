"""The reviewer's `verify`, the owner's `retention-table`, error injection (SPEC 5)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from genoshare.cli.verify import retention_table as retention_table_cmd
from genoshare.cli.verify import verify as verify_cmd
from genoshare.errors import GenoshareError, InputError
from genoshare.evaluate.gwas import genotype_counts, run_test
from genoshare.evaluate.inject import MODES, corrupt, corrupt_report, injection_curves
from genoshare.evaluate.verify import (
    decide,
    expected_retention,
    read_reported,
    retention_table,
    tolerance_for,
    verify_release,
)

ROOT = Path(__file__).resolve().parents[1]
LACTOSE = ROOT / "data" / "opensnp-lactose"
CASES, CONTROLS = LACTOSE / "data.csv.gz", LACTOSE / "reference.csv.gz"


def invoke(cmd, *args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


# ----------------------------------------------------------------------------------------------------------------
# the real cohort: a correct report passes, one with 30% wrong SNPs is flagged


@pytest.fixture(scope="module")
def lactose(tmp_path_factory):
    """The lactose cases released with the defaults at epsilon 9,091 (1 per SNP), and the owner's k=10 table."""
    from genoshare.api import release_csv
    from genoshare.io.csvmatrix import read_matrix

    d = tmp_path_factory.mktemp("verify-lactose")
    release_csv(CASES, CONTROLS, 9091.0, d / "rel", seed=11, private_dir=d / "private")
    res = invoke(
        retention_table_cmd,
        "--original",
        CASES,
        "--reference",
        CONTROLS,
        "--release",
        d / "rel",
        "--controls",
        CONTROLS,
        "-k",
        10,
        "--seed",
        5,
    )
    assert res.exit_code == 0, res.output
    G = read_matrix(CASES)
    p = run_test(genotype_counts(G.genotypes), genotype_counts(read_matrix(CONTROLS).genotypes), "genotypic")[1]
    return {"dir": d, "rel": d / "rel", "ids": np.array(G.variant_ids, dtype=object), "p": p}


def test_owner_table_is_written_with_the_release_settings(lactose):
    table = json.loads((lactose["rel"] / "retention.json").read_text())
    manifest = json.loads((lactose["rel"] / "manifest.json").read_text())
    assert table["k"] == 10 and table["alpha"] == 0.05 and table["tau"] == 0.8
    assert table["engine"] == "in-memory" and table["design"] == "controls"
    assert table["settings"]["epsilon_xor"] == pytest.approx(manifest["epsilon_xor"])
    assert table["settings"]["window"] == manifest["window"] == 1000
    geno = table["tests"]["genotypic"]
    assert geno["n_reported"] == 290 and len(geno["values"]) == 10
    assert 0.45 < geno["mean"] < 0.65 and 0 < geno["sd"] < 0.05  # published chi2 retention at e=1: 0.561
    assert geno["min"] <= geno["q05"] <= geno["median"] <= geno["q95"] <= geno["max"]
    # published frequencies are restored exactly, so allele counts and the allelic test are unchanged
    assert table["tests"]["allelic"]["mean"] == 1.0 and table["tests"]["allelic"]["sd"] == 0.0
    assert not any(k in json.dumps(table) for k in ('seed"', 'key"'))
    # the release directory with the table still passes the release checker (only the --seed warning)
    checker = pytest.importorskip("genoshare.privacy.checkrelease")
    report = checker.check_release(lactose["rel"])
    assert report.problems == [], report.problems
    # no partial files left behind, and a second run does not silently replace it
    assert sorted(p.name for p in lactose["rel"].iterdir()) == ["manifest.json", "release.csv.gz", "retention.json"]
    res = invoke(
        retention_table_cmd,
        "--original",
        CASES,
        "--reference",
        CONTROLS,
        "--release",
        lactose["rel"],
        "--controls",
        CONTROLS,
        "-k",
        2,
    )
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_correct_report_passes_and_30_percent_wrong_is_flagged(lactose, tmp_path):
    ids, p = lactose["ids"], lactose["p"]
    correct = corrupt_report(ids, p, "replacing", 0.0, np.random.default_rng(0))
    assert len(correct) == 290
    correct.to_csv(tmp_path / "correct.tsv", sep="\t", index=False)
    res = invoke(
        verify_cmd, "--release", lactose["rel"], "--reported", tmp_path / "correct.tsv", "--controls", CONTROLS
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("PASS: genotypic retention") and res.output.count("\n") == 1

    wrong = corrupt_report(ids, p, "replacing", 0.3, np.random.default_rng(1))
    assert len(wrong) == 290 and np.isin(wrong["id"], correct["id"]).sum() == 203  # 87 wrong SNPs
    wrong[["id"]].to_csv(tmp_path / "wrong.tsv", sep="\t", index=False)  # p column optional
    res = invoke(
        verify_cmd, "--release", lactose["rel"], "--reported", tmp_path / "wrong.tsv", "--controls", CONTROLS, "--json"
    )
    assert res.exit_code == 1, res.output
    out = json.loads(res.output)
    assert out["status"] == "flag" and out["n_checked"] == 290
    assert out["gap"] > out["tolerance"] > 0
    assert out["retention"] < out["expected"]["mean"] - 0.1

    # several corrupted reports and the other informative test: same verdicts
    for seed in range(2, 6):
        w = corrupt_report(ids, p, "replacing", 0.3, np.random.default_rng(seed))
        w.to_csv(tmp_path / "w.tsv", sep="\t", index=False)
        assert verify_release(lactose["rel"], tmp_path / "w.tsv", controls=CONTROLS)["status"] == "flag"


def test_verify_details_and_guards(lactose, tmp_path):
    ids, p = lactose["ids"], lactose["p"]
    rep = pd.DataFrame({"id": list(ids[p < 0.05]) + ["not_a_snp"], "p": list(p[p < 0.05]) + [0.01]})
    rep.loc[len(rep)] = [ids[np.argmax(p)], 0.5]  # listed but not claimed significant: ignored
    rep.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    res = verify_release(lactose["rel"], tmp_path / "r.tsv", controls=CONTROLS)
    assert res["status"] == "pass"
    assert res["not_in_release"] == 1 and res["n_ignored_p_not_below_alpha"] == 1 and res["n_checked"] == 290
    assert "not in the release were not checked" in res["reason"]
    # a subset of the report (the top SNPs) is not penalised; the tolerance widens for a short list
    top = pd.DataFrame({"id": ids[np.argsort(p)[:30]]})
    top.to_csv(tmp_path / "top.tsv", sep="\t", index=False)
    small = verify_release(lactose["rel"], tmp_path / "top.tsv", controls=CONTROLS)
    assert small["status"] == "pass" and small["tolerance"] > res["tolerance"]
    # a given tolerance overrides the default
    forced = verify_release(lactose["rel"], tmp_path / "r.tsv", controls=CONTROLS, tolerance=-1.0)
    assert forced["status"] == "flag"
    # the table fixes alpha and tau
    with pytest.raises(GenoshareError, match="alpha 0.05, tau 0.8"):
        verify_release(lactose["rel"], tmp_path / "r.tsv", controls=CONTROLS, alpha=0.01)
    # a table copied from another release is refused
    other = tmp_path / "other"
    shutil.copytree(lactose["rel"], other)
    man = json.loads((other / "manifest.json").read_text())
    man["created"] = "2000-01-01T00:00:00+00:00"
    (other / "manifest.json").write_text(json.dumps(man))
    res = invoke(verify_cmd, "--release", other, "--reported", tmp_path / "r.tsv", "--controls", CONTROLS)
    assert res.exit_code == 2 and "made for another release" in res.output
    # different controls: a warning, not silence
    from genoshare.io.csvmatrix import read_matrix, write_matrix

    c = read_matrix(CONTROLS)
    write_matrix(tmp_path / "ctrl.csv.gz", c.sample_ids[:50], c.variant_ids, c.genotypes[:, :50])
    res = invoke(
        verify_cmd,
        "--release",
        lactose["rel"],
        "--reported",
        tmp_path / "r.tsv",
        "--controls",
        tmp_path / "ctrl.csv.gz",
    )
    assert "controls file differs from the owner's" in res.output
    # no table
    bare = tmp_path / "bare"
    shutil.copytree(lactose["rel"], bare)
    (bare / "retention.json").unlink()
    res = invoke(verify_cmd, "--release", bare, "--reported", tmp_path / "r.tsv", "--controls", CONTROLS)
    assert res.exit_code == 2 and "retention-table" in res.output


def test_owner_table_refuses_another_cohort(lactose, tmp_path, monkeypatch):
    """The cohort's SHA-256 is private (not in the manifest): it is checked against the owner's ledger."""
    from genoshare.io.csvmatrix import read_matrix, write_matrix

    g = read_matrix(CASES)
    write_matrix(tmp_path / "other.csv.gz", g.sample_ids, g.variant_ids, 2 - g.genotypes)
    monkeypatch.setenv("GENOSHARE_PRIVATE_DIR", str(lactose["dir"] / "private"))
    with pytest.raises(InputError, match="not the cohort this release was made from.*owner's ledger"):
        retention_table(tmp_path / "other.csv.gz", CONTROLS, lactose["rel"], controls=CONTROLS, k=2, overwrite=True)


def test_injection_mode_writes_curves(lactose, tmp_path):
    res = invoke(
        verify_cmd,
        "--release",
        lactose["rel"],
        "--controls",
        CONTROLS,
        "--inject",
        "flipping,replacing",
        "--rates",
        "0,0.3",
        "--reps",
        5,
        "--original",
        CASES,
        "--out",
        tmp_path / "curves.tsv",
    )
    assert res.exit_code == 0, res.output
    curves = pd.read_csv(tmp_path / "curves.tsv", sep="\t")
    assert list(curves["mode"]) == ["flipping", "flipping", "replacing", "replacing"]
    clean = curves[curves["rate"] == 0]
    assert (clean["difference"] == 0).all() and (clean["flagged"] == 0).all()
    assert (curves[curves["rate"] == 0.3]["flagged"] == 1).all()


# ----------------------------------------------------------------------------------------------------------------
# the pieces


def test_expected_retention_both_designs():
    rng = np.random.default_rng(2)
    m, n = 400, 200
    G = rng.integers(0, 3, (m, n)).astype(np.int8)
    is_case = np.arange(n) < 100
    G[:40, is_case] = np.where(rng.random((40, 100)) < 0.5, 2, G[:40, is_case])  # 40 associated SNPs
    C = rng.integers(0, 3, (m, 150)).astype(np.int8)
    same = expected_retention(G, C, lambda i: G, k=3)
    assert all(e["mean"] == 1.0 and e["sd"] == 0.0 for e in same["tests"].values())

    def noisy(i):
        r = np.random.default_rng(100 + i)
        return np.where(r.random(G.shape) < 0.3, r.integers(0, 3, G.shape), G).astype(np.int8)

    lab = np.where(is_case, 1, 0)
    lab[-5:] = -1
    out = expected_retention(G, None, noisy, k=4, labels=lab, tests=("genotypic",))
    e = out["tests"]["genotypic"]
    assert out["k"] == 4 and set(out["tests"]) == {"genotypic"}
    assert e["n_reported"] >= 40 and 0 < e["mean"] < 1 and e["sd"] > 0 and len(e["values"]) == 4
    with pytest.raises(GenoshareError):
        expected_retention(G, C, noisy, k=1)
    with pytest.raises(GenoshareError):
        expected_retention(G, C, noisy, k=2, labels=lab)


def test_tolerance_rule():
    entry = {"mean": 0.55, "sd": 0.015, "k": 10, "n_reported": 290}
    full = tolerance_for(entry, 290)
    assert full == pytest.approx(4.297 * 0.015 * np.sqrt(1.1), rel=1e-3)  # t_9(0.999) = 4.297
    assert tolerance_for(entry, 30) > full  # a short list varies more
    assert tolerance_for({**entry, "k": 5}, 290) > full  # a small table is less certain
    assert tolerance_for({**entry, "sd": 0.0, "mean": 1.0}, 100) == 0.0
    assert decide(0.50, entry, 290)["flag"] is False
    assert decide(0.40, entry, 290)["flag"] is True
    assert decide(float("nan"), entry, 290)["flag"] is True


def test_corruptions():
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    p[:100] = rng.random(100) * 0.01  # 100 + ~95 significant
    rep = np.flatnonzero(p < 0.05)
    for mode in MODES:
        idx, _ = corrupt(p, mode, 0.0, rng)
        np.testing.assert_array_equal(idx, rep)
    idx, _ = corrupt(p, "replacing", 0.3, rng)
    assert idx.size == rep.size and np.isin(idx, rep).sum() == rep.size - round(0.3 * rep.size)
    assert (p[idx[~np.isin(idx, rep)]] >= 0.05).all()
    idx, _ = corrupt(p, "shifting", 1.0, rng)
    assert all(np.abs(rep - j).min() <= 1 for j in idx)  # each moved to j - 1 or j + 1
    assert (~np.isin(idx, rep)).sum() > 50 and idx.size < rep.size  # (moves onto a reported SNP merge)
    idx, q = corrupt(p, "flipping", 1.0, rng)
    assert (q < 0.05).all() and abs(idx.size - 100) < 40  # ~5% of 2000 uniform draws
    idx, q = corrupt(p, "noise", 0.05, rng)
    assert (q < 0.05).all() and not np.array_equal(idx, rep)
    with pytest.raises(GenoshareError):
        corrupt(p, "swapping", 0.1, rng)
    with pytest.raises(GenoshareError):
        corrupt(p, "flipping", 1.5, rng)


def test_injection_curves_shape():
    rng = np.random.default_rng(1)
    p = rng.random(3000)
    p[:200] = 1e-4
    P = np.where(rng.random((6, 3000)) < 0.5, p, rng.random((6, 3000)))
    entry = {"mean": 0.55, "sd": 0.02, "k": 10, "n_reported": 200}
    c = injection_curves(p, P, entry, modes=("replacing", "noise"), rates=(0, 0.5), reps=3, noise_rates=(0, 0.1))
    assert list(c["rate"]) == [0, 0.5, 0, 0.1]
    r = c[(c["mode"] == "replacing") & (c["rate"] == 0.5)].iloc[0]
    assert r["wrong_fraction"] == pytest.approx(0.5) and r["difference"] > 0.2


def test_read_reported(tmp_path):
    f = tmp_path / "r.tsv"
    f.write_text("SNP\tP\trs1\t0.01\n".replace("\trs1", "\nrs1") + "rs2\tNA\nrs1\t0.02\n")
    ids, p = read_reported(f)
    assert ids == ["rs1", "rs2"] and p[0] == 0.01 and np.isnan(p[1])
    f.write_text("id,p\nrs1,0.001\n")
    assert read_reported(f)[0] == ["rs1"]
    f.write_text("name\nrs1\n")
    with pytest.raises(InputError, match="no 'id' column"):
        read_reported(f)
    f.write_text("id\tp\nrs1\tsmall\n")
    with pytest.raises(InputError, match="not a number"):
        read_reported(f)
    with pytest.raises(InputError, match="no such file"):
        read_reported(tmp_path / "missing.tsv")


@pytest.mark.slow
def test_pipeline_path_on_a_store_release(tmp_path):
    """VCF Zarr cohort with a phenotype: the owner's table reruns the blockwise pipeline k times."""
    from genoshare.api import release_store
    from genoshare.evaluate.gwas import run_gwas
    from genoshare.simulate import simulate_cohort

    simulate_cohort(
        tmp_path / "sim", cases=60, controls=60, panel=60, variants=200, seed=4, holdout=0, formats=("vcz",)
    )
    s = tmp_path / "sim"
    release_store(s / "cohort.vcz", s / "panel.vcz", 2000.0, tmp_path / "rel", seed=1, workers=1)
    table = retention_table(
        s / "cohort.vcz", s / "panel.vcz", tmp_path / "rel", phenotype=s / "phenotype.tsv", k=2, seed=3, workers=1
    )
    assert table["engine"] == "pipeline" and table["design"] == "phenotype"
    assert table["n_cases"] == 60 and table["n_controls"] == 60
    orig, _ = run_gwas(s / "cohort.vcz", phenotype=s / "phenotype.tsv", test="genotypic")
    orig[orig["p"] < 0.05][["id", "p"]].to_csv(tmp_path / "rep.tsv", sep="\t", index=False)
    res = verify_release(tmp_path / "rel", tmp_path / "rep.tsv", phenotype=s / "phenotype.tsv")
    assert res["n_checked"] == table["tests"]["genotypic"]["n_reported"]
    assert res["expected"]["mean"] == table["tests"]["genotypic"]["mean"]
