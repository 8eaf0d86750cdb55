"""Privacy accountant: what one release costs, stage by stage, and what that means for an attacker.

XOR stage (SPEC 3)
------------------
Every released bit is ``b xor N`` with ``N ~ Bernoulli(p_j)`` drawn independently, the same ``p_j`` for every
individual. For one bit the two neighbouring inputs 0 and 1 give the outputs Bernoulli(p_j) and Bernoulli(1 - p_j):
randomized response with privacy loss ``a_j = |ln((1 - p_j) / p_j)|``. Replace-one-individual neighbours may differ
in all 2m bits of that individual (genotype 0 -> 2 is 00 -> 11), and neighbours differing in fewer bits are a
marginal (post-processing) of that case, so the mechanism's privacy loss distribution (PLD) is the composition of
the 2m per-bit randomized-response PLDs. This module reports

* ``epsilon_pure = sum_j a_j``: the pure (delta = 0) epsilon, tight;
* ``epsilon_at_delta``: an upper bound on the smallest epsilon with (epsilon, delta)-DP, from the composed PLD
  (dp-accounting's PLD containers and composition, pessimistic estimates throughout);
* optionally ``epsilon_at_delta_lower``: a lower bound on the same quantity (optimistic estimates).

Bucketing. The a_j are grouped on the fixed geometric grid g_i = (1 + r)^i (r = ``bucket_rel_width``, default
1e-3) and every bit of bucket (g_{i-1}, g_i] is accounted with a = g_i (the lower bound uses g_{i-1}). Raising a_j
is sound: randomized response with loss a is a post-processing of randomized response with a' > a (flip its output
again with probability (q - q') / (1 - 2 q'), q = 1/(1 + e^a)), so every hockey-stick divergence can only grow.
Each bit's representative depends only on its own a_j, so the accountant is monotone in every p_j.

One bucket. Its k bits have the exact PLD ``a (k - 2X)``, ``X ~ Binomial(k, 1/(1 + e^a))``. Tails of at most 1e-16
are cut: the high-loss tail becomes infinite loss (counts fully in delta), the low-loss tail is moved up to the
lowest kept loss. Each atom is then placed on the grid of interval d by the connect-the-dots split (Doroshenko et
al. 2022): an atom at L between grid points g < L < g + d is split into atoms at g and g + d keeping both its
P-mass and its Q-mass; the original outcome is a merge (post-processing) of the two, so the discretised pair
dominates the exact one and the error is second order in d. d is a power of two chosen so that the composed PLD's
bulk spans about 2^18 grid points.

Composition. Buckets are composed pairwise, two smallest first, by FFT convolution on dp-accounting's
``DensePLDPmf`` (its ``compose`` with a vectorised tail truncation; truncated mass is again moved up or to infinity).
epsilon(delta) and delta(epsilon) are then computed from normalised tail sums (:func:`delta_for_epsilons`):
dp-accounting's own inversion underflows once losses pass ~745 nats and falls back to the next grid loss.

Error budget of the upper bound (all errors only ever increase it): bucketing raises every a_j by at most a
factor 1 + r (under 0.1 % of epsilon on the lactose cohort), the discretisation is second order (about 1e-6
relative there), the cut tails add at most about 1e-16 per bucket to delta. Floating-point round-off of the FFT
(about 1e-16 of the largest mass) is not covered, as in dp-accounting; the final epsilon is nudged up by 1e-10
relative against rounding in the inversion.

Stages and composition
----------------------
A release is a post-processing of the XOR output, of the allele frequencies it is restored to, and of any
randomized phenotype, so its guarantee is the composition of those stages. :func:`compose` uses basic composition
(sum of epsilons, sum of deltas), valid for any mix of mechanisms. :func:`privacy_object` builds the manifest's
``privacy`` object.

Attack guarantee
----------------
(epsilon, delta)-DP bounds every membership/attribute test: for any test with false-positive rate FPR,
``TPR <= min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR))`` (the hypothesis-testing region of
(epsilon, delta)-DP; Kairouz, Oh & Viswanath 2015). :func:`guarantee_table` evaluates it; :func:`profile_tpr_bounds`
uses the whole privacy profile delta(epsilon) of a PLD, which is never looser.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

from genoshare.errors import GenoshareError

DEFAULT_FPRS = (0.001, 0.01, 0.05)
DEFAULT_BUCKET_REL_WIDTH = 1e-3
DEFAULT_GRID_POINTS = 1 << 18
BASIC_COMPOSITION = "basic composition: epsilons add, deltas add (valid for any mix of mechanisms)"
NEIGHBOURS = "replace one individual (all of their 2m genotype bits, and their phenotype, may change)"


# ------------------------------------------------------------------------------------------------------------------
# delta


def default_delta(n: int) -> float:
    """The default delta for a cohort of n individuals: ``min(1e-6, 1e-3 / n)``.

    delta must be well below 1/n: the mechanism that publishes each individual's record in the clear with
    probability delta is (0, delta)-DP and exposes n * delta people on average. ``1e-3 / n`` keeps that expectation
    below one in a thousand releases at any n; the cap 1e-6 keeps small cohorts (n = 60 gives 1e-6, not 1.7e-5) at
    the conventional level. Because epsilon(delta) of a large composition grows only like sqrt(ln(1/delta)), going
    from 1e-6 to 1e-9 costs little.
    """
    n = int(n)
    if n < 1:
        raise GenoshareError(f"cohort size must be at least 1, not {n}")
    return min(1e-6, 1e-3 / n)


def _check_delta(delta: float) -> float:
    delta = float(delta)
    if not (0 < delta < 1):
        raise GenoshareError(f"delta must be in (0, 1), not {delta:g}")
    return delta


# ------------------------------------------------------------------------------------------------------------------
# XOR stage


def abs_logit(p: np.ndarray) -> np.ndarray:
    """Per-bit privacy loss |ln((1 - p) / p)| of randomized response with flip probability p."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.abs(np.log1p(-p) - np.log(p))


