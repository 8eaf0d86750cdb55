"""The privacy accountant of the XOR stage, checked against exact computations."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy import special, stats

from genoshare.errors import GenoshareError
from genoshare.privacy.accountant import (
    abs_logit,
    compose,
    default_delta,
    epsilon_pure,
    guarantee_table,
    privacy_object,
    tpr_bound,
    xor_account,
    xor_guarantee_table,
)

# ---------------------------------------------------------------------------------------------------------------
# exact references, computed without the accountant's PLD code


def rr_delta(a: float, eps: float) -> float:
    """delta(eps) of one randomized-response bit with loss a: [P - e^eps Q]_+ summed over the two outputs."""
    keep = special.expit(a)  # 1 - q
    return max(0.0, keep - math.exp(eps) * (1.0 - keep)) if eps < a else 0.0


def rr_epsilon(a: float, delta: float) -> float:
    """Closed form: smallest eps >= 0 with (e^a - e^eps) / (1 + e^a) <= delta."""
    x = math.exp(a) - delta * (1.0 + math.exp(a))
    return max(0.0, math.log(x)) if x > 1.0 else 0.0


def binomial_delta(k: int, p: float, eps: float) -> float:
    """k bits with flip probability p, all-0 vs all-1 inputs: Y = #ones ~ Bin(k, p) vs Bin(k, 1 - p).
    Hockey stick sum_y [P(y) - e^eps Q(y)]_+ (Y is sufficient)."""
    y = np.arange(k + 1)
    lp = stats.binom.logpmf(y, k, p)
    lq = stats.binom.logpmf(y, k, 1.0 - p)
    r = eps + lq - lp
    pos = r < 0
    return float(np.sum(np.exp(lp[pos]) * -np.expm1(r[pos])))


def brute_pq(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heterogeneous bits, all 2^n outputs enumerated: output probabilities under all-0 and all-1 inputs (which
    differ in every bit)."""
    o = np.array(list(itertools.product((0, 1), repeat=p.size)))
    P = np.prod(np.where(o == 1, p, 1 - p), axis=1)
    Q = np.prod(np.where(o == 1, 1 - p, p), axis=1)
    return P, Q


def brute_delta(PQ: tuple[np.ndarray, np.ndarray], eps: float) -> float:
    P, Q = PQ
    return float(np.sum(np.maximum(0.0, P - math.exp(eps) * Q)))


def eps_from_delta_fn(delta_fn, delta: float, hi: float) -> float:
    """Smallest eps in [0, hi] with delta_fn(eps) <= delta (delta_fn non-increasing), by bisection."""
    if delta_fn(0.0) <= delta:
        return 0.0
    lo = 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if delta_fn(mid) <= delta:
            hi = mid
        else:
            lo = mid
    return hi


def rng_p(seed: int, n: int, lo: float = 0.02, hi: float = 0.49) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.uniform(lo, hi, n)
    flip = rng.random(n) < 0.2  # some columns with p > 1/2 (the lo >= 0 formula of SPEC 3)
    return np.where(flip, 1.0 - p, p)


# ---------------------------------------------------------------------------------------------------------------


def test_pure_epsilon_is_sum_of_abs_logits():
    p = np.array([0.1, 0.5, 0.9, 0.3])
    expected = 2 * math.log(9) + 0 + math.log(7 / 3)
    assert epsilon_pure(p) == pytest.approx(expected, rel=1e-14)
    acc = xor_account(p, 1e-6)
    assert acc.epsilon_pure == pytest.approx(expected, rel=1e-14)
    assert acc.n_bits == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("delta", [1e-2, 1e-6, 1e-10])
def test_pld_epsilon_never_exceeds_pure(seed, delta):
    p = rng_p(seed, 3000)
    acc = xor_account(p, delta)
    # the raw PLD bound may overshoot by less than one grid step per bucket at tiny delta; the reported one never
    assert acc.epsilon_at_delta <= acc.epsilon_pure + acc.n_buckets * acc.discretization
    assert acc.epsilon <= acc.epsilon_pure
    assert acc.to_dict()["epsilon"] <= acc.epsilon_pure
    # and with thousands of bits the PLD is far below the pure epsilon
    assert acc.epsilon_at_delta < 0.8 * acc.epsilon_pure


@pytest.mark.parametrize("a", [0.05, 0.7, 3.0, 12.0])
@pytest.mark.parametrize("delta", [0.3, 1e-3, 1e-6, 1e-12])
def test_one_bit_matches_randomized_response_closed_form(a, delta):
    p = float(special.expit(-a))
    exact = rr_epsilon(a, delta)
    for q in (p, 1.0 - p):  # p and 1 - p are the same mechanism
        acc = xor_account(np.array([q]), delta, bucket_rel_width=0.0, lower_bound=True)
        assert acc.epsilon_at_delta >= exact - 1e-12
        assert acc.epsilon_at_delta <= exact + 1e-4 * max(1.0, exact)
        assert acc.epsilon_at_delta_lower <= exact + 1e-12
        assert acc.epsilon <= a * (1 + 1e-12)
        # default bucketing: a rounded up to the next grid edge (at most 0.1 %), never down
        dflt = xor_account(np.array([q]), delta)
        assert exact - 1e-12 <= dflt.epsilon_at_delta <= rr_epsilon(a * 1.001, delta) + 1e-4 * max(1.0, exact)
    for eps in np.linspace(0, a, 7)[:-1]:
        got = acc.delta_for_epsilon(float(eps))
        assert rr_delta(a, eps) - 1e-15 <= got <= rr_delta(a, eps) + 1e-5


