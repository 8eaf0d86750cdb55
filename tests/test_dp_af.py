"""DP allele frequencies: analytic Gaussian calibration, the cryptographic sampler, clipping, accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from genoshare.errors import GenoshareError
from genoshare.privacy.dp_af import (
    _clz64,
    af_dp_entry,
    af_public_entry,
    af_published_entry,
    derive_af_key,
    dp_allele_counts,
    frequency_error,
    gaussian_calibration,
    gaussian_delta,
    gaussian_noise,
    gaussian_sigma,
    half_uniforms,
    l2_sensitivity,
    noisy_counts,
    sampler_rho,
    standard_normals,
)

KEY = bytes(range(32))
ALARM = 1e-6  # false-alarm rate of every statistical test below (each is deterministic given the key)


def balle_wang_delta(sigma: float, eps: float, sens: float) -> float:
    """Analytic Gaussian mechanism, Balle & Wang 2018 Thm 8, written plainly with scipy.stats.norm."""
    a = sens / (2 * sigma) - eps * sigma / sens
    b = -sens / (2 * sigma) - eps * sigma / sens
    return stats.norm.cdf(a) - math.exp(eps) * stats.norm.cdf(b)


@pytest.mark.parametrize("eps,delta,m", [(1.0, 1e-6, 1), (1.0, 1e-9, 9091), (0.1, 1e-9, 10**6), (5.0, 1e-8, 500)])
def test_sigma_is_the_smallest_satisfying_the_analytic_gaussian_mechanism(eps, delta, m):
    sens = l2_sensitivity(m)
    assert sens == pytest.approx(2 * math.sqrt(m))
    s = gaussian_sigma(eps, delta, sens)
    assert balle_wang_delta(s, eps, sens) <= delta * (1 + 1e-9)
    assert balle_wang_delta(s * (1 - 1e-7), eps, sens) > delta  # smallest: a hair less noise fails
    assert gaussian_delta(s, eps, sens) == pytest.approx(balle_wang_delta(s, eps, sens), rel=1e-7)
    from dp_accounting.gaussian_mechanism import get_sigma_gaussian

    assert s == pytest.approx(get_sigma_gaussian(eps, delta) * sens, rel=1e-8)


@pytest.mark.parametrize("eps,delta,m", [(1.0, 1e-9, 9091), (0.1, 1e-9, 10**6), (1.0, 1e-10, 10**6), (20.0, 1e-9, 100)])
def test_sampler_calibration_delivers_the_requested_guarantee(eps, delta, m):
    cal = gaussian_calibration(eps, delta, m)
    assert cal.epsilon == eps and cal.delta == delta
    # the ideal mechanism at this sigma meets the reduced budget ...
    assert balle_wang_delta(cal.sigma, cal.epsilon_ideal, cal.sensitivity) <= cal.delta_ideal * (1 + 1e-9)
    # ... and the reduction covers the sampler's slack (module doc)
    rho = sampler_rho(cal.sigma)
    assert rho <= cal.rho
    assert cal.epsilon_ideal + m * (math.log1p(rho) - math.log1p(-rho)) <= eps + 1e-15
    assert cal.delta_ideal + cal.delta_slack <= delta * (1 + 1e-12)
    # and costs little noise
    assert cal.sigma <= gaussian_sigma(eps, delta, cal.sensitivity) * 1.003


def test_sampler_rho_scale():
    for sigma in (1.0, 10.0, 1e3, 1e5):
        assert sampler_rho(sigma) <= 2.0**-51 * 2.6 * sigma + 2.0**-51 * 3
    assert sampler_rho(1e5) >= sampler_rho(1e3)


def test_leading_zero_count_is_exact():
    vals = [0, 1, 2, 3, (1 << 63), (1 << 63) - 1, (1 << 52), (1 << 52) - 1, 12345678901234567890]
    rng = np.random.default_rng(0)
    vals += [int(x) >> int(s) for x, s in zip(rng.integers(0, 2**63, 200, dtype=np.uint64), rng.integers(0, 64, 200))]
    got = _clz64(np.array(vals, dtype=np.uint64))
    assert list(got) == [64 - int(v).bit_length() for v in vals]


def test_half_uniforms_are_exact_and_uniform():
    u, neg = half_uniforms(KEY, 0, 200_000)
    assert np.all((u > 0) & (u < 0.5))
    # each binade [2^-(L+2), 2^-(L+1)) has probability 2^-(L+1)
    upper = np.count_nonzero(u >= 0.25)
    assert stats.binomtest(upper, u.size, 0.5).pvalue > ALARM
    assert stats.binomtest(int(np.count_nonzero(u < 2.0**-6)), u.size, 2.0**-5).pvalue > ALARM
    assert stats.binomtest(int(neg.sum()), u.size, 0.5).pvalue > ALARM
    assert stats.kstest(2 * u, "uniform").pvalue > ALARM


def test_standard_normals_are_normal():
    z = standard_normals(KEY, 0, 200_000)
    assert stats.kstest(z, "norm").pvalue > ALARM
    tails = int(np.count_nonzero(np.abs(z) > 3))
    assert stats.binomtest(tails, z.size, 2 * stats.norm.sf(3)).pvalue > ALARM


def test_ndtri_accuracy_against_mpmath():
    """The 200-bit fallback is needed only if ndtri is off by more than 2^-44 relative; check it is within a few
    ulps across the binades the sampler reaches."""
    import mpmath

    rng = np.random.default_rng(1)
    u = np.concatenate([2.0 ** -rng.uniform(1, 76, 150), rng.uniform(1e-3, 0.5, 50)])
    worst = 0.0
    with mpmath.workprec(200):
        for x in u:
            z = float(special.ndtri(x))
            exact = -mpmath.sqrt(2) * mpmath.erfinv(1 - 2 * mpmath.mpf(float(x)))
            worst = max(worst, float(abs((mpmath.mpf(z) - exact) / exact)) / 2.0**-52)
    assert worst < 8.0


def test_noise_sd_matches_sigma():
    sigma = 37.5
    m = 50_000
    counts = np.full(m, 10_000.0)
    n_called = np.full(m, 10_000)  # counts mid-range: no clipping
    noise = noisy_counts(counts, n_called, sigma, KEY) - counts
    # rint(sigma Z) has variance sigma^2 + 1/12 (Sheppard): chi-square test of the sample variance, two-sided
    var = sigma**2 + 1.0 / 12.0
    chi2 = (m - 1) * noise.var(ddof=1) / var
    p = 2 * min(stats.chi2.cdf(chi2, m - 1), stats.chi2.sf(chi2, m - 1))
    assert p > ALARM, (noise.std(), sigma)
    assert abs(noise.mean()) / math.sqrt(var / m) < stats.norm.isf(ALARM / 2)
    assert np.all(noise == np.rint(noise))


def test_exact_fallback_agrees_with_float_path():
    fast = gaussian_noise(KEY, 0, 400, 1e5)
    slow = gaussian_noise(KEY, 0, 400, 1e5, margin=1.0)  # every value recomputed in 200-bit arithmetic
    assert np.array_equal(fast, slow)


def test_clipping_and_integers():
    n_called = np.array([10, 10, 10, 1000, 5, 0])
    counts = np.array([0, 20, 10, 1000, 3, 0])
    out = noisy_counts(counts, n_called, 500.0, KEY)
    assert np.all(out >= 0) and np.all(out <= 2 * n_called)
    assert np.all(out == np.rint(out))
    assert out[-1] == 0  # a SNP with no call stays at 0
    sat = noisy_counts(np.full(200, 10), np.full(200, 10), 500.0, KEY)  # sigma >> 2n: saturates at both ends
    assert np.mean((sat == 0) | (sat == 20)) > 0.9 and {0.0, 20.0} <= set(sat)
    with pytest.raises(GenoshareError):
        noisy_counts(np.array([21]), np.array([10]), 1.0, KEY)
    with pytest.raises(GenoshareError):
        noisy_counts(np.array([1.5]), np.array([10]), 1.0, KEY)


def test_determinism_by_key_and_position():
    m = 1000
    rng = np.random.default_rng(2)
    n_called = rng.integers(50, 100, m)
    counts = rng.integers(0, 2 * n_called + 1)
    a, cal = dp_allele_counts(counts, n_called, 1.0, 1e-8, KEY)
    b, _ = dp_allele_counts(counts, n_called, 1.0, 1e-8, KEY)
    assert np.array_equal(a, b)
    other_key = derive_af_key(bytes(32))
    c, _ = dp_allele_counts(counts, n_called, 1.0, 1e-8, other_key)
    assert not np.array_equal(a, c)
    # chunked (v0 offsets, same total budget) gives the same noise as one call
    parts = [
        dp_allele_counts(counts[i : i + 300], n_called[i : i + 300], 1.0, 1e-8, KEY, v0=i, n_snps=m)[0]
        for i in range(0, m, 300)
    ]
    assert np.array_equal(np.concatenate(parts), a)
    assert cal.n_snps == m and cal.sensitivity == pytest.approx(2 * math.sqrt(m))


def test_keys_are_domain_separated():
    from genoshare.mechanism.keystream import derive_keys

    master = bytes(range(32))
    k = derive_af_key(master)
    assert len(k) == 32 and k not in set(vars(derive_keys(master)).values())
    with pytest.raises(ValueError):
        derive_af_key(b"short")


def test_bad_budgets():
    with pytest.raises(GenoshareError):
        gaussian_calibration(0.0, 1e-9, 10)
    with pytest.raises(GenoshareError):
        gaussian_calibration(1.0, 0.0, 10)
    with pytest.raises(GenoshareError):
        gaussian_calibration(1.0, 1e-9, 0)


def test_entries():
    cal = gaussian_calibration(1.0, 1e-9, 100)
    e = af_dp_entry(cal)
    assert e["epsilon"] == 1.0 and e["delta"] == 1e-9 and e["sigma"] == cal.sigma
    assert e["l2_sensitivity"] == pytest.approx(20.0) and "Gaussian" in e["mechanism"]
    pub = af_published_entry()
    assert pub["epsilon"] is None and pub["conditional"] is True and "conditional" in pub["statement"]
    f = af_public_entry("public", file="af.tsv", sha256="ab")
    assert f["epsilon"] == 0.0 and f["delta"] == 0.0 and f["file"] == "af.tsv"


def test_dp_frequencies_useless_at_n60_useful_at_biobank_scale():
    small = frequency_error(60, 9091, 1.0, 1e-9)
    assert small["noise_sd_freq"] > 5  # sigma ~ 2 sqrt(m) / eps swamps frequencies in [0, 1]
    assert small["mean_abs_error"] > 0.3 and small["clipped_fraction"] > 0.9
    big = frequency_error(500_000, 9091, 1.0, 1e-9)
    assert big["noise_sd_freq"] < 0.0011 and big["mean_abs_error"] < 0.001
