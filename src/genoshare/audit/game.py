"""The membership game for a training recipe (Carlini et al. 2022's setup), scored with evaluate/auditstats.py.

- The audit pool (the cohort after the relatives filter, minus the population set) has N individuals. 2k models are
  trained, model j on the individuals i with IN[j, i] = 1, IN drawn as independent Bernoulli(1/2) (so every
  individual is in about half of the models and every model sees about half of the pool).
- Every model in turn is the TARGET; the other 2k - 1 are its REFERENCES. The attack scores of the target use only
  the references' signals (``attacks.py``).
- The pool is split once (seeded) into a CALIBRATION half and an EVALUATION half of individuals. Thresholds (the
  ones at FPR 0.1/1/5% and the one that maximises the epsilon bound) are fitted on the scores that up to
  ``calibration_references`` references receive on the calibration individuals when each is attacked as if it were
  the target (with the target left out of its references). Rates, intervals and bounds are computed on the target's
  scores of the evaluation individuals only. So no threshold sees the target model or an evaluation individual.
- Targets are independent training runs on the SAME individuals, so they are combined as auditstats'
  ``aggregation="fixed"``: one bound per target at Bonferroni-corrected confidence, the reported bound their maximum
  (valid at the stated confidence); TPR at fixed FPR pooled over targets with an interval over the individuals.
- Non-members of a target are the pool individuals it did not train on: same population, same filter.

What this measures is the training RECIPE (the data, the model family, the hyper-parameters, DP-SGD settings), not
one already-trained model: a model trained once on the whole cohort has no non-members to compare with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genoshare.audit import attacks as _attacks
from genoshare.audit.models import Fitted
from genoshare.errors import GenoshareError
from genoshare.evaluate.auditstats import SeedScores, clopper_pearson, summarise_attack

MIN_POOL = 40
MIN_PER_CLASS = 5


@dataclass
class GameResult:
    S: np.ndarray  # (K, N) signals on the audit pool
    IN: np.ndarray  # (K, N) bool
    P: np.ndarray  # (K, Z) signals on the population set
    decisions_out: list  # per model: (y_out, decision_out) on its own held-out individuals
    attacks: dict = field(default_factory=dict)
    by_class: dict = field(default_factory=dict)
    target_scores: dict = field(default_factory=dict)  # attack -> (K, N) scores, private
    seed_scores: dict = field(default_factory=dict)  # attack -> list[SeedScores], for re-bounding (private)
    eval_idx: np.ndarray | None = None
    cal_idx: np.ndarray | None = None
    describe: dict = field(default_factory=dict)


def draw_membership(n_models: int, y: np.ndarray, binary: bool, rng: np.random.Generator) -> np.ndarray:
    """IN matrix: independent Bernoulli(1/2); a row is redrawn if a binary training half misses a class."""
    IN = rng.random((n_models, y.size)) < 0.5
    for j in range(n_models):
        for _ in range(100):
            yin = y[IN[j]]
            ok = IN[j].sum() >= 2 and (~IN[j]).sum() >= 2
            if binary:
                ok = ok and 0 < yin.sum() < yin.size
            if ok:
                break
            IN[j] = rng.random(y.size) < 0.5
        else:
            raise GenoshareError("the game could not draw a training half with both classes; too few people")
    return IN


def play(
    X: np.ndarray,
    y: np.ndarray,
    Xpop: np.ndarray,
    ypop: np.ndarray,
    binary: bool,
    trainer: Callable[[np.ndarray, np.ndarray, int], Fitted],
    *,
    n_models: int = 64,
    seed: int = 0,
    delta: float = 0.0,
    confidence: float = 0.95,
    calibration_references: int = 8,
    features_attack: tuple[np.ndarray, np.ndarray] | None = None,
    by_class: bool = True,
    progress=None,
) -> GameResult:
    """Train ``n_models`` models with ``trainer(X_in, y_in, model_seed)`` and attack each.

    ``features_attack``: (X, Xpop) the attacker queries with, when the models are trained on other features (a
    model trained on a genoshare release is queried with the true genotypes)."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the fits are small matrix products, and a multi-threaded BLAS on a busy 2-core machine
    # was measured 19x slower (14 s against 0.76 s for one 400 x 10,000 logistic fit).
    with threadpool_limits(limits=1):
        return _play(
            X,
            y,
            Xpop,
            ypop,
            binary,
            trainer,
            n_models=n_models,
            seed=seed,
            delta=delta,
            confidence=confidence,
            calibration_references=calibration_references,
            features_attack=features_attack,
            by_class=by_class,
            progress=progress,
        )


