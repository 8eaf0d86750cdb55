"""Flip probabilities and calibration (SPEC 3): package vs the dense reference."""

import numpy as np
import pytest

from dense_reference import (
    TWO32,
    dense_eps_xor,
    dense_flip_probs,
    dense_flip_probs_literal,
    dense_lo_hi,
    dense_nominal_c,
    dense_quantise,
    dense_thresholds,
)

MODES = ["provgen", "haldane"]
P_RTOL, P_ATOL = 1e-12, 1e-15


def random_stats(seed, m=300, frac_nonneg=0.2):
    """Random per-column statistics (2m columns); a fraction of columns has lo_j >= 0 (one has lo_j == 0 exactly)."""
    rng = np.random.default_rng(seed)
    m2 = 2 * m
    t_diag = rng.normal(0.0, 2.0, m2)
    s_pos = rng.exponential(20.0, m2)
    s_neg = -rng.exponential(20.0, m2)
    nn = rng.random(m2) < frac_nonneg
    t_diag[nn] = np.abs(t_diag[nn]) + 0.5
    s_neg[nn] = -rng.uniform(0.0, 1.0, nn.sum()) * t_diag[nn] / 2.0  # t + 2 s- = t (1 - u) > 0
    t_diag[0], s_neg[0] = 0.0, 0.0  # lo == 0 exactly -> p = 1/2
    f2 = float(np.sum(t_diag**2) + np.sum(s_pos**2) + np.sum(s_neg**2))
    return dict(t_diag=t_diag, s_pos=s_pos, s_neg=s_neg, f2=f2)


def _dense_p_from(stats, c):
    return dense_flip_probs(np.asarray(stats.t_diag), np.asarray(stats.s_pos), np.asarray(stats.s_neg), c)


def _eps_curve(stats, cs):
    """Dense eps_xor (with quantised p, as the accountant uses) for each c of cs."""
    return np.array([dense_eps_xor(dense_quantise(_dense_p_from(stats, c))) for c in cs])


def _n_nonneg(stats):
    return int(np.sum(np.asarray(stats.t_diag) + 2.0 * np.asarray(stats.s_neg) >= 0))


def _assert_thresholds_match(got_t, want_t, label=""):
    """Thresholds equal; at most 2 columns may be off by one (p*2^32 landing within ~1e-6 of a .5 boundary)."""
    got_t = np.asarray(got_t).astype(np.int64)
    want_t = np.asarray(want_t).astype(np.int64)
    diff = np.abs(got_t - want_t)
    assert diff.max() <= 1, f"{label}: thresholds differ by up to {diff.max()} (col {int(np.argmax(diff))})"
    assert (diff > 0).sum() <= 2, f"{label}: {(diff > 0).sum()} thresholds differ"


def _check_result_consistency(res, stats, eps, label=""):
    p = np.asarray(res.p, dtype=np.float64)
    t = np.asarray(res.thresholds)
    m2 = len(np.asarray(stats.t_diag))
    assert p.shape == (m2,) and t.shape == (m2,)
    assert t.dtype == np.uint32
    assert np.all(t >= 1)
    # p is quantised: p * 2^32 is an integer, equal to the threshold
    np.testing.assert_array_equal(p * TWO32, np.round(p * TWO32))
    np.testing.assert_array_equal(p * TWO32, t.astype(np.float64))
    # p is the quantisation of the SPEC formula at the reported c
    _assert_thresholds_match(t, dense_thresholds(_dense_p_from(stats, float(res.c))), label)
    # the accountant reports eps_xor of the quantised p
    assert float(res.epsilon_xor) == pytest.approx(dense_eps_xor(p), rel=1e-12), label
    assert float(res.epsilon_requested) == eps
    assert int(res.n_lo_nonneg) == _n_nonneg(stats), label


