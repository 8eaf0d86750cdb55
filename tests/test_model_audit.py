"""genoshare audit-model: the game, the attacks, DP-SGD and its accounting, the command (docs/model-audit.md).

Small synthetic cohorts (independent SNPs, so KING finds no relatives unless we plant one) keep these fast; the
statistical ones are marked slow but stay within seconds each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genoshare.audit import dpsgd, game, models

P_SNPS = 3000
DP_NOISE = 8.0
DP_Q, DP_STEPS = 0.8, 6


def _data(seed: int, n: int = 200, p: int = P_SNPS, n_pool: int = 160, quantitative: bool = False):
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.1, 0.5, p)
    G = rng.binomial(2, f[:, None], (p, n)).astype(np.int8)
    X = models.encode(G)
    beta = np.zeros(p)
    beta[:20] = 0.4
    liab = X @ beta + rng.normal(0, 1, n)
    y = liab if quantitative else (liab > np.median(liab)).astype(float)
    return G, X[:n_pool], y[:n_pool], X[n_pool:], y[n_pool:]


def _dp_config(n: int) -> dpsgd.DPSGDConfig:
    return dpsgd.DPSGDConfig(noise_multiplier=DP_NOISE, sampling_rate=DP_Q, steps=DP_STEPS, delta=0.1 / n)


def test_encode_is_fixed_a_priori():
    G = np.array([[0, 1, 2, -1], [2, 2, 2, 2]], dtype=np.int8)
    X = models.encode(G)
    assert X.shape == (4, 2)
    # g - 1, missing 0, and no centring by the cohort's frequency (column 2 is all 1s, not all 0s)
    np.testing.assert_array_equal(X[:, 0], [-1, 0, 1, 0])
    np.testing.assert_array_equal(X[:, 1], [1, 1, 1, 1])


def test_interpolating_logistic_model_is_found_leaky():
    _, X, y, Xp, yp = _data(0)
    res = game.play(
        X, y, Xp, yp, True, lambda a, b, s: models.fit("logistic-l2", a, b, True, C=100.0), n_models=16, seed=1
    )
    for name in ("loss", "lira_offline"):
        r = res.attacks[name]
        assert r["auc"] > 0.97, (name, r["auc"])
        # Clopper-Pearson lower limit of the TPR at FPR 5% far above 5%
        assert r["tpr_at_fpr"]["0.05"]["ci_low"] > 0.5
        assert r["epsilon_lower_bound"] > 1.0
    assert res.attacks["rmia"]["auc"] > 0.85
    assert res.describe["lira_online"].startswith("skipped")


def test_data_independent_model_is_not_leaky():
    _, X, y, Xp, yp = _data(1)
    fixed = models.ConstantModel(X.shape[1], True, seed=5).fitted
    res = game.play(X, y, Xp, yp, True, lambda a, b, s: fixed, n_models=16, seed=2)
    em = res.eval_idx
    for name, r in res.attacks.items():
        assert r["epsilon_lower_bound"] == 0.0, name
        for level, key in ((0.001, "0.001"), (0.01, "0.01"), (0.05, "0.05")):
            assert r["tpr_at_fpr"][key]["ci_low"] <= level + 1e-9, (name, key)
        # the AUC's 95% interval (Hanley-McNeil, one target's evaluation individuals) covers 0.5
        n1 = int(res.IN[0, em].sum())
        n2 = em.size - n1
        a = r["per_seed"][0]["auc"]
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
        assert abs(a - 0.5) <= 1.96 * se + 1e-9, (name, a, se)


@pytest.mark.slow
def test_no_attack_exceeds_the_dp_sgd_accounted_epsilon():
    for seed in range(3):
        _, X, y, Xp, yp = _data(10 + seed)
        cfg = _dp_config(X.shape[0])
        eps = dpsgd.dp_epsilon(DP_Q, DP_NOISE, DP_STEPS, cfg.delta)
        assert 0.3 < eps < 1.0  # small enough that a leak is visible at this size

        def trainer(a, b, s, cfg=cfg):
            return dpsgd.train(a, b, True, cfg, np.random.default_rng(s))

        res = game.play(X, y, Xp, yp, True, trainer, n_models=16, seed=seed, delta=cfg.delta)
        for name, r in res.attacks.items():
            assert r["epsilon_lower_bound"] <= eps, (seed, name, r["epsilon_lower_bound"], eps)


@pytest.mark.slow
def test_mis_accounted_training_is_caught():
    """Noise switched off while the accountant still reports the noisy epsilon: some attack's bound exceeds it."""
    _, X, y, Xp, yp = _data(20)
    cfg = _dp_config(X.shape[0])
    eps = dpsgd.dp_epsilon(DP_Q, DP_NOISE, DP_STEPS, cfg.delta)
    res = game.play(
        X,
        y,
        Xp,
        yp,
        True,
        lambda a, b, s: dpsgd.train(a, b, True, cfg, np.random.default_rng(s), actual_noise_multiplier=0.0),
        n_models=16,
        seed=0,
        delta=cfg.delta,
    )
    assert max(r["epsilon_lower_bound"] for r in res.attacks.values()) > eps


