"""Statistics of a membership-inference audit (SPEC 6): thresholds, Clopper-Pearson intervals, epsilon lower bounds.

An attack gives every target a score ("higher = member"). The decision rule is ``score > threshold``.

Why the bound is a bound. Members are individuals of the cohort D, non-members individuals of the same population
that were never used for anything. Because a member and a non-member are exchangeable draws from the population,
"non-member z scored against M(D)" has the same distribution as "member x scored against M(D')" where D' is D with x
replaced by z: a replace-one neighbour. So a mechanism that is (eps, delta)-DP for replace-one neighbours forces,
for every decision rule fixed independently of the evaluation data,

    TPR <= e^eps FPR + delta      and      1 - FPR <= e^eps (1 - TPR) + delta,

and with a lower confidence limit TPR_lo and an upper one FPR_hi holding jointly,

    eps >= max( ln((TPR_lo - delta) / FPR_hi),  ln((1 - FPR_hi - delta) / (1 - TPR_lo)) ).

Both terms use the same pair of limits, so taking their maximum needs no correction. The pair is the two-sided
Clopper-Pearson interval at ``confidence`` for each rate, so each one-sided limit fails with probability at most
(1 - confidence) / 2 and the pair jointly with at most 1 - confidence (union bound).

Honest use of the data:
- every rule (threshold, and the choice of the threshold that maximises the bound) is chosen on the CALIBRATION
  halves of the members and non-members; rates and intervals are computed on the disjoint EVALUATION halves only;
- several release seeds of the SAME cohort (``aggregation="fixed"``): the individuals are the independent units,
  not (individual, seed) pairs, so pooling counts over seeds would understate the uncertainty (and with enough seeds
  would turn chance differences between these particular members and non-members into a "bound"). Each seed gets
  its own bound at confidence 1 - (1 - confidence) / S (Bonferroni) and the reported bound is their maximum, valid
  at ``confidence``. TPR at a fixed FPR is pooled over seeds for the point estimate, with a Clopper-Pearson interval
  over the n evaluation individuals (fractional success count n * TPR; exact for one seed, conservative for more);
- fresh, independent data for every seed (``aggregation="independent"``, what the audit-validity tests do): trials
  of different seeds are independent, so one threshold is chosen on the pooled calibration halves and evaluation
  counts are pooled over seeds under one Clopper-Pearson interval.

Caveat: within one release the trials are exchangeable but not exactly independent (the nearest-neighbour score of
one target looks at every released row; restoration couples rows through each SNP's flip count; simulated
individuals share a genealogy). Clopper-Pearson treats them as independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta as _beta

FPR_LEVELS = (0.001, 0.01, 0.05)
LEVEL_KEYS = ("0.001", "0.01", "0.05")
AGGREGATIONS = ("fixed", "independent")


def clopper_pearson(k, n, confidence: float = 0.95):
    """Two-sided Clopper-Pearson interval for k successes in n trials (arrays broadcast; k may be fractional).

    lo = Beta(a/2; k, n - k + 1), hi = Beta(1 - a/2; k + 1, n - k) with a = 1 - confidence; lo = 0 at k = 0 and
    hi = 1 at k = n. For integer k this is ``scipy.stats.binomtest(k, n).proportion_ci(confidence, "exact")``.
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n <= 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError("need 0 <= k <= n and n > 0")
    a = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, _beta.ppf(a / 2, np.maximum(k, 1e-300), n - k + 1), 0.0)
        hi = np.where(k < n, _beta.ppf(1 - a / 2, k + 1, np.maximum(n - k, 1e-300)), 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def epsilon_lower_bound(tpr_lo, fpr_hi, delta: float = 0.0):
    """max(ln((TPR_lo - delta) / FPR_hi), ln((1 - FPR_hi - delta) / (1 - TPR_lo))), floored at 0 (arrays work)."""
    tpr_lo = np.asarray(tpr_lo, dtype=np.float64)
    fpr_hi = np.asarray(fpr_hi, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where((tpr_lo - delta > 0) & (fpr_hi > 0), np.log((tpr_lo - delta) / fpr_hi), 0.0)
        b = np.where((1 - fpr_hi - delta > 0) & (tpr_lo < 1), np.log((1 - fpr_hi - delta) / (1 - tpr_lo)), 0.0)
    out = np.maximum(np.maximum(a, b), 0.0)
    return float(out) if out.ndim == 0 else out


def threshold_at_fpr(null_scores: np.ndarray, level: float) -> float:
    """The smallest threshold t with #(null > t) <= floor(level * N): the rule ``score > t`` has at most that
    fraction of false positives on ``null_scores`` (calibration non-members)."""
    s = np.sort(np.asarray(null_scores, dtype=np.float64))[::-1]
    if s.size == 0:
        raise ValueError("no calibration non-members")
    allowed = int(np.floor(level * s.size + 1e-9))
    return float(s[min(allowed, s.size - 1)]) if allowed < s.size else float(-np.inf)


def _above(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """#(scores > t) for each t."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    return s.size - np.searchsorted(s, thresholds, side="right")


def best_bound_threshold(
    cal_members: np.ndarray, cal_nonmembers: np.ndarray, confidence: float, delta: float = 0.0
) -> tuple[float, float]:
    """The threshold (among calibration scores) maximising the epsilon lower bound ON CALIBRATION; returns
    (threshold, calibration bound). The evaluation half then tests that one rule."""
    cand = np.unique(np.concatenate([cal_members, cal_nonmembers]).astype(np.float64))
    cand = np.concatenate([[-np.inf], cand])
    tp = _above(cal_members, cand)
    fp = _above(cal_nonmembers, cand)
    tlo, _ = clopper_pearson(tp, len(cal_members), confidence)
    _, fhi = clopper_pearson(fp, len(cal_nonmembers), confidence)
    eps = epsilon_lower_bound(tlo, fhi, delta)
    i = int(np.argmax(eps))
    return float(cand[i]), float(eps[i])


@dataclass
class SeedScores:
    """One release seed: attack scores of the four disjoint groups."""

    cal_members: np.ndarray
    cal_nonmembers: np.ndarray
    eval_members: np.ndarray
    eval_nonmembers: np.ndarray


def _f(x) -> float:
    return float(round(float(x), 6))


def _roc(members: np.ndarray, nonmembers: np.ndarray) -> tuple[dict, float]:
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    s = np.concatenate([members, nonmembers]).astype(np.float64)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=True)
    return {"fpr": [_f(v) for v in fpr], "tpr": [_f(v) for v in tpr]}, float(roc_auc_score(y, s))


def _seed_bound(sc: SeedScores, confidence: float, delta: float) -> dict:
    t, cal_eps = best_bound_threshold(sc.cal_members, sc.cal_nonmembers, confidence, delta)
    tp = int(_above(sc.eval_members, np.array([t]))[0])
    fp = int(_above(sc.eval_nonmembers, np.array([t]))[0])
    nm, nn = len(sc.eval_members), len(sc.eval_nonmembers)
    tlo, thi = clopper_pearson(tp, nm, confidence)
    flo, fhi = clopper_pearson(fp, nn, confidence)
    return {
        "epsilon_lower_bound": _f(epsilon_lower_bound(tlo, fhi, delta)),
        "confidence": confidence,
        "threshold": float(t),
        "calibration_bound": _f(cal_eps),
        "tp": tp,
        "members": nm,
        "fp": fp,
        "nonmembers": nn,
        "tpr_ci_low": _f(tlo),
        "fpr_ci_high": _f(fhi),
    }


#: Bins of the member / non-member score histograms: counts per bin are aggregates (no score of a person).
HISTOGRAM_BINS = 20


def score_histogram(members: np.ndarray, nonmembers: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict:
    """Counts of the evaluation scores of members and of non-members on one common grid of equal-width bins over
    their finite range ({edges, members, nonmembers}; infinite scores are counted in the outer bins)."""
    both = np.concatenate([np.asarray(members, float), np.asarray(nonmembers, float)])
    finite = both[np.isfinite(both)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)

    def counts(x):
        x = np.clip(np.nan_to_num(np.asarray(x, float), nan=lo, posinf=hi, neginf=lo), lo, hi)
        return [int(c) for c in np.histogram(x, bins=edges)[0]]

    return {"edges": [float(e) for e in edges], "members": counts(members), "nonmembers": counts(nonmembers)}


def summarise_attack(
    seeds: list[SeedScores],
    *,
    confidence: float = 0.95,
    delta: float = 0.0,
    aggregation: str = "fixed",
    levels=FPR_LEVELS,
) -> dict:
    """The report of one attack over S release seeds (see the module docstring for what is pooled how).

    Returns {auc, roc {fpr, tpr}, tpr_at_fpr {"0.001"|"0.01"|"0.05": {tpr, ci_low, ci_high}},
    epsilon_lower_bound, fpr_at_threshold {...: {fpr, ci_low, ci_high}}, epsilon_lower_bound_detail, per_seed}.
    ROC and AUC are of the evaluation scores pooled over seeds (the attack that meets a random one of the S
    releases); per_seed holds each seed's own AUC.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}")
    if not seeds:
        raise ValueError("no release seeds")
    for sc in seeds:
        if min(len(sc.cal_members), len(sc.cal_nonmembers), len(sc.eval_members), len(sc.eval_nonmembers)) < 1:
            raise ValueError("every calibration and evaluation group needs at least one individual")
    S = len(seeds)
    em = np.concatenate([sc.eval_members for sc in seeds])
    en = np.concatenate([sc.eval_nonmembers for sc in seeds])
    roc, auc = _roc(em, en)

    n_m = np.array([len(sc.eval_members) for sc in seeds])
    n_n = np.array([len(sc.eval_nonmembers) for sc in seeds])
    per_seed: list[dict] = [dict() for _ in seeds]
    if aggregation == "independent":
        cal_m = np.concatenate([sc.cal_members for sc in seeds])
        cal_n = np.concatenate([sc.cal_nonmembers for sc in seeds])

    # TPR at fixed FPR: thresholds from calibration non-members, rates on evaluation.
    tpr_at, fpr_at = {}, {}
    for level, key in zip(levels, LEVEL_KEYS):
        if aggregation == "independent":  # one threshold from the pooled calibration halves
            ts = [threshold_at_fpr(cal_n, level)] * S
        else:  # each seed's own calibration non-members
            ts = [threshold_at_fpr(sc.cal_nonmembers, level) for sc in seeds]
        tp = fp = 0
        for k, (sc, t) in enumerate(zip(seeds, ts)):
            a = int(_above(sc.eval_members, np.array([t]))[0])
            b = int(_above(sc.eval_nonmembers, np.array([t]))[0])
            tp, fp = tp + a, fp + b
            per_seed[k].setdefault("tpr_at_fpr", {})[key] = {"tpr": _f(a / n_m[k]), "fpr": _f(b / n_n[k])}
        tpr, fpr = tp / n_m.sum(), fp / n_n.sum()
        if aggregation == "independent":
            tlo, thi = clopper_pearson(tp, n_m.sum(), confidence)
            flo, fhi = clopper_pearson(fp, n_n.sum(), confidence)
        else:  # the same individuals in every seed: n individuals, not S * n trials
            m_ind, n_ind = int(n_m.max()), int(n_n.max())
            tlo, thi = clopper_pearson(tpr * m_ind, m_ind, confidence)
            flo, fhi = clopper_pearson(fpr * n_ind, n_ind, confidence)
        tpr_at[key] = {"tpr": _f(tpr), "ci_low": _f(tlo), "ci_high": _f(thi)}
        fpr_at[key] = {"fpr": _f(fpr), "ci_low": _f(flo), "ci_high": _f(fhi)}

    # Epsilon lower bound: a rule chosen on calibration, tested on evaluation.
    if aggregation == "fixed":
        conf_seed = 1.0 - (1.0 - confidence) / S
        bounds = [_seed_bound(sc, conf_seed, delta) for sc in seeds]
        best = int(np.argmax([b["epsilon_lower_bound"] for b in bounds]))
        eps = bounds[best]["epsilon_lower_bound"]
        detail = {
            "method": f"max over {S} seeds of per-seed bounds at confidence {conf_seed:.6g} (Bonferroni); "
            "threshold per seed chosen on calibration to maximise the calibration bound",
            "confidence": confidence,
            "delta": delta,
            "best_seed": best,
            **{k: v for k, v in bounds[best].items() if k != "confidence"},
        }
        for k, b in enumerate(bounds):
            per_seed[k]["epsilon_lower_bound"] = b["epsilon_lower_bound"]
    else:
        pooled = SeedScores(cal_m, cal_n, em, en)
        b = _seed_bound(pooled, confidence, delta)
        eps = b["epsilon_lower_bound"]
        detail = {
            "method": f"one threshold chosen on the calibration halves of {S} independent seeds (fresh data "
            "per seed), evaluation counts pooled over the seeds",
            "delta": delta,
            **b,
        }
    for k, sc in enumerate(seeds):
        _, a = _roc(sc.eval_members, sc.eval_nonmembers)
        per_seed[k]["auc"] = _f(a)
    return {
        "auc": _f(auc),
        "roc": roc,
        "score_histogram": score_histogram(em, en),
        "tpr_at_fpr": tpr_at,
        "epsilon_lower_bound": float(eps),
        "fpr_at_threshold": fpr_at,
        "epsilon_lower_bound_detail": detail,
        "per_seed": per_seed,
    }
