"""The central correctness test of the blockwise release (issue 3): for several variant chunkings
and worker counts (same sample chunk = flip-split block) the genotypes in release.vcz are exactly
the in-memory engine's release with the same seed; PLINK 1.9 reads the export back and finds the
allele frequencies the release reports."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from tools import require_tool

from genoshare.api import release_store
from genoshare.io.align import align
from genoshare.io.ingest import ingest
from genoshare.io.vcz import open_vcz, read_dosage
from genoshare.mechanism.calibrate import calibrate
from genoshare.mechanism.keystream import derive_keys, master_key_from_seed
from genoshare.mechanism.ldstats import compute_ldstats
from genoshare.mechanism.release import release_genotypes, target_counts_published
from genoshare.simulate import simulate_cohort

SAMPLE_CHUNK = 48
EPS = 2500.0
WINDOW = 25
SEED = 77


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "s"
    simulate_cohort(
        d, cases=60, controls=70, panel=90, variants=1100, seed=5, holdout=0, formats=("csv", "vcz", "plink")
    )
    return d


@pytest.fixture(scope="module")
def expected(sim):
    """The in-memory engine on the aligned matrices."""
    cohort, panel = open_vcz(sim / "cohort.vcz"), open_vcz(sim / "panel.vcz")
    al = align(cohort, panel)
    G = read_dosage(cohort, 0, cohort.n_variants)[al.cohort_index]
    R = read_dosage(panel, 0, panel.n_variants)[al.panel_index]
    R[al.panel_swap] = 2 - R[al.panel_swap]
    stats = compute_ldstats(R, "haldane", window=WINDOW, contigs=cohort.variant_contig[al.cohort_index])
    cal = calibrate(stats, EPS, "exact")
    res = release_genotypes(
        G,
        cal.thresholds,
        target_counts_published(G),
        derive_keys(master_key_from_seed(SEED)),
        sample_block=SAMPLE_CHUNK,
    )
    return res.genotypes, cal, al


@pytest.mark.parametrize("chunk_variants,workers", [(128, 1), (300, 2), (1000, 2), (77, 1)])
def test_store_release_equals_in_memory_engine(sim, expected, tmp_path, chunk_variants, workers):
    S_expected, cal, al = expected
    store = tmp_path / "cohort.vcz"
    ingest(sim / "cohort.bed", store, chunk_variants=chunk_variants, chunk_samples=SAMPLE_CHUNK)
    out = tmp_path / "rel"
    man = release_store(store, sim / "panel.vcz", EPS, out, seed=SEED, window=WINDOW, workers=workers)
    rel = open_vcz(out / "release.vcz")
    assert rel.chunks == (min(chunk_variants, rel.n_variants), SAMPLE_CHUNK)
    S = read_dosage(rel, 0, rel.n_variants)
    assert S.shape == S_expected.shape
    assert np.array_equal(S, S_expected)
    assert man["epsilon_xor"] == cal.epsilon_xor
    assert man["sample_block"] == SAMPLE_CHUNK
    assert man["n_variants"] == al.n_kept
    assert list(rel.sample_ids) == list(open_vcz(store).sample_ids)
    assert json.loads((out / "manifest.json").read_text())["epsilon_xor"] == cal.epsilon_xor


def test_plink_export_frequencies_match_release(sim, tmp_path):
    out = tmp_path / "rel"
    release_store(sim / "cohort.vcz", sim / "panel.vcz", EPS, out, seed=SEED, window=WINDOW, exports="plink,vcf")
    for f in ["release.bed", "release.bim", "release.fam", "release.vcf.gz", "release.vcf.gz.tbi", "frequencies.tsv"]:
        assert (out / f).exists(), f
    plink = require_tool("plink1.9", "plink")
    proc = subprocess.run(
        [plink, "--bfile", str(out / "release"), "--freq", "--out", str(tmp_path / "fr"), "--allow-extra-chr"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frq = pd.read_csv(tmp_path / "fr.frq", sep=r"\s+")
    ours = pd.read_csv(out / "frequencies.tsv", sep="\t")
    assert len(frq) == len(ours)
    # PLINK reports the frequency of A1 (its minor allele) with 4 significant digits.
    a1_is_alt = frq["A1"].to_numpy() == ours["alt"].to_numpy()
    ours_a1 = np.where(a1_is_alt, ours["af"], 1 - ours["af"])
    assert np.allclose(frq["MAF"].to_numpy(), ours_a1, atol=5e-5, rtol=5e-4)
    man = json.loads((out / "manifest.json").read_text())
    assert man["frequencies_file"] == "frequencies.tsv"
    # published frequencies restored exactly: the release's ALT counts equal the cohort's
    cohort = open_vcz(sim / "cohort.vcz")
    al = align(cohort, open_vcz(sim / "panel.vcz"))
    G = read_dosage(cohort, 0, cohort.n_variants)[al.cohort_index]
    assert np.array_equal(ours["alt_count"].to_numpy(), np.where(G >= 0, G, 0).sum(axis=1))


def test_different_seed_differs_and_vcz_metadata_is_kept(sim, tmp_path):
    a = release_store(sim / "cohort.vcz", sim / "panel.vcz", EPS, tmp_path / "a", seed=1, window=WINDOW)
    release_store(sim / "cohort.vcz", sim / "panel.vcz", EPS, tmp_path / "b", seed=2, window=WINDOW)
    A = open_vcz(tmp_path / "a" / "release.vcz")
    B = open_vcz(tmp_path / "b" / "release.vcz")
    SA, SB = read_dosage(A, 0, A.n_variants), read_dosage(B, 0, B.n_variants)
    assert (SA != SB).mean() > 0.1
    cohort = open_vcz(sim / "cohort.vcz")
    idx = align(cohort, open_vcz(sim / "panel.vcz")).cohort_index
    assert np.array_equal(A.variant_position, cohort.variant_position[idx])
    assert [tuple(x) for x in A.variant_allele[:, :2]] == [tuple(x) for x in cohort.variant_allele[idx][:, :2]]
    assert a["alignment"]["kept"] == A.n_variants
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["frequencies.tsv", "manifest.json", "release.vcz"]