# ---------------------------------------------------------------- reference self-checks
def test_dense_flip_probs_stable_equals_literal_and_properties():
    st = random_stats(1)
    for c in (0.0, 1e-4, 1e-2, 0.1, 1.0):
        p = dense_flip_probs(st["t_diag"], st["s_pos"], st["s_neg"], c)
        lit = dense_flip_probs_literal(st["t_diag"], st["s_pos"], st["s_neg"], c)
        np.testing.assert_allclose(p, lit, rtol=1e-12, atol=1e-15)
        lo, hi = dense_lo_hi(st["t_diag"], st["s_pos"], st["s_neg"], c)
        neg = lo < 0
        np.testing.assert_allclose(p[neg], 1.0 / (1.0 + np.exp(-lo[neg])), rtol=1e-13)  # sigmoid(lo)
        assert np.all((p[~neg] >= 0.5) & (p[~neg] < 1.0))
        if c == 0.0:
            np.testing.assert_array_equal(p, 0.5)
        assert p[0] == 0.5  # lo == 0


def test_dense_flip_probs_hand_values():
    # lo = -1 -> sigmoid(-1); lo = ln 2, hi = ln 3 -> (1 + 1/4) / 2
    p = dense_flip_probs(np.array([-1.0, np.log(2)]), np.array([0.0, (np.log(3) - np.log(2)) / 2]), np.zeros(2), 1.0)
    np.testing.assert_allclose(p, [1 / (1 + np.e), 0.625], rtol=1e-15)
    assert dense_eps_xor([0.5, 0.25, 0.75]) == pytest.approx(2 * np.log(3), rel=1e-15)
    assert dense_nominal_c(4.0, 10, 8.0) == pytest.approx(0.2)
    np.testing.assert_array_equal(dense_thresholds([0.5, 0.0, 1.0, 0.25]), [2**31, 1, 2**32 - 1, 2**30])


@pytest.mark.parametrize("zero_cell,nominal_true_eps,flip_rate", [("provgen", 9230, 0.38), ("haldane", 2201, 0.47)])
def test_dense_reproduces_spec_lactose_numbers(
    lactose_ref, lactose_dense_stats, zero_cell, nominal_true_eps, flip_rate
):
    """SPEC 2: on lactose at nominal eps 9,091 the true eps is 9,230 (provgen) / 2,201 (haldane), flip rate .38/.47."""
    s = lactose_dense_stats(zero_cell)
    c = dense_nominal_c(s["f2"], lactose_ref.shape[0], 9091)
    p = dense_quantise(dense_flip_probs(s["t_diag"], s["s_pos"], s["s_neg"], c))
    assert round(dense_eps_xor(p)) == nominal_true_eps
    assert round(p.mean(), 2) == flip_rate


# ---------------------------------------------------------------- flip probabilities / nominal scale
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("c", [0.0, 1e-4, 1e-2, 0.1, 1.0, 3.0])
def test_flip_probabilities_matches_dense(pkg_stats_factory, seed, c):
    from genoshare.mechanism.calibrate import flip_probabilities

    st = random_stats(seed)
    assert np.sum(st["t_diag"] + 2 * st["s_neg"] >= 0) > 50  # the lo >= 0 branch is exercised
    stats = pkg_stats_factory(**st)
    got = np.asarray(flip_probabilities(stats, c), dtype=np.float64)
    want = dense_flip_probs(st["t_diag"], st["s_pos"], st["s_neg"], c)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=P_RTOL, atol=P_ATOL)


def test_flip_probabilities_extreme_no_overflow(pkg_stats_factory):
    """lo and hi both beyond exp overflow (~709): the literal formula gives inf/inf; the true value is finite."""
    from genoshare.mechanism.calibrate import flip_probabilities

    t_diag = np.array([800.0, 800.0, -800.0, 1.0])
    s_pos = np.array([0.5, 1000.0, 10.0, 0.0])
    s_neg = np.array([0.0, 0.0, -5.0, 0.0])
    stats = pkg_stats_factory(t_diag, s_pos, s_neg, f2=1e6)
    got = np.asarray(flip_probabilities(stats, 1.0), dtype=np.float64)
    want = dense_flip_probs(t_diag, s_pos, s_neg, 1.0)
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, want, rtol=P_RTOL, atol=P_ATOL)


@pytest.mark.parametrize("eps", [1.0, 100.0, 5000.0])
def test_nominal_scale_matches_dense(pkg_stats_factory, eps):
    from genoshare.mechanism.calibrate import nominal_scale

    st = random_stats(3)
    stats = pkg_stats_factory(**st)
    assert float(nominal_scale(stats, eps)) == pytest.approx(dense_nominal_c(st["f2"], 300, eps), rel=1e-12)


