"""Allele-frequency sources for the restoration (SPEC 4) and the Gaussian mechanism on allele counts.

Sources
-------
* public (a frequency file, or the public reference panel): post-processing, no privacy cost; the file is recorded.
* published: the cohort's own frequencies. Not differentially private: the release's guarantee then holds
  conditionally on those frequencies being public already (NIH policy allows publishing them).
* DP: allele counts plus Gaussian noise, with its own (epsilon_af, delta_af), composed with the XOR stage.

Gaussian mechanism
------------------
Under replace-one neighbours a person changes each SNP's ALT count by at most 2 (0 <-> 2), so the count vector has
L2 sensitivity ``2 sqrt(m)`` (whatever the missingness: a called 2 replaced by a missing call also moves the count
by 2). sigma is the smallest value with (epsilon, delta)-DP by the analytic Gaussian mechanism (Balle & Wang 2018,
Thm 8): ``delta(eps) = Phi(D/(2s) - eps s/D) - e^eps Phi(-D/(2s) - eps s/D)``. The noisy count is
``c + rint(sigma Z)`` (for integer c this equals rint(c + sigma Z), a post-processing of the Gaussian mechanism),
clipped to ``[0, 2 n_called]``. ``n_called`` (per-SNP number of called genotypes) is treated as public: the release
shows every missing call as missing, so the missingness pattern is not protected by any stage.

Randomness
----------
Cryptographic and position-addressed, for the reason of SPEC 3: the 16 keystream bytes at offset ``16 j`` of an
AES-256-CTR stream (its own key, :func:`derive_af_key`) give SNP j's standard normal Z_j, so any chunking gives the
same noise. Layout of the two little-endian uint64 words (w0, w1): the top bit of w0 is the sign; the low 52 bits of
w0 are a mantissa M; the remaining 11 bits of w0 followed by the 64 bits of w1 are 75 bits whose number of leading
zeros L (capped at 75) is a geometric exponent. Then ``u = (1 + M 2^-52) 2^-(L+2)`` is uniform on (0, 1/2) with
relative resolution 2^-52 down to 2^-77 (a float drawn with full precision, not a 53-bit fixed-point number), and
``|Z| = -ndtri(u)``: the tails are as accurate as the centre.

Sampler error, accounted
------------------------
``N = rint(sigma |Z|)`` is decided in float64 unless sigma |Z| lies within 2^-44 (relative) of a half-integer;
those rare cases are redone in 200-bit arithmetic from the same exact u (:func:`gaussian_noise`). So N is the exact
rounding of sigma Phi~^-1(u), and the only difference from the ideal rounded Gaussian P is the finite grid of u.
For every output t whose u-interval I_t lies in the good region G (u >= 2^-70, |Z| up to about 9.5; every binade
there has exactly its uniform probability) ``|P^(t)/P(t) - 1| <= rho = 2^-51 max_t sup(I_t)/|I_t|``, about
1.1e-15 sigma (:func:`sampler_rho`). Outside G both have mass at most eta per SNP (about 2e-21). For any set S,
``P^_D(S) <= e^(eps + m ln((1+rho)/(1-rho))) P^_D'(S) + (1+rho)^m (delta + m eta2) + m eta`` (eta2: ideal mass
of outputs inside G_D but outside G_D', within 2 counts of the edge), and :func:`gaussian_calibration` calibrates
sigma for the smaller ideal (eps', delta') that makes the sampler's own guarantee exactly the requested
(epsilon_af, delta_af). At m = 1e6 SNPs and epsilon_af = 1 the slack is about 2e-5 in epsilon.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from genoshare.errors import GenoshareError
from genoshare.mechanism.keystream import keystream

AF_BYTES = 16
BORDER_MARGIN = 2.0**-44  # relative distance to a half-integer below which rint is decided in 200-bit arithmetic
U_BITS_EXP = 75  # leading-zero bits that set u's binade: u >= 2^-77
_MANT = np.uint64((1 << 52) - 1)


def derive_af_key(master: bytes) -> bytes:
    """The AF-noise stream key, derived from the release's master key like the other stream keys."""
    if len(master) != 32:
        raise ValueError("master key must be 32 bytes")
    return hmac.new(master, b"genoshare/v1/af", hashlib.sha256).digest()


