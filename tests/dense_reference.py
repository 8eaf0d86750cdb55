"""Slow, obvious dense reference implementation of the formulas in SPEC.md sections 1-3 and 5.

Written from SPEC.md alone (independently of ``genoshare.mechanism`` / ``genoshare.kernels``) so that the fast
package code can be checked against it.  Plain numpy, float64, literal formulas, matrix products.

Conventions
-----------
* Genotype matrices are VARIANT-MAJOR: ``G`` has shape ``(m, n)``, values 0/1/2, ``-1`` = missing.
* The dense binary encoding ``B`` is SAMPLE-MAJOR, shape ``(n, 2m)``: column ``2j`` is the "high" bit of SNP ``j``,
  column ``2j+1`` its "low" bit; 0 -> 00, 1 -> 01, 2 -> 11; a missing genotype is encoded as 00 (and must be tracked
  separately by a missing mask).
"""

from __future__ import annotations

import numpy as np

#: the ``z`` of the published reference code (``zero_cell="provgen"``)
Z_PROVGEN = float(np.finfo(float).eps)  # 2.220446049250313e-16
#: Haldane-Anscombe correction added to every cell (``zero_cell="haldane"``)
HALDANE = 0.5
TWO32 = 2.0**32


# ----------------------------------------------------------------------------------------------------------------
# Section 1: encoding
# ----------------------------------------------------------------------------------------------------------------
def dense_encode(G) -> np.ndarray:
    """Variant-major genotypes (m, n) -> sample-major bit matrix B (n, 2m) uint8 (missing -> 00)."""
    G = np.asarray(G)
    m, n = G.shape
    B = np.zeros((n, 2 * m), dtype=np.uint8)
    for j in range(m):
        g = G[j]
        # high bit: only genotype 2 (code 11); low bit: genotypes 1 and 2 (codes 01, 11)
        B[:, 2 * j] = (g == 2).astype(np.uint8)
        B[:, 2 * j + 1] = ((g == 1) | (g == 2)).astype(np.uint8)
    return B


def dense_decode(B, missing_mask) -> np.ndarray:
    """Sample-major bits B (n, 2m) + missing mask (m, n) -> variant-major genotypes (m, n) int8 (sum of the 2 bits)."""
    B = np.asarray(B)
    missing_mask = np.asarray(missing_mask, dtype=bool)
    n, two_m = B.shape
    m = two_m // 2
    G = np.empty((m, n), dtype=np.int8)
    for j in range(m):
        G[j] = B[:, 2 * j].astype(np.int64) + B[:, 2 * j + 1].astype(np.int64)  # 10 -> 1, 11 -> 2
    G[missing_mask] = -1
    return G


def bits_from_dense(B) -> np.ndarray:
    """(n, 2m) sample-major bits -> (m, n, 2) variant-major bits ([..., 0] = high, [..., 1] = low)."""
    B = np.asarray(B)
    n, two_m = B.shape
    m = two_m // 2
    out = np.empty((m, n, 2), dtype=np.uint8)
    out[:, :, 0] = B[:, 0::2].T
    out[:, :, 1] = B[:, 1::2].T
    return out


def dense_from_bits(bits) -> np.ndarray:
    """(m, n, 2) variant-major bits -> (n, 2m) sample-major bits."""
    bits = np.asarray(bits)
    m, n, _ = bits.shape
    B = np.empty((n, 2 * m), dtype=np.uint8)
    B[:, 0::2] = bits[:, :, 0].T
    B[:, 1::2] = bits[:, :, 1].T
    return B


# ----------------------------------------------------------------------------------------------------------------
# Section 2: LD statistics
# ----------------------------------------------------------------------------------------------------------------
def _check_zero_cell(zero_cell):
    if zero_cell not in ("provgen", "haldane"):
        raise ValueError(f"zero_cell must be 'provgen' or 'haldane', got {zero_cell!r}")


def dense_pair_counts(A):
    """Full 2x2 co-occurrence counts of every column pair of a binary (n_r, 2m) matrix.

    Returns (M11, M10, M01, M00) each (2m, 2m) float64 and the column counts (M1, M0)."""
    A = np.asarray(A, dtype=np.float64)
    n_r = A.shape[0]
    M1 = A.sum(axis=0)
    M0 = n_r - M1
    M11 = A.T @ A  # #(a_j = 1, a_k = 1)
    M10 = M1[:, None] - M11  # #(a_j = 1, a_k = 0)
    M01 = M1[None, :] - M11  # #(a_j = 0, a_k = 1)
    M00 = n_r - M11 - M10 - M01  # #(a_j = 0, a_k = 0)
    return M11, M10, M01, M00, M1, M0


def _offdiag_T(M11, M10, M01, M00, zero_cell):
    if zero_cell == "provgen":
        z = Z_PROVGEN
        return np.log((M11 * M00 + z) / (M10 * M01 + z))
    h = HALDANE
    return np.log(((M11 + h) * (M00 + h)) / ((M10 + h) * (M01 + h)))