def _play(
    X,
    y,
    Xpop,
    ypop,
    binary,
    trainer,
    *,
    n_models,
    seed,
    delta,
    confidence,
    calibration_references,
    features_attack,
    by_class,
    progress,
) -> GameResult:
    N = y.size
    if n_models < 4:
        raise GenoshareError(f"the game needs at least 4 models (2k with k >= 2), not {n_models}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13, 1]))
    IN = draw_membership(n_models, y, binary, rng)
    Xq, Xpq = features_attack if features_attack is not None else (X, Xpop)
    S = np.empty((n_models, N))
    P = np.empty((n_models, ypop.size))
    decisions_out = []
    for j in range(n_models):
        model = trainer(X[IN[j]], y[IN[j]], int(rng.integers(2**31)))
        d = model.decision(Xq)
        S[j] = model.signal(Xq, y)
        P[j] = model.signal(Xpq, ypop)
        decisions_out.append((y[~IN[j]], d[~IN[j]]))
        if progress:
            progress(j + 1, n_models)
    res = GameResult(S, IN, P, decisions_out)
    perm = np.random.default_rng(np.random.SeedSequence([seed, 13, 2])).permutation(N)
    cal_idx, eval_idx = np.sort(perm[: N // 2]), np.sort(perm[N // 2 :])
    res.cal_idx, res.eval_idx = cal_idx, eval_idx
    names = [a for a in _attacks.ATTACKS if a != "lira_online" or n_models - 1 >= _attacks.ONLINE_MIN_REFERENCES]
    per_attack: dict[str, list[SeedScores]] = {a: [] for a in names}
    classes = {"cases": y > 0.5, "controls": y <= 0.5} if binary and by_class else {}
    per_class: dict[str, dict[str, list[SeedScores]]] = {c: {a: [] for a in names} for c in classes}
    crng = np.random.default_rng(np.random.SeedSequence([seed, 13, 3]))
    res.target_scores = {a: np.empty((n_models, N)) for a in names}
    for t in range(n_models):
        others = np.array([j for j in range(n_models) if j != t])
        cal_refs = np.sort(crng.choice(others, size=min(calibration_references, others.size), replace=False))
        sc = _attacks.scores(S, IN, P, t, cal_refs, binary, attacks=names)
        for a in names:
            tgt, cal = sc[a]
            res.target_scores[a][t] = tgt
            cal_s, cal_in = cal[:, cal_idx], IN[cal_refs][:, cal_idx]
            ev_s, ev_in = tgt[eval_idx], IN[t, eval_idx]
            per_attack[a].append(SeedScores(cal_s[cal_in], cal_s[~cal_in], ev_s[ev_in], ev_s[~ev_in]))
            for c, mask in classes.items():
                cm, em = np.broadcast_to(mask[cal_idx], cal_in.shape), mask[eval_idx]
                per_class[c][a].append(
                    SeedScores(cal_s[cal_in & cm], cal_s[~cal_in & cm], ev_s[ev_in & em], ev_s[~ev_in & em])
                )
    res.seed_scores = per_attack
    for a in names:
        res.attacks[a] = summarise_attack(per_attack[a], confidence=confidence, delta=delta, aggregation="fixed")
    for c in classes:
        res.by_class[c] = {}
        for a in names:
            seeds = per_class[c][a]
            if all(
                min(len(s.cal_members), len(s.cal_nonmembers), len(s.eval_members), len(s.eval_nonmembers)) > 0
                for s in seeds
            ):
                r = summarise_attack(seeds, confidence=confidence, delta=delta, aggregation="fixed")
                res.by_class[c][a] = {
                    "auc": r["auc"],
                    "tpr_at_fpr": r["tpr_at_fpr"],
                    "epsilon_lower_bound": r["epsilon_lower_bound"],
                }
    n_eval_non = int(np.mean([(~IN[t, eval_idx]).sum() for t in range(n_models)]))
    n_eval_mem = int(np.mean([IN[t, eval_idx].sum() for t in range(n_models)]))
    zero_fp_hi = clopper_pearson(0, max(n_eval_non, 1), confidence)[1]
    res.describe = {
        "models": n_models,
        "references_per_target": n_models - 1,
        "audit_pool": int(N),
        "population_set": int(ypop.size),
        "calibration_individuals": int(cal_idx.size),
        "evaluation_individuals": int(eval_idx.size),
        "calibration_references": int(min(calibration_references, n_models - 1)),
        "evaluation_members_per_target": n_eval_mem,
        "evaluation_nonmembers_per_target": n_eval_non,
        "membership": "independent Bernoulli(1/2) per model and individual",
        "aggregation": "per-target bounds at Bonferroni-corrected confidence, maximum reported (auditstats "
        "aggregation='fixed')",
        "confidence": confidence,
        "delta": delta,
        "fpr_resolution": {
            "zero_false_positive_fpr_ci_high": round(float(zero_fp_hi), 6),
            "note": f"with {n_eval_non} evaluation non-members per target, zero false positives still only means "
            f"FPR <= {100 * zero_fp_hi:.2g}% ({confidence:g} Clopper-Pearson); TPR at FPR 0.1% is "
            f"{'not resolved' if zero_fp_hi > 0.001 else 'resolved'} at this size",
        },
        "attacks_run": names,
        "lira_online": (
            "run"
            if "lira_online" in names
            else f"skipped: needs at least {_attacks.ONLINE_MIN_REFERENCES} references, the game has {n_models - 1}"
        ),
    }
    return res


def utility(res: GameResult, binary: bool, seed: int = 0, resamples: int = 500) -> dict:
    """Test utility: AUC (binary) or R^2 (quantitative) of each model on its own held-out half.

    value and ci: model 0 (percentile bootstrap over its held-out individuals); mean_over_models as well."""
    from sklearn.metrics import r2_score, roc_auc_score

    def metric(yy, dd):
        if binary:
            return float(roc_auc_score(yy, dd)) if 0 < yy.sum() < yy.size else float("nan")
        return float(r2_score(yy, dd))

    vals = [metric(yy, dd) for yy, dd in res.decisions_out]
    yy, dd = res.decisions_out[0]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13, 4]))
    boot = []
    for _ in range(resamples):
        i = rng.integers(0, yy.size, yy.size)
        v = metric(yy[i], dd[i])
        if np.isfinite(v):
            boot.append(v)
    lo, hi = np.percentile(boot, [2.5, 97.5]) if boot else (float("nan"), float("nan"))
    return {
        "metric": "auc" if binary else "r2",
        "value": round(metric(yy, dd), 6),
        "ci_low": round(float(lo), 6),
        "ci_high": round(float(hi), 6),
        "mean_over_models": round(float(np.nanmean(vals)), 6),
        "split": "model 0 on the audit-pool half it did not train on (95% percentile bootstrap over those "
        "individuals); mean_over_models: every model on its own held-out half",
    }


