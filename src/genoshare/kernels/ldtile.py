"""Tile kernel of the reference-panel LD statistics (SPEC 2).

The reference is bit-packed per SNP: ``hi[j]`` and ``lo[j]`` hold, over the n_r panel
members, the high bit (genotype 2) and the low bit (genotype >= 1) as uint64 words. For a
pair of SNPs the four column-pair co-occurrence counts M11 are popcounts of ANDed words;
M10, M01 and M00 follow from the column counts. The log-odds of a pair is a sum of table
lookups because every count is an integer in [0, n_r].
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

HALDANE = 0
PROVGEN = 1


@intrinsic
def _ctpop(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _pair_t(m11, m1a, m1b, n, mode, logtab, logz):
    m10 = m1a - m11
    m01 = m1b - m11
    m00 = n - m1a - m1b + m11
    if mode == HALDANE:
        # logtab[x] = ln(x + 0.5)
        return logtab[m11] + logtab[m00] - logtab[m10] - logtab[m01]
    # provgen: ln(M11*M00 + z) - ln(M10*M01 + z); logtab[x] = ln(x); z only matters at 0
    if m11 == 0 or m00 == 0:
        num = logz
    else:
        num = logtab[m11] + logtab[m00]
    if m10 == 0 or m01 == 0:
        den = logz
    else:
        den = logtab[m10] + logtab[m01]
    return num - den


@njit(cache=True, nogil=True)
def ld_tile(hi, lo, count_hi, count_lo, contig, i0, i1, k0, k1, window, n, mode, logtab, logz,
            spos_i, sneg_i, spos_k, sneg_k):
    """Accumulate S+/S- of the columns of SNPs [i0, i1) and [k0, k1) from their pairs.

    Pairs with k <= j are skipped, so a diagonal tile (i0 == k0) counts each pair once,
    and it also adds the pair formed by the two bits of one SNP. ``window < 0`` means all
    pairs. Returns the sum of T^2 over the unordered off-diagonal column pairs visited.
    Output arrays are indexed by local column 2*(j - i0) + bit (bit 0 = high).
    """
    nw = hi.shape[1]
    f2 = 0.0
    for j in range(i0, i1):
        a = 2 * (j - i0)
        mh_j = count_hi[j]
        ml_j = count_lo[j]
        acc_hp = 0.0
        acc_hn = 0.0
        acc_lp = 0.0
        acc_ln = 0.0
        if i0 == k0:
            # The two bits of SNP j form a column pair too.
            c = 0
            for w in range(nw):
                c += _ctpop(hi[j, w] & lo[j, w])
            t = _pair_t(np.int64(c), mh_j, ml_j, n, mode, logtab, logz)
            f2 += t * t
            if t > 0:
                acc_hp += t
                acc_lp += t
            else:
                acc_hn += t
                acc_ln += t
        kstart = k0
        if kstart <= j:
            kstart = j + 1
        kend = k1
        if window >= 0 and j + window + 1 < kend:
            kend = j + window + 1
        cj = contig[j]
        for k in range(kstart, kend):
            if window >= 0 and contig[k] != cj:
                continue
            chh = 0
            chl = 0
            clh = 0
            cll = 0
            for w in range(nw):
                hj = hi[j, w]
                lj = lo[j, w]
                hk = hi[k, w]
                lk = lo[k, w]
                chh += _ctpop(hj & hk)
                chl += _ctpop(hj & lk)
                clh += _ctpop(lj & hk)
                cll += _ctpop(lj & lk)
            mh_k = count_hi[k]
            ml_k = count_lo[k]
            b = 2 * (k - k0)
            t1 = _pair_t(np.int64(chh), mh_j, mh_k, n, mode, logtab, logz)
            t2 = _pair_t(np.int64(chl), mh_j, ml_k, n, mode, logtab, logz)
            t3 = _pair_t(np.int64(clh), ml_j, mh_k, n, mode, logtab, logz)
            t4 = _pair_t(np.int64(cll), ml_j, ml_k, n, mode, logtab, logz)
            f2 += t1 * t1 + t2 * t2 + t3 * t3 + t4 * t4
            # high(j) with high(k), low(k); low(j) with high(k), low(k)
            acc_hp += max(t1, 0.0) + max(t2, 0.0)
            acc_hn += min(t1, 0.0) + min(t2, 0.0)
            acc_lp += max(t3, 0.0) + max(t4, 0.0)
            acc_ln += min(t3, 0.0) + min(t4, 0.0)
            spos_k[b] += max(t1, 0.0) + max(t3, 0.0)
            sneg_k[b] += min(t1, 0.0) + min(t3, 0.0)
            spos_k[b + 1] += max(t2, 0.0) + max(t4, 0.0)
            sneg_k[b + 1] += min(t2, 0.0) + min(t4, 0.0)
        spos_i[a] += acc_hp
        sneg_i[a] += acc_hn
        spos_i[a + 1] += acc_lp
        sneg_i[a + 1] += acc_ln
    return f2


@njit(cache=True, nogil=True)
def pack_bits(G):
    """Bit-pack a variant-major genotype matrix (m, n) into high/low uint64 words (m, ceil(n/64))."""
    m, n = G.shape
    nw = (n + 63) // 64
    hi = np.zeros((m, nw), dtype=np.uint64)
    lo = np.zeros((m, nw), dtype=np.uint64)
    for j in range(m):
        for i in range(n):
            g = G[j, i]
            bit = np.uint64(1) << np.uint64(i & 63)
            if g >= 1:
                lo[j, i >> 6] |= bit
            if g == 2:
                hi[j, i >> 6] |= bit
    return hi, lo