def epsilon_pure(p: np.ndarray) -> float:
    """Pure epsilon of independent bit flips with probabilities p: sum_j |ln((1 - p_j) / p_j)|."""
    return float(np.sum(abs_logit(p)))


@dataclass(frozen=True)
class XorAccount:
    """The accountant's view of the XOR stage."""

    epsilon_pure: float
    delta: float
    epsilon_at_delta: float  # upper bound from the PLD: (epsilon_at_delta, delta)-DP holds
    epsilon_at_delta_lower: float | None  # lower bound on the smallest such epsilon (None: not computed)
    n_bits: int
    n_bits_noiseless: int  # bits with p in {0, 1}: infinite loss
    n_buckets: int
    bucket_rel_width: float
    discretization: float
    seconds: float
    pld: Any = field(default=None, repr=False, compare=False)  # pessimistic PrivacyLossDistribution

    @property
    def epsilon(self) -> float:
        """The epsilon reported for this stage at ``delta`` (never above the pure epsilon)."""
        return min(self.epsilon_at_delta, self.epsilon_pure)

    def delta_for_epsilon(self, epsilon: float) -> float:
        """Upper bound on the smallest delta for which the stage is (epsilon, delta)-DP."""
        if epsilon >= self.epsilon_pure:
            return 0.0
        if self.pld is None:
            return 1.0
        return float(delta_for_epsilons(self.pld, [float(epsilon)])[0])

    def to_dict(self) -> dict:
        return {
            "mechanism": "XOR with independent Bernoulli(p_j) noise: randomized response on each of the 2m "
            "genotype bits",
            "epsilon": _num(self.epsilon),
            "delta": self.delta,
            "epsilon_pure": _num(self.epsilon_pure),
            "epsilon_at_delta": _num(self.epsilon_at_delta),
            "epsilon_at_delta_lower": _num(self.epsilon_at_delta_lower),
            "accounting": {
                "method": "privacy loss distribution (dp-accounting), pessimistic; composition over all 2m bits",
                "n_bits": self.n_bits,
                "n_buckets": self.n_buckets,
                "bucket_rel_width": self.bucket_rel_width,
                "discretization": self.discretization,
                "seconds": round(self.seconds, 3),
            },
        }