def _diag_T(M1, M0, zero_cell):
    if zero_cell == "provgen":
        z = Z_PROVGEN
        return np.log((M1 + z) / (M0 + z))
    h = HALDANE
    return np.log((M1 + h) / (M0 + h))


def dense_T(G_ref, zero_cell="haldane") -> np.ndarray:
    """The full (2m, 2m) T matrix (off-diagonal log odds ratios, diagonal log odds). Small m only."""
    _check_zero_cell(zero_cell)
    A = dense_encode(G_ref)
    M11, M10, M01, M00, M1, M0 = dense_pair_counts(A)
    T = _offdiag_T(M11, M10, M01, M00, zero_cell)
    idx = np.arange(T.shape[0])
    T[idx, idx] = _diag_T(M1, M0, zero_cell)
    return T


def _pair_mask(rows, cols, window, contigs):
    """Boolean (len(rows), len(cols)) mask of the column pairs that are used (diagonal not removed here)."""
    if window is None:
        return np.ones((len(rows), len(cols)), dtype=bool)
    snp_r = rows // 2
    snp_c = cols // 2
    mask = np.abs(snp_r[:, None] - snp_c[None, :]) <= int(window)
    if contigs is not None:
        contigs = np.asarray(contigs)
        mask &= contigs[snp_r][:, None] == contigs[snp_c][None, :]
    return mask


