"""LD statistics (SPEC 2): package compute_ldstats vs the dense reference, plus self-checks of the reference."""

import numpy as np
import pytest

from dense_reference import (
    Z_PROVGEN,
    dense_encode,
    dense_ldstats,
    dense_pair_counts,
    dense_T,
    simulate_genotypes,
)

RTOL, ATOL = 1e-11, 1e-9
MODES = ["provgen", "haldane"]


def _stats_from_full_T(T, window=None, contigs=None):
    """Reductions of a full T matrix with explicit double loops (a second, even more literal path)."""
    m2 = T.shape[0]
    s_pos = np.zeros(m2)
    s_neg = np.zeros(m2)
    f2 = 0.0
    for j in range(m2):
        f2 += T[j, j] ** 2
        for k in range(m2):
            if k == j:
                continue
            if window is not None:
                if abs(j // 2 - k // 2) > window:
                    continue
                if contigs is not None and contigs[j // 2] != contigs[k // 2]:
                    continue
            s_pos[j] += max(T[j, k], 0.0)
            s_neg[j] += min(T[j, k], 0.0)
            f2 += T[j, k] ** 2
    return dict(t_diag=np.diag(T).copy(), s_pos=s_pos, s_neg=s_neg, f2=f2)


def _assert_stats_close(got, ref, rtol=RTOL, atol=ATOL, label=""):
    for key in ("t_diag", "s_pos", "s_neg"):
        g = np.asarray(getattr(got, key) if not isinstance(got, dict) else got[key], dtype=np.float64)
        r = ref[key]
        assert g.shape == r.shape, f"{label} {key}: shape {g.shape} vs {r.shape}"
        bad = ~np.isclose(g, r, rtol=rtol, atol=atol)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AssertionError(
                f"{label} {key}: {bad.sum()} of {len(r)} columns differ; first col {i}: got {g[i]!r} want {r[i]!r}"
            )
    gf2 = float(got.f2 if not isinstance(got, dict) else got["f2"])
    assert np.isclose(gf2, ref["f2"], rtol=rtol, atol=atol), f"{label} f2: got {gf2!r} want {ref['f2']!r}"


# ---------------------------------------------------------------- reference self-checks
def test_dense_hand_example_3_individuals():
    """m=2, n_r=3: SNP0 = (0,1,2), SNP1 = (2,1,0); counts worked out by hand."""
    G = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.int8)
    # columns: c0=hi0=(0,0,1) c1=lo0=(0,1,1) c2=hi1=(1,0,0) c3=lo1=(1,1,0)
    ln = np.log
    # (M11, M10, M01, M00) per pair, by hand:
    # (0,1): 1,0,1,1  (0,2): 0,1,1,1  (0,3): 0,1,2,0  (1,2): 0,2,1,0  (1,3): 1,1,1,0  (2,3): 1,0,1,1
    T_h = np.array(
        [
            [ln(1.5 / 2.5), ln(3.0), ln(1 / 3), ln(1 / 15)],
            [ln(3.0), ln(2.5 / 1.5), ln(1 / 15), ln(1 / 3)],
            [ln(1 / 3), ln(1 / 15), ln(1.5 / 2.5), ln(3.0)],
            [ln(1 / 15), ln(1 / 3), ln(3.0), ln(2.5 / 1.5)],
        ]
    )
    z = Z_PROVGEN
    big = -ln(z)  # ln(1/z) = 36.04...
    T_p = np.array(
        [
            [ln(0.5), big, ln(z), ln(z / 2)],
            [big, ln(2.0), ln(z / 2), ln(z)],
            [ln(z), ln(z / 2), ln(0.5), big],
            [ln(z / 2), ln(z), big, ln(2.0)],
        ]
    )
    np.testing.assert_allclose(dense_T(G, "haldane"), T_h, rtol=1e-14)
    np.testing.assert_allclose(dense_T(G, "provgen"), T_p, rtol=1e-14)
    # hand sums (haldane)
    s = dense_ldstats(G, "haldane")
    np.testing.assert_allclose(s["s_pos"], [ln(3)] * 4, rtol=1e-14)
    np.testing.assert_allclose(s["s_neg"], [ln(1 / 45)] * 4, rtol=1e-14)
    f2 = 2 * ln(1.5 / 2.5) ** 2 + 2 * ln(2.5 / 1.5) ** 2 + 4 * (ln(3) ** 2 + ln(1 / 3) ** 2 + ln(1 / 15) ** 2)
    assert s["f2"] == pytest.approx(f2, rel=1e-14)
    # window 0: only the two columns of the same SNP (+ diagonal)
    s0 = dense_ldstats(G, "haldane", window=0)
    np.testing.assert_allclose(s0["s_pos"], [ln(3)] * 4, rtol=1e-14)
    np.testing.assert_allclose(s0["s_neg"], [0.0] * 4, atol=0)
    assert s0["f2"] == pytest.approx(2 * ln(1.5 / 2.5) ** 2 + 2 * ln(2.5 / 1.5) ** 2 + 4 * ln(3) ** 2, rel=1e-14)


@pytest.mark.parametrize("zero_cell", MODES)
def test_dense_T_properties(zero_cell):
    rng = np.random.default_rng(5)
    G = simulate_genotypes(rng, 30, 41)
    T = dense_T(G, zero_cell)
    assert np.all(np.isfinite(T))
    np.testing.assert_array_equal(T, T.T)  # symmetric (the formula is symmetric in j, k)
    M11, M10, M01, M00, M1, M0 = dense_pair_counts(dense_encode(G))
    n = G.shape[1]
    np.testing.assert_array_equal(M11 + M10 + M01 + M00, np.full_like(M11, n))
    assert np.all(np.stack([M11, M10, M01, M00]) >= 0)
    j = np.arange(0, 60, 2)
    # the code 10 never occurs in an encoded reference: high=1, low=0 is impossible
    np.testing.assert_array_equal(M10[j, j + 1], 0)
    if zero_cell == "provgen":
        # ... so the same-SNP pair is always an outlier (+-36..42) or exactly 0 (when both products vanish)
        t = T[j, j + 1]
        assert np.all((np.abs(t) > 35) | (t == 0))


@pytest.mark.parametrize("zero_cell", MODES)
@pytest.mark.parametrize(
    "window,contigs",
    [(None, None), (0, None), (1, None), (7, None), (3, "3ctg"), (0, "3ctg"), (100, None)],
)
def test_dense_ldstats_consistent_with_dense_T(zero_cell, window, contigs):
    rng = np.random.default_rng(11)
    m = 23
    G = simulate_genotypes(rng, m, 37)
    ctg = None if contigs is None else np.repeat([0, 1, 2], [9, 1, 13])
    ref = _stats_from_full_T(dense_T(G, zero_cell), window, ctg)
    for block in (1, 5, 512):
        got = dense_ldstats(G, zero_cell, window=window, contigs=ctg, block=block)
        _assert_stats_close(got, ref, rtol=1e-12, atol=1e-10, label=f"block={block}")
    if window is not None and window >= m:
        _assert_stats_close(dense_ldstats(G, zero_cell), ref, rtol=1e-12, atol=1e-10)


# ---------------------------------------------------------------- package vs reference, random data
SIZES = [(1, 5), (2, 3), (13, 64), (37, 65), (101, 130), (67, 200), (150, 129)]
WINDOWS = [(None, None), (0, None), (1, None), (7, None), (0, "ctg"), (1, "ctg"), (7, "ctg")]


def _contigs(m, rng):
    """Sorted integer contig labels for m SNPs: a few contigs of uneven length, including a single-SNP contig."""
    if m < 3:
        return np.zeros(m, dtype=np.int64)
    cuts = np.sort(rng.choice(np.arange(1, m), size=min(3, m - 1), replace=False))
    lab = np.zeros(m, dtype=np.int64)
    for c in cuts:
        lab[c:] += 1
    if m > 10:
        lab[m - 1] = lab[m - 2] + 1  # last SNP alone on its own contig
    return lab


@pytest.mark.parametrize("zero_cell", MODES)
@pytest.mark.parametrize("window,contigs", WINDOWS, ids=[f"w{w}-{c}" for w, c in WINDOWS])
@pytest.mark.parametrize("m,n_r", SIZES, ids=[f"m{m}-n{n}" for m, n in SIZES])
def test_compute_ldstats_matches_dense(m, n_r, window, contigs, zero_cell):
    from genoshare.mechanism.ldstats import compute_ldstats

    rng = np.random.default_rng(m * 1000 + n_r)
    G = simulate_genotypes(rng, m, n_r)
    ctg = _contigs(m, rng) if contigs else None
    ref = dense_ldstats(G, zero_cell, window=window, contigs=ctg)
    got = compute_ldstats(G, zero_cell=zero_cell, window=window, contigs=ctg)
    assert int(got.n_ref) == n_r
    _assert_stats_close(got, ref, label=f"m={m} n_r={n_r} {zero_cell} window={window} contigs={ctg}")


@pytest.mark.parametrize("zero_cell", MODES)
def test_compute_ldstats_string_contigs_and_large_window(zero_cell):
    from genoshare.mechanism.ldstats import compute_ldstats

    rng = np.random.default_rng(77)
    m, n_r = 45, 70
    G = simulate_genotypes(rng, m, n_r)
    ctg = np.array(["chr1"] * 20 + ["chr2"] * 5 + ["chrX"] * 20)
    for window in (2, 5):
        ref = dense_ldstats(G, zero_cell, window=window, contigs=ctg)
        _assert_stats_close(compute_ldstats(G, zero_cell=zero_cell, window=window, contigs=ctg), ref)
    # a window covering everything equals window=None
    ref_all = dense_ldstats(G, zero_cell)
    _assert_stats_close(compute_ldstats(G, zero_cell=zero_cell, window=10 * m), ref_all)


# ---------------------------------------------------------------- package vs reference, real data
@pytest.mark.parametrize("zero_cell", MODES)
def test_compute_ldstats_lactose_full(lactose_dense_stats, lactose_pkg_stats, zero_cell):
    """All 9,091 SNPs of the real lactose reference (60 individuals), window None (dense ~8 s per mode)."""
    ref = lactose_dense_stats(zero_cell)
    got = lactose_pkg_stats(zero_cell)
    assert int(got.n_ref) == 60
    _assert_stats_close(got, ref, label=f"lactose full {zero_cell}")


@pytest.mark.parametrize("zero_cell", MODES)
@pytest.mark.parametrize("window", [0, 1, 50])
def test_compute_ldstats_lactose_windowed(lactose_ref, zero_cell, window):
    """Real data, windowed (fast in both implementations), with two artificial contigs."""
    from genoshare.mechanism.ldstats import compute_ldstats

    G = lactose_ref
    m = G.shape[0]
    for ctg in (None, np.repeat([1, 2], [m // 3, m - m // 3])):
        ref = dense_ldstats(G, zero_cell, window=window, contigs=ctg)
        got = compute_ldstats(G, zero_cell=zero_cell, window=window, contigs=ctg)
        _assert_stats_close(
            got, ref, label=f"lactose {zero_cell} window={window} contigs={'2' if ctg is not None else None}"
        )


# ---------------------------------------------------------------- kernels: paths, duplicates, determinism
def _with_copies(G, rng):
    """G plus exact copies of some SNPs and a few monomorphic ones: identical panel columns."""
    m, n = G.shape
    extra = [G[rng.choice(m, size=max(1, m // 4))], np.zeros((3, n), np.int8), np.full((2, n), 2, np.int8)]
    H = np.concatenate([G] + extra)
    return H[rng.permutation(H.shape[0])]


@pytest.mark.parametrize("zero_cell", MODES)
@pytest.mark.parametrize("n_r", [9, 56, 57, 63, 64, 65, 127, 128, 150])
def test_all_pairs_with_duplicate_columns_over_many_tasks(zero_cell, n_r):
    """All-pairs tasks (diagonal and off-diagonal) on panels with many identical columns, against the
    dense reference, at panel sizes around the table limit and the 64-bit word boundaries."""
    from genoshare.mechanism.ldstats import compute_ldstats

    rng = np.random.default_rng(n_r)
    G = _with_copies(simulate_genotypes(rng, 70, n_r), rng)
    ref = dense_ldstats(G, zero_cell)
    for tile in (5, 16, 4096):
        got = compute_ldstats(G, zero_cell=zero_cell, tile=tile)
        _assert_stats_close(got, ref, label=f"n_r={n_r} {zero_cell} tile={tile}")


def _same_bits(a, b):
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("t_diag", "s_pos", "s_neg")) and a.f2 == b.f2


@pytest.mark.parametrize("window", [None, 3])
def test_bits_do_not_depend_on_threads_or_task_execution_order(window):
    """Tasks may run anywhere in any order: reduced in task order, the result is the same bits."""
    from genoshare.mechanism.ldstats import LDAccumulator, compute_ldstats, contig_codes, plan_tiles, tile_partial

    rng = np.random.default_rng(3)
    G = _with_copies(simulate_genotypes(rng, 90, 60), rng)
    m, n = G.shape
    ctg = np.repeat([0, 1, 0], [40, 30, m - 70])
    one = compute_ldstats(G, window=window, contigs=ctg, tile=16, threads=1)
    assert _same_bits(one, compute_ldstats(G, window=window, contigs=ctg, tile=16, threads=4))
    tasks = plan_tiles(m, window, 16)
    codes = contig_codes(ctg, m)
    partials = {}
    for t in reversed(tasks):  # executed backwards, one by one
        rows = t.rows()
        partials[t] = tile_partial(
            t,
            np.concatenate([G[a:b] for a, b in rows]),
            np.concatenate([codes[a:b] for a, b in rows]),
            window,
            "haldane",
            n,
        )
    acc = LDAccumulator(m, n, "haldane", window)
    for t in tasks:
        acc.add(t, partials[t])
    acc.set_counts((G == 2).sum(axis=1), (G >= 1).sum(axis=1))
    assert _same_bits(one, acc.result())


def test_pair_table_is_the_scalar_formula():
    """Every feasible entry of the small-panel table is _pair_t itself (so table and log paths agree bit for bit)."""
    from genoshare.kernels.ldtile import _pair_t, pair_table
    from genoshare.mechanism.ldstats import _LOGZ, _log_table

    n = 23
    for mode in (0, 1):
        logtab = _log_table(n, mode)
        tab = pair_table(n, mode, logtab, _LOGZ)
        s = n + 1
        for a in range(s):
            for b in range(s):
                for m11 in range(max(0, a + b - n), min(a, b) + 1):
                    assert tab[(a * s + b) * s + m11] == _pair_t.py_func(m11, a, b, n, mode, logtab, _LOGZ)


@pytest.mark.slow
def test_bits_do_not_depend_on_the_instruction_set(tmp_path):
    """The all-pairs kernel looks T up with AVX-512 register permutes where the host has them, else with
    portable gathers: a process compiling for a baseline x86-64 (SSE2 only) must produce the same bits."""
    import os
    import subprocess
    import sys

    from genoshare.kernels.ldtile import _AVX512

    if not _AVX512:
        pytest.skip("host has no AVX-512: only the portable lookup exists here")
    code = (
        "import hashlib, numpy as np\n"
        "from dense_reference import simulate_genotypes\n"
        "from genoshare.mechanism.ldstats import compute_ldstats\n"
        "from genoshare.kernels.ldtile import _AVX512\n"
        "G = simulate_genotypes(np.random.default_rng(12), 300, 60)\n"
        "h = hashlib.sha256()\n"
        "for zc in ('haldane', 'provgen'):\n"
        "    s = compute_ldstats(G, zero_cell=zc, tile=64)\n"
        "    for x in (s.t_diag, s.s_pos, s.s_neg, np.float64(s.f2)):\n"
        "        h.update(np.ascontiguousarray(x).tobytes())\n"
        "print(_AVX512, h.hexdigest())\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    native = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    env.update(NUMBA_CPU_NAME="x86-64", NUMBA_CPU_FEATURES="+sse2", NUMBA_CACHE_DIR=str(tmp_path))
    generic = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert native.stdout.split()[0] == "True" and generic.stdout.split()[0] == "False"
    assert native.stdout.split()[1] == generic.stdout.split()[1]