@pytest.mark.parametrize("k", [2, 10, 300, 5000])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.45])
def test_identical_bits_match_exact_binomial(k, p):
    a = float(abs_logit(p))
    bits = np.full(k, p)

    def exact_delta(e):
        return binomial_delta(k, p, e)

    # no bucketing: only the discretisation separates the accountant from the exact curve
    acc = xor_account(bits, 1e-6, bucket_rel_width=0.0)
    for eps in np.linspace(0.0, k * a, 9)[:-1]:
        ex = exact_delta(float(eps))
        got = acc.delta_for_epsilon(float(eps))
        assert got >= ex * (1 - 1e-10) - 1e-13, (eps, got, ex)  # never below the exact value
        assert got <= ex + 1e-4 * ex + 1e-9, (eps, got, ex)
    for delta in (1e-3, 1e-6, 1e-9):
        ex = eps_from_delta_fn(exact_delta, delta, k * a)
        for r in (0.0, 1e-3):
            got = xor_account(bits, delta, bucket_rel_width=r, lower_bound=True)
            assert got.epsilon_at_delta >= ex - 1e-9, (delta, r, got.epsilon_at_delta, ex)
            assert got.epsilon_at_delta_lower <= ex + 1e-9
            # bucket edge raises a by at most 0.1 %; discretisation adds a few grid steps
            assert got.epsilon_at_delta <= ex * (1 + 2.5 * r) + 4 * got.discretization + 1e-9


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_bucketing_never_reduces_loss_small_cases(seed):
    p = rng_p(seed, 10, 0.05, 0.45)
    PQ = brute_pq(p)

    def exact_delta(e):
        return brute_delta(PQ, e)

    pure = epsilon_pure(p)
    for delta in (1e-2, 1e-4, 1e-7):
        ex = eps_from_delta_fn(exact_delta, delta, pure)
        unbucketed = xor_account(p, delta, bucket_rel_width=0.0).epsilon_at_delta
        assert ex - 1e-9 <= unbucketed <= ex + 1e-4 * max(ex, 1.0)
        for r in (0.01, 0.1, 0.5):
            bucketed = xor_account(p, delta, bucket_rel_width=r).epsilon_at_delta
            assert bucketed >= ex - 1e-9
            assert bucketed >= unbucketed - 1e-9


def test_bucketing_never_reduces_loss_against_unbucketed_accountant():
    p = rng_p(6, 800)
    for delta in (1e-3, 1e-8):
        base = xor_account(p, delta, bucket_rel_width=0.0)
        for r in (1e-3, 0.05, 0.3):
            b = xor_account(p, delta, bucket_rel_width=r, discretization=base.discretization)
            assert b.epsilon_at_delta >= base.epsilon_at_delta - 1e-9
            assert b.n_buckets <= base.n_buckets


@pytest.mark.parametrize("seed", [7, 8])
def test_monotone_in_every_p(seed):
    p = rng_p(seed, 60)
    delta = 1e-7
    base = xor_account(p, delta)
    rng = np.random.default_rng(seed)
    for j in rng.choice(p.size, 12, replace=False):
        towards = p.copy()
        towards[j] = 0.5 + 0.5 * (p[j] - 0.5)  # halfway to 1/2: less privacy loss
        less = xor_account(towards, delta)
        assert less.epsilon_pure <= base.epsilon_pure
        assert less.epsilon_at_delta <= base.epsilon_at_delta * (1 + 1e-9) + 1e-12, j
        away = p.copy()
        away[j] = p[j] / 2 if p[j] < 0.5 else 1 - (1 - p[j]) / 2  # halfway to 0 or 1: more loss
        more = xor_account(away, delta)
        assert more.epsilon_at_delta >= base.epsilon_at_delta * (1 - 1e-9) - 1e-12, j


def test_bracket_contains_exact_and_is_narrow_at_scale():
    p = rng_p(9, 20000)
    acc = xor_account(p, 1e-6, lower_bound=True)
    assert acc.epsilon_at_delta_lower <= acc.epsilon_at_delta
    assert (acc.epsilon_at_delta - acc.epsilon_at_delta_lower) / acc.epsilon_at_delta < 0.01


def test_two_million_heterogeneous_bits_compose_in_seconds():
    rng = np.random.default_rng(10)
    a = np.exp(rng.normal(math.log(0.02), 1.0, 2_000_000))  # |logit p| spread over several decades
    p = special.expit(-a)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    acc = xor_account(p, 1e-9)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"\n2e6 bits: {acc.n_buckets} buckets, d={acc.discretization:g}, pure={acc.epsilon_pure:.1f}, "
        f"eps(1e-9)={acc.epsilon_at_delta:.2f}; cpu {cpu:.2f} s, wall {wall:.2f} s"
    )
    assert 0 < acc.epsilon_at_delta < acc.epsilon_pure  # speed: printed here, measured by make bench


