"""From epsilon to per-column flip probabilities (SPEC 3).

The noise actually drawn is independent per bit, so its true guarantee is randomized
response: eps_xor = sum_j |ln((1 - p_j) / p_j)| over the 2m columns (replace-one
neighbours). ``nominal`` reproduces the paper's scale; ``exact`` finds the smallest scale
whose true epsilon equals the request. Both account with the quantised p_j = t_j / 2^32
that the noise kernel really uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoshare.errors import GenoshareError
from genoshare.mechanism.ldstats import LDStats

TWO32 = float(1 << 32)
T_MIN = 1  # never a zero flip rate: a column without noise would have infinite epsilon
T_MAX = (1 << 32) - 1
#: The smallest positive true epsilon quantised noise can have: one column one step (2^-32) away from a fair
#: coin. A smaller request has no scale: every release bit would be a fair coin, which is no release at all.
MIN_EPSILON = float(abs(np.log1p(-(0.5 + 2.0**-32)) - np.log(0.5 + 2.0**-32)))


@dataclass(frozen=True)
class Calibration:
    method: str
    epsilon_requested: float
    c: float
    p: np.ndarray  # (2m,) quantised flip probabilities t / 2^32
    thresholds: np.ndarray  # (2m,) uint32: noise bit = u32 < t
    epsilon_xor: float  # true pure epsilon of the drawn noise
    epsilon_nominal: float  # what the paper's formula calls this scale: c * 2m * ||T||_F
    n_lo_nonneg: int  # columns whose conditional-logit range starts at >= 0


def _coefficients(stats: LDStats) -> tuple[np.ndarray, np.ndarray]:
    a = stats.t_diag + 2.0 * stats.s_neg  # lo_j / c
    b = stats.t_diag + 2.0 * stats.s_pos  # hi_j / c
    return a, b


def flip_probabilities(stats: LDStats, c: float) -> np.ndarray:
    """p_j of the published efficient generator at scale c (unquantised)."""
    a, b = _coefficients(stats)
    lo = c * a
    hi = c * b
    p = np.full(lo.shape, 0.5)
    neg = lo < 0
    # lo < 0: coeff < 0, beta = lo, p = (1 + tanh(lo/2)) / 2 = sigmoid(lo)
    p[neg] = 0.5 * (1.0 + np.tanh(0.5 * lo[neg]))
    pos = lo > 0
    if pos.any():
        lp, hp = lo[pos], hi[pos]
        # (e^lo - 1) / (1 + e^hi) rewritten to stay finite for large exponents (0 < lo <= hi)
        ratio = np.exp(lp - hp) * (-np.expm1(-lp)) / (np.exp(-hp) + 1.0)
        p[pos] = 0.5 * (1.0 + ratio)
    return p


def quantise(p: np.ndarray) -> np.ndarray:
    t = np.rint(np.asarray(p, dtype=np.float64) * TWO32)
    return np.clip(t, T_MIN, T_MAX).astype(np.uint32)


def epsilon_xor(p: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64)
    return float(np.sum(np.abs(np.log1p(-p) - np.log(p))))


def _eps_at(stats: LDStats, c: float) -> float:
    return epsilon_xor(quantise(flip_probabilities(stats, c)) / TWO32)


def nominal_scale(stats: LDStats, epsilon: float) -> float:
    frob = np.sqrt(stats.f2)
    return float(epsilon / (2 * stats.n_variants * frob)) if frob > 0 else 0.0


def _nominal_of(stats: LDStats, c: float) -> float:
    return float(c * 2 * stats.n_variants * np.sqrt(stats.f2))


def _finish(stats, method, eps, c) -> Calibration:
    t = quantise(flip_probabilities(stats, c))
    p = t / TWO32
    a, _ = _coefficients(stats)
    return Calibration(
        method=method,
        epsilon_requested=float(eps),
        c=float(c),
        p=p,
        thresholds=t,
        epsilon_xor=epsilon_xor(p),
        epsilon_nominal=_nominal_of(stats, c),
        n_lo_nonneg=int(np.count_nonzero(a >= 0)),
    )


def calibrate(stats: LDStats, epsilon: float, method: str = "exact", rtol: float = 1e-9) -> Calibration:
    if not (epsilon > 0 and np.isfinite(epsilon)):
        raise ValueError("epsilon must be a positive finite number")
    if method == "nominal":
        return _finish(stats, method, epsilon, nominal_scale(stats, epsilon))
    if method != "exact":
        raise ValueError("calibration must be 'exact' or 'nominal'")
    if epsilon < MIN_EPSILON:
        raise GenoshareError(
            f"requested epsilon {epsilon:g} is below the smallest epsilon the noise can express "
            f"({MIN_EPSILON:.3g}: flip rates are quantised in steps of 2^-32)"
        )
    return _finish(stats, method, epsilon, _exact_scale(stats, epsilon, rtol))


# |logit| of a quantised p is at most ln(2^32): t is clipped to [1, 2^32 - 1].
_LOGIT_MAX = float(np.log(TWO32))
# Bound on |quantised p - p| (rounding to 2^-32 steps: 2^-33, doubled for float error in p).
_P_ERR = 2.0**-32


def _eps_upper_bound(abs_a: np.ndarray, c: float) -> float:
    """An upper bound on eps_xor(c') for every c' <= c, nondecreasing in c.

    Every column has |logit p_j| <= c |a_j| (a_j = lo_j / c): exactly for lo_j < 0, and for
    lo_j >= 0 because its ratio (e^lo - 1)/(1 + e^hi) <= tanh(lo/2) as hi >= lo. Quantising p
    (within _P_ERR of p, never beyond the clip) raises |logit| by at most
    -ln(1 - _P_ERR (1 + e^x)) + 2 _P_ERR at x = c |a_j|, and never above ln 2^32.
    """
    x = c * abs_a
    with np.errstate(over="ignore"):
        r = _P_ERR * (1.0 + np.exp(np.minimum(x, 800.0)))
    slack = np.where(r < 0.5, -np.log1p(-np.minimum(r, 0.5)) + 2.0 * _P_ERR, np.inf)
    return float(np.sum(np.minimum(_LOGIT_MAX, x + slack)))


def _exact_scale(stats: LDStats, epsilon: float, rtol: float) -> float:
    """Smallest c with eps_xor(c) = epsilon, never above it.

    eps_xor is linear in c for columns with lo < 0 but returns to 0 for columns with
    lo >= 0, so it need not be monotone: walk up a fine geometric grid to the first scale
    that reaches the request, then close in inside that step. The walk starts at a scale
    below which a bound proves no crossing exists, so the first crossing is still found.
    """
    a, _ = _coefficients(stats)
    abs_a = np.abs(a)
    total = float(np.sum(abs_a))
    if not (total > 0 and np.isfinite(total)):
        raise GenoshareError(
            f"requested epsilon {epsilon:g} exceeds the largest true epsilon this reference "
            f"panel's noise model reaches (0: every column has lo = 0)"
        )
    c = epsilon / total
    for _ in range(60):
        ub = _eps_upper_bound(abs_a, c)
        if ub < epsilon:
            break
        c *= min(epsilon / ub, 0.999) * (1.0 - 1e-9)
    else:  # pragma: no cover - the bound is within float error of linear at any sane epsilon
        c = epsilon / total * 1e-6
    if c <= 0 or not np.isfinite(c):
        raise ValueError("LD statistics are degenerate: no scale gives a positive epsilon")
    lo_c, hi_c = 0.0, None
    lo_e, hi_e = 0.0, 0.0
    best_eps = 0.0
    for _ in range(2000):
        e = _eps_at(stats, c)
        if e >= epsilon:
            hi_c, hi_e = c, e
            break
        lo_c, lo_e = c, e
        best_eps = max(best_eps, e)
        if c > 1e12:
            break
        c *= 1.05
    if hi_c is None:
        raise GenoshareError(
            f"requested epsilon {epsilon:g} exceeds the largest true epsilon this reference "
            f"panel's noise model reaches (about {best_eps:.6g}); request at most that"
        )
    # Inside the bracket eps_xor is close to linear: regula falsi, Illinois variant (the weight of
    # an end that stays put is halved), plus a bisection every third step unless the bracket has
    # halved meanwhile. Invariant: eps(lo) <= epsilon < eps(hi) (hi may start exactly at epsilon).
    f_lo, f_hi = lo_e - epsilon, hi_e - epsilon
    side = 0
    width = hi_c - lo_c
    for it in range(200):
        if epsilon - lo_e <= rtol * epsilon:
            break
        bisect = False
        if it % 3 == 2:
            bisect = hi_c - lo_c > 0.5 * width
            width = hi_c - lo_c
        if bisect or f_hi == f_lo:
            mid = 0.5 * (lo_c + hi_c)
        else:
            mid = hi_c - f_hi * (hi_c - lo_c) / (f_hi - f_lo)
        if not (lo_c < mid < hi_c):
            mid = 0.5 * (lo_c + hi_c)
            if not (lo_c < mid < hi_c):
                break
        e = _eps_at(stats, mid)
        if e > epsilon:
            hi_c, hi_e, f_hi = mid, e, e - epsilon
            if side == -1:
                f_lo *= 0.5
            side = -1
        else:
            lo_c, lo_e, f_lo = mid, e, e - epsilon
            if side == 1:
                f_hi *= 0.5
            side = 1
    return lo_c