def dense_ldstats(G_ref, zero_cell="haldane", window=None, contigs=None, block=512) -> dict:
    """Per-column T_jj, S+_j, S-_j and global F^2, computed in row blocks of the dense T matrix.

    window=None: all pairs.  window=W: only pairs of columns whose SNPs are <= W SNPs apart and on the same contig
    (contigs: array of length m of labels, or None = one contig).  F^2 includes the used pairs plus the diagonal."""
    _check_zero_cell(zero_cell)
    G_ref = np.asarray(G_ref)
    m, n_r = G_ref.shape
    if contigs is not None and len(contigs) != m:
        raise ValueError("contigs must have length m")
    A = dense_encode(G_ref).astype(np.float64)  # (n_r, 2m)
    m2 = 2 * m
    M1 = A.sum(axis=0)
    M0 = n_r - M1
    t_diag = _diag_T(M1, M0, zero_cell)
    s_pos = np.zeros(m2)
    s_neg = np.zeros(m2)
    f2 = float(np.sum(t_diag**2))
    for start in range(0, m2, block):
        rows = np.arange(start, min(start + block, m2))
        if window is None:
            cols = np.arange(m2)
        else:  # only columns whose SNP can be within the window of some row SNP (the mask below is exact)
            snp_lo = max(0, rows[0] // 2 - int(window))
            snp_hi = min(m - 1, rows[-1] // 2 + int(window))
            cols = np.arange(2 * snp_lo, 2 * snp_hi + 2)
        M11 = A[:, rows].T @ A[:, cols]  # (b, len(cols))
        M10 = M1[rows][:, None] - M11
        M01 = M1[cols][None, :] - M11
        M00 = n_r - M11 - M10 - M01
        T = _offdiag_T(M11, M10, M01, M00, zero_cell)
        use = _pair_mask(rows, cols, window, contigs)
        use &= rows[:, None] != cols[None, :]  # k != j
        Tu = np.where(use, T, 0.0)
        s_pos[rows] = np.sum(np.maximum(Tu, 0.0), axis=1)
        s_neg[rows] = np.sum(np.minimum(Tu, 0.0), axis=1)
        f2 += float(np.sum(Tu**2))
    return dict(t_diag=t_diag, s_pos=s_pos, s_neg=s_neg, f2=f2)


# ----------------------------------------------------------------------------------------------------------------
# Section 3: flip probabilities and calibration
# ----------------------------------------------------------------------------------------------------------------
def dense_lo_hi(t_diag, s_pos, s_neg, c):
    t_diag, s_pos, s_neg = (np.asarray(x, dtype=np.float64) for x in (t_diag, s_pos, s_neg))
    lo = c * (t_diag + 2.0 * s_neg)
    hi = c * (t_diag + 2.0 * s_pos)
    return lo, hi


def dense_flip_probs_literal(t_diag, s_pos, s_neg, c) -> np.ndarray:
    """SPEC 3 typed in literally (can lose precision / overflow in extreme regimes; used to check the stable one)."""
    lo, hi = dense_lo_hi(t_diag, s_pos, s_neg, c)
    coeff = np.exp(lo) - 1.0
    beta = np.where(coeff < 0, lo, np.where(coeff > 0, hi, 0.0))
    return (1.0 + coeff / (1.0 + np.exp(beta))) / 2.0


def dense_flip_probs(t_diag, s_pos, s_neg, c) -> np.ndarray:
    """p_j = (1 + coeff_j / (1 + exp(beta_j))) / 2, evaluated with exact algebraic rewrites that avoid cancellation
    and overflow:
      lo_j < 0:  p_j = sigmoid(lo_j) = e / (1 + e), e = exp(lo_j) in (0, 1)
      lo_j = 0:  p_j = 1/2
      lo_j > 0:  coeff/(1+exp(hi)) = (exp(lo)-1)/(1+exp(hi)) = exp(lo-hi) * (1-exp(-lo)) / (1+exp(-hi))."""
    lo, hi = dense_lo_hi(t_diag, s_pos, s_neg, c)
    p = np.full(lo.shape, 0.5)
    neg = lo < 0
    e = np.exp(lo[neg])
    p[neg] = e / (1.0 + e)
    pos = lo > 0
    lp, hp = lo[pos], hi[pos]
    ratio = np.exp(lp - hp) * (-np.expm1(-lp)) / (1.0 + np.exp(-hp))
    p[pos] = (1.0 + ratio) / 2.0
    return p


def dense_nominal_c(f2, m, eps) -> float:
    """Paper calibration: c = eps / (2m * ||T||_F)."""
    return float(eps) / (2.0 * m * np.sqrt(float(f2)))


def dense_eps_xor(p) -> float:
    """eps_xor = sum_j |ln((1 - p_j) / p_j)|."""
    p = np.asarray(p, dtype=np.float64)
    return float(np.sum(np.abs(np.log((1.0 - p) / p))))


def dense_thresholds(p) -> np.ndarray:
    """t_j = round(p_j * 2^32) clamped to [1, 2^32 - 1], as uint32 (via int64)."""
    t = np.round(np.asarray(p, dtype=np.float64) * TWO32)
    t = np.clip(t, 1.0, TWO32 - 1.0)
    return t.astype(np.int64).astype(np.uint32)


def dense_quantise(p) -> np.ndarray:
    """Quantised p_j = t_j / 2^32."""
    return dense_thresholds(p).astype(np.float64) / TWO32


# ----------------------------------------------------------------------------------------------------------------
# Section 5: utility
# ----------------------------------------------------------------------------------------------------------------
def dense_utility(G, S) -> dict:
    """Utility metrics, original G vs released S, both (m, n) with -1 = missing, over cells non-missing in both.

    point_error    = mean over cells of 1[g != s]
    sample_error   = mean over individuals i of L1(g_i, s_i) / m_i   (m_i = #non-missing SNPs of i; = m if none)
    mean_error     = mean over SNPs j of |mean_i s_ij - mean_i g_ij|
    variance_error = mean over SNPs j of |var_i s_ij - var_i g_ij|   (population variance, ddof = 0)
    Individuals / SNPs with no non-missing cell are skipped."""
    G = np.asarray(G).astype(np.float64)
    S = np.asarray(S).astype(np.float64)
    if G.shape != S.shape:
        raise ValueError("shape mismatch")
    m, n = G.shape
    valid = (G >= 0) & (S >= 0)

    diffs = []
    for j in range(m):
        for i in range(n):
            if valid[j, i]:
                diffs.append(1.0 if G[j, i] != S[j, i] else 0.0)
    point_error = float(np.mean(diffs))

    per_sample = []
    for i in range(n):
        v = valid[:, i]
        if v.sum() == 0:
            continue
        per_sample.append(np.sum(np.abs(G[v, i] - S[v, i])) / v.sum())
    sample_error = float(np.mean(per_sample))

    mean_errs, var_errs = [], []
    for j in range(m):
        v = valid[j]
        if v.sum() == 0:
            continue
        g, s = G[j, v], S[j, v]
        mean_errs.append(abs(s.mean() - g.mean()))
        var_errs.append(abs(s.var(ddof=0) - g.var(ddof=0)))
    return dict(
        point_error=point_error,
        sample_error=sample_error,
        mean_error=float(np.mean(mean_errs)),
        variance_error=float(np.mean(var_errs)),
    )


# ----------------------------------------------------------------------------------------------------------------
# test data
# ----------------------------------------------------------------------------------------------------------------
def simulate_genotypes(rng, m, n, missing_rate=0.0, stay=0.8, special=True):
    """Variant-major (m, n) int8 genotypes with LD (Markov haplotypes), some monomorphic / all-het SNPs, -1 missing."""
    f = rng.uniform(0.03, 0.97, size=m)
    G = np.zeros((m, n), dtype=np.int8)
    for _ in range(2):  # two haplotypes
        h = np.zeros((m, n), dtype=np.int8)
        h[0] = rng.random(n) < f[0]
        for j in range(1, m):
            keep = rng.random(n) < stay
            fresh = rng.random(n) < f[j]
            h[j] = np.where(keep, h[j - 1], fresh)
        G += h
    if special and m >= 4:
        idx = rng.choice(m, size=min(m, max(3, m // 10)), replace=False)
        kinds = [0, 2, 1] + list(rng.integers(0, 3, size=len(idx) - 3))
        for j, k in zip(idx, kinds):
            G[j] = k  # all 0 / all 2 / all heterozygous
    if missing_rate > 0:
        G[rng.random((m, n)) < missing_rate] = -1
    return G