def test_dp_sgd_clips_every_example_including_the_intercept():
    """One step, no noise, q = 1: replacing one example by an extreme one moves (w, b) * n / lr by <= 2 * clip."""
    rng = np.random.default_rng(0)
    X = rng.integers(-1, 2, (30, 50)).astype(float)
    y = (rng.random(30) < 0.5).astype(float)
    cfg = dpsgd.DPSGDConfig(noise_multiplier=1.0, sampling_rate=1.0, steps=1, learning_rate=1.0, clip=0.7)
    a = dpsgd.train(X, y, True, cfg, np.random.default_rng(1), actual_noise_multiplier=0.0)
    X2 = X.copy()
    X2[0] = 1e6
    y2 = y.copy()
    y2[0] = 1 - y[0]
    b = dpsgd.train(X2, y2, True, cfg, np.random.default_rng(1), actual_noise_multiplier=0.0)
    step = np.concatenate([a.coef - b.coef, [a.intercept - b.intercept]]) * 30
    assert np.linalg.norm(step) <= 2 * 0.7 + 1e-9
    # the intercept's gradient is clipped too: on a zero feature matrix the whole gradient is the intercept's
    c = dpsgd.train(np.zeros((30, 5)), np.ones(30), True, cfg, np.random.default_rng(1), actual_noise_multiplier=0.0)
    assert abs(c.intercept) * 30 <= 30 * 0.7 + 1e-9 and abs(c.intercept) > 0


def test_dp_sgd_epsilon_matches_dp_accounting():
    import dp_accounting
    from dp_accounting.pld import PLDAccountant
    from dp_accounting.rdp import RdpAccountant

    q, sigma, steps, delta = 0.25, 1.5, 40, 1e-4
    ours = dpsgd.dp_epsilon(q, sigma, steps, delta)
    acc = PLDAccountant()  # add/remove-one is its default
    acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), count=steps)
    assert ours == pytest.approx(acc.get_epsilon(delta), rel=1e-6)
    rdp = RdpAccountant()
    rdp.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), count=steps)
    assert ours <= rdp.get_epsilon(delta) <= 1.5 * ours  # RDP is looser, not wildly so


# ----------------------------------------------------------------------------------------------------------------
# the command


def _write_cohort(
    d: Path,
    seed: int = 3,
    n: int = 120,
    p: int = 600,
    duplicate: bool = False,
    one_class: bool = False,
    quantitative: bool = False,
):
    from genoshare.io.csvmatrix import write_matrix

    G, *_ = _data(seed, n=n, p=p, n_pool=n)
    rng = np.random.default_rng(seed)
    ids = [f"s{i:04d}" for i in range(n)]
    if duplicate:
        G[:, 1] = G[:, 0]
    write_matrix(d / "cohort.csv.gz", ids, [f"1:{j + 1}" for j in range(p)], G)
    X = models.encode(G)
    liab = X[:, :10].sum(1) + rng.normal(0, 1, n)
    if quantitative:
        vals = [f"{v:.4f}" for v in liab]
    elif one_class:
        vals = ["2"] * n
    else:
        vals = ["2" if v > np.median(liab) else "1" for v in liab]
    (d / "pheno.tsv").write_text("id\tphenotype\n" + "".join(f"{i}\t{v}\n" for i, v in zip(ids, vals)))
    return ids


def _cli(*args, private: Path):
    import os

    env = dict(os.environ, GENOSHARE_PRIVATE_DIR=str(private))
    return subprocess.run([sys.executable, "-m", "genoshare.cli", *args], capture_output=True, text=True, env=env)


