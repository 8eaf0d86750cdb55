"""One-run audit of a DP training (Steinke, Nasr and Jagielski 2023, "Privacy auditing with one (1) training run").

m canaries (audit-pool individuals) are each included in ONE training run independently with probability 1/2; the
rest of the training set is always included. After training, the auditor scores every canary (the model's signal,
no reference models), and with counts k+ and k- FIXED IN ADVANCE guesses "in" for the k+ highest scores and "out"
for the k- lowest, abstaining on the rest. With r = k+ + k- guesses of which v are right, an (eps, delta)-DP
training (add/remove-one) gives (their Theorem 3.1 / Algorithm 2 p-value)

    P[V >= v] <= P[Binom(r, q) >= v] + 2 m delta * max_{1 <= i <= v} P[v > Binom(r, q) >= v - i] / i,
    q = e^eps / (1 + e^eps),

and the reported lower bound is the largest eps whose p-value is below 1 - confidence (binary search). It needs
only one training run, at the price of a weaker bound than the 2k-model game.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom

GUESS_FRACTION = 0.1  # k+ = k- = floor(GUESS_FRACTION * m), fixed before training


def p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    if not (0 <= v <= r <= m):
        raise ValueError("need 0 <= v <= r <= m")
    q = 1.0 / (1.0 + math.exp(-eps))
    beta = float(binom.sf(v - 1, r, q))
    alpha, acc = 0.0, 0.0
    for i in range(1, v + 1):
        acc += float(binom.pmf(v - i, r, q))
        alpha = max(alpha, acc / i)
    return min(1.0, beta + alpha * delta * 2 * m)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, confidence: float = 0.95) -> float:
    level = 1.0 - confidence
    if r == 0 or p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < level:
        lo, hi = hi, hi * 2
        if hi > 1e3:
            return lo
    for _ in range(40):
        mid = (lo + hi) / 2
        if p_value(m, r, v, mid, delta) < level:
            lo = mid
        else:
            hi = mid
    return lo


def audit(
    X: np.ndarray,
    y: np.ndarray,
    trainer,
    *,
    delta: float,
    seed: int = 0,
    confidence: float = 0.95,
    guess_fraction: float = GUESS_FRACTION,
) -> dict:
    """One training run with half of the pool as canaries; returns the aggregate result (no per-individual data)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13, 5]))
    N = y.size
    canary = np.zeros(N, bool)
    canary[rng.permutation(N)[: N // 2]] = True
    coin = rng.random(N) < 0.5
    train = ~canary | (canary & coin)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # see game.play
        model = trainer(X[train], y[train], int(rng.integers(2**31)))
    idx = np.flatnonzero(canary)
    s = model.signal(X[idx], y[idx])
    m = idx.size
    k = int(math.floor(guess_fraction * m))
    order = np.argsort(s, kind="stable")
    guess_in, guess_out = order[m - k :], order[:k]
    truth = coin[idx]
    v = int(truth[guess_in].sum() + (~truth[guess_out]).sum())
    r = 2 * k
    return {
        "method": "Steinke, Nasr and Jagielski 2023, one training run; guesses: the top and bottom "
        f"{guess_fraction:g} of the canaries' signals (fixed in advance)",
        "canaries": int(m),
        "guesses": r,
        "correct": v,
        "confidence": confidence,
        "delta": delta,
        "epsilon_lower_bound": round(epsilon_lower_bound(m, r, v, delta, confidence), 6),
    }
