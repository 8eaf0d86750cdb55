"""Membership-inference attacks and their statistics (SPEC 6): units, honesty of the protocol, the CLI."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from genoshare.evaluate import attacks as A
from genoshare.evaluate.auditstats import (
    LEVEL_KEYS,
    SeedScores,
    best_bound_threshold,
    clopper_pearson,
    epsilon_lower_bound,
    summarise_attack,
    threshold_at_fpr,
)

ROOT = Path(__file__).resolve().parents[1]
LACTOSE = ROOT / "data" / "opensnp-lactose"
ATTACK = [sys.executable, "-m", "genoshare.cli", "attack"]
RELEASE = [sys.executable, "-m", "genoshare.cli", "release"]


# ---------------------------------------------------------------------------------------------------------------
# statistics


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (3, 500), (497, 500), (0, 1)])
@pytest.mark.parametrize("conf", [0.95, 0.99])
def test_clopper_pearson_matches_scipy_exact(k, n, conf):
    lo, hi = clopper_pearson(k, n, conf)
    ci = binomtest(k, n).proportion_ci(confidence_level=conf, method="exact")
    assert lo == pytest.approx(ci.low, abs=1e-12)
    assert hi == pytest.approx(ci.high, abs=1e-12)


def test_clopper_pearson_vectorised_and_fractional():
    lo, hi = clopper_pearson(np.array([0, 5, 10]), 10)
    assert lo[0] == 0 and hi[2] == 1 and np.all(lo <= hi)
    a = clopper_pearson(4.0, 10)
    b = clopper_pearson(4.5, 10)
    c = clopper_pearson(5.0, 10)
    assert a[0] < b[0] < c[0] and a[1] < b[1] < c[1]  # fractional counts interpolate monotonically
    with pytest.raises(ValueError):
        clopper_pearson(11, 10)


def test_epsilon_lower_bound_formula():
    t, f, d = 0.6, 0.01, 0.0
    assert epsilon_lower_bound(t, f, d) == pytest.approx(max(np.log(t / f), np.log((1 - f) / (1 - t))))
    t, f = 0.999, 0.5  # the second inequality wins
    assert epsilon_lower_bound(t, f) == pytest.approx(np.log(0.5 / 0.001))
    d = 0.05
    assert epsilon_lower_bound(0.6, 0.01, d) == pytest.approx(
        max(np.log((0.6 - d) / 0.01), np.log((1 - 0.01 - d) / (1 - 0.6)))
    )
    assert epsilon_lower_bound(0.01, 0.5) == 0.0  # never negative
    assert epsilon_lower_bound(0.04, 0.01, delta=0.05) == 0.0  # TPR_lo below delta: no evidence
    np.testing.assert_allclose(epsilon_lower_bound(np.array([0.6, 0.01]), np.array([0.01, 0.5])), [np.log(60), 0.0])


def test_threshold_at_fpr_controls_calibration_fpr():
    rng = np.random.default_rng(1)
    null = rng.normal(size=1000)
    for level in (0.001, 0.01, 0.05, 0.2):
        t = threshold_at_fpr(null, level)
        assert np.mean(null > t) <= level
        assert np.mean(null >= t) > level  # the smallest such threshold
    ties = np.array([1.0] * 50 + [0.0] * 50)
    assert np.mean(ties > threshold_at_fpr(ties, 0.1)) <= 0.1
    assert threshold_at_fpr(np.array([3.0, 2.0]), 1.0) == -np.inf


def test_best_bound_threshold_uses_only_calibration():
    cal_m = np.concatenate([np.full(90, 10.0), np.zeros(10)])
    cal_n = np.zeros(100)
    t, eps = best_bound_threshold(cal_m, cal_n, 0.95)
    assert 0.0 <= t < 10.0 and eps > 2


def _seeds(rng, shift, n=400, S=5):
    return [
        SeedScores(rng.normal(shift, 1, n), rng.normal(0, 1, n), rng.normal(shift, 1, n), rng.normal(0, 1, n))
        for _ in range(S)
    ]


@pytest.mark.parametrize("aggregation", ["fixed", "independent"])
def test_summary_shape_and_roc(aggregation):
    rng = np.random.default_rng(2)
    seeds = _seeds(rng, 1.0)
    r = summarise_attack(seeds, aggregation=aggregation)
    assert set(r) >= {"auc", "roc", "tpr_at_fpr", "epsilon_lower_bound"}
    assert set(r["roc"]) == {"fpr", "tpr"} and len(r["roc"]["fpr"]) == len(r["roc"]["tpr"])
    assert r["roc"]["fpr"][0] == 0 and r["roc"]["fpr"][-1] == 1
    assert np.all(np.diff(r["roc"]["fpr"]) >= 0) and np.all(np.diff(r["roc"]["tpr"]) >= 0)
    y = np.r_[np.ones(5 * 400), np.zeros(5 * 400)]
    s = np.r_[np.concatenate([x.eval_members for x in seeds]), np.concatenate([x.eval_nonmembers for x in seeds])]
    assert r["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    assert list(r["tpr_at_fpr"]) == list(LEVEL_KEYS)
    for v in r["tpr_at_fpr"].values():
        assert set(v) == {"tpr", "ci_low", "ci_high"} and v["ci_low"] <= v["tpr"] <= v["ci_high"]
    assert len(r["per_seed"]) == 5
    # shift 1 (Gaussian DP mu = 1): the best pure-epsilon bound is modest, far below what separation would give
    assert 0 < r["epsilon_lower_bound"] < 3


@pytest.mark.parametrize("aggregation", ["fixed", "independent"])
def test_no_signal_no_bound(aggregation):
    rng = np.random.default_rng(3)
    r = summarise_attack(_seeds(rng, 0.0, S=8), aggregation=aggregation)
    assert r["epsilon_lower_bound"] == 0.0
    assert abs(r["auc"] - 0.5) < 0.03


def test_thresholds_are_set_on_calibration_only():
    rng = np.random.default_rng(4)
    seeds = _seeds(rng, 2.0, S=1)
    r1 = summarise_attack(seeds)
    # make the evaluation non-members look very different: TPR (thresholds from calibration) must not move
    moved = [SeedScores(s.cal_members, s.cal_nonmembers, s.eval_members, s.eval_nonmembers + 5) for s in seeds]
    r2 = summarise_attack(moved)
    for k in LEVEL_KEYS:
        assert r1["tpr_at_fpr"][k]["tpr"] == r2["tpr_at_fpr"][k]["tpr"]
    assert r2["fpr_at_threshold"]["0.05"]["fpr"] > 0.5  # and the achieved evaluation FPR says so honestly
    assert r2["epsilon_lower_bound"] == 0.0
    assert r1["epsilon_lower_bound_detail"]["threshold"] == r2["epsilon_lower_bound_detail"]["threshold"]


def test_fixed_aggregation_is_bonferroni_over_seeds():
    rng = np.random.default_rng(5)
    seeds = _seeds(rng, 2.0, S=5)
    r = summarise_attack(seeds, aggregation="fixed")
    d = r["epsilon_lower_bound_detail"]
    assert "Bonferroni" in d["method"]
    assert r["epsilon_lower_bound"] == max(p["epsilon_lower_bound"] for p in r["per_seed"])
    # the per-seed limits are Clopper-Pearson at 1 - 0.05 / 5 = 0.99, two-sided
    lo = binomtest(d["tp"], d["members"]).proportion_ci(confidence_level=0.99, method="exact").low
    hi = binomtest(d["fp"], d["nonmembers"]).proportion_ci(confidence_level=0.99, method="exact").high
    assert d["tpr_ci_low"] == pytest.approx(lo, abs=1e-6) and d["fpr_ci_high"] == pytest.approx(hi, abs=1e-6)
    assert r["epsilon_lower_bound"] == pytest.approx(epsilon_lower_bound(lo, hi), abs=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# building blocks


def test_split_is_deterministic_disjoint_and_complete():
    s1, s2 = A.make_split(101, 57, 3), A.make_split(101, 57, 3)
    for a, b in [(s1.members_cal, s2.members_cal), (s1.nonmembers_eval, s2.nonmembers_eval)]:
        np.testing.assert_array_equal(a, b)
    assert s1.members_cal.size == 50 and s1.members_eval.size == 51
    assert s1.nonmembers_cal.size == 28 and s1.nonmembers_eval.size == 29
    assert set(s1.members_cal).isdisjoint(s1.members_eval)
    assert sorted(np.r_[s1.members_cal, s1.members_eval]) == list(range(101))
    assert sorted(np.r_[s1.nonmembers_cal, s1.nonmembers_eval]) == list(range(57))
    assert not np.array_equal(A.make_split(101, 57, 4).members_cal, s1.members_cal)
    assert s1.row_of_nonmember.min() >= 0 and s1.row_of_nonmember.max() < 101
    with pytest.raises(Exception, match="at least 4"):
        A.make_split(3, 10)


def test_hamming_matches_brute_force_with_missing():
    rng = np.random.default_rng(6)
    X = rng.integers(-1, 3, size=(5000, 7)).astype(np.int8)
    Y = rng.integers(-1, 3, size=(5000, 4)).astype(np.int8)
    D = A.hamming(X, Y)
    for i in range(7):
        for k in range(4):
            ok = (X[:, i] >= 0) & (Y[:, k] >= 0)
            assert D[i, k] == pytest.approx(np.mean(X[ok, i] != Y[ok, k]), abs=1e-9)
    Xc = np.abs(X)  # no missing: the fast path
    assert A.hamming(Xc, Xc)[2, 2] == 0


def test_lrt_matches_formula():
    rng = np.random.default_rng(7)
    X = rng.integers(0, 3, size=(50, 3)).astype(np.int8)
    X[4, 1] = -1
    p_rel, p_ref = rng.uniform(0.05, 0.95, 50), rng.uniform(0.05, 0.95, 50)
    got = A.lrt_scores(X, p_rel, p_ref)
    for i in range(3):
        ok = X[:, i] >= 0
        x = X[ok, i]
        want = np.sum(x * np.log(p_rel[ok] / p_ref[ok]) + (2 - x) * np.log((1 - p_rel[ok]) / (1 - p_ref[ok])))
        assert got[i] == pytest.approx(want)
    f = A.allele_freq(np.array([[0, 0, 0, 0], [2, 2, 2, -1]], dtype=np.int8))
    assert 0 < f[0] < 0.1 and 0.9 < f[1] < 1


def test_channel_is_the_xor_stage():
    p = np.array([0.1, 0.2, 0.5, 0.5])
    P = A.channel(p, floor=0.0)
    np.testing.assert_allclose(P.sum(axis=2), 1)
    # SNP 0, g = 0 (bits 00): s = 0 needs no flip, s = 2 both flips, code 10 and 01 both decode to 1
    assert P[0, 0, 0] == pytest.approx(0.9 * 0.8)
    assert P[0, 0, 2] == pytest.approx(0.1 * 0.2)
    assert P[0, 2, 2] == pytest.approx(0.9 * 0.8)
    assert P[0, 1, 1] == pytest.approx(0.9 * 0.8 + 0.1 * 0.2)  # 01 stays, or both flip to 10
    np.testing.assert_allclose(P[1], 1 / 4 * np.array([[1, 2, 1]] * 3))  # p = 1/2: no information
    Pr = A.channel(p, floor=0.0, restore=(np.array([0.5, 0.0]), np.array([0.0, 0.0])))
    np.testing.assert_allclose(Pr.sum(axis=2), 1)
    assert Pr[0, 2, 2] < P[0, 2, 2]


def _engine_release(G, R, eps, seed, restore="panel"):
    from genoshare.mechanism.calibrate import calibrate
    from genoshare.mechanism.keystream import derive_keys, master_key_from_seed
    from genoshare.mechanism.ldstats import compute_ldstats
    from genoshare.mechanism.release import release_genotypes, target_counts_from_af

    cal = calibrate(compute_ldstats(R, window=None), eps)
    t = target_counts_from_af(G, R.sum(axis=1) / (2.0 * R.shape[1])) if restore == "panel" else np.full(len(G), np.nan)
    return release_genotypes(G, cal.thresholds, t, derive_keys(master_key_from_seed(seed)), threads=1).genotypes, cal


def _pop(seed=0, m=200, n=200, extra=0):
    """Members, non-members, reference (150) and ``extra`` more individuals of one population."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.1, 0.5, m)

    def draw(k):
        return ((rng.random((m, k)) < f[:, None]).astype(np.int8) + (rng.random((m, k)) < f[:, None])).astype(np.int8)

    out = (draw(n), draw(n), draw(150))
    return out + (draw(extra),) if extra else out