def test_audit_model_command_end_to_end(tmp_path):
    ids = _write_cohort(tmp_path, duplicate=True)
    private = tmp_path / "private"
    out = tmp_path / "AUDIT.json"
    r = _cli(
        "audit-model",
        "--cohort",
        str(tmp_path / "cohort.csv.gz"),
        "--phenotype",
        str(tmp_path / "pheno.tsv"),
        "--references",
        "7",
        "--dp-sgd",
        "4",
        "--max-epsilon",
        "3",
        "--out",
        str(out),
        private=private,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    names = [m["name"] for m in rep["models"]]
    assert names == ["original:logistic-l2", "dp-sgd:4"]
    for m in rep["models"]:
        assert set(m) >= {"name", "training", "epsilon", "delta", "utility", "attacks"}
        assert set(m["utility"]) >= {"metric", "value", "ci_low", "ci_high"}
        assert set(m["attacks"]) == {"loss", "lira_offline", "rmia"}  # online needs >= 64 references
        for a in m["attacks"].values():
            assert set(a) >= {"auc", "roc", "tpr_at_fpr", "epsilon_lower_bound"}
            assert set(a["tpr_at_fpr"]) == {"0.001", "0.01", "0.05"}
    assert rep["models"][0]["epsilon"] is None and rep["models"][1]["training"] == "dp-sgd"
    assert rep["game"]["relatives_removed"] >= 1  # the planted duplicate (and maybe chance pairs at 600 SNPs)
    assert rep["game"]["models"] == 8
    # the original model has no epsilon, so with --max-epsilon only the DP-SGD setting can be recommended
    rec = rep["recommendation"]
    assert rec["recommended"] in ("dp-sgd:4", None)
    assert "original:logistic-l2" in rec["rejected"]
    # privacy hygiene: no individual id in the shared file; scores and IN/OUT only in the private record
    text = out.read_text()
    assert not any(i in text for i in ids)
    rec_file = private / "model-audit" / rep["game"]["private_record"]
    with np.load(rec_file) as z:
        assert z["setting0_IN"].shape == (8, rep["game"]["audit_pool"])
        assert z["setting1_score_rmia"].shape == (8, rep["game"]["audit_pool"])
        kept = set(z["pool_ids"].tolist()) | set(z["population_ids"].tolist())
    assert ("s0000" in kept) != ("s0001" in kept)  # exactly one of the duplicate pair stays
    assert (rec_file.stat().st_mode & 0o077) == 0


def test_audit_model_dp_epsilon_in_json_matches_accountant(tmp_path):
    import dp_accounting
    from dp_accounting.pld import PLDAccountant

    from genoshare.audit.run import audit_model

    _write_cohort(tmp_path, seed=4)
    rep = audit_model(
        tmp_path / "cohort.csv.gz",
        tmp_path / "pheno.tsv",
        tmp_path / "A.json",
        references=5,
        dp_sgd="3",
        relatives="skip",
    )
    m = rep["models"][1]
    d = m["dp_sgd"]
    assert m["delta"] < 1.0 / rep["game"]["audit_pool"]
    acc = PLDAccountant()
    acc.compose(
        dp_accounting.PoissonSampledDpEvent(d["sampling_rate"], dp_accounting.GaussianDpEvent(3.0)), count=d["steps"]
    )
    assert m["epsilon"] == pytest.approx(acc.get_epsilon(m["delta"]), rel=1e-6)


@pytest.mark.slow
def test_audit_model_catches_mis_accounting_and_refuses_to_recommend_it(tmp_path):
    from genoshare.audit.run import audit_model

    _write_cohort(tmp_path, seed=5, n=200, p=3000)
    rep = audit_model(
        tmp_path / "cohort.csv.gz",
        tmp_path / "pheno.tsv",
        tmp_path / "A.json",
        references=15,
        dp_sgd="16",
        relatives="skip",
        dpsgd_epochs=5.0,
        _actual_noise_multiplier=0.0,
    )
    m = rep["models"][1]
    assert m["exceeds_accounted"], {a: r["epsilon_lower_bound"] for a, r in m["attacks"].items()}
    assert rep["recommendation"]["recommended"] != "dp-sgd:16"


def test_quantitative_phenotype_ridge(tmp_path):
    from genoshare.audit.run import audit_model

    _write_cohort(tmp_path, seed=6, quantitative=True)
    rep = audit_model(
        tmp_path / "cohort.csv.gz", tmp_path / "pheno.tsv", tmp_path / "A.json", references=7, relatives="skip", C=1e4
    )
    m = rep["models"][0]
    assert m["name"] == "original:ridge" and m["utility"]["metric"] == "r2"
    assert rep["game"]["phenotype"]["type"] == "quantitative"
    assert m["attacks"]["loss"]["auc"] > 0.9  # an interpolating ridge (p > n) on the residual signal


def _bad(tmp_path, *extra, setup=None):
    private = tmp_path / "private"
    out = tmp_path / "AUDIT.json"
    r = _cli(
        "audit-model",
        "--cohort",
        str(tmp_path / "cohort.csv.gz"),
        "--phenotype",
        str(tmp_path / "pheno.tsv"),
        "--references",
        "5",
        "--out",
        str(out),
        *extra,
        private=private,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genoshare: error:"), r.stderr
    assert not out.exists()
    assert not (private / "model-audit").exists() or not any((private / "model-audit").iterdir())
    return lines[0]


def test_bad_input_one_class(tmp_path):
    _write_cohort(tmp_path, one_class=True)
    assert "one class" in _bad(tmp_path)


def test_bad_input_too_few_people(tmp_path):
    _write_cohort(tmp_path, n=30, p=200)
    assert "too few" in _bad(tmp_path, "--no-relatives-filter")


def test_bad_input_overlapping_population(tmp_path):
    from genoshare.io.csvmatrix import read_matrix, write_matrix

    _write_cohort(tmp_path)
    m = read_matrix(tmp_path / "cohort.csv.gz")
    write_matrix(tmp_path / "pop.csv.gz", m.sample_ids[:20], m.variant_ids, m.genotypes[:, :20])
    msg = _bad(tmp_path, "--population", str(tmp_path / "pop.csv.gz"))
    assert "overlap" in msg and "pop.csv.gz" in msg


def test_bad_input_model_for_wrong_phenotype_and_mlp_dp(tmp_path):
    _write_cohort(tmp_path)
    assert "does not fit a binary" in _bad(tmp_path, "--model", "ridge")
    assert "mlp" in _bad(tmp_path, "--model", "mlp", "--dp-sgd", "2")
    assert "noise multiplier" in _bad(tmp_path, "--dp-sgd", "0")


@pytest.mark.slow
def test_audit_of_a_model_trained_on_a_release(tmp_path):
    """Simulated cohort -> genoshare release -> the model trained on the release is audited next to the original;
    its release epsilon is reported but never counted as the model's (the labels are not protected)."""
    from genoshare.audit.run import audit_model
    from genoshare.simulate import simulate_cohort

    sim = tmp_path / "sim"
    simulate_cohort(sim, cases=60, controls=60, panel=40, variants=500, seed=7, holdout=0)
    r = _cli(
        "release",
        str(sim / "cohort.csv.gz"),
        "--reference",
        str(sim / "panel.csv.gz"),
        "--epsilon",
        "5",
        "--seed",
        "1",
        "--relatives",
        "skip",
        "--out",
        str(tmp_path / "rel"),
        private=tmp_path / "private",
    )
    assert r.returncode == 0, r.stderr
    rep = audit_model(
        sim / "cohort.csv.gz",
        sim / "phenotype.tsv",
        tmp_path / "A.json",
        references=7,
        releases=[tmp_path / "rel"],
        relatives="skip",
        max_epsilon=10.0,
    )
    names = [m["name"] for m in rep["models"]]
    assert names == ["original:logistic-l2", "release:rel"]
    rel = rep["models"][1]
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert rel["epsilon"] == pytest.approx(manifest["privacy"]["total"]["epsilon"])
    assert rel["epsilon_covers_model"] is False
    assert rep["recommendation"]["recommended"] is None  # neither setting has an epsilon covering the model


@pytest.mark.slow
def test_lira_online_runs_from_64_references_and_finds_the_leak():
    _, X, y, Xp, yp = _data(30, n=150, p=1500, n_pool=120)
    res = game.play(
        X,
        y,
        Xp,
        yp,
        True,
        lambda a, b, s: models.fit("logistic-l2", a, b, True, C=100.0),
        n_models=65,
        seed=3,
        by_class=False,
    )
    assert res.describe["lira_online"] == "run"
    assert res.attacks["lira_online"]["auc"] > 0.95
    assert res.attacks["lira_online"]["tpr_at_fpr"]["0.05"]["ci_low"] > 0.5


def test_mlp_and_leakage_by_class(tmp_path):
    from genoshare.audit.run import audit_model

    _write_cohort(tmp_path, seed=8, n=100, p=300)
    rep = audit_model(
        tmp_path / "cohort.csv.gz",
        tmp_path / "pheno.tsv",
        tmp_path / "A.json",
        references=5,
        model="mlp",
        relatives="skip",
    )
    m = rep["models"][0]
    assert m["name"] == "original:mlp"
    assert set(m["leakage_by_class"]) == {"cases", "controls"}
    assert set(m["leakage_by_class"]["cases"]["loss"]) == {"auc", "tpr_at_fpr", "epsilon_lower_bound"}


def test_one_run_audit_bound_against_the_binomial_tail():
    """delta = 0: the bound is the eps with P[Binom(r, e^eps/(1+e^eps)) >= v] = 0.05; for v = r, q^r = 0.05."""
    from genoshare.audit import onerun

    r = 20
    q = 0.05 ** (1 / r)
    assert onerun.epsilon_lower_bound(100, r, r, 0.0) == pytest.approx(np.log(q / (1 - q)), abs=1e-6)
    assert onerun.epsilon_lower_bound(100, r, r // 2, 0.0) == 0.0  # chance accuracy: nothing
    # delta only weakens the bound
    assert onerun.epsilon_lower_bound(100, r, r, 1e-3) < onerun.epsilon_lower_bound(100, r, r, 0.0)


@pytest.mark.slow
def test_one_run_audit_respects_the_dp_sgd_epsilon():
    from genoshare.audit import onerun

    for seed in range(3):
        _, X, y, _, _ = _data(40 + seed)
        cfg = _dp_config(X.shape[0])
        eps = dpsgd.dp_epsilon(DP_Q, DP_NOISE, DP_STEPS, cfg.delta)
        res = onerun.audit(
            X,
            y,
            lambda a, b, s, cfg=cfg: dpsgd.train(a, b, True, cfg, np.random.default_rng(s)),
            delta=cfg.delta,
            seed=seed,
        )
        assert res["epsilon_lower_bound"] <= eps
        assert res["guesses"] == 2 * int(0.1 * res["canaries"])


def _trained_setup(tmp_path, C: float):
    """An owner's model trained on a fixed training set, a hold-out set aside before training."""
    from genoshare.io.csvmatrix import read_matrix

    _write_cohort(tmp_path, seed=9, n=160, p=2000)
    m = read_matrix(tmp_path / "cohort.csv.gz")
    rows = (tmp_path / "pheno.tsv").read_text().splitlines()[1:]
    y = np.array([1.0 if r.split("\t")[1] == "2" else 0.0 for r in rows])
    X = models.encode(m.genotypes)
    members = m.sample_ids[:80]
    fit = models.fit("logistic-l2", X[:80], y[:80], True, C=C)
    np.savez(tmp_path / "model.npz", coef=fit.coef, intercept=fit.intercept)
    (tmp_path / "members.txt").write_text("\n".join(members) + "\n")
    (tmp_path / "holdout.txt").write_text("\n".join(m.sample_ids[80:]) + "\n")


def test_audit_of_an_already_trained_model_with_its_holdout(tmp_path):
    _trained_setup(tmp_path, C=100.0)
    out = tmp_path / "AUDIT.json"
    r = _cli(
        "audit-model",
        "--cohort",
        str(tmp_path / "cohort.csv.gz"),
        "--phenotype",
        str(tmp_path / "pheno.tsv"),
        "--references",
        "7",
        "--trained-model",
        str(tmp_path / "model.npz"),
        "--member-ids",
        str(tmp_path / "members.txt"),
        "--holdout-ids",
        str(tmp_path / "holdout.txt"),
        "--no-relatives-filter",
        "--out",
        str(out),
        private=tmp_path / "private",
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    m = rep["models"][0]
    assert m["training"] == "trained" and rep["game"]["members"] == 80
    assert rep["game"]["holdout"] + rep["game"]["population_set"] == 80  # population set taken from the hold-out
    assert m["attacks"]["loss"]["auc"] > 0.95  # interpolating model, p >> n


def test_bad_trained_model_inputs(tmp_path):
    _trained_setup(tmp_path, C=1.0)
    base = ["--member-ids", str(tmp_path / "members.txt"), "--holdout-ids", str(tmp_path / "holdout.txt")]
    np.savez(tmp_path / "wrong.npz", weights=np.zeros(3))
    assert "not a supported model file" in _bad(tmp_path, "--trained-model", str(tmp_path / "wrong.npz"), *base)
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04not an npz")
    assert "not a supported model file" in _bad(tmp_path, "--trained-model", str(tmp_path / "pickle.npz"), *base)
    members = (tmp_path / "members.txt").read_text().split()
    (tmp_path / "holdout2.txt").write_text("\n".join(members[:3] + ["s0150"]) + "\n")
    msg = _bad(
        tmp_path,
        "--trained-model",
        str(tmp_path / "model.npz"),
        "--member-ids",
        str(tmp_path / "members.txt"),
        "--holdout-ids",
        str(tmp_path / "holdout2.txt"),
    )
    assert "both members and hold-out" in msg
    assert "without a hold-out" in _bad(tmp_path, "--trained-model", str(tmp_path / "model.npz"))
