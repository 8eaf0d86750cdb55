"""The store pipeline as a user meets it: real CLI processes on PLINK/VCF Zarr inputs, bad
input, and a rerun after a killed run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genoshare.io.vcz import open_vcz, read_dosage
from genoshare.simulate import simulate_cohort

GENOSHARE = [sys.executable, "-m", "genoshare.cli"]


def run(*args, check=False, timeout=300):
    proc = subprocess.run([*GENOSHARE, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "s"
    simulate_cohort(
        d, cases=40, controls=40, panel=60, variants=600, seed=9, holdout=0, formats=("csv", "vcz", "plink", "vcf")
    )
    return d


def _one_line_error(p, *words):
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("genoshare: error:")]
    assert len(errors) == 1 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])


def test_plink_input_to_release_with_exports(sim, tmp_path):
    out = tmp_path / "rel"
    p = run(
        "release",
        sim / "cohort.bed",
        "--reference",
        sim / "panel.vcf.gz",
        "--epsilon",
        1200,
        "--out",
        out,
        "--seed",
        3,
        "--workers",
        1,
        "--chunk-variants",
        200,
        "--chunk-samples",
        32,
        "--export",
        "plink,csv",
        check=True,
    )
    assert "sites:" in p.stdout
    names = sorted(f.name for f in out.iterdir())
    assert names == [
        "frequencies.tsv",
        "manifest.json",
        "release.bed",
        "release.bim",
        "release.csv.gz",
        "release.fam",
        "release.vcz",
    ]
    man = json.loads((out / "manifest.json").read_text())
    assert man["inputs"]["cohort"]["format"] == "plink" and man["inputs"]["reference"]["format"] == "vcf"
    assert man["sample_block"] == 32 and man["window"] == 1000
    rel = open_vcz(out / "release.vcz")
    assert rel.chunks == (200, 32)
    # the ingested copies of the inputs never stay behind
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]
    ev = json.loads(run("evaluate", "--original", sim / "cohort.vcz", "--release", out, check=True).stdout)
    assert 0 < ev["point_error"] < 1 and ev["mean_error"] < 1e-12


def test_rerun_after_killed_run_is_identical(sim, tmp_path):
    args = [
        "release",
        sim / "cohort.vcz",
        "--reference",
        sim / "panel.vcz",
        "--epsilon",
        1200,
        "--seed",
        5,
        "--workers",
        1,
    ]
    clean = tmp_path / "clean"
    run(*args, "--out", clean, check=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*GENOSHARE, *map(str, args), "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # kill as soon as the work directory exists (the run is under way), whole process group
    deadline = time.time() + 60
    while time.time() < deadline and not any(f.name.startswith(".killed") for f in tmp_path.iterdir()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not killed.exists()
    run(*args, "--out", killed, check=True)
    a, b = open_vcz(clean / "release.vcz"), open_vcz(killed / "release.vcz")
    assert np.array_equal(read_dosage(a, 0, a.n_variants), read_dosage(b, 0, b.n_variants))


def test_store_bad_input(sim, tmp_path):
    cases = []
    # no overlap with the panel: a panel on another contig
    from genoshare.io.vcz import write_vcz

    panel = open_vcz(sim / "panel.vcz")
    other = tmp_path / "other.vcz"
    write_vcz(
        other,
        read_dosage(panel, 0, panel.n_variants),
        sample_ids=panel.sample_ids,
        contig_ids=["7"],
        variant_contig=np.zeros(panel.n_variants, dtype=int),
        variant_position=panel.variant_position,
        variant_allele=panel.variant_allele,
        variant_id=panel.variant_id,
    )
    cases.append((["release", sim / "cohort.vcz", "--reference", other, "--epsilon", 10], ["overlap"]))
    cases.append(
        (
            ["release", sim / "cohort.bed", "--reference", sim / "panel.vcz", "--epsilon", 10, "--chunk-variants", 0],
            ["chunk"],
        )
    )
    bad_bed = tmp_path / "bad"
    for ext in (".bim", ".fam"):
        (tmp_path / f"bad{ext}").write_bytes((sim / f"cohort{ext}").read_bytes())
    (tmp_path / "bad.bed").write_bytes((sim / "cohort.bed").read_bytes()[:-7])
    cases.append((["release", Path(f"{bad_bed}.bed"), "--reference", sim / "panel.vcz", "--epsilon", 10], ["bad.bed"]))
    trunc = tmp_path / "trunc.vcf.gz"
    trunc.write_bytes((sim / "cohort.vcf.gz").read_bytes()[:3000])
    cases.append((["release", trunc, "--reference", sim / "panel.vcz", "--epsilon", 10], ["trunc.vcf.gz"]))
    for i, (args, words) in enumerate(cases):
        out = tmp_path / f"out{i}"
        p = run(*args, "--out", out)
        _one_line_error(p, *words)
        assert not out.exists()
    # unwritable output: its parent is a file (root may write anywhere else)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    p = run("release", sim / "cohort.vcz", "--reference", sim / "panel.vcz", "--epsilon", 10, "--out", blocker / "x")
    _one_line_error(p, "blocker")
    leftovers = [f.name for f in tmp_path.iterdir() if f.name.startswith(".")]
    assert leftovers == []


def test_ldstats_file_reused_by_releases(sim, tmp_path):
    """LD statistics computed once give the same release as computing them inline; a file made
    for other settings or other sites is refused."""
    ld = tmp_path / "ld.npz"
    run(
        "ldstats",
        sim / "cohort.vcz",
        "--reference",
        sim / "panel.vcz",
        "--out",
        ld,
        "--window",
        100,
        "--workers",
        1,
        check=True,
    )
    common = ["--reference", sim / "panel.vcz", "--epsilon", 900, "--seed", 4, "--workers", 1, "--window", 100]
    run("release", sim / "cohort.vcz", *common, "--ldstats", ld, "--out", tmp_path / "a", check=True)
    run("release", sim / "cohort.vcz", *common, "--out", tmp_path / "b", check=True)
    a, b = open_vcz(tmp_path / "a" / "release.vcz"), open_vcz(tmp_path / "b" / "release.vcz")
    assert np.array_equal(read_dosage(a, 0, a.n_variants), read_dosage(b, 0, b.n_variants))
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert "ldstats" in man["inputs"]
    p = run("release", sim / "cohort.vcz", *common[:-2], "--window", 50, "--ldstats", ld, "--out", tmp_path / "c")
    _one_line_error(p, "ld.npz", "window")
    p = run(
        "release",
        sim / "cohort.csv.gz",
        "--reference",
        sim / "panel.csv.gz",
        "--epsilon",
        900,
        "--window",
        100,
        "--ldstats",
        ld,
        "--out",
        tmp_path / "d",
    )
    _one_line_error(p, "ld.npz", "different set of sites")


def test_reference_frequencies_restored_across_variant_chunks(sim, tmp_path):
    """--af-source reference on a store with several variant chunks: every SNP's released ALT
    frequency is within 1/(2n) of the panel's."""
    import pandas as pd

    from genoshare.io.align import align

    out = tmp_path / "rel"
    run(
        "release",
        sim / "cohort.bed",
        "--reference",
        sim / "panel.vcz",
        "--epsilon",
        1200,
        "--out",
        out,
        "--seed",
        6,
        "--workers",
        1,
        "--chunk-variants",
        150,
        "--af-source",
        "reference",
        check=True,
    )
    freq = pd.read_csv(out / "frequencies.tsv", sep="\t")
    cohort, panel = open_vcz(sim / "cohort.vcz"), open_vcz(sim / "panel.vcz")
    al = align(cohort, panel)
    R = read_dosage(panel, 0, panel.n_variants)[al.panel_index]
    R[al.panel_swap] = 2 - R[al.panel_swap]
    f_panel = R.sum(axis=1) / (2.0 * R.shape[1])
    n = freq["n_called"].to_numpy()
    assert len(freq) == al.n_kept > 150
    assert np.all(np.abs(freq["af"].to_numpy() - f_panel) < 1 / (2 * n) + 1e-6)


