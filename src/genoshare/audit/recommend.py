"""Which training setting to release: the least noisy one that meets the owner's limits.

A setting meets the limits when
- ``max_epsilon`` (if given): its accounted epsilon is known and at most the limit (a non-DP model has none, so it
  never meets an epsilon limit; neither does a model trained on a release with the true phenotype, whose release
  epsilon does not cover the labels);
- ``max_tpr_at_1pct`` (if given): the largest measured TPR at FPR 1% over the attacks (the point estimate; taking
  the maximum over attacks is the conservative direction for the owner) is at most the limit;
- no attack's empirical epsilon lower bound exceeds its accounted epsilon (a setting whose accounting is
  contradicted by the measurement is never recommended).

"Least noisy" = the original training first, then DP-SGD by increasing noise multiplier (equivalently decreasing
epsilon), releases by decreasing epsilon. With no limit at all the recommendation is the least noisy setting and
says that no limit was set.
"""

from __future__ import annotations


def max_tpr_at_1pct(entry: dict) -> float:
    return max((a["tpr_at_fpr"]["0.01"]["tpr"] for a in entry["attacks"].values()), default=0.0)


def _noisiness(entry: dict) -> tuple:
    eps = entry.get("epsilon")
    return (0 if entry["training"] == "original" else 1, -(eps if eps is not None else float("inf")))


def recommend(entries: list[dict], max_epsilon: float | None = None, max_tpr: float | None = None) -> dict:
    reasons = {}
    ok = []
    for e in entries:
        why = []
        eps = e.get("epsilon") if e.get("epsilon_covers_model", True) else None
        if max_epsilon is not None and (eps is None or eps > max_epsilon):
            why.append("no accounted epsilon" if eps is None else f"epsilon {eps:.4g} > {max_epsilon:g}")
        t = max_tpr_at_1pct(e)
        if max_tpr is not None and t > max_tpr:
            why.append(f"TPR at FPR 1% {t:.3g} > {max_tpr:g}")
        if e.get("exceeds_accounted"):
            why.append("measured lower bound above the accounted epsilon (" + ", ".join(e["exceeds_accounted"]) + ")")
        reasons[e["name"]] = why
        if not why:
            ok.append(e)
    ok.sort(key=_noisiness)
    out = {
        "max_epsilon": max_epsilon,
        "max_tpr_at_1pct": max_tpr,
        "rule": "the least noisy setting whose accounted epsilon and largest measured TPR at FPR 1% (over the "
        "attacks) meet the limits, and whose accounting no attack contradicts",
        "rejected": {k: v for k, v in reasons.items() if v},
    }
    if ok:
        best = ok[0]
        out.update(
            recommended=best["name"],
            epsilon=best.get("epsilon"),
            utility=best["utility"],
            max_tpr_at_1pct_measured=max_tpr_at_1pct(best),
        )
        if max_epsilon is None and max_tpr is None:
            out["note"] = "no limit was given (--max-epsilon, --max-tpr-at-1pct): this is only the least noisy setting"
    else:
        out.update(
            recommended=None,
            note="no audited setting meets the limits: add more noise (--dp-sgd with "
            "larger multipliers) or a lower-epsilon release",
        )
    return out