def _num(x):
    """JSON-safe number: infinities and NaN become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _buckets(a: np.ndarray, rel_width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group positive losses on the fixed geometric grid g_i = (1 + r)^i: bucket i holds g_{i-1} < a <= g_i.

    Returns (count, upper edge, lower edge) per non-empty bucket. Each bit's representative is a non-decreasing
    function of its own a alone, so the bucketed accountant is monotone in every a_j. r = 0: no bucketing (every
    distinct a is its own bucket, both edges equal to it).
    """
    if rel_width <= 0:
        vals, counts = np.unique(a, return_counts=True)
        return counts, vals, vals
    step = math.log1p(rel_width)
    idx = np.ceil(np.log(a) / step)
    idx = np.where(np.exp(idx * step) < a, idx + 1.0, idx)  # floating-point guard: the edge must be >= a
    idx_u, counts = np.unique(idx, return_counts=True)
    upper = np.exp(idx_u * step)
    lower = np.exp((idx_u - 1.0) * step) * (1.0 - 1e-12)  # below every a of the bucket, despite rounding
    return counts, upper, lower


def _bucket_windows(a: np.ndarray, k: np.ndarray, tail: float) -> list[tuple]:
    """For each bucket, Binomial(k, q) masses of the number X of 'disagreeing' outputs (loss -a each), truncated.

    Returns per bucket (x, pmf, mass_below, mass_above): X < x[0] has mass ``mass_below`` (the highest losses) and
    X > x[-1] has ``mass_above`` (the lowest losses); each is at most ``tail`` and computed, not estimated. One
    vectorised scipy call per quantity for all buckets.
    """
    q = special.expit(-a)
    mean = k * q
    s = np.sqrt(k * q * (1.0 - q))
    lo = np.maximum(0, np.floor(mean - 12.0 * s - 20.0)).astype(np.int64)
    hi = np.minimum(k, np.ceil(mean + 12.0 * s + 20.0)).astype(np.int64)
    sizes = hi - lo + 1
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    owner = np.repeat(np.arange(a.size), sizes)
    x_all = np.arange(bounds[-1]) - bounds[owner] + lo[owner]
    pmf_all = stats.binom.pmf(x_all, k[owner], q[owner])
    below = np.where(lo > 0, stats.binom.cdf(lo - 1, k, q), 0.0)
    above = np.where(hi < k, stats.binom.sf(hi, k, q), 0.0)
    out = []
    for b in range(a.size):
        x = x_all[bounds[b] : bounds[b + 1]]
        pmf = pmf_all[bounds[b] : bounds[b + 1]]
        # Largest i0 with below + pmf[:i0].sum() <= tail; smallest i1 >= i0 with above + pmf[i1+1:].sum() <= tail.
        head = below[b] + np.concatenate(([0.0], np.cumsum(pmf)))  # head[i] = mass of X < x[i]
        i0 = min(max(int(np.searchsorted(head, tail, side="right")) - 1, 0), x.size - 1)
        rest = above[b] + np.concatenate((np.cumsum(pmf[::-1])[::-1][1:], [0.0]))  # rest[i] = mass of X > x[i]
        ok = np.flatnonzero(rest[i0:] <= tail)
        i1 = i0 + int(ok[0]) if ok.size else x.size - 1
        out.append((x[i0 : i1 + 1], pmf[i0 : i1 + 1].copy(), float(head[i0]), float(rest[i1])))
    return out