def l2_sensitivity(m: int) -> float:
    """L2 sensitivity of the m allele counts under replace-one neighbours: 2 sqrt(m)."""
    return 2.0 * math.sqrt(int(m))


# ------------------------------------------------------------------------------------------------------------------
# analytic Gaussian mechanism


def _log_sub(a: float, b: float) -> float:
    return a + math.log1p(-math.exp(b - a)) if b < a else -math.inf


def gaussian_delta(sigma: float, epsilon: float, sensitivity: float) -> float:
    """Exact delta(epsilon) of the Gaussian mechanism (Balle & Wang 2018, Thm 8), computed in log space."""
    if sigma <= 0:
        return 1.0
    r = sensitivity / sigma
    lo = special.log_ndtr(r / 2 - epsilon / r)
    hi = epsilon + special.log_ndtr(-r / 2 - epsilon / r)
    return float(math.exp(_log_sub(float(lo), float(hi))))


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Smallest sigma (to 1e-12 relative, rounded up) with gaussian_delta(sigma, epsilon) <= delta."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise GenoshareError(f"epsilon_af must be a positive number, not {epsilon}")
    if not (0 < delta < 1):
        raise GenoshareError(f"delta_af must be in (0, 1), not {delta}")
    log_target = math.log(delta)

    def f(log_s: float) -> float:
        d = gaussian_delta(math.exp(log_s), epsilon, sensitivity)
        return (math.log(d) if d > 0 else -800.0) - log_target

    lo, hi = math.log(sensitivity) - 5.0, math.log(sensitivity) + 5.0
    while f(lo) < 0:
        lo -= 5.0
    while f(hi) > 0:
        hi += 5.0
    s = math.exp(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-13))
    while gaussian_delta(s, epsilon, sensitivity) > delta:
        s *= 1.0 + 1e-12
    return s


# ------------------------------------------------------------------------------------------------------------------
# the sampler and its error


