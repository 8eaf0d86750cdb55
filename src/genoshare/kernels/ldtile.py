"""Tile kernels of the reference-panel LD statistics (SPEC 2).

The panel is bit-packed per column of the encoded reference (column 2j = high bit of SNP j,
2j+1 = low bit): ``WT[w, c]`` is word w of column c over the n_r panel members. For a
pair of columns M11 is the popcount of their ANDed words; M10, M01 and M00 follow from the
column counts, so the log-odds of a pair is a sum of table lookups (every count is an
integer in [0, n_r]). For panels of up to TABLE_MAX_N every possible T is precomputed once
in a table indexed by (M1a, M1b, M11), built with the same scalar ``_pair_t`` as the general
path, so every path produces bitwise identical T.

Two kernels: ``ld_tile`` visits a task's pairs in panel order (windows, contigs, and panels
too large for the table); ``ld_tile_runs`` serves all-pairs tasks from deduplicated columns
sorted by count (see its section below).

Summation order is part of the result (no fast-math anywhere: sums must not depend on the
machine, the compiler or the thread count), so it is fixed explicitly: a row's partner
columns q are summed in LANES interleaved partial sums (lane = q mod LANES, each lane in
increasing q) that are combined in lane order at the end of the row. The vector bodies and
the scalar head/tail code implement exactly that order, which is what lets the bodies run as
SIMD without reassociating anything.
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
# Rows whose contributions to the partner columns are summed apart before joining the task's
# totals, and every row's sum of T^2 is formed apart too: shorter chains of additions, so
# rounding stays near that of pairwise summation even in tasks of thousands of rows.
ROW_BLOCK = 256
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
    """Flat table of T at index (M1a*(n+1) + M1b)*(n+1) + M11 for every feasible count triple
    (infeasible entries are 0)."""
    s = n + 1
    # LANES * LANES spare entries: the permute lookups load whole registers past a row's end.
    tab = np.zeros(s * s * s + LANES * LANES)
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
    addr = builder.add(
        _splat(builder, builder.ptrtoint(base_ptr, _I64), _VI64), builder.mul(idx, ir.Constant(_VI64, [8] * LANES))
    )
    return builder.call(
        fn,
        [
            builder.inttoptr(addr, _VPTR),
            ir.Constant(_I32, 8),
            ir.Constant(_VI1, [1] * LANES),
            ir.Constant(_VF64, ir.Undefined),
        ],
    )


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
            ctpop = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_VI64, [_VI64]), f"llvm.ctpop.v{LANES}i64"
            )
            zero = ir.Constant(_VF64, [0.0] * LANES)
            lanes = [
                cgutils.alloca_once_value(builder, builder.load(builder.gep(accp, [ir.Constant(_I64, i)]), align=8))
                for i in range(3)
            ]
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
                        num = builder.select(
                            builder.or_(builder.icmp_signed("==", m11, izero), builder.icmp_signed("==", m00, izero)),
                            z,
                            num,
                        )
                        den = builder.select(
                            builder.or_(builder.icmp_signed("==", m10, izero), builder.icmp_signed("==", m01, izero)),
                            z,
                            den,
                        )
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


@njit(cache=True, nogil=True)
def ld_tile(
    WT,
    counts,
    contig,
    run_end,
    ni,
    kofs,
    nk,
    diagonal,
    window,
    n,
    mode,
    use_table,
    tab,
    logz,
    spos_i,
    sneg_i,
    spos_k,
    sneg_k,
):
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
    f2 = 0.0
    kp = np.zeros(2 * nk)  # this row block's contributions to spos_k / sneg_k, in [touch_lo, touch_hi)
    kn = np.zeros(2 * nk)
    touch_lo = 2 * nk
    touch_hi = 0
    # A row's partner ranges (K-local columns): [seg[2g], seg[2g+1]).
    seg = np.empty(2 * nk + 2, dtype=np.int64)
    for p in range(2 * ni):
        j = p >> 1
        a = counts[p] * s * s if use_table else counts[p]
        for lane in range(3 * LANES):
            acc[lane] = 0.0
        qs = p + 1 if diagonal else 0
        qe = 2 * nk
        nseg = 0
        if window < 0:
            seg[0] = qs
            seg[1] = qe
            nseg = 1
        else:
            qe = min(qe, 2 * (j + window + 1))
            cj = contig[j]
            k = qs >> 1
            while 2 * k < qe:
                r = run_end[k]
                if contig[k] == cj:
                    seg[2 * nseg] = max(qs, 2 * k)
                    seg[2 * nseg + 1] = min(qe, 2 * r)
                    nseg += 1
                k = r
        if nseg > 0:
            touch_lo = min(touch_lo, seg[0])
            touch_hi = max(touch_hi, seg[2 * nseg - 1])
        # Everything below is inline on purpose: calling a function per row would make numba
        # reference-count every array argument, which costs as much as a short row.
        for g in range(nseg):
            lo = seg[2 * g]
            hi = seg[2 * g + 1]
            head = min(hi, (lo + LANES - 1) // LANES * LANES)
            nblk = (hi - head) // LANES
            tail = head + nblk * LANES
            # head, SIMD body, tail: each lane in increasing q
            for part in range(3):
                if part == 1:
                    if use_table:
                        _body_table(WT, p, kofs2, head, nblk, cnt_k, a, n, tab, logz, kp, kn, acc)
                    elif mode == HALDANE:
                        _body_haldane(WT, p, kofs2, head, nblk, cnt_k, a, n, tab, logz, kp, kn, acc)
                    else:
                        _body_provgen(WT, p, kofs2, head, nblk, cnt_k, a, n, tab, logz, kp, kn, acc)
                    continue
                q0, q1 = (lo, head) if part == 0 else (tail, hi)
                for q in range(q0, q1):
                    m11 = 0
                    for w in range(WT.shape[0]):
                        m11 += _ctpop(WT[w, p] & WT[w, kofs2 + q])
                    if use_table:
                        t = tab[a + cnt_k[q] + m11]
                    else:
                        t = _pair_t(np.int64(m11), a, cnt_k[q], n, mode, tab, logz)
                    tp = t if t > 0.0 else 0.0
                    tn = t if t < 0.0 else 0.0
                    lane = q % LANES
                    acc[lane] += tp
                    acc[LANES + lane] += tn
                    acc[2 * LANES + lane] += t * t
                    kp[q] += tp
                    kn[q] += tn
        sp = 0.0
        sn = 0.0
        fr = 0.0
        for lane in range(LANES):
            sp += acc[lane]
            sn += acc[LANES + lane]
            fr += acc[2 * LANES + lane]
        spos_i[p] = sp
        sneg_i[p] = sn
        f2 += fr
        if (p + 1) % ROW_BLOCK == 0 or p == 2 * ni - 1:
            for q in range(touch_lo, touch_hi):
                spos_k[q] += kp[q]
                sneg_k[q] += kn[q]
                kp[q] = 0.0
                kn[q] = 0.0
            touch_lo = 2 * nk
            touch_hi = 0
    return f2


# ------------------------------------------------------------------------------------------------
# All-pairs tasks: deduplicated columns in runs of equal count.
#
# Within an all-pairs task the order of a row's partners is free, so the partner columns are
# deduplicated (a panel has many identical columns: monomorphic, singletons of one person, ...;
# a unique column stands for all its copies through a weight) and sorted into runs of equal
# count, each padded with weight-0 columns to a multiple of LANES. Inside a run M1a and M1b are
# fixed, so T depends on M11 alone and the few table entries T[a][b][0..min(a, b)] can sit in
# registers: on AVX-512 hosts the lookup is a register permute instead of a (slow) gather. Both
# lookups return the same table entries, so the result does not depend on which one ran.


def _has_avx512() -> bool:
    from numba.core import config
    from llvmlite import binding as ll

    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return False  # compiling for a generic target: only portable IR
    try:
        return bool(ll.get_host_cpu_features()["avx512f"])
    except (KeyError, RuntimeError):
        return False


_AVX512 = _has_avx512()
# registers of LANES table entries a permute lookup needs, by variant (0 = gather)
_PERM_REGS = {"gather": 0, "perm8": 1, "perm16": 2, "perm64": 8}


def _lookup(builder, kind, rowp, regs, m11):
    """T at entries m11 of the run's table row (regs: that row preloaded, for permutes)."""
    if not regs:
        return _gather(builder, rowp, m11)
    if len(regs) == 1:
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_VF64, [_VF64, _VI64]), "llvm.x86.avx512.permvar.df.512"
        )
        return builder.call(fn, [regs[0], m11])
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_VF64, [_VF64, _VI64, _VF64]), "llvm.x86.avx512.vpermi2var.pd.512"
    )
    part = [builder.call(fn, [regs[2 * i], m11, regs[2 * i + 1]]) for i in range(len(regs) // 2)]
    bit = 16
    while len(part) > 1:
        hi = builder.icmp_unsigned(
            "!=", builder.and_(m11, ir.Constant(_VI64, [bit] * LANES)), ir.Constant(_VI64, [0] * LANES)
        )
        part = [builder.select(hi, part[2 * i + 1], part[2 * i]) for i in range(len(part) // 2)]
        bit *= 2
    return part[0]


def _make_run_body(kind, weighted):
    """Intrinsic running ``nblk`` SIMD steps over positions [q0, q0 + LANES*nblk) of one run.

    Arguments: KW (nw, Q) partner words, RW / r (the row's words are RW[:, r]), q0, nblk, kw
    (partner weights), tab, base (index of T[a][b][0]), mu (the row's weight), spk, snk, acc.
    Weighted: acc lanes += max(T,0)*w, min(T,0)*w, T^2*(w*mu); spk/snk += max/min(T,0)*mu.
    Unweighted is the same with w = mu = 1 (so the same bits: multiplying by 1 is exact).
    """
    nregs = _PERM_REGS[kind] if _AVX512 else 0

    @intrinsic
    def body(typingctx, KW, RW, r, q0, nblk, kw, tab, base, mu, spk, snk, acc):
        sig = types.void(KW, RW, r, q0, nblk, kw, tab, base, mu, spk, snk, acc)

        def codegen(context, builder, signature, args):
            KW_v, RW_v, r_v, q0_v, nblk_v, kw_v, tab_v, base_v, mu_v, spk_v, snk_v, acc_v = args
            ta = signature.args

            def arr(i, v):
                return context.make_array(ta[i])(context, builder, v)

            kwa, rwa = arr(0, KW_v), arr(1, RW_v)
            nw = builder.extract_value(kwa.shape, 0)
            kcols = builder.extract_value(kwa.shape, 1)
            rcols = builder.extract_value(rwa.shape, 1)
            kwp, rwp, wtp = kwa.data, rwa.data, arr(5, kw_v).data
            rowp = builder.gep(arr(6, tab_v).data, [base_v])
            spkp, snkp = arr(9, spk_v).data, arr(10, snk_v).data
            accp = builder.bitcast(arr(11, acc_v).data, ir.PointerType(_VF64))
            ctpop = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_VI64, [_VI64]), f"llvm.ctpop.v{LANES}i64"
            )
            regs = [
                builder.load(
                    builder.bitcast(builder.gep(rowp, [ir.Constant(_I64, LANES * i)]), ir.PointerType(_VF64)), align=8
                )
                for i in range(nregs)
            ]
            zero = ir.Constant(_VF64, [0.0] * LANES)
            mus = _splat(builder, mu_v, _VF64)
            lanes = [
                cgutils.alloca_once_value(builder, builder.load(builder.gep(accp, [ir.Constant(_I64, i)]), align=8))
                for i in range(3)
            ]
            m11_slot = cgutils.alloca_once(builder, _VI64)
            with cgutils.for_range(builder, nblk_v) as loop:
                q = builder.add(q0_v, builder.mul(loop.index, ir.Constant(_I64, LANES)))
                if nregs:  # permutes need n < 64: one word
                    words = _vload(builder, kwp, q, _VI64)
                    mine = _splat(builder, builder.load(builder.gep(rwp, [r_v])), _VI64)
                    m11 = builder.call(ctpop, [builder.and_(words, mine)])
                else:
                    builder.store(ir.Constant(_VI64, [0] * LANES), m11_slot)
                    with cgutils.for_range(builder, nw) as wl:
                        words = _vload(builder, kwp, builder.add(builder.mul(wl.index, kcols), q), _VI64)
                        mine = _splat(
                            builder,
                            builder.load(builder.gep(rwp, [builder.add(builder.mul(wl.index, rcols), r_v)])),
                            _VI64,
                        )
                        pc = builder.call(ctpop, [builder.and_(words, mine)])
                        builder.store(builder.add(builder.load(m11_slot), pc), m11_slot)
                    m11 = builder.load(m11_slot)
                t = _lookup(builder, kind, rowp, regs, m11)
                tp = builder.select(builder.fcmp_ordered(">", t, zero), t, zero)
                tn = builder.select(builder.fcmp_ordered("<", t, zero), t, zero)
                tt = builder.fmul(t, t)
                if weighted:
                    w = _vload(builder, wtp, q, _VF64)
                    adds = (builder.fmul(tp, w), builder.fmul(tn, w), builder.fmul(tt, builder.fmul(w, mus)))
                    kadds = (builder.fmul(tp, mus), builder.fmul(tn, mus))
                else:
                    adds = (tp, tn, tt)
                    kadds = (tp, tn)
                for slot, x in zip(lanes, adds):
                    builder.store(builder.fadd(builder.load(slot), x), slot)
                for basep, x in zip((spkp, snkp), kadds):
                    ptr = builder.bitcast(builder.gep(basep, [q]), ir.PointerType(_VF64))
                    builder.store(builder.fadd(builder.load(ptr, align=8), x), ptr, align=8)
            for i, slot in enumerate(lanes):
                builder.store(builder.load(slot), builder.gep(accp, [ir.Constant(_I64, i)]), align=8)
            return context.get_dummy_value()

        return sig, codegen

    return body


_run_gather = _make_run_body("gather", True)
_run_gather_1 = _make_run_body("gather", False)
_run_perm8 = _make_run_body("perm8", True)
_run_perm8_1 = _make_run_body("perm8", False)
_run_perm16 = _make_run_body("perm16", True)
_run_perm16_1 = _make_run_body("perm16", False)
_run_perm64 = _make_run_body("perm64", True)
_run_perm64_1 = _make_run_body("perm64", False)


@njit(cache=True, nogil=True)
def column_layout(WT, counts, c0, c1):
    """Deduplicated layout of columns [c0, c1) of WT in runs of equal count.

    Returns (pos, LW, lw, lcnt, run_start, run_cnt, run_fast): column c0 + i is a copy of the
    unique column at position pos[i]; LW (nw, Q) / lw (Q,) / lcnt (Q,) hold the words, weight
    (number of copies; 0 for padding) and count of each position. Run k covers positions
    [run_start[k], run_start[k+1]) (a multiple of LANES), all of count run_cnt[k], by
    increasing count; within a run, columns appear in order of first occurrence, single
    copies before multiple ones, so its first run_fast[k] steps of LANES have weight 1 only.
    """
    nw = WT.shape[0]
    nc = c1 - c0
    # Group identical columns with an open-addressing hash table (first-occurrence order).
    bits = 1
    while (1 << bits) < 2 * nc:
        bits += 1
    mask = (1 << bits) - 1
    slot = np.full(1 << bits, -1, dtype=np.int64)
    gid = np.empty(nc, dtype=np.int64)
    gfirst = np.empty(nc, dtype=np.int64)
    gsize = np.zeros(nc, dtype=np.int64)
    ng = 0
    for i in range(nc):
        c = c0 + i
        h = np.uint64(0x9E3779B97F4A7C15)
        for w in range(nw):
            h = (h ^ WT[w, c]) * np.uint64(0xBF58476D1CE4E5B9)
        k = np.int64(h >> np.uint64(64 - bits)) & mask
        while True:
            g = slot[k]
            if g < 0:
                slot[k] = ng
                gfirst[ng] = c
                g = ng
                ng += 1
                break
            same = True
            for w in range(nw):
                if WT[w, gfirst[g]] != WT[w, c]:
                    same = False
                    break
            if same:
                break
            k = (k + 1) & mask
        gid[i] = g
        gsize[g] += 1
    # Runs by increasing count (counting sort of the groups, stable).
    top = 0
    for g in range(ng):
        top = max(top, counts[gfirst[g]])
    nper = np.zeros(top + 2, dtype=np.int64)
    nsingle = np.zeros(top + 1, dtype=np.int64)
    for g in range(ng):
        cv = counts[gfirst[g]]
        nper[cv + 1] += 1
        if gsize[g] == 1:
            nsingle[cv] += 1
    nrun = 0
    nq = 0
    for cv in range(top + 1):
        if nper[cv + 1] > 0:
            nrun += 1
            nq += (nper[cv + 1] + LANES - 1) // LANES * LANES
    run_start = np.zeros(nrun + 1, dtype=np.int64)
    run_cnt = np.empty(nrun, dtype=np.int64)
    run_fast = np.empty(nrun, dtype=np.int64)
    next_single = np.empty(top + 1, dtype=np.int64)
    next_multi = np.empty(top + 1, dtype=np.int64)
    lcnt = np.empty(nq, dtype=np.int64)
    k = 0
    q = 0
    for cv in range(top + 1):
        size = nper[cv + 1]
        if size > 0:
            run_cnt[k] = cv
            run_fast[k] = nsingle[cv] // LANES
            next_single[cv] = q
            next_multi[cv] = q + nsingle[cv]
            q += (size + LANES - 1) // LANES * LANES
            lcnt[run_start[k] : q] = cv
            run_start[k + 1] = q
            k += 1
    LW = np.zeros((nw, nq), dtype=np.uint64)
    lw = np.zeros(nq)
    gpos = np.empty(ng, dtype=np.int64)
    for g in range(ng):
        cv = counts[gfirst[g]]
        if gsize[g] == 1:
            p = next_single[cv]
            next_single[cv] += 1
        else:
            p = next_multi[cv]
            next_multi[cv] += 1
        gpos[g] = p
        for w in range(nw):
            LW[w, p] = WT[w, gfirst[g]]
        lw[p] = gsize[g]
    pos = np.empty(nc, dtype=np.int64)
    for i in range(nc):
        pos[i] = gpos[gid[i]]
    return pos, LW, lw, lcnt, run_start, run_cnt, run_fast


@njit(cache=True, nogil=True, inline="always")
def _flush(kp, kn, spk, snk):
    for q in range(kp.size):
        spk[q] += kp[q]
        snk[q] += kn[q]
        kp[q] = 0.0
        kn[q] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _m11_2(W1, c1, W2, c2):
    m = 0
    for w in range(W1.shape[0]):
        m += _ctpop(W1[w, c1] & W2[w, c2])
    return np.int64(m)


@njit(cache=True, nogil=True)
def ld_tile_runs(IW, iw, icnt, KW, kw, run_start, run_cnt, run_fast, diagonal, n, tab, spi, sni, spk, snk):
    """S+/S- and sum of T^2 of an all-pairs task over deduplicated layouts (``column_layout``).

    Rows are the positions of the I layout (IW, iw, icnt) with weight > 0; each pairs with every
    position of the K layout, or, for a diagonal task (I and K the same layout), with the
    positions after its own plus its own copies. spi/sni (per I position) receive a row's sums
    over its partners, times their weights; spk/snk (per K position) the sums over rows, times
    the rows' weights, so every copy of a column gets its column's full sums. ``tab`` is
    ``pair_table``. Summation order: partner positions in LANES lanes by position mod LANES;
    contributions to K positions by blocks of ROW_BLOCK rows. Returns the sum of T^2.
    """
    s = n + 1
    nrun = run_cnt.size
    perm = n < 64 and _AVX512
    acc = np.zeros(3 * LANES)
    f2 = 0.0
    nq = kw.size
    kp = np.zeros(nq)  # this row block's contributions to spk / snk
    kn = np.zeros(nq)
    rows = 0
    k_own = 0
    for r in range(IW.shape[1]):
        mu = iw[r]
        if mu == 0.0:
            continue
        a = icnt[r]
        for lane in range(3 * LANES):
            acc[lane] = 0.0
        if diagonal:
            while run_start[k_own + 1] <= r:
                k_own += 1
            k = k_own
            start = r + 1
        else:
            k = 0
            start = 0
        q = min((start + LANES - 1) // LANES * LANES, run_start[k + 1])
        # head of the row's own run, up to the next lane boundary
        for p in range(start, q):
            w = kw[p]
            m11 = _m11_2(IW, r, KW, p)
            t = tab[(a * s + run_cnt[k]) * s + m11]
            tp = t if t > 0.0 else 0.0
            tn = t if t < 0.0 else 0.0
            lane = p % LANES
            acc[lane] += tp * w
            acc[LANES + lane] += tn * w
            acc[2 * LANES + lane] += (t * t) * (w * mu)
            kp[p] += tp * mu
            kn[p] += tn * mu
        while k < nrun:
            end = run_start[k + 1]
            if q < end:
                b = run_cnt[k]
                base = (a * s + b) * s
                lookup = 0
                if perm:
                    mn = min(a, b)
                    lookup = 1 if mn < 8 else (2 if mn < 16 else 3)
                fast_end = run_start[k] + LANES * run_fast[k]
                # (The intrinsics are called here directly: through a function call numba would
                # reference-count every array argument, per run.)
                if mu == 1.0 and q < fast_end:
                    nb = (fast_end - q) // LANES
                    if lookup == 0:
                        _run_gather_1(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
                    elif lookup == 1:
                        _run_perm8_1(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
                    elif lookup == 2:
                        _run_perm16_1(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
                    else:
                        _run_perm64_1(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
                    q = fast_end
                nb = (end - q) // LANES
                if lookup == 0:
                    _run_gather(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
                elif lookup == 1:
                    _run_perm8(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
                elif lookup == 2:
                    _run_perm16(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
                else:
                    _run_perm64(KW, IW, r, q, nb, kw, tab, base, mu, kp, kn, acc)
            q = end
            k += 1
        sp = 0.0
        sn = 0.0
        fr = 0.0
        for lane in range(LANES):
            sp += acc[lane]
            sn += acc[LANES + lane]
            fr += acc[2 * LANES + lane]
        if diagonal and mu > 1.0:
            # pairs among the copies of this column
            t = tab[(a * s + a) * s + a]
            extra = mu - 1.0
            sp += (t if t > 0.0 else 0.0) * extra
            sn += (t if t < 0.0 else 0.0) * extra
            fr += (t * t) * (mu * extra * 0.5)
        spi[r] = sp
        sni[r] = sn
        f2 += fr
        rows += 1
        if rows % ROW_BLOCK == 0:
            _flush(kp, kn, spk, snk)
    _flush(kp, kn, spk, snk)
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