def _bucket_pmf(a: float, k: int, window: tuple, d: float, pessimistic: bool):
    """dp-accounting DensePLDPmf of k randomized-response bits with loss a, on the grid of interval d.

    Pessimistic (connect-the-dots split): an atom at loss L between grid points g < L < g + d, with P-mass w and
    Q-mass w e^-L, is split into two atoms at g and g + d that keep both masses (w_hi = w (1 - e^-(L-g)) /
    (1 - e^-d)). The original outcome is a merge (post-processing) of the two new ones, so the discretised pair
    dominates the exact one and every hockey-stick divergence can only grow; the error is second order in d.
    Optimistic: losses rounded down to the grid (every delta can only shrink).
    """
    from dp_accounting.pld import pld_pmf

    x, pmf, below, above = window
    v = a * (k - 2.0 * x) / d  # privacy loss in grid units; X = x gives loss a (k - 2x)
    if pessimistic:
        pmf[-1] += above  # lowest losses moved up to the lowest kept loss
        infinity = below  # highest losses counted as infinite loss
        g = np.floor(v)
        frac = np.clip(v - g + 1e-9, 0.0, 1.0)  # the nudge errs towards the upper point
        w_hi = pmf * (np.expm1(-frac * d) / math.expm1(-d))
        idx = np.concatenate((g, g + 1.0)).astype(np.int64)
        w = np.concatenate((pmf - w_hi, w_hi))
    else:
        idx = np.floor(v - 1e-9 * (np.abs(v) + 1.0)).astype(np.int64)
        w = pmf
        infinity = 0.0  # both tails dropped: can only lower every delta
    lower = int(idx.min())
    probs = np.zeros(int(idx.max()) - lower + 1)
    np.add.at(probs, idx - lower, w)
    return pld_pmf.DensePLDPmf(d, lower, probs, infinity, pessimistic)


def _truncate(probs: np.ndarray, tail: float, pessimistic: bool) -> tuple[int, np.ndarray, float]:
    """dp-accounting's ``pld_pmf._truncate_tails``, vectorised: cut the longest prefix and suffix of mass at most
    tail/2 each. Pessimistic: the prefix (lowest losses) is added to the first kept entry, the suffix (highest
    losses) becomes infinite loss. Optimistic: the prefix is dropped, the suffix added to the last kept entry."""
    if tail <= 0 or probs.size < 2:
        return 0, probs, 0.0
    left = int(np.searchsorted(np.cumsum(probs), tail / 2, side="right"))
    right = probs.size - int(np.searchsorted(np.cumsum(probs[::-1]), tail / 2, side="right"))
    right = max(right, left + 1)
    if right > probs.size:  # everything is tail: keep the last entry
        left, right = probs.size - 1, probs.size
    left_mass = float(np.sum(probs[:left]))
    right_mass = float(np.sum(probs[right:]))
    kept = probs[left:right].copy()
    if pessimistic:
        kept[0] += left_mass
        return left, kept, right_mass
    kept[-1] += right_mass
    return left, kept, 0.0


def _compose_two(p1, p2, tail: float):
    """``DensePLDPmf.compose`` of dp-accounting with the vectorised truncation above (same result, no Python loop
    over the array)."""
    from dp_accounting.pld import pld_pmf
    from scipy import signal

    p1, p2 = p1.to_dense_pmf(), p2.to_dense_pmf()
    p1.validate_composable(p2)
    # pylint: disable=protected-access
    probs = (
        signal.fftconvolve(p1._probs, p2._probs) if min(p1.size, p2.size) > 64 else np.convolve(p1._probs, p2._probs)
    )
    # As in dp-accounting, FFT round-off (about 1e-16 of the largest mass, either sign) is left in place: it
    # cancels in the tail sums used for truncation and for delta.
    infinity = p1._infinity_mass + p2._infinity_mass - p1._infinity_mass * p2._infinity_mass
    offset, probs, right = _truncate(probs, tail, p1._pessimistic_estimate)
    return pld_pmf.DensePLDPmf(
        p1._discretization, p1._lower_loss + p2._lower_loss + offset, probs, infinity + right, p1._pessimistic_estimate
    )


def _compose_all(pmfs: list, tail: float):
    """Compose PMFs pairwise, always the two smallest first (balanced FFT sizes)."""
    heap = [(p.size, i, p) for i, p in enumerate(pmfs)]
    heapq.heapify(heap)
    counter = len(pmfs)
    while len(heap) > 1:
        _, _, p1 = heapq.heappop(heap)
        _, _, p2 = heapq.heappop(heap)
        c = _compose_two(p1, p2, tail)
        heapq.heappush(heap, (c.size, counter, c))
        counter += 1
    return heap[0][2]