def test_epsilon_xor_matches_dense():
    from genoshare.mechanism.calibrate import epsilon_xor

    rng = np.random.default_rng(4)
    p = rng.uniform(1e-6, 1 - 1e-6, 1001)
    p[:5] = [0.5, 0.25, 0.75, 2.0**-32, 1 - 2.0**-32]
    assert float(epsilon_xor(p)) == pytest.approx(dense_eps_xor(p), rel=1e-12)


# ---------------------------------------------------------------- nominal calibration
@pytest.mark.parametrize("eps", [10.0, 300.0, 3000.0])
def test_calibrate_nominal_random(pkg_stats_factory, eps):
    from genoshare.mechanism.calibrate import calibrate

    st = random_stats(5)
    stats = pkg_stats_factory(**st)
    res = calibrate(stats, eps, method="nominal")
    c = dense_nominal_c(st["f2"], 300, eps)
    assert float(res.c) == pytest.approx(c, rel=1e-12)
    _assert_thresholds_match(
        res.thresholds, dense_thresholds(dense_flip_probs(st["t_diag"], st["s_pos"], st["s_neg"], c))
    )
    np.testing.assert_allclose(
        np.asarray(res.p),
        dense_quantise(dense_flip_probs(st["t_diag"], st["s_pos"], st["s_neg"], c)),
        rtol=0,
        atol=1.5 / TWO32,
    )
    assert float(res.epsilon_nominal) == pytest.approx(eps, rel=1e-12)
    _check_result_consistency(res, stats, eps, label=f"nominal eps={eps}")


@pytest.mark.parametrize("zero_cell", MODES)
@pytest.mark.parametrize("eps", [1000.0, 9091.0, 45455.0])
def test_calibrate_nominal_lactose(lactose_pkg_stats, zero_cell, eps):
    from genoshare.mechanism.calibrate import calibrate

    stats = lactose_pkg_stats(zero_cell)
    res = calibrate(stats, eps, method="nominal")
    c = dense_nominal_c(float(stats.f2), 9091, eps)
    assert float(res.c) == pytest.approx(c, rel=1e-12)
    assert float(res.epsilon_nominal) == pytest.approx(eps, rel=1e-12)
    _check_result_consistency(res, stats, eps, label=f"lactose nominal {zero_cell} eps={eps}")
    want_eps = dense_eps_xor(dense_quantise(_dense_p_from(stats, c)))
    assert float(res.epsilon_xor) == pytest.approx(want_eps, rel=1e-9)


# ---------------------------------------------------------------- exact calibration
def _check_smallest(stats, res, eps, label, n_grid=300):
    """No c' below the returned c reaches eps (grid check), and eps_xor at the returned c equals eps."""
    c = float(res.c)
    assert c > 0
    cs = np.concatenate([np.linspace(0, c, n_grid, endpoint=False)[1:], c * (1 - np.logspace(-2, -7, 12))])
    curve = _eps_curve(stats, cs)
    bad = curve > eps * (1 + 1e-6)
    assert not bad.any(), f"{label}: eps_xor({cs[bad][0]!r}) = {curve[bad][0]!r} >= requested {eps} but c = {c!r}"


@pytest.mark.parametrize("zero_cell", MODES)
def test_calibrate_exact_lactose(lactose_pkg_stats, zero_cell):
    from genoshare.mechanism.calibrate import calibrate

    stats = lactose_pkg_stats(zero_cell)
    cs = []
    for eps in (1000.0, 9091.0, 45455.0):
        res = calibrate(stats, eps, method="exact")
        label = f"lactose exact {zero_cell} eps={eps}"
        got_eps = dense_eps_xor(np.asarray(res.p, dtype=np.float64))
        assert got_eps == pytest.approx(eps, rel=1e-6), f"{label}: eps_xor of returned p = {got_eps!r}"
        _check_result_consistency(res, stats, eps, label)
        _check_smallest(stats, res, eps, label)
        # a slightly smaller request gives a strictly smaller c
        res2 = calibrate(stats, eps * (1 - 1e-3), method="exact")
        assert float(res2.c) < float(res.c), label
        cs.append(float(res.c))
    assert cs[0] < cs[1] < cs[2]


