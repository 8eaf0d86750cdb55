"""Encode, noise, XOR, count, flip and decode kernels over one (variant, sample) chunk.

A genotype's two bits travel as one uint8 code ``hi << 1 | lo`` (0 -> 00, 1 -> 01,
2 -> 11; noise may create 10, which decodes to 1). MISSING marks a missing genotype:
never perturbed, counted or flipped.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MISSING = np.uint8(255)


@njit(cache=True, nogil=True)
def encode_codes(G):
    v, s = G.shape
    out = np.empty((v, s), dtype=np.uint8)
    for j in range(v):
        for i in range(s):
            g = G[j, i]
            if g < 0:
                out[j, i] = MISSING
            elif g == 0:
                out[j, i] = 0
            elif g == 1:
                out[j, i] = 1
            else:
                out[j, i] = 3
    return out


@njit(cache=True, nogil=True)
def decode_codes(codes):
    v, s = codes.shape
    out = np.empty((v, s), dtype=np.int8)
    for j in range(v):
        for i in range(s):
            c = codes[j, i]
            if c == MISSING:
                out[j, i] = -1
            else:
                out[j, i] = (c >> 1) + (c & 1)
    return out


@njit(cache=True, nogil=True)
def noise_xor_count(G, words, t_hi, t_lo, block, codes_out, ones_out, nonmiss_out):
    """codes_out = encode(G) xor noise; per sample block of ``block`` samples count the
    1-bits (ones_out) and non-missing genotypes (nonmiss_out), both (v, n_blocks).

    words[j, i] holds the two uint32 of the noise stream for genotype (j, i); a noise bit
    is set when the word is below the column's threshold.
    """
    v, s = G.shape
    for j in range(v):
        th = t_hi[j]
        tl = t_lo[j]
        # Block by block (no division per genotype), branch-free inside.
        for b in range((s + block - 1) // block):
            ones = 0
            called = 0
            for i in range(b * block, min(s, (b + 1) * block)):
                g = G[j, i]
                c = np.uint8((g >= 1) | ((g >= 2) << 1))
                c ^= np.uint8((words[j, i, 0] < th) << 1) | np.uint8(words[j, i, 1] < tl)
                ok = g >= 0
                codes_out[j, i] = c if ok else MISSING
                ones += ok * ((c >> 1) + (c & 1))
                called += ok
            ones_out[j, b] += ones
            nonmiss_out[j, b] += called


@njit(cache=True, nogil=True)
def _hypergeom_inv(good, bad, draws, u):
    """Number of good items among ``draws`` taken without replacement, by inversion of u.

    The support is walked from the mode outwards (mode, mode+1, mode-1, ...), a fixed
    order, so each u in [0, 1) maps to one outcome with exactly the hypergeometric law
    (up to float rounding), in O(standard deviation) steps.
    """
    if draws == 0 or good == 0:
        return 0
    if bad == 0:
        return draws
    total = good + bad
    xmin = max(0, draws - bad)
    xmax = min(draws, good)
    if xmin == xmax:
        return xmin
    mode = int(math.floor((draws + 1) * (good + 1) / (total + 2)))
    mode = min(max(mode, xmin), xmax)

    def logpmf(x):
        return (
            math.lgamma(good + 1)
            - math.lgamma(x + 1)
            - math.lgamma(good - x + 1)
            + math.lgamma(bad + 1)
            - math.lgamma(draws - x + 1)
            - math.lgamma(bad - draws + x + 1)
            - math.lgamma(total + 1)
            + math.lgamma(draws + 1)
            + math.lgamma(total - draws + 1)
        )

    pm = math.exp(logpmf(mode))
    acc = pm
    if u < acc:
        return mode
    up_x, up_p = mode, pm
    dn_x, dn_p = mode, pm
    last = mode
    while up_x < xmax or dn_x > xmin:
        if up_x < xmax:
            x = up_x
            up_p = up_p * (good - x) * (draws - x) / ((x + 1.0) * (bad - draws + x + 1.0))
            up_x = x + 1
            acc += up_p
            last = up_x
            if u < acc:
                return up_x
        if dn_x > xmin:
            x = dn_x
            dn_p = dn_p * x * (bad - draws + x) / ((good - x + 1.0) * (draws - x + 1.0))
            dn_x = x - 1
            acc += dn_p
            last = dn_x
            if u < acc:
                return dn_x
    return last


@njit(cache=True, nogil=True)
def split_flips(k, eligible, uniforms, out):
    """Multivariate hypergeometric split of k flips over blocks with ``eligible`` bits each.

    Drawn block by block (each a hypergeometric against all later blocks), which has the
    same law as choosing k of all eligible bits uniformly and counting them per block.
    """
    nb = eligible.shape[0]
    rest = 0
    for b in range(nb):
        rest += eligible[b]
    remaining = k
    for b in range(nb):
        rest -= eligible[b]
        if b == nb - 1:
            x = remaining
        else:
            x = _hypergeom_inv(eligible[b], rest, remaining, uniforms[b])
        out[b] = x
        remaining -= x


@njit(cache=True, nogil=True)
def plan_chunk(ones, nonmiss, target_counts, uniforms, k_out, direction_out):
    """Flip plan of a chunk of variants: k_j = floor(|noisy count - target count|), split
    over sample blocks. direction -1: turn 1-bits to 0; +1: turn 0-bits to 1."""
    v, nb = ones.shape
    eligible = np.empty(nb, dtype=np.int64)
    for j in range(v):
        for b in range(nb):
            k_out[j, b] = 0
        direction_out[j] = 0
        tgt = target_counts[j]
        if not np.isfinite(tgt):
            continue
        s = 0
        n2 = 0
        for b in range(nb):
            s += ones[j, b]
            n2 += 2 * nonmiss[j, b]
        diff = s - tgt
        if diff >= 1.0:
            direction_out[j] = -1
            for b in range(nb):
                eligible[b] = ones[j, b]
        elif diff <= -1.0:
            direction_out[j] = 1
            for b in range(nb):
                eligible[b] = 2 * nonmiss[j, b] - ones[j, b]
        else:
            continue
        k = int(math.floor(abs(diff)))
        tot = 0
        for b in range(nb):
            tot += eligible[b]
        if k > tot:
            k = tot
        split_flips(k, eligible, uniforms[j], k_out[j])


@njit(cache=True, nogil=True, inline="always")
def _below(word, bound):
    """floor(word * bound / 2^64): a draw in [0, bound) from a uniform 64-bit word.

    Multiply-shift without rejection: an outcome's probability is off by at most
    bound / 2^64 (< 1e-13 for any cohort), far below anything measurable.
    """
    hi_w = word >> np.uint64(32)
    lo_w = word & np.uint64(0xFFFFFFFF)
    b = np.uint64(bound)
    return np.int64((hi_w * b + ((lo_w * b) >> np.uint64(32))) >> np.uint64(32))


@njit(cache=True, nogil=True)
def apply_flips(codes, words, first, k, direction, chosen, eligible):
    """Flip, per variant, k[j] of its eligible bits in this chunk, chosen uniformly.

    Eligible: non-missing bits equal to 1 (direction -1) or 0 (direction +1), numbered in
    (sample, high-then-low) order. The k-subset comes from Floyd's algorithm driven by the
    words words[first[j] : first[j] + k[j]], so only k words of randomness are needed.
    ``chosen`` is a uint8 scratch buffer of at least 2 * n_samples + 1 entries. ``eligible[j]``
    is the number of eligible bits if the caller knows it (pass 1 counted them), else negative.
    """
    v, s = codes.shape
    for j in range(v):
        kj = k[j]
        d = direction[j]
        if kj <= 0 or d == 0:
            continue
        # x = code ^ flipmask has a 1 exactly at the eligible bits
        flipmask = np.uint8(3) if d > 0 else np.uint8(0)
        e = eligible[j]
        if e < 0:
            e = 0
            for i in range(s):
                c = codes[j, i]
                if c != MISSING:
                    x = c ^ flipmask
                    e += (x >> 1) + (x & 1)
        if kj > e:
            kj = e
        chosen[: e + 1] = 0
        # Floyd: for t = e-k .. e-1 take r uniform in [0, t]; add r, or t if r is taken.
        w0 = first[j]
        # Branch-free (the branch is a coin flip the CPU mispredicts): t is new, so chosen[t] = chosen[r]
        # adds t exactly when r is taken, and r is taken afterwards either way (also right when r == t).
        for step in range(kj):
            t = e - kj + step
            r = _below(words[w0 + step], t + 1)
            chosen[t] = chosen[r]
            chosen[r] = 1
        q = 0
        for i in range(s):
            c = codes[j, i]
            if c == MISSING:
                continue
            x = c ^ flipmask
            hb = (x >> 1) & 1
            lb = x & 1
            # chosen[q] is read even for a bit that is not eligible (then masked by hb / lb),
            # which is why chosen must reach index e.
            fh = hb & chosen[q]
            q += hb
            fl = lb & chosen[q]
            q += lb
            codes[j, i] = c ^ ((fh << 1) | fl)


@njit(cache=True, nogil=True)
def dosage_from_calls(calls):
    """(v, s, 2) allele indices (negative = missing or fill) -> (v, s) int8 ALT counts, -1 missing."""
    v, s, _ = calls.shape
    out = np.empty((v, s), dtype=np.int8)
    for j in range(v):
        for i in range(s):
            a = calls[j, i, 0]
            b = calls[j, i, 1]
            if a < 0 or b < 0:
                out[j, i] = -1
            else:
                out[j, i] = a + b
    return out


@njit(cache=True, nogil=True)
def calls_from_codes(codes, out, alt):
    """Decode codes into unphased diploid calls: 0 -> 0/0, 1 -> 0/1, 2 -> 1/1, missing -> ./.; alt[j] gets
    variant j's ALT allele count (what the written chunk holds, checked against the plan)."""
    v, s = codes.shape
    for j in range(v):
        t = 0
        for i in range(s):
            c = codes[j, i]
            if c == MISSING:
                out[j, i, 0] = -1
                out[j, i, 1] = -1
            else:
                d = (c >> 1) + (c & 1)
                out[j, i, 0] = 1 if d == 2 else 0
                out[j, i, 1] = 1 if d >= 1 else 0
                t += d
        alt[j] = t
    return out