def test_release_equal_to_original_is_fully_exposed():
    G, Z, R = _pop()
    rep = A.run_attacks(G, Z, [G.copy() for _ in range(5)], R)
    assert rep["nearest_neighbour"]["auc"] == 1.0
    assert rep["classifier"]["auc"] > 0.99
    assert rep["nearest_neighbour"]["epsilon_lower_bound"] > 2.5  # capped by 100 evaluation non-members


def test_release_independent_of_members_reveals_nothing():
    G, Z, R, other = _pop(1, extra=200)  # the "release" holds other people of the same population
    rng = np.random.default_rng(9)
    releases = [np.ascontiguousarray(other[:, rng.permutation(200)]) for _ in range(5)]
    rep = A.run_attacks(G, Z, releases, R)
    for name in ("nearest_neighbour", "likelihood_ratio", "classifier"):
        assert rep[name]["epsilon_lower_bound"] == 0.0, name
        assert abs(rep[name]["auc"] - 0.5) < 0.1, name


def test_classifier_never_sees_evaluation_labels_or_features():
    rng = np.random.default_rng(10)
    split = A.make_split(100, 80, 0)
    F = rng.normal(size=(180, 4))
    s1 = A.classifier_scores(F, 100, split)
    F2 = F.copy()
    ev = np.r_[split.members_eval, 100 + split.nonmembers_eval]
    F2[ev[:10]] += 100.0  # change some evaluation targets
    s2 = A.classifier_scores(F2, 100, split)
    keep = np.setdiff1d(np.arange(180), ev[:10])
    np.testing.assert_allclose(s1[keep], s2[keep])


