"""Tile kernel of the reference-panel LD statistics (SPEC 2).

The panel is bit-packed per column of the encoded reference (column 2j = high bit of SNP j,
2j+1 = low bit): ``WT[w, c]`` is word w of column c over the n_r panel members. For a
pair of columns M11 is the popcount of their ANDed words; M10, M01 and M00 follow from the
column counts, so the log-odds of a pair is a sum of table lookups (every count is an
integer in [0, n_r]). For small panels every possible value is precomputed once in a
table indexed by (M1a, M1b, M11), built with the same scalar ``_pair_t`` as the general
path, so both paths produce bitwise identical T.

Summation order is part of the result (no fast-math anywhere: sums must not depend on the
machine or the compiler), so it is fixed explicitly: a row's partner columns q are summed
in LANES interleaved partial sums (lane = q mod LANES within the task, each lane in
increasing q) that are combined in lane order at the end of the row. The vector body
below and the scalar head/tail code implement exactly that order, which is what lets the
body run as SIMD without reassociating anything.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

HALDANE = 0
PROVGEN = 1
LANES = 8
# Largest panel whose (n+1)^3 table of every possible T is precomputed (16.8 MB at 127);
# a row's slice ((n+1)^2 doubles) then stays cache resident.
TABLE_MAX_N = 127


@intrinsic
def _ctpop(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _pair_t(m11, m1a, m1b, n, mode, logtab, logz):
    """T of one column pair from M11 and the column counts (logtab/logz: see ldstats._log_table)."""
    m10 = m1a - m11
    m01 = m1b - m11
    m00 = n - m1a - m1b + m11
    if mode == HALDANE:
        # logtab[x] = ln(x + 0.5)
        num = logtab[m11] + logtab[m00]
        den = logtab[m10] + logtab[m01]
    else:
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
def pair_table(n, mode, logtab, logz):
    """Flat table of T at index (M1a*(n+1) + M1b)*(n+1) + M11 for every feasible count triple."""
    s = n + 1
    tab = np.zeros(s * s * s)
    for a in range(s):
        for b in range(s):
            base = (a * s + b) * s
            for m11 in range(max(0, a + b - n), min(a, b) + 1):
                tab[base + m11] = _pair_t(np.int64(m11), np.int64(a), np.int64(b), np.int64(n), mode, logtab, logz)
    return tab


# ------------------------------------------------------------------------------------------------
# SIMD body. LLVM does not vectorise the table lookups by itself (it deems gathers too costly on
# some targets and cannot split the row sums into lanes without reassociation), so the body is
# written as vector IR: LANES columns per step, popcounts, a gather of T, and lane-wise adds. Every
# operation is an IEEE-exact elementwise op, so the result is the same on any target and equals
# the scalar path lane by lane.
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_F64 = ir.DoubleType()
_VI64 = ir.VectorType(_I64, LANES)
_VF64 = ir.VectorType(_F64, LANES)
_VPTR = ir.VectorType(ir.PointerType(_F64), LANES)
_VI1 = ir.VectorType(ir.IntType(1), LANES)


def _splat(builder, value, vty):
    undef = ir.Constant(vty, ir.Undefined)
    v = builder.insert_element(undef, value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, undef, ir.Constant(ir.VectorType(_I32, vty.count), [0] * vty.count))


def _vload(builder, base_ptr, index, vty):
    return builder.load(builder.bitcast(builder.gep(base_ptr, [index]), ir.PointerType(vty)), align=8)


def _gather(builder, base_ptr, idx):
    fnty = ir.FunctionType(_VF64, [_VPTR, _I32, _VI1, _VF64])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.gather.v{LANES}f64.v{LANES}p0")
    addr = builder.add(_splat(builder, builder.ptrtoint(base_ptr, _I64), _VI64),
                       builder.mul(idx, ir.Constant(_VI64, [8] * LANES)))
    return builder.call(fn, [builder.inttoptr(addr, _VPTR), ir.Constant(_I32, 8), ir.Constant(_VI1, [1] * LANES),
                             ir.Constant(_VF64, ir.Undefined)])


def _make_body(variant):
    """Intrinsic running ``nblk`` SIMD steps of one row from K-local column q0 (a multiple of LANES).

    variant: "table" (T from the count-triple table) or HALDANE / PROVGEN (T from log lookups).
    Arguments: WT, p (row column in WT), kofs (WT column of K-local column 0), q0, nblk,
    cnt_k (K-local counts, or K-local table offsets M1b*(n+1) for the table), a (row count, or
    the row's table base M1a*(n+1)^2), n, tab (table or logtab), logz, spk, snk, acc.
    acc holds 3*LANES lanes: row sums of max(T, 0), of min(T, 0), and the tile's sum of T^2.
    """

    @intrinsic
    def body(typingctx, WT, p, kofs, q0, nblk, cnt_k, a, n, tab, logz, spk, snk, acc):
        sig = types.void(WT, p, kofs, q0, nblk, cnt_k, a, n, tab, logz, spk, snk, acc)

        def codegen(context, builder, signature, args):
            WT_v, p_v, kofs_v, q0_v, nblk_v, cnt_v, a_v, n_v, tab_v, logz_v, spk_v, snk_v, acc_v = args
            ta = signature.args

            def arr(i, v):
                return context.make_array(ta[i])(context, builder, v)

            wt = arr(0, WT_v)
            nw = builder.extract_value(wt.shape, 0)
            ncols = builder.extract_value(wt.shape, 1)
            wtp, cntp, tabp = wt.data, arr(5, cnt_v).data, arr(8, tab_v).data
            spkp, snkp = arr(10, spk_v).data, arr(11, snk_v).data
            accp = builder.bitcast(arr(12, acc_v).data, ir.PointerType(_VF64))
            ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VI64, [_VI64]),
                                                   f"llvm.ctpop.v{LANES}i64")
            zero = ir.Constant(_VF64, [0.0] * LANES)
            lanes = [cgutils.alloca_once_value(builder, builder.load(builder.gep(accp, [ir.Constant(_I64, i)]),
                                                                     align=8)) for i in range(3)]
            m11_slot = cgutils.alloca_once(builder, _VI64)
            with cgutils.for_range(builder, nblk_v) as loop:
                qk = builder.add(q0_v, builder.mul(loop.index, ir.Constant(_I64, LANES)))
                col = builder.add(kofs_v, qk)
                builder.store(ir.Constant(_VI64, [0] * LANES), m11_slot)
                with cgutils.for_range(builder, nw) as wl:
                    row = builder.mul(wl.index, ncols)
                    words = _vload(builder, wtp, builder.add(row, col), _VI64)
                    mine = _splat(builder, builder.load(builder.gep(wtp, [builder.add(row, p_v)])), _VI64)
                    pc = builder.call(ctpop, [builder.and_(words, mine)])
                    builder.store(builder.add(builder.load(m11_slot), pc), m11_slot)
                m11 = builder.load(m11_slot)
                cnt = _vload(builder, cntp, qk, _VI64)
                if variant == "table":
                    t = _gather(builder, tabp, builder.add(builder.add(_splat(builder, a_v, _VI64), cnt), m11))
                else:
                    av = _splat(builder, a_v, _VI64)
                    m10 = builder.sub(av, m11)
                    m01 = builder.sub(cnt, m11)
                    m00 = builder.add(builder.sub(builder.sub(_splat(builder, n_v, _VI64), av), cnt), m11)
                    num = builder.fadd(_gather(builder, tabp, m11), _gather(builder, tabp, m00))
                    den = builder.fadd(_gather(builder, tabp, m10), _gather(builder, tabp, m01))
                    if variant == PROVGEN:
                        z = _splat(builder, logz_v, _VF64)
                        izero = ir.Constant(_VI64, [0] * LANES)
                        num = builder.select(builder.or_(builder.icmp_signed("==", m11, izero),
                                                         builder.icmp_signed("==", m00, izero)), z, num)
                        den = builder.select(builder.or_(builder.icmp_signed("==", m10, izero),
                                                         builder.icmp_signed("==", m01, izero)), z, den)
                    t = builder.fsub(num, den)
                tp = builder.select(builder.fcmp_ordered(">", t, zero), t, zero)
                tn = builder.select(builder.fcmp_ordered("<", t, zero), t, zero)
                for slot, x in zip(lanes, (tp, tn, builder.fmul(t, t))):
                    builder.store(builder.fadd(builder.load(slot), x), slot)
                for basep, x in ((spkp, tp), (snkp, tn)):
                    ptr = builder.bitcast(builder.gep(basep, [qk]), ir.PointerType(_VF64))
                    builder.store(builder.fadd(builder.load(ptr, align=8), x), ptr, align=8)
            for i, slot in enumerate(lanes):
                builder.store(builder.load(slot), builder.gep(accp, [ir.Constant(_I64, i)]), align=8)
            return context.get_dummy_value()

        return sig, codegen

    return body


_body_table = _make_body("table")
_body_haldane = _make_body(HALDANE)
_body_provgen = _make_body(PROVGEN)


@njit(cache=True, nogil=True, inline="always")
def _m11(WT, p, c):
    m = 0
    for w in range(WT.shape[0]):
        m += _ctpop(WT[w, p] & WT[w, c])
    return np.int64(m)


@njit(cache=True, nogil=True, inline="always")
def _scalar_range(WT, p, kofs, qs, qe, cnt_k, a, n, mode, use_table, tab, logz, spk, snk, acc):
    for q in range(qs, qe):
        m11 = _m11(WT, p, kofs + q)
        if use_table:
            t = tab[a + cnt_k[q] + m11]
        else:
            t = _pair_t(m11, a, cnt_k[q], n, mode, tab, logz)
        tp = t if t > 0.0 else 0.0
        tn = t if t < 0.0 else 0.0
        lane = q % LANES
        acc[lane] += tp
        acc[LANES + lane] += tn
        acc[2 * LANES + lane] += t * t
        spk[q] += tp
        snk[q] += tn


@njit(cache=True, nogil=True)
def _row_range(WT, p, kofs, qs, qe, cnt_k, a, n, mode, use_table, tab, logz, spk, snk, acc):
    """Partner columns [qs, qe) (K-local) of row column p: scalar head and tail, SIMD body."""
    head = min(qe, (qs + LANES - 1) // LANES * LANES)
    nblk = (qe - head) // LANES
    tail = head + nblk * LANES
    _scalar_range(WT, p, kofs, qs, head, cnt_k, a, n, mode, use_table, tab, logz, spk, snk, acc)
    if nblk > 0:
        if use_table:
            _body_table(WT, p, kofs, head, nblk, cnt_k, a, n, tab, logz, spk, snk, acc)
        elif mode == HALDANE:
            _body_haldane(WT, p, kofs, head, nblk, cnt_k, a, n, tab, logz, spk, snk, acc)
        else:
            _body_provgen(WT, p, kofs, head, nblk, cnt_k, a, n, tab, logz, spk, snk, acc)
    _scalar_range(WT, p, kofs, tail, qe, cnt_k, a, n, mode, use_table, tab, logz, spk, snk, acc)


@njit(cache=True, nogil=True)
def ld_tile(WT, counts, contig, run_end, ni, kofs, nk, diagonal, window, n, mode, use_table, tab, logz,
            spos_i, sneg_i, spos_k, sneg_k):
    """Accumulate S+/S- of the columns of the task's I rows and K rows from their pairs.

    WT (nw, 2r) / counts (2r,) are the packed columns of the task's r stacked SNP rows: I rows
    are rows [0, ni), K rows are rows [kofs, kofs + nk) (kofs = 0 for a diagonal task, whose
    I and K rows coincide and which visits only pairs with q > p, including the pair formed
    by the two bits of one SNP). ``window < 0`` means all pairs; otherwise only SNPs at most
    ``window`` apart with equal ``contig`` (diagonal tasks only; run_end[k] is the end of
    k's run of equal contig). ``tab`` is ``pair_table`` if ``use_table``, else the log table.
    Output arrays are indexed by local column 2*row + bit (bit 0 = high). Returns the sum of
    T^2 over the pairs visited.
    """
    s = n + 1
    kofs2 = 2 * kofs
    cnt_k = counts[kofs2 : kofs2 + 2 * nk].copy()
    if use_table:
        cnt_k *= s
    acc = np.zeros(3 * LANES)
    for p in range(2 * ni):
        j = p >> 1
        a = counts[p] * s * s if use_table else counts[p]
        for lane in range(2 * LANES):
            acc[lane] = 0.0
        qs = p + 1 if diagonal else 0
        qe = 2 * nk
        if window < 0:
            _row_range(WT, p, kofs2, qs, qe, cnt_k, a, n, mode, use_table, tab, logz, spos_k, sneg_k, acc)
        else:
            qe = min(qe, 2 * (j + window + 1))
            cj = contig[j]
            k = qs >> 1
            while 2 * k < qe:
                r = run_end[k]
                if contig[k] == cj:
                    _row_range(WT, p, kofs2, max(qs, 2 * k), min(qe, 2 * r), cnt_k, a, n, mode, use_table, tab,
                               logz, spos_k, sneg_k, acc)
                k = r
        sp = 0.0
        sn = 0.0
        for lane in range(LANES):
            sp += acc[lane]
            sn += acc[LANES + lane]
        spos_i[p] = sp
        sneg_i[p] = sn
    f2 = 0.0
    for lane in range(LANES):
        f2 += acc[2 * LANES + lane]
    return f2


@njit(cache=True, nogil=True)
def pack_columns(G):
    """Variant-major genotypes (r, n) int8 -> column words WT (ceil(n/64), 2r) uint64 and counts (2r,)."""
    r, n = G.shape
    nw = (n + 63) // 64
    WT = np.zeros((nw, 2 * r), dtype=np.uint64)
    counts = np.zeros(2 * r, dtype=np.int64)
    for j in range(r):
        ch = 0
        cl = 0
        for w in range(nw):
            h = np.uint64(0)
            lo = np.uint64(0)
            for i in range(w * 64, min(n, w * 64 + 64)):
                g = G[j, i]
                bit = np.uint64(i - w * 64)
                h |= np.uint64(g == 2) << bit
                lo |= np.uint64(g >= 1) << bit
            WT[w, 2 * j] = h
            WT[w, 2 * j + 1] = lo
            ch += _ctpop(h)
            cl += _ctpop(lo)
        counts[2 * j] = ch
        counts[2 * j + 1] = cl
    return WT, counts


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