def test_noiseless_bits_and_bad_input():
    acc = xor_account(np.array([0.3, 0.0]), 1e-6)
    assert math.isinf(acc.epsilon_pure) and acc.n_bits_noiseless == 1
    assert acc.to_dict()["epsilon"] is None
    with pytest.raises(GenoshareError):
        xor_account(np.array([0.3, 1.2]), 1e-6)
    with pytest.raises(GenoshareError):
        xor_account(np.array([0.3]), 0.0)
    none = xor_account(np.full(10, 0.5), 1e-6)
    assert none.epsilon_pure == 0 and none.epsilon_at_delta == 0


def test_default_delta_is_well_below_one_over_n():
    assert default_delta(60) == 1e-6
    assert default_delta(1_000_000) == pytest.approx(1e-9)
    for n in (1, 60, 1000, 10**5, 10**7):
        assert default_delta(n) <= 1e-3 / n
    with pytest.raises(GenoshareError):
        default_delta(0)


def test_guarantee_table():
    # no privacy loss: a test cannot beat chance
    for row in guarantee_table(0.0, 0.0):
        assert row["tpr_max"] == pytest.approx(row["fpr"])
    t = {r["fpr"]: r["tpr_max"] for r in guarantee_table(1.0, 1e-6)}
    assert t[0.01] == pytest.approx(math.e * 0.01 + 1e-6)
    assert t[0.001] == pytest.approx(math.e * 0.001 + 1e-6)
    # the symmetric bound takes over at large FPR
    assert tpr_bound(1.0, 0.0, 0.5) == pytest.approx(1 - math.exp(-1) * 0.5)
    assert tpr_bound(3000.0, 1e-6, 0.001) == 1.0
    assert tpr_bound(math.inf, 0.0, 0.01) == 1.0
    fprs = np.linspace(0, 1, 21)
    vals = [tpr_bound(0.5, 1e-3, f) for f in fprs]
    assert all(b >= a for a, b in itertools.pairwise(vals))


def test_profile_table_is_never_looser():
    p = np.full(200, 0.45)  # small total loss: bounds below 1
    acc = xor_account(p, 1e-6)
    prof = xor_guarantee_table(acc)
    single = guarantee_table(acc.epsilon, acc.delta)
    pure = guarantee_table(acc.epsilon_pure, 0.0)
    for a, b, c in zip(prof, single, pure):
        assert a["tpr_max"] <= b["tpr_max"] + 1e-12
        assert a["tpr_max"] <= c["tpr_max"] + 1e-12
    assert prof[1]["tpr_max"] < 1.0


def test_compose_and_privacy_object():
    from genoshare.privacy.dp_af import (
        af_dp_entry,
        af_published_entry,
        gaussian_calibration,
    )
    from genoshare.privacy.phenotype import phenotype_entry

    stages = [{"mechanism": "a", "epsilon": 1.0, "delta": 1e-6}, {"mechanism": "b", "epsilon": 0.5, "delta": 0.0}]
    t = compose(stages)
    assert t["epsilon"] == 1.5 and t["delta"] == 1e-6 and "basic composition" in t["composition"]
    assert "not_covered" not in t

    acc = xor_account(np.full(100, 0.4), 1e-7)
    obj = privacy_object(acc, af_dp_entry(gaussian_calibration(1.0, 1e-8, 50)), phenotype_entry({"case": 2.0}))
    assert set(obj) >= {"xor", "af", "phenotype", "total", "neighbours"}
    for stage in ("xor", "af", "phenotype"):
        assert {"epsilon", "delta", "mechanism"} <= set(obj[stage])
    total = obj["total"]
    assert total["epsilon"] == pytest.approx(acc.epsilon + 1.0 + obj["phenotype"]["epsilon"])
    assert total["delta"] == pytest.approx(1e-7 + 1e-8)
    assert total["epsilon_pure"] is None  # the Gaussian stage is not pure
    assert [r["fpr"] for r in total["guarantee"]["table"]] == [0.001, 0.01, 0.05]

    pub = privacy_object(acc, af_published_entry(), phenotype_entry(clear=["age"]))
    nc = {x["stage"] for x in pub["total"]["not_covered"]}
    assert nc == {"af", "phenotype"}
    assert "conditionally" in pub["total"]["guarantee"]["statement"]
    assert pub["total"]["epsilon_pure"] == pytest.approx(acc.epsilon_pure)

    public = privacy_object(acc)  # public frequencies, no phenotype: the XOR stage is everything
    assert public["total"]["epsilon"] == pytest.approx(acc.epsilon)
    assert public["af"]["epsilon"] == 0.0 and public["phenotype"]["epsilon"] == 0.0
    assert "not_covered" not in public["total"]