def half_uniforms(key: bytes, v0: int, v1: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, negative) for SNPs j in [v0, v1): u uniform on (0, 1/2) with relative resolution 2^-52, as an exact
    float64, and a sign bit; from the 16 keystream bytes at offset 16 j (see module doc)."""
    raw = keystream(key, AF_BYTES * int(v0), AF_BYTES * (int(v1) - int(v0)))
    w = raw.view("<u8").reshape(-1, 2)
    w0, w1 = w[:, 0], w[:, 1]
    negative = (w0 >> np.uint64(63)).astype(bool)
    mant = (w0 & _MANT).astype(np.float64)  # exact: < 2^52
    head = (w0 >> np.uint64(52)) & np.uint64(0x7FF)  # 11 bits, the top of the 75-bit string
    lz = _clz64(head << np.uint64(53)).clip(max=11)
    lz = np.where(lz == 11, 11 + _clz64(w1), lz)  # L in [0, 75]
    return np.ldexp(1.0 + mant * 2.0**-52, -(lz + 2)), negative


def _clz64(x: np.ndarray) -> np.ndarray:
    """Leading zeros of uint64 values (64 for zero), exact integer arithmetic."""
    x = x.astype(np.uint64)
    n = np.zeros(x.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        empty = (x >> np.uint64(64 - shift)) == 0
        n += np.where(empty, shift, 0)
        x = np.where(empty, x << np.uint64(shift), x)
    return np.where(x >> np.uint64(63) == 0, n + 1, n).clip(max=64)


def standard_normals(key: bytes, v0: int, v1: int) -> np.ndarray:
    """Z_j = +-(-ndtri(u_j)) in float64 (for inspection and tests; the mechanism uses :func:`gaussian_noise`)."""
    u, neg = half_uniforms(key, v0, v1)
    z = -special.ndtri(u)
    return np.where(neg, -z, z)


def _exact_abs_noise(u: float, sigma: float) -> int:
    """rint(sigma * Phi~^-1(u)) in 200-bit arithmetic, for values that float64 cannot decide."""
    import mpmath

    with mpmath.workprec(200):
        z = -mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(u) - 1)
        return int(mpmath.nint(mpmath.mpf(sigma) * z))


def gaussian_noise(key: bytes, v0: int, v1: int, sigma: float, margin: float = BORDER_MARGIN) -> np.ndarray:
    """Integer noise N_j = rint(sigma Z_j) for SNPs j in [v0, v1), position-addressed.

    float64 decides rint(sigma * (-ndtri(u))) unless the product lies within ``margin`` (relative) of a
    half-integer; those rare values (about 2 margin sigma |Z| per SNP, ~1e-8 at sigma = 1e5) are recomputed in
    200-bit arithmetic from the same exact u. So N is the exact rounding of sigma Phi~^-1(u) as long as ndtri and
    the product are accurate to ``margin`` (256 ulps; scipy's ndtri is within 3 ulps, tests/test_dp_af.py).
    """
    u, neg = half_uniforms(key, v0, v1)
    s = sigma * -special.ndtri(u)
    n = np.rint(s)
    frac = np.abs(s - np.floor(s) - 0.5)
    border = np.flatnonzero(frac <= margin * np.maximum(s, 1.0))
    for i in border:
        n[i] = _exact_abs_noise(float(u[i]), sigma)
    n = n.astype(np.int64)
    return np.where(neg, -n, n)


def _z_good() -> float:
    """|Z| of the good region G: u >= 2^-70, where every binade of u has exactly its uniform probability."""
    return float(-special.ndtri(2.0**-70))


def sampler_rho(sigma: float) -> float:
    """Largest relative error |P^(t)/P(t) - 1| of the sampled noise over the atoms inside the good region.

    Atom t >= 1 is u in I_t = (Phi~((t+1/2)/sigma), Phi~((t-1/2)/sigma)]; the grid of u has spacing at most
    2^-52 sup(I_t), so |P^ - P| / P <= 2^-51 c_t with c_t = sup(I_t) / |I_t|. c_t decreases in t (Phi~ is
    log-concave), so the worst atoms are t = 1 and t = 0 (I_0 = [Phi~(1/(2 sigma)), 1/2)). Non-decreasing in
    sigma. A 2^-150 term covers the 200-bit arithmetic.
    """
    h = 0.5 / sigma
    s1, s3 = float(special.ndtr(-h)), float(special.ndtr(-3 * h))
    c0 = 0.5 / (0.5 - s1)
    c1 = -1.0 / math.expm1(float(special.log_ndtr(-3 * h) - special.log_ndtr(-h))) if s3 < s1 else math.inf
    return 2.0**-51 * max(c0, c1) + 2.0**-150


def _outside_mass(sigma: float, shift: float) -> float:
    """Per-SNP mass of |N| beyond the last atom inside G, moved ``shift`` counts towards the centre."""
    return 2.0 * float(special.ndtr(-(_z_good() - (1.0 + shift) / sigma))) * (1.0 + 1e-6) + 2.0**-74


@dataclass(frozen=True)
class GaussianCalibration:
    epsilon: float  # guaranteed by the sampler actually used (= requested)
    delta: float
    sigma: float
    sensitivity: float
    n_snps: int
    epsilon_ideal: float  # what the ideal Gaussian at this sigma gives
    delta_ideal: float
    rho: float
    epsilon_slack: float
    delta_slack: float


def _slack(sigma_hi: float, sigma_lo: float, m: int) -> tuple[float, float, float, float]:
    """Sampler slack valid for every sigma in [sigma_lo, sigma_hi] (rho grows with sigma, the outside masses
    shrink): (rho, epsilon slack, (1 + rho)^m, additive delta terms)."""
    rho = sampler_rho(sigma_hi)
    eps_slack = m * (math.log1p(rho) - math.log1p(-rho))
    growth = math.exp(m * math.log1p(rho))
    eta = _outside_mass(sigma_lo, 0.0)  # beyond G_D, sampler or ideal
    eta2 = _outside_mass(sigma_lo, 3.0)  # G_D minus G_D' (counts differ by <= 2 per SNP)
    return rho, eps_slack, growth, m * eta, m * eta2


def gaussian_calibration(epsilon_af: float, delta_af: float, m: int) -> GaussianCalibration:
    """sigma for DP allele counts of m SNPs such that the computed sampler is (epsilon_af, delta_af)-DP.

    With the ideal guarantee (eps', delta') at sigma, the sampler is (eps' + m ln((1+rho)/(1-rho)),
    (1+rho)^m (delta' + m eta2) + m eta)-DP (module doc). The slack is evaluated for sigma in [sigma_0, cap],
    sigma_0 the ideal calibration (a lower bound); sigma is calibrated for the reduced (eps', delta') and accepted
    if it does not exceed the cap (else the cap moves just above it).
    """
    m = int(m)
    if m < 1:
        raise GenoshareError("DP allele frequencies need at least one SNP")
    sens = l2_sensitivity(m)
    sigma0 = gaussian_sigma(epsilon_af, delta_af, sens)
    cap = sigma0 * (1.0 + 1e-6)
    for _ in range(60):
        rho, eps_slack, growth, eta_m, eta2_m = _slack(cap, sigma0, m)
        eps_i = epsilon_af - eps_slack
        dl_i = (delta_af - eta_m) / growth - eta2_m
        if eps_i <= 0 or dl_i <= 0:
            raise GenoshareError(
                f"epsilon_af={epsilon_af:g}, delta_af={delta_af:g} are too small (or sigma too "
                f"small) for an accurate Gaussian sampler over {m} SNPs"
            )
        sigma = gaussian_sigma(eps_i, dl_i, sens)
        if sigma <= cap:
            return GaussianCalibration(
                epsilon=float(epsilon_af),
                delta=float(delta_af),
                sigma=sigma,
                sensitivity=sens,
                n_snps=m,
                epsilon_ideal=eps_i,
                delta_ideal=dl_i,
                rho=rho,
                epsilon_slack=eps_slack,
                delta_slack=delta_af - dl_i,
            )
        cap = sigma * (1.0 + 1e-6)
    raise GenoshareError("Gaussian calibration did not converge")  # pragma: no cover


# ------------------------------------------------------------------------------------------------------------------
# the mechanism


def noisy_counts(counts: np.ndarray, n_called: np.ndarray, sigma: float, key: bytes, v0: int = 0) -> np.ndarray:
    """counts + rint(sigma Z_j), clipped to [0, 2 n_called]; Z_j read at SNP index v0 + j (position-addressed)."""
    counts = np.asarray(counts)
    n_called = np.asarray(n_called)
    if counts.shape != n_called.shape or counts.ndim != 1:
        raise GenoshareError("allele counts and called-genotype counts must be vectors of the same length")
    c = np.rint(counts).astype(np.int64)
    if np.any(c != counts) or np.any(c < 0) or np.any(c > 2 * n_called):
        raise GenoshareError("allele counts must be integers in [0, 2 n_called]")
    noise = gaussian_noise(key, v0, v0 + c.size, sigma)
    return np.clip(c + noise, 0, 2 * np.asarray(n_called, dtype=np.int64)).astype(np.float64)


def dp_allele_counts(
    counts: np.ndarray,
    n_called: np.ndarray,
    epsilon_af: float,
    delta_af: float,
    key: bytes,
    v0: int = 0,
    n_snps: int | None = None,
) -> tuple[np.ndarray, GaussianCalibration]:
    """DP allele counts (float64, integer-valued, in [0, 2 n_called]) and the calibration used.

    counts: ALT allele counts over each SNP's called genotypes; n_called: number of called genotypes (public).
    n_snps: the total number of SNPs the budget covers (default len(counts)); pass it when calling per chunk with
    offset v0, so every chunk uses the same sigma.
    """
    m = int(n_snps if n_snps is not None else np.asarray(counts).size)
    cal = gaussian_calibration(epsilon_af, delta_af, m)
    return noisy_counts(counts, n_called, cal.sigma, key, v0), cal


# ------------------------------------------------------------------------------------------------------------------
# manifest entries


def af_public_entry(kind: str = "public", file: str | None = None, sha256: str | None = None) -> dict:
    """Public frequencies (a file, or the public reference panel): post-processing, costs nothing."""
    e = {
        "source": kind,
        "mechanism": "restoration to public allele frequencies (post-processing)",
        "epsilon": 0.0,
        "delta": 0.0,
    }
    if file is not None:
        e["file"] = file
    if sha256 is not None:
        e["sha256"] = sha256
    return e


def af_published_entry() -> dict:
    """The cohort's own (published) frequencies: not DP; the guarantee is conditional on their publication."""
    return {
        "source": "published",
        "mechanism": "restoration to the cohort's own allele frequencies",
        "epsilon": None,
        "delta": None,
        "conditional": True,
        "statement": "the release is restored to the cohort's own allele frequencies: its guarantee holds "
        "only conditionally on those frequencies being published (they are not protected by "
        "differential privacy)",
    }


def af_dp_entry(cal: GaussianCalibration) -> dict:
    """The Gaussian-mechanism stage."""
    return {
        "source": "dp",
        "mechanism": "Gaussian mechanism on allele counts (analytic calibration, Balle & Wang 2018), rounded to "
        "integers and clipped to [0, 2 n_called]",
        "epsilon": cal.epsilon,
        "delta": cal.delta,
        "sigma": cal.sigma,
        "l2_sensitivity": cal.sensitivity,
        "n_snps": cal.n_snps,
        "n_called": "treated as public (the release shows missing calls as missing)",
        "randomness": "AES-256-CTR keystream, 16 bytes per SNP at offset 16 j; inverse-CDF normals",
        "sampler_error": {
            "rho": cal.rho,
            "epsilon_slack": cal.epsilon_slack,
            "delta_slack": cal.delta_slack,
            "calibrated_for": {"epsilon": cal.epsilon_ideal, "delta": cal.delta_ideal},
        },
    }


# ------------------------------------------------------------------------------------------------------------------
# when are DP frequencies useful?


def frequency_error(
    n: int,
    m: int,
    epsilon_af: float,
    delta_af: float,
    n_sim: int = 2000,
    key: bytes = b"\x00" * 32,
    maf_beta: tuple[float, float] = (0.5, 2.0),
) -> dict:
    """Frequency error of DP frequencies at cohort size n (no missing calls), budget for m SNPs.

    Simulates n_sim SNPs with ALT frequency ~ Beta(maf_beta) (a fixed test key: deterministic) and returns
    sigma, the unclipped sd of the frequency noise sigma / (2n), and the mean absolute error |f_dp - f| after
    rounding and clipping. The restoration then matches f_dp to within 1/(2n), so this is also (to 1/(2n)) the
    restored release's frequency error.
    """
    cal = gaussian_calibration(epsilon_af, delta_af, m)
    rng_u = standard_normals(hashlib.sha256(key + b"freqs").digest(), 0, n_sim)  # deterministic true freqs
    f = special.betaincinv(maf_beta[0], maf_beta[1], special.ndtr(rng_u))
    counts = np.rint(2 * n * f)
    nc = np.full(n_sim, n)
    noisy = noisy_counts(counts, nc, cal.sigma, key)
    err = np.abs(noisy - counts) / (2.0 * n)
    return {
        "n": n,
        "m": m,
        "epsilon_af": epsilon_af,
        "delta_af": delta_af,
        "sigma": cal.sigma,
        "noise_sd_freq": cal.sigma / (2.0 * n),
        "mean_abs_error": float(err.mean()),
        "mean_freq": float(np.mean(counts) / (2.0 * n)),
        "clipped_fraction": float(np.mean((noisy == 0) | (noisy == 2 * n))),
    }