def _grid_interval(a: np.ndarray, counts: np.ndarray, grid_points: int) -> float:
    """Discretisation interval: a power of two such that a generous estimate of the composed PLD's bulk
    (+-10 sqrt(sum a^2), or its whole range if narrower) spans about ``grid_points`` grid points. It depends on
    the a_j only through non-decreasing functions, and nested powers of two keep the accountant monotone."""
    spread = math.sqrt(float(np.sum(counts * a * a)))
    span = min(float(np.sum(2.0 * a * counts)), 20.0 * spread + 80.0 * float(a.max()))
    d = max(span / grid_points, 1e-12)
    return 2.0 ** math.floor(math.log2(d))


def _pld_from_pmf(pmf):
    from dp_accounting.pld.privacy_loss_distribution import PrivacyLossDistribution

    return PrivacyLossDistribution(pmf)


def xor_pld(
    p: np.ndarray,
    *,
    pessimistic: bool = True,
    bucket_rel_width: float = DEFAULT_BUCKET_REL_WIDTH,
    grid_points: int = DEFAULT_GRID_POINTS,
    tail: float = 1e-16,
    discretization: float | None = None,
):
    """(PrivacyLossDistribution, n_buckets, d) of the XOR stage with flip probabilities p.

    Pessimistic: every approximation increases every delta(epsilon) (buckets take their largest loss, losses are
    rounded up, truncated tails go to infinity or upwards): the result is an upper bound. Optimistic: the
    opposite, a lower bound. Bits with p = 1/2 have no loss and are skipped.
    """
    a = abs_logit(p).ravel()
    if not np.all(np.isfinite(a)):
        raise GenoshareError("a flip probability of 0 or 1 leaves a bit unprotected (infinite epsilon)")
    a = a[a > 0]
    if a.size == 0:
        from dp_accounting.pld import privacy_loss_distribution as pldmod

        d = discretization or 1e-4
        return pldmod.identity(d), 0, d
    counts, a_hi, a_lo = _buckets(a, bucket_rel_width)
    reps = a_hi if pessimistic else a_lo
    d = discretization if discretization is not None else _grid_interval(a_hi, counts, grid_points)
    nb = counts.size
    windows = _bucket_windows(reps, counts, tail)
    pmfs = [_bucket_pmf(float(reps[b]), int(counts[b]), windows[b], d, pessimistic) for b in range(nb)]
    return _pld_from_pmf(_compose_all(pmfs, tail)), nb, d


