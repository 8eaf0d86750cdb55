"""The release engine: noise law, determinism, minimal-flip restoration, missing data (SPEC 3-4)."""

import numpy as np
import pytest
from scipy import stats

from genoshare.kernels.noise import MISSING, split_flips
from genoshare.mechanism.calibrate import TWO32, quantise
from genoshare.mechanism.encode import encode
from genoshare.mechanism.keystream import derive_keys, master_key_from_seed
from genoshare.mechanism.release import (
    eligible_bits,
    noisy_codes,
    plan,
    release_genotypes,
    restore,
    target_counts_from_af,
    target_counts_published,
)


def keys(seed):
    return derive_keys(master_key_from_seed(seed))


def random_cohort(m, n, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    af = rng.uniform(0.05, 0.95, size=m)
    G = rng.binomial(2, af[:, None], size=(m, n)).astype(np.int8)
    if missing:
        G[rng.random((m, n)) < missing] = -1
    return G


def random_thresholds(m, seed):
    p = np.random.default_rng(seed).uniform(0.05, 0.6, size=2 * m)
    return quantise(p)


@pytest.fixture(scope="module")
def cohort():
    m, n = 150, 333
    G = random_cohort(m, n, 1, missing=0.02)
    return G, random_thresholds(m, 2)


@pytest.mark.parametrize("variant_chunk,threads", [(1, 1), (7, 2), (64, 3), (1000, 4)])
def test_identical_across_variant_chunks_and_threads(cohort, variant_chunk, threads):
    G, t = cohort
    ref = release_genotypes(G, t, target_counts_published(G), keys(5), sample_block=50, variant_chunk=150, threads=1)
    got = release_genotypes(
        G, t, target_counts_published(G), keys(5), sample_block=50, variant_chunk=variant_chunk, threads=threads
    )
    assert got.genotypes.tobytes() == ref.genotypes.tobytes()
    assert got.flips == ref.flips


def test_different_seeds_differ(cohort):
    G, t = cohort
    a = release_genotypes(G, t, target_counts_published(G), keys(5), sample_block=50)
    b = release_genotypes(G, t, target_counts_published(G), keys(6), sample_block=50)
    assert (a.genotypes != b.genotypes).mean() > 0.2


def test_noise_bits_follow_p_per_column():
    """Per-column noise frequencies against Binomial(n, p_j): two-sided binomial tests with a
    family-wise false-alarm rate of 1e-3 (Bonferroni over the columns); fixed key."""
    m, n = 60, 4000
    G = random_cohort(m, n, 3)
    t = random_thresholds(m, 4)
    codes, _, _ = noisy_codes(G, t, keys(7), 0, 0, n, n)
    clean = encode(G)
    noisy = np.stack([codes >> 1, codes & 1], axis=-1)
    noise = noisy ^ clean  # (m, n, 2)
    counts = noise.sum(axis=1)  # (m, 2)
    p = (t / TWO32).reshape(m, 2)
    alpha = 1e-3 / (2 * m)
    pvals = [stats.binomtest(int(counts[j, b]), n, p[j, b]).pvalue for j in range(m) for b in range(2)]
    assert min(pvals) > alpha
    # and the test has power: a 10% relative error in p would be caught
    wrong = [stats.binomtest(int(counts[j, b]), n, 0.9 * p[j, b]).pvalue for j in range(m) for b in range(2)]
    assert min(wrong) < alpha


def _restored_codes(G, t, targets, k, sample_block):
    """The engine's steps spelled out, returning noisy and restored codes for inspection."""
    m, n = G.shape
    codes, ones, nonmiss = noisy_codes(G, t, k, 0, 0, n, sample_block)
    noisy = codes.copy()
    kb, direction = plan(ones, nonmiss, targets, k, 0)
    for b, s0 in enumerate(range(0, n, sample_block)):
        block = codes[:, s0 : s0 + sample_block].copy()
        restore(block, kb[:, b], direction, k, 0, s0, n)
        codes[:, s0 : s0 + sample_block] = block
    return noisy, codes, kb, direction


@pytest.mark.parametrize("sample_block", [333, 50])
def test_restore_with_pass1_counts_equals_counting_in_the_block(cohort, sample_block):
    """The pipeline hands restore the eligible-bit counts of pass 1 instead of recounting them."""
    G, t = cohort
    n = G.shape[1]
    for target_seed in range(3):
        k = keys(40 + target_seed)
        targets = target_counts_from_af(G, np.random.default_rng(target_seed).uniform(0.05, 0.95, G.shape[0]))
        codes, ones, nonmiss = noisy_codes(G, t, k, 0, 0, n, sample_block)
        kb, direction = plan(ones, nonmiss, targets, k, 0)
        assert (kb > 0).any()
        for b, s0 in enumerate(range(0, n, sample_block)):
            counted = codes[:, s0 : s0 + sample_block].copy()
            given = counted.copy()
            restore(counted, kb[:, b], direction, k, 0, s0, n)
            restore(given, kb[:, b], direction, k, 0, s0, n, eligible_bits(ones[:, b], nonmiss[:, b], direction))
            assert np.array_equal(counted, given)
            assert not np.array_equal(counted, codes[:, s0 : s0 + sample_block])


def _allele_counts(codes):
    ok = codes != MISSING
    return np.where(ok, (codes >> 1) + (codes & 1), 0).sum(axis=1), ok.sum(axis=1)


@pytest.mark.parametrize("source", ["published", "public"])
@pytest.mark.parametrize("sample_block", [17, 1000])
def test_restoration_hits_target_with_minimal_flips(source, sample_block):
    m, n = 120, 250
    G = random_cohort(m, n, 8, missing=0.03)
    t = random_thresholds(m, 9)
    if source == "published":
        targets = target_counts_published(G)
    else:
        af = np.random.default_rng(10).uniform(0, 1, size=m)
        targets = target_counts_from_af(G, af)
    k = keys(11)
    noisy, restored, kb, direction = _restored_codes(G, t, targets, k, sample_block)
    s_noisy, n_j = _allele_counts(noisy)
    s_out, n_out = _allele_counts(restored)
    assert np.array_equal(n_j, n_out)
    f_target = targets / (2 * n_j)
    f_out = s_out / (2 * n_j)
    assert np.all(np.abs(f_out - f_target) < 1 / (2 * n_j))
    # minimal: exactly floor(|noisy - target|) bits changed per SNP, all in one direction
    expected = np.floor(np.abs(s_noisy - targets)).astype(np.int64)
    nb = np.stack([noisy >> 1, noisy & 1], -1)
    rb = np.stack([restored >> 1, restored & 1], -1)
    changed = (nb != rb) & (noisy != MISSING)[..., None]
    assert np.array_equal(changed.sum(axis=(1, 2)), expected)
    up = (rb > nb).sum(axis=(1, 2))
    down = (rb < nb).sum(axis=(1, 2))
    assert np.all((up == 0) | (down == 0))
    # the engine does the same thing
    res = release_genotypes(G, t, targets, k, sample_block=sample_block, variant_chunk=13)
    assert res.flips == expected.sum()
    decoded = np.where(restored == MISSING, -1, (restored >> 1) + (restored & 1)).astype(np.int8)
    assert np.array_equal(res.genotypes, decoded)


def test_published_frequencies_are_restored_exactly(cohort):
    G, t = cohort
    res = release_genotypes(G, t, target_counts_published(G), keys(12), sample_block=50)
    assert np.array_equal(target_counts_published(res.genotypes), target_counts_published(G))


def test_missing_stays_missing_and_untouched():
    m, n = 40, 90
    G = random_cohort(m, n, 13, missing=0.1)
    G[3] = -1  # a SNP missing everywhere
    G[:, 5] = -1  # an individual missing everywhere
    t = quantise(np.full(2 * m, 0.45))
    res = release_genotypes(G, t, target_counts_published(G), keys(14), sample_block=32)
    assert np.array_equal(res.genotypes < 0, G < 0)
    assert res.n_missing == int((G < 0).sum())
    assert set(np.unique(res.genotypes[G >= 0])) <= {0, 1, 2}


def test_code_10_decodes_to_1_in_releases():
    """With p = 1/2 noise creates every code; a high-only bit pattern must decode to 1."""
    m, n = 20, 500
    G = np.zeros((m, n), dtype=np.int8)
    t = quantise(np.full(2 * m, 0.5))
    codes, _, _ = noisy_codes(G, t, keys(15), 0, 0, n, n)
    assert (codes == 2).any()
    res = release_genotypes(G, t, np.full(m, np.nan), keys(15), sample_block=n)
    assert np.array_equal(res.genotypes[codes == 2], np.ones((codes == 2).sum(), dtype=np.int8))
    assert np.array_equal(res.genotypes, ((codes >> 1) + (codes & 1)).astype(np.int8))


def test_hypergeometric_split_has_the_multivariate_hypergeometric_law():
    """Chi-square goodness of fit of the block split over all outcomes (false alarm 1e-3)."""
    eligible = np.array([5, 3, 8, 4], dtype=np.int64)
    k = 7
    reps = 40_000
    rng = np.random.default_rng(16)
    out = np.zeros(4, dtype=np.int64)
    seen = {}
    for _ in range(reps):
        split_flips(k, eligible, rng.random(4), out)
        assert out.sum() == k and np.all(out <= eligible) and np.all(out >= 0)
        key = tuple(out)
        seen[key] = seen.get(key, 0) + 1
    law = stats.multivariate_hypergeom(m=eligible, n=k)
    outcomes = [x for x in np.ndindex(*(eligible + 1)) if sum(x) == k]
    expected = np.array([law.pmf(np.array(x)) for x in outcomes]) * reps
    observed = np.array([seen.get(tuple(x), 0) for x in outcomes])
    assert observed.sum() == reps
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_split_handles_large_blocks():
    eligible = np.array([150_000, 1, 0, 149_999], dtype=np.int64)
    out = np.zeros(4, dtype=np.int64)
    for u in [0.0, 0.5, 0.999999]:
        split_flips(30_000, eligible, np.array([u, u, u, u]), out)
        assert out.sum() == 30_000 and out[2] == 0 and abs(out[0] - 15_000) < 1_000


def test_flip_choice_is_uniform_within_the_cohort():
    """Each eligible bit is flipped with probability k/e across keys, whatever sample block
    it sits in (chi-square, false alarm 1e-3)."""
    G = np.array([[0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 1]], dtype=np.int8)
    n = G.shape[1]
    t = np.array([1, 1], dtype=np.uint32)  # noise all but impossible: the eligible set is known
    target = np.array([G.sum() - 5.0])  # remove five 1-bits
    clean = encode(G)[0]  # (n, 2)
    hits = np.zeros((n, 2))
    reps = 3000
    for r in range(reps):
        noisy, restored, _, _ = _restored_codes(G, t, target, keys(100 + r), 5)
        assert np.array_equal(noisy[0], (clean[:, 0] << 1) | clean[:, 1])
        bits = np.stack([restored[0] >> 1, restored[0] & 1], -1)
        hits += clean & (1 - bits)
    e = int(clean.sum())
    observed = hits[clean == 1]
    assert observed.sum() == 5 * reps
    assert stats.chisquare(observed, np.full(e, 5 * reps / e)).pvalue > 1e-3