def play_trained(
    X: np.ndarray,
    y: np.ndarray,
    members: np.ndarray,
    target: Fitted,
    Xpop: np.ndarray,
    ypop: np.ndarray,
    binary: bool,
    trainer: Callable[[np.ndarray, np.ndarray, int], Fitted],
    *,
    n_references: int = 64,
    seed: int = 0,
    delta: float = 0.0,
    confidence: float = 0.95,
    calibration_references: int = 8,
) -> GameResult:
    """Audit ONE already-trained model: members = its training set, non-members = a hold-out set aside before
    training (``members`` is the boolean mask over the rows of X). References are trained with the same recipe on
    independent Bernoulli(1/2) halves of members + hold-out; thresholds are fitted on references attacked as if
    they were the target (calibration individuals), rates on the target's evaluation individuals. One target, so
    the bound is one Clopper-Pearson statement at ``confidence``."""
    from threadpoolctl import threadpool_limits

    N = y.size
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13, 6]))
    IN_ref = draw_membership(n_references, y, binary, rng)
    K = n_references + 1
    S = np.empty((K, N))
    P = np.empty((K, ypop.size))
    with threadpool_limits(limits=1):
        for j in range(n_references):
            model = trainer(X[IN_ref[j]], y[IN_ref[j]], int(rng.integers(2**31)))
            S[j], P[j] = model.signal(X, y), model.signal(Xpop, ypop)
    S[-1], P[-1] = target.signal(X, y), target.signal(Xpop, ypop)
    IN = np.vstack([IN_ref, members[None, :]])
    res = GameResult(S, IN, P, [(y[~members], target.decision(X)[~members])])
    perm = np.random.default_rng(np.random.SeedSequence([seed, 13, 2])).permutation(N)
    cal_idx, eval_idx = np.sort(perm[: N // 2]), np.sort(perm[N // 2 :])
    res.cal_idx, res.eval_idx = cal_idx, eval_idx
    t = K - 1
    names = [a for a in _attacks.ATTACKS if a != "lira_online" or n_references >= _attacks.ONLINE_MIN_REFERENCES]
    crng = np.random.default_rng(np.random.SeedSequence([seed, 13, 3]))
    cal_refs = np.sort(
        crng.choice(np.arange(n_references), size=min(calibration_references, n_references), replace=False)
    )
    sc = _attacks.scores(S, IN, P, t, cal_refs, binary, attacks=names)
    for a in names:
        tgt, cal = sc[a]
        res.target_scores[a] = tgt[None, :]
        cal_s, cal_in = cal[:, cal_idx], IN[cal_refs][:, cal_idx]
        ev_s, ev_in = tgt[eval_idx], IN[t, eval_idx]
        seeds = [SeedScores(cal_s[cal_in], cal_s[~cal_in], ev_s[ev_in], ev_s[~ev_in])]
        res.seed_scores[a] = seeds
        res.attacks[a] = summarise_attack(seeds, confidence=confidence, delta=delta, aggregation="fixed")
    n_eval_non = int((~IN[t, eval_idx]).sum())
    zero_fp_hi = clopper_pearson(0, max(n_eval_non, 1), confidence)[1]
    res.describe = {
        "models": K,
        "references_per_target": n_references,
        "audit_pool": int(N),
        "population_set": int(ypop.size),
        "target": "the owner's trained model (members = its training set, non-members = its hold-out)",
        "members": int(members.sum()),
        "holdout": int((~members).sum()),
        "calibration_individuals": int(cal_idx.size),
        "evaluation_individuals": int(eval_idx.size),
        "calibration_references": int(cal_refs.size),
        "evaluation_nonmembers_per_target": n_eval_non,
        "confidence": confidence,
        "delta": delta,
        "fpr_resolution": {
            "zero_false_positive_fpr_ci_high": round(float(zero_fp_hi), 6),
            "note": f"with {n_eval_non} evaluation non-members, zero false positives still only "
            f"means FPR <= {100 * zero_fp_hi:.2g}% ({confidence:g} Clopper-Pearson)",
        },
        "attacks_run": names,
        "lira_online": (
            "run"
            if "lira_online" in names
            else f"skipped: needs at least {_attacks.ONLINE_MIN_REFERENCES} references, the game has {n_references}"
        ),
    }
    return res


def corrected_bounds(res: GameResult, n_tests: int, delta: float, confidence: float = 0.95) -> dict[str, float]:
    """Each attack's epsilon lower bound at confidence 1 - (1 - confidence) / n_tests (Bonferroni over the attacks
    and any other test of the same claim), so that "some attack exceeds the accounted epsilon" holds at
    ``confidence``."""
    conf = 1.0 - (1.0 - confidence) / max(n_tests, 1)
    return {
        a: summarise_attack(seeds, confidence=conf, delta=delta, aggregation="fixed")["epsilon_lower_bound"]
        for a, seeds in res.seed_scores.items()
    }