def _tail_sums(pld):
    """(L, S, U, inf) of a PLD on its grid: S_k = sum_{i>=k} p_i and U_k = sum_{i>=k} p_i e^(L_k - L_i).

    U is computed in segments of at most 300 nats: inside a segment anchored at L_a,
    U_k = e^(L_k - L_a) * revcumsum(p_i e^(L_a - L_i)) + e^(L_k - L_b) U_b (b: the next anchor), so no factor
    leaves [e^-300, e^300] and rounding does not accumulate along the grid.
    """
    pmf = pld._pmf_remove.to_dense_pmf()  # pylint: disable=protected-access
    p = np.asarray(pmf._probs, dtype=np.float64)
    d = float(pmf._discretization)
    n = p.size
    L = (np.arange(n) + int(pmf._lower_loss)) * d
    S = np.cumsum(p[::-1])[::-1]
    U = np.empty(n)
    seg = max(1, int(300.0 / d))
    carry, next_anchor = 0.0, None  # U at the next segment's anchor
    for a in range((n - 1) // seg * seg, -1, -seg):
        b = min(a + seg, n)
        off = np.arange(b - a) * d  # L_i - L_a
        part = np.cumsum((p[a:b] * np.exp(-off))[::-1])[::-1] * np.exp(off)
        if next_anchor is not None:
            part += np.exp(off - (b - a) * d) * carry
        U[a:b] = part
        carry, next_anchor = part[0], a
    return L, S, U, float(pmf._infinity_mass)


def delta_for_epsilons(pld, epsilons) -> np.ndarray:
    """delta(epsilon) = inf + sum_{L > eps} p (1 - e^(eps - L)) for an array of epsilons, computed as
    inf + S_k - e^(eps - L_k) U_k with L_k the first loss above eps: no overflow or underflow at any scale
    (dp-accounting's vectorised version overflows e^eps and loops in Python)."""
    L, S, U, inf = _tail_sums(pld)
    eps = np.asarray(epsilons, dtype=np.float64)
    k = np.searchsorted(L, eps, side="right")
    S_ = np.append(S, 0.0)[k]
    U_ = np.append(U, 0.0)[k]
    L_ = np.append(L, np.inf)[k]
    with np.errstate(invalid="ignore"):
        tail = np.where(k < L.size, np.exp(np.minimum(eps - L_, 0.0)) * U_, 0.0)
    return np.clip(inf + S_ - tail, 0.0, 1.0)


def _epsilon_for_delta(pld, delta: float, pessimistic: bool = True) -> float:
    """Smallest epsilon >= 0 with delta(epsilon) <= delta for a (symmetric) PLD on a grid, exactly for that PLD.

    dp-accounting's ``get_epsilon_for_delta`` accumulates sum p e^-L, which underflows to 0 once the losses pass
    ~745 (routine here: the XOR stage's losses are in the thousands); it then returns the next grid loss, an
    over-estimate. Here the tail sums are normalised at each grid point instead:
    T_j = sum_{i>j} p_i e^(L_{j+1} - L_i) = p_{j+1} + e^-d T_{j+1}, and on [L_j, L_{j+1}]
    delta(L_{j+1} - t) = inf + S_j - e^-t T_j with S_j = sum_{i>j} p_i.
    The result is nudged by 1e-10 relative (up if pessimistic, down otherwise) against floating-point rounding.
    """
    eps = _epsilon_for_delta_raw(pld, delta)
    if not math.isfinite(eps) or eps == 0.0:
        return eps
    return eps * (1 + 1e-10) + 1e-12 if pessimistic else max(0.0, eps * (1 - 1e-10) - 1e-12)


def _epsilon_for_delta_raw(pld, delta: float) -> float:
    L, S, U, inf = _tail_sums(pld)
    if inf > delta:
        return math.inf
    d = float(L[1] - L[0]) if L.size > 1 else 1.0
    # delta at grid point L_k (only i > k contribute): inf + S_{k+1} - e^-d U_{k+1}
    delta_grid = inf + np.append(S[1:], 0.0) - math.exp(-d) * np.append(U[1:], 0.0)
    k = int(np.flatnonzero(delta_grid <= delta)[0])  # the top grid point always qualifies (delta = inf)
    # on [L_k - d, L_k] (below L_0 for k = 0): delta(L_k - t) = inf + S_k - e^-t U_k
    x = (inf + S[k] - delta) / U[k] if U[k] > 0 else 0.0
    if k == 0:
        return max(0.0, float(L[0]) + (math.log(x) if x > 0 else -math.inf))
    t = -math.log(x) if x > 0 else d
    return max(0.0, float(L[k]) - min(max(t, 0.0), d))


def xor_account(
    p: np.ndarray,
    delta: float,
    *,
    bucket_rel_width: float = DEFAULT_BUCKET_REL_WIDTH,
    grid_points: int = DEFAULT_GRID_POINTS,
    lower_bound: bool = False,
    discretization: float | None = None,
) -> XorAccount:
    """Account for the XOR stage with (quantised) flip probabilities p of the 2m bit columns.

    delta: the stage's delta (see :func:`default_delta`). ``lower_bound`` also computes the optimistic estimate
    (doubles the time) so that the bracket [epsilon_at_delta_lower, epsilon_at_delta] shows the accounting error.
    The tails cut during construction and composition are at most ``1e-16`` each and go to delta; the
    pessimistic PLD therefore satisfies the delta target including them.
    """
    delta = _check_delta(delta)
    t0 = time.perf_counter()
    p = np.asarray(p, dtype=np.float64).ravel()
    if p.size and (np.any(p < 0) or np.any(p > 1) or np.any(np.isnan(p))):
        raise GenoshareError("flip probabilities must lie in [0, 1]")
    a = abs_logit(p)
    noiseless = int(np.count_nonzero(~np.isfinite(a)))
    eps_pure = float(np.sum(a)) if noiseless == 0 else math.inf
    if noiseless:
        return XorAccount(
            math.inf,
            delta,
            math.inf,
            math.inf,
            p.size,
            noiseless,
            0,
            bucket_rel_width,
            0.0,
            time.perf_counter() - t0,
            None,
        )
    pld, nb, d = xor_pld(
        p, pessimistic=True, bucket_rel_width=bucket_rel_width, grid_points=grid_points, discretization=discretization
    )
    # The PLD bound can exceed epsilon_pure by less than one grid step at tiny delta (the connect-the-dots split
    # puts some mass one grid point above the largest loss); the reported ``epsilon`` takes the smaller of the two.
    eps_hi = _epsilon_for_delta(pld, delta)
    eps_lo = None
    if lower_bound:
        pld_lo, _, _ = xor_pld(p, pessimistic=False, bucket_rel_width=bucket_rel_width, discretization=d)
        eps_lo = min(_epsilon_for_delta(pld_lo, delta, pessimistic=False), eps_pure)
    return XorAccount(
        epsilon_pure=eps_pure,
        delta=delta,
        epsilon_at_delta=eps_hi,
        epsilon_at_delta_lower=eps_lo,
        n_bits=int(p.size),
        n_bits_noiseless=0,
        n_buckets=nb,
        bucket_rel_width=bucket_rel_width,
        discretization=d,
        seconds=time.perf_counter() - t0,
        pld=pld,
    )


# ------------------------------------------------------------------------------------------------------------------
# what an attacker can do


def tpr_bound(epsilon: float, delta: float, fpr: float) -> float:
    """Largest true-positive rate of any test at false-positive rate fpr against an (epsilon, delta)-DP release:
    min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR))."""
    if epsilon is None or not math.isfinite(epsilon):
        return 1.0
    fpr = float(fpr)
    a = math.exp(epsilon) * fpr + delta if epsilon < 700 else math.inf
    b = 1.0 - math.exp(-epsilon) * (1.0 - delta - fpr)
    return float(min(1.0, a, b))


def guarantee_table(epsilon: float, delta: float, fprs: Sequence[float] = DEFAULT_FPRS) -> list[dict]:
    """Rows {fpr, tpr_max} for the (epsilon, delta) guarantee (see :func:`tpr_bound`)."""
    return [{"fpr": float(f), "tpr_max": tpr_bound(epsilon, delta, f)} for f in fprs]


def profile_tpr_bounds(delta_of_epsilon, fprs: Sequence[float], eps_max: float, n_grid: int = 2000) -> list[float]:
    """TPR bounds from a whole privacy profile: for each FPR, the inf over epsilon of the (epsilon, delta(epsilon))
    bound.

    ``delta_of_epsilon`` maps a sorted array of epsilons to upper bounds on delta. The infimum is taken over a
    finite grid in [0, min(eps_max, 50)] (beyond 50 no bound is below 1 - 2e-22), so the result is still a valid
    upper bound.
    """
    top = min(float(eps_max), 50.0)
    eps = np.unique(np.concatenate([np.linspace(0.0, top, n_grid), np.geomspace(1e-6, max(top, 1e-6), 200)]))
    deltas = np.asarray(delta_of_epsilon(eps), dtype=np.float64)
    deltas = np.where(np.isfinite(deltas), np.clip(deltas, 0.0, 1.0), 1.0)
    out = []
    for f in fprs:
        a = np.exp(eps) * f + deltas
        b = 1.0 - np.exp(-eps) * (1.0 - deltas - f)
        out.append(float(min(1.0, np.min(np.minimum(a, b)))))
    return out


def xor_guarantee_table(acct: XorAccount, fprs: Sequence[float] = DEFAULT_FPRS) -> list[dict]:
    """TPR bounds of the XOR stage alone, from its whole privacy profile (pure epsilon included)."""
    best = [tpr_bound(acct.epsilon_pure, 0.0, f) for f in fprs]
    if acct.pld is not None and math.isfinite(acct.epsilon_pure):
        prof = profile_tpr_bounds(lambda e: delta_for_epsilons(acct.pld, e), fprs, acct.epsilon_pure)
        best = [min(a, b) for a, b in zip(best, prof)]
    return [{"fpr": float(f), "tpr_max": b} for f, b in zip(fprs, best)]


# ------------------------------------------------------------------------------------------------------------------
# stages and their composition


def stage_entry(mechanism: str, epsilon: float | None, delta: float | None, **extra) -> dict:
    """One stage of the manifest's privacy object. epsilon/delta None: the stage is not covered by DP (say why
    in ``statement``)."""
    return {"mechanism": mechanism, "epsilon": _num(epsilon), "delta": None if delta is None else float(delta), **extra}


def compose(stages) -> dict:
    """Basic composition of stage entries (a dict name -> entry, or a list): {epsilon, delta, composition,
    not_covered}.

    A stage with ``epsilon`` None (e.g. restoration to published frequencies) or with columns ``in_clear`` is not
    (fully) covered by a DP guarantee: it is listed in ``not_covered`` with its statement, and the totals are over
    what is covered.
    """
    eps, dl = 0.0, 0.0
    not_covered = []
    items = stages.items() if isinstance(stages, dict) else enumerate(stages)
    for name, st in items:
        if st is None:
            continue
        if st.get("epsilon") is not None:
            eps += float(st["epsilon"])
            dl += float(st.get("delta") or 0.0)
        if st.get("epsilon") is None or st.get("in_clear"):
            not_covered.append({"stage": str(name), "statement": st.get("statement", st.get("mechanism", ""))})
    total = {"epsilon": eps, "delta": dl, "composition": BASIC_COMPOSITION}
    if not_covered:
        total["not_covered"] = not_covered
    return total


def privacy_object(
    xor: XorAccount, af: dict | None = None, phenotype: dict | None = None, fprs: Sequence[float] = DEFAULT_FPRS
) -> dict:
    """The manifest's ``privacy`` object.

    xor: :func:`xor_account` result. af: an entry from :mod:`genoshare.privacy.dp_af` (``af_public_entry``,
    ``af_published_entry`` or ``af_dp_entry``); None means public frequencies (no cost). phenotype: an entry from
    :mod:`genoshare.privacy.phenotype`; None means no phenotype is released.
    """
    from genoshare.privacy.dp_af import af_public_entry
    from genoshare.privacy.phenotype import phenotype_entry

    stages = {
        "xor": xor.to_dict(),
        "af": af if af is not None else af_public_entry(),
        "phenotype": phenotype if phenotype is not None else phenotype_entry(),
    }
    total = compose(stages)
    pure_ok = stages["xor"]["epsilon_pure"] is not None
    pure = 0.0
    for st in stages.values():
        if st.get("epsilon") is None:
            continue
        if (st.get("delta") or 0.0) > 0 and st is not stages["xor"]:
            pure_ok = False
        pure += float(st["epsilon_pure"] if st is stages["xor"] else st["epsilon"]) if pure_ok else 0.0
    total["epsilon_pure"] = pure if pure_ok else None  # (epsilon_pure, 0)-DP, when every stage is pure
    table = guarantee_table(total["epsilon"], total["delta"], fprs)
    if pure_ok:
        for row, f in zip(table, fprs):
            row["tpr_max"] = min(row["tpr_max"], tpr_bound(pure, 0.0, f))
    total["guarantee"] = {
        "statement": "largest true-positive rate of ANY membership or attribute test at the given false-positive "
        "rate: TPR <= min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR))"
        + ("; holds only conditionally on the stages listed in not_covered" if total.get("not_covered") else ""),
        "table": table,
    }
    stages["xor"]["guarantee_table"] = xor_guarantee_table(xor, fprs)
    return {"neighbours": NEIGHBOURS, **stages, "total": total}