@pytest.mark.parametrize("eps", [20.0, 200.0, 2000.0])
def test_calibrate_exact_random_with_nonneg_columns(pkg_stats_factory, eps):
    from genoshare.mechanism.calibrate import calibrate

    st = random_stats(6)
    stats = pkg_stats_factory(**st)
    res = calibrate(stats, eps, method="exact")
    label = f"random exact eps={eps}"
    assert dense_eps_xor(np.asarray(res.p, dtype=np.float64)) == pytest.approx(eps, rel=1e-6), label
    _check_result_consistency(res, stats, eps, label)
    assert int(res.n_lo_nonneg) > 50
    _check_smallest(stats, res, eps, label)


def _hump_stats():
    """Mostly lo >= 0 columns (their p returns to 1/2 as c grows) + a few weak lo < 0 columns: eps_xor(c) rises,
    falls, rises again, so a mid-level eps is reached at two different c."""
    rng = np.random.default_rng(8)
    k, k_neg = 400, 20
    a = rng.uniform(0.5, 2.0, k)
    t_diag = np.concatenate([a, np.full(k_neg, -0.01)])
    s_pos = np.concatenate([a * rng.uniform(0.25, 1.0, k), np.zeros(k_neg)])
    s_neg = np.zeros(k + k_neg)
    f2 = float(np.sum(t_diag**2) + np.sum(s_pos**2))
    return dict(t_diag=t_diag, s_pos=s_pos, s_neg=s_neg, f2=f2)


def test_calibrate_exact_picks_smallest_c_when_non_monotone(pkg_stats_factory):
    from genoshare.mechanism.calibrate import calibrate

    st = _hump_stats()
    stats = pkg_stats_factory(**st)
    cs = np.geomspace(1e-3, 1e4, 3000)
    curve = _eps_curve(stats, cs)
    i_max = int(np.argmax(curve[: np.searchsorted(cs, 100.0)]))
    peak = curve[i_max]
    eps = 0.9 * peak
    # the setup really is non-monotone: after the hump the curve drops below eps, later rises above it again
    after = curve[i_max:]
    assert after.min() < 0.5 * eps and curve[-1] > eps
    c_first = cs[np.argmax(curve >= eps)]  # first grid point at/after the first crossing
    res = calibrate(stats, eps, method="exact")
    assert dense_eps_xor(np.asarray(res.p, dtype=np.float64)) == pytest.approx(eps, rel=1e-6)
    assert float(res.c) <= c_first, (
        f"c = {float(res.c)!r} is past the first crossing (<= {c_first!r}); hump at {cs[i_max]!r}"
    )
    assert int(res.n_lo_nonneg) == 400
    _check_smallest(stats, res, eps, "hump")


def test_calibrate_exact_unattainable_raises(pkg_stats_factory):
    """All columns lo >= 0: eps_xor is bounded in c, so a larger request cannot be met and must not pass silently."""
    from genoshare.mechanism.calibrate import calibrate

    st = _hump_stats()
    st = {k: (v[:400] if isinstance(v, np.ndarray) else v) for k, v in st.items()}
    stats = pkg_stats_factory(**st)
    sup = _eps_curve(stats, np.geomspace(1e-3, 1e4, 2000)).max()
    from genoshare.errors import GenoshareError

    with pytest.raises(GenoshareError, match="exceeds the largest true epsilon"):
        calibrate(stats, 10.0 * sup, method="exact")


@pytest.mark.parametrize("stats_kind", ["random", "hump"])
def test_exact_search_starts_below_every_crossing(pkg_stats_factory, stats_kind):
    """The search skips scales where a bound proves eps_xor is below the request: that bound must hold
    (for every c' <= c) on the quantised curve, including columns with lo >= 0."""
    from genoshare.mechanism.calibrate import _coefficients, _eps_upper_bound

    st = random_stats(9) if stats_kind == "random" else _hump_stats()
    stats = pkg_stats_factory(**st)
    abs_a = np.abs(_coefficients(stats)[0])
    cs = np.geomspace(1e-4, 1e3, 400)
    curve = _eps_curve(stats, cs)
    bound = np.array([_eps_upper_bound(abs_a, c) for c in cs])
    assert np.all(curve <= bound)
    assert np.all(np.diff(bound) >= 0)