def test_dp_frequencies_on_a_store(sim, tmp_path):
    """--af-source dp:EPS: restoration targets come from the Gaussian mechanism, accounted as a stage and
    added to the total; the released frequencies are not the cohort's own."""
    import pandas as pd

    out = tmp_path / "rel"
    run(
        "release",
        sim / "cohort.vcz",
        "--reference",
        sim / "panel.vcz",
        "--epsilon",
        1200,
        "--out",
        out,
        "--seed",
        6,
        "--workers",
        1,
        "--af-source",
        "dp:20",
        "--export",
        "csv",
        check=True,
    )
    man = json.loads((out / "manifest.json").read_text())
    af = man["privacy"]["af"]
    assert af["source"] == "dp" and af["epsilon"] == 20 and af["sigma"] > 0
    assert man["privacy"]["total"]["epsilon"] == pytest.approx(man["privacy"]["xor"]["epsilon"] + 20)
    freq = pd.read_csv(out / "frequencies.tsv", sep="\t")
    cohort = open_vcz(sim / "cohort.vcz")
    pos = {v: j for j, v in enumerate(cohort.variant_id)}
    G = read_dosage(cohort, 0, cohort.n_variants)[[pos[v] for v in freq["id"]]]
    original = np.where(G >= 0, G, 0).sum(axis=1)
    assert (freq["alt_count"].to_numpy() != original).mean() > 0.5


def test_ledger_fingerprint_is_the_whole_cohort_with_or_without_budget(sim, tmp_path):
    """The row is reserved under the cohort's ids before any genotype work, with or without --budget; the
    fingerprint recorded when it is finalized comes out of pass 1 (plus the dropped sites' own read). It must be
    the fingerprint of the whole cohort store, dropped (strand-ambiguous) sites included, so releases against
    different panels still compose in the ledger."""
    from genoshare.privacy.ledger import Ledger, fingerprint_vcz

    truth = fingerprint_vcz(sim / "cohort.vcz")
    for k, budget in enumerate((None, 1e12)):
        private = tmp_path / f"private{k}"
        args = [
            "release",
            sim / "cohort.vcz",
            "--reference",
            sim / "panel.vcz",
            "--epsilon",
            1200,
            "--out",
            tmp_path / f"rel{k}",
            "--seed",
            3,
            "--workers",
            1,
            "--chunk-variants",
            128,
            "--chunk-samples",
            32,
            "--private-dir",
            private,
        ]
        p = run(*args, *(["--budget", budget] if budget else []), check=True)
        man = json.loads((tmp_path / f"rel{k}" / "manifest.json").read_text())
        assert man["alignment"]["dropped"], "the simulation has strand-ambiguous sites to drop"
        assert "ledger: first release of cohort" in p.stdout + p.stderr
        assert f"ledger: recorded release 1 of cohort {truth[:12]}" in p.stdout + p.stderr
        rows = Ledger.open(private).releases()
        assert [r.fingerprint for r in rows] == [truth] and [r.status for r in rows] == ["recorded"]