def test_row_attack_sees_low_noise_and_not_pure_noise():
    G, Z, R = _pop(3, m=30, n=300)
    for eps, lo, hi in ((60.0, 0.75, 1.0), (0.5, 0.4, 0.6)):
        rel, cal = _engine_release(G, R, eps, 1)
        pop = A.Population(G, Z, R, cal.p)
        sc = A.score_release(pop, rel, A.make_split(300, 300, 0), ("row",))["row"]
        r = summarise_attack([sc])
        assert lo < r["auc"] < hi, (eps, r["auc"])
        assert r["epsilon_lower_bound"] <= cal.epsilon_xor


def test_attack_names():
    assert A.parse_attacks("nn, classifier") == ("nn", "classifier")
    assert A.parse_attacks(["likelihood_ratio"]) == ("lrt",)
    with pytest.raises(Exception, match="unknown attack"):
        A.parse_attacks("nn,foo")


# ---------------------------------------------------------------------------------------------------------------
# the command


def run(*args):
    return subprocess.run([*ATTACK, *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from genoshare.simulate import simulate_cohort

    d = tmp_path_factory.mktemp("attack") / "sim"
    simulate_cohort(d, cases=60, controls=60, panel=100, variants=300, seed=5, holdout=120)
    rels = []
    for s in range(1, 6):
        out = d.parent / f"rel{s}"
        p = subprocess.run(
            [
                *RELEASE,
                d / "cohort.csv.gz",
                "--reference",
                d / "panel.csv.gz",
                "--epsilon",
                "600",
                "--out",
                out,
                "--seed",
                str(s),
                "--window",
                "all",
            ],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, p.stderr
        rels.append(out)
    return d, rels


def _release_args(rels):
    return [a for r in rels for a in ("--release", r)]


def test_cli_json_shape(sim):
    d, rels = sim
    p = run(
        "--original",
        d / "cohort.csv.gz",
        *_release_args(rels),
        "--nonmembers",
        d / "holdout.csv.gz",
        "--reference",
        d / "panel.csv.gz",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    names = {"nearest_neighbour", "likelihood_ratio", "classifier"}
    assert names | {"split", "audit"} == set(rep)
    for name in names:
        r = rep[name]
        assert isinstance(r["auc"], float) and 0 <= r["auc"] <= 1
        assert set(r["roc"]) == {"fpr", "tpr"} and len(r["roc"]["fpr"]) == len(r["roc"]["tpr"]) >= 2
        assert set(r["tpr_at_fpr"]) == {"0.001", "0.01", "0.05"}
        for v in r["tpr_at_fpr"].values():
            assert set(v) == {"tpr", "ci_low", "ci_high"}
            assert 0 <= v["ci_low"] <= v["tpr"] <= v["ci_high"] <= 1
        assert isinstance(r["epsilon_lower_bound"], float) and r["epsilon_lower_bound"] >= 0
        assert len(r["per_seed"]) == 5
    sp = rep["split"]
    assert sp["members"] == {"calibration": 60, "evaluation": 60}
    assert sp["nonmembers"] == {"calibration": 60, "evaluation": 60}
    assert sp["releases"] == 5 and sp["split_panel"] is False
    assert rep["audit"]["epsilon_xor"] == pytest.approx(600, rel=1e-6)
    assert all(rep[n]["epsilon_lower_bound"] <= rep["audit"]["epsilon_xor"] for n in names)
    assert rep["audit"]["exceeds_accountant"] == []
    # the same command twice gives the same numbers
    p2 = run(
        "--original",
        d / "cohort.csv.gz",
        *_release_args(rels),
        "--nonmembers",
        d / "holdout.csv.gz",
        "--reference",
        d / "panel.csv.gz",
        "--json",
    )
    assert json.loads(p2.stdout) == rep


def test_cli_text_and_row_attack(sim):
    d, rels = sim
    p = run(
        "--original",
        d / "cohort.csv.gz",
        *_release_args(rels[:2]),
        "--nonmembers",
        d / "holdout.csv.gz",
        "--reference",
        d / "panel.csv.gz",
        "--attacks",
        "row,nn",
    )
    assert p.returncode == 0, p.stderr
    assert "row_likelihood_ratio" in p.stdout and "nearest_neighbour" in p.stdout
    assert "at least 5 release seeds" in p.stdout


def test_cli_vcz_inputs(sim, tmp_path):
    from genoshare.io.csvmatrix import read_matrix
    from genoshare.io.vcz import write_vcz

    d, rels = sim
    co, ho, rel = (read_matrix(p) for p in (d / "cohort.csv.gz", d / "holdout.csv.gz", rels[0] / "release.csv.gz"))
    m = co.n_variants
    alleles = np.array([["A", "G"]] * m, dtype=object)
    sites = dict(
        contig_ids=["1"],
        variant_contig=np.zeros(m, dtype=int),
        variant_position=np.arange(1, m + 1),
        variant_id=co.variant_ids,
    )
    write_vcz(tmp_path / "cohort.vcz", co.genotypes, sample_ids=co.sample_ids, variant_allele=alleles, **sites)
    # the non-members' store has REF/ALT swapped: attack must recode them
    write_vcz(
        tmp_path / "hold.vcz",
        np.where(ho.genotypes >= 0, 2 - ho.genotypes, -1).astype(np.int8),
        sample_ids=ho.sample_ids,
        variant_allele=alleles[:, ::-1],
        **sites,
    )
    (tmp_path / "rel").mkdir()
    write_vcz(
        tmp_path / "rel" / "release.vcz", rel.genotypes, sample_ids=rel.sample_ids, variant_allele=alleles, **sites
    )
    shutil.copy(rels[0] / "manifest.json", tmp_path / "rel" / "manifest.json")
    p_vcz = run(
        "--original",
        tmp_path / "cohort.vcz",
        "--release",
        tmp_path / "rel",
        "--nonmembers",
        tmp_path / "hold.vcz",
        "--attacks",
        "nn",
        "--json",
    )
    p_csv = run(
        "--original",
        d / "cohort.csv.gz",
        "--release",
        rels[0],
        "--nonmembers",
        d / "holdout.csv.gz",
        "--attacks",
        "nn",
        "--json",
    )
    assert p_vcz.returncode == 0, p_vcz.stderr
    a, b = json.loads(p_vcz.stdout), json.loads(p_csv.stdout)
    assert a["nearest_neighbour"] == b["nearest_neighbour"]


def test_cli_split_panel_on_the_real_cohort(tmp_path):
    rels = []
    for s in (1, 2):
        out = tmp_path / f"lac{s}"
        p = subprocess.run(
            [
                *RELEASE,
                LACTOSE / "data.csv.gz",
                "--reference",
                LACTOSE / "reference.csv.gz",
                "--epsilon",
                "9091",
                "--out",
                out,
                "--seed",
                str(s),
            ],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, p.stderr
        rels.append(out)
    p = run(
        "--original",
        LACTOSE / "data.csv.gz",
        *_release_args(rels),
        "--nonmembers",
        LACTOSE / "reference.csv.gz",
        "--split-panel",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    sp = rep["split"]
    assert sp["split_panel"] is True and sp["reference"]["individuals"] == 30
    assert sp["nonmembers"]["calibration"] + sp["nonmembers"]["evaluation"] == 30
    assert sp["members"]["calibration"] + sp["members"]["evaluation"] == 60
    notes = " ".join(sp["notes"])
    assert "split-panel" in notes and "noise model was computed from" in notes
    assert "published" in rep["audit"]["note"]


def test_cli_errors_are_one_line(sim, tmp_path):
    d, rels = sim
    base = ["--original", d / "cohort.csv.gz", "--release", rels[0]]
    cases = [
        ([*base, "--nonmembers", d / "cohort.csv.gz"], "non-members must not be members"),
        ([*base, "--nonmembers", tmp_path / "nope.csv"], "no such file"),
        ([*base, "--nonmembers", d / "holdout.csv.gz", "--attacks", "nn,bogus"], "unknown attack"),
        ([*base, "--nonmembers", d / "holdout.csv.gz", "--attacks", "lrt"], "needs reference genotypes"),
        (
            [*base, "--nonmembers", d / "holdout.csv.gz", "--reference", d / "panel.csv.gz", "--split-panel"],
            "omit --reference",
        ),
        (
            ["--original", d / "cohort.csv.gz", "--release", tmp_path, "--nonmembers", d / "holdout.csv.gz"],
            "not a release directory",
        ),
        ([*base, "--nonmembers", d / "holdout.csv.gz", "--confidence", "1.5"], "--confidence"),
    ]
    bad_snps = tmp_path / "bad.csv"
    with gzip.open(d / "holdout.csv.gz", "rt") as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    bad_snps.write_text("\n".join([",".join(header[:-1] + ["1:999999999"])] + lines[1:]) + "\n")
    cases.append(([*base, "--nonmembers", bad_snps], "is missing"))
    for args, needle in cases:
        p = run(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert needle in p.stderr, (needle, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "Traceback" not in p.stderr