@njit(cache=True, nogil=True)
def unpack_codes(packed, s):
    """(v, ceil(s / 2)) bytes of two 4-bit codes (low nibble first; 4 = MISSING), as noise_pack_count writes
    them, -> (v, s) codes."""
    v = packed.shape[0]
    out = np.empty((v, s), dtype=np.uint8)
    for j in range(v):
        for i in range(s):
            nib = (packed[j, i >> 1] >> np.uint8(4 * (i & 1))) & np.uint8(15)
            out[j, i] = MISSING if nib == 4 else nib
    return out


@njit(cache=True, nogil=True)
def noise_pack_count(
    calls, words, t_hi, t_lo, weights, packed, ones_out, nonmiss_out, original_out, digest_out, invalid_out
):
    """Pass 1 of the store pipeline for one sample block, in one sweep over a (v, s, 2) call chunk: what
        dosage_from_calls, noise_xor_count, packing two codes per byte (see unpack_codes) and add_row_digests
        (kernels.fingerprint) do one after the other, plus each variant's original ALT count. ``weights`` (s, 2) are
    the fingerprint's sample weights, or
        (0, 2) to skip the digests. Outputs are per variant: ones_out, nonmiss_out, original_out (v,), digest_out
        (v, 2) added to (uint64, wrapping); packed (v, ceil(s / 2)) zeroed by the caller. invalid_out (v,): alleles
        with an index above 1 (not a genotype of a bi-allelic site: the caller refuses the release if any).
    """
    v, s, _ = calls.shape
    digests = weights.shape[0] > 0
    for j in range(v):
        th = t_hi[j]
        tl = t_lo[j]
        ones = 0
        called = 0
        orig = 0
        bad = 0
        h0 = np.uint64(0)
        h1 = np.uint64(0)
        for i in range(s):
            a = calls[j, i, 0]
            b = calls[j, i, 1]
            ok = (a >= 0) & (b >= 0)
            g = a + b if ok else -1
            c = np.uint8((g >= 1) | ((g >= 2) << 1))
            c ^= np.uint8((words[j, i, 0] < th) << 1) | np.uint8(words[j, i, 1] < tl)
            nib = c if ok else np.uint8(4)
            packed[j, i >> 1] |= nib << np.uint8(4 * (i & 1))
            ones += ok * ((c >> 1) + (c & 1))
            called += ok
            bad += (a > 1) + (b > 1)
            if ok:
                orig += g
            if digests:
                d = np.uint64(g + 1) if ok else np.uint64(0)
                h0 += d * weights[i, 0]
                h1 += d * weights[i, 1]
        ones_out[j] = ones
        nonmiss_out[j] = called
        original_out[j] = orig
        invalid_out[j] = bad
        if digests:
            digest_out[j, 0] += h0
            digest_out[j, 1] += h1


@njit(cache=True, nogil=True)
def _bswap64(x):
    y = np.uint64(0)
    for _ in range(8):
        y = (y << np.uint64(8)) | (x & np.uint64(0xFF))
        x >>= np.uint64(8)
    return y


@njit(cache=True, nogil=True)
def ctr_counter_blocks(first_blocks, n_blocks, out):
    """AES-CTR counter blocks (128-bit big-endian block indices) for the block runs first_blocks[r] ..
    first_blocks[r] + n_blocks[r] - 1, concatenated into ``out`` (total, 2) uint64 (native order, so the high
    word stays zero and the low word holds the byte-swapped index): encrypting them with AES-ECB gives those
    keystream blocks in one call, without setting up a CTR cipher per run."""
    q = 0
    for r in range(first_blocks.size):
        b = first_blocks[r]
        for t in range(n_blocks[r]):
            out[q, 0] = 0
            out[q, 1] = _bswap64(np.uint64(b + t))
            q += 1
