"""Encoding / decoding (SPEC 1): package vs the dense reference, plus hand checks of the reference itself."""

import numpy as np
import pytest

from dense_reference import bits_from_dense, dense_decode, dense_encode, dense_from_bits, simulate_genotypes


# ---------------------------------------------------------------- reference self-checks
def test_dense_encode_hand_example():
    G = np.array([[0, 1, 2, -1], [2, 2, 0, 1]], dtype=np.int8)  # m=2, n=4
    B = dense_encode(G)
    expected = np.array(
        [  # col0=hi SNP0, col1=lo SNP0, col2=hi SNP1, col3=lo SNP1
            [0, 0, 1, 1],
            [0, 1, 1, 1],
            [1, 1, 0, 0],
            [0, 0, 0, 1],
        ],
        dtype=np.uint8,
    )
    assert B.dtype == np.uint8 and B.shape == (4, 4)
    np.testing.assert_array_equal(B, expected)
    # decoding: sum of bits; the 10 code decodes to 1; missing stays missing
    B2 = B.copy()
    B2[0, 0], B2[0, 1] = 1, 0  # individual 0, SNP 0 -> code 10
    B2[3, 0] = B2[3, 1] = 1  # individual 3, SNP 0 is missing even though its bits are 11
    D = dense_decode(B2, G < 0)
    np.testing.assert_array_equal(D, np.array([[1, 1, 2, -1], [2, 2, 0, 1]], dtype=np.int8))
    np.testing.assert_array_equal(dense_decode(B, G < 0), G)


def test_dense_layout_helpers_roundtrip():
    rng = np.random.default_rng(1)
    B = rng.integers(0, 2, size=(7, 10), dtype=np.uint8)
    bits = bits_from_dense(B)
    assert bits.shape == (5, 7, 2)
    assert bits[3, 6, 0] == B[6, 6] and bits[3, 6, 1] == B[6, 7]
    np.testing.assert_array_equal(dense_from_bits(bits), B)


# ---------------------------------------------------------------- package vs reference
CASES = [(1, 1), (3, 5), (17, 63), (40, 64), (101, 65), (257, 130)]


@pytest.mark.parametrize("m,n", CASES)
def test_encode_matches_dense(m, n):
    from genoshare.mechanism.encode import encode

    rng = np.random.default_rng(1000 + m * 7 + n)
    G = rng.integers(0, 3, size=(m, n)).astype(np.int8)
    G[rng.random((m, n)) < 0.1] = -1
    bits = np.asarray(encode(G))
    assert bits.shape == (m, n, 2)
    assert bits.dtype == np.uint8
    expected = bits_from_dense(dense_encode(G))
    np.testing.assert_array_equal(bits, expected)
    # missing -> 00; the 10 code never appears in an encoding
    assert not bits[G < 0].any()
    assert not ((bits[..., 0] == 1) & (bits[..., 1] == 0)).any()


@pytest.mark.parametrize("m,n", CASES)
def test_decode_matches_dense_including_code_10(m, n):
    from genoshare.mechanism.encode import decode

    rng = np.random.default_rng(2000 + m * 7 + n)
    missing = rng.random((m, n)) < 0.15
    bits = rng.integers(0, 2, size=(m, n, 2)).astype(np.uint8)  # all four codes, incl. 10, also at missing cells
    out = np.asarray(decode(bits, missing))
    assert out.shape == (m, n)
    assert out.dtype == np.int8
    expected = dense_decode(dense_from_bits(bits), missing)
    np.testing.assert_array_equal(out, expected)
    code10 = (bits[..., 0] == 1) & (bits[..., 1] == 0) & ~missing
    assert np.all(out[code10] == 1)
    assert np.all(out[missing] == -1)


def test_decode_code_10_is_one():
    from genoshare.mechanism.encode import decode

    bits = np.array([[[0, 0], [0, 1], [1, 0], [1, 1]]], dtype=np.uint8)  # one SNP, codes 00 01 10 11
    out = np.asarray(decode(bits, np.zeros((1, 4), dtype=bool)))
    np.testing.assert_array_equal(out, np.array([[0, 1, 1, 2]], dtype=np.int8))


@pytest.mark.parametrize("m,n", [(5, 9), (123, 77)])
def test_roundtrip_missing_stays_missing(m, n):
    from genoshare.mechanism.encode import decode, encode

    G = simulate_genotypes(np.random.default_rng(m + n), m, n, missing_rate=0.2)
    assert (G < 0).any()
    back = np.asarray(decode(encode(G), G < 0))
    np.testing.assert_array_equal(back, G)


@pytest.mark.parametrize("s", [1, 2, 7, 10, 333])
def test_fused_pass1_kernel_equals_the_separate_steps(s):
    """noise_pack_count (the store pipeline's pass 1) against the in-memory engine's steps on the same chunk:
    dosage_from_calls + noise_xor_count (codes, 1-bits, called), ALT counts, fingerprint digests, and
    unpack_codes inverts its packing, missing genotypes included."""
    from genoshare.io.vcz import dosage_to_calls
    from genoshare.kernels.fingerprint import row_digests, sample_weights
    from genoshare.kernels.noise import dosage_from_calls, noise_pack_count, noise_xor_count, unpack_codes
    from genoshare.mechanism.keystream import derive_keys, master_key_from_seed, noise_words

    v, s0, n = 9, 5, s + 11
    G = simulate_genotypes(np.random.default_rng(s), v, s, missing_rate=0.1)
    calls = dosage_to_calls(G)
    t_hi = np.random.default_rng(1).integers(0, 2**32, v, dtype=np.uint32)
    t_lo = np.random.default_rng(2).integers(0, 2**32, v, dtype=np.uint32)
    words = noise_words(derive_keys(master_key_from_seed(s)).noise, n, 3, 3 + v, s0, s0 + s)
    packed = np.zeros((v, (s + 1) // 2), dtype=np.uint8)
    ones, called, original = (np.zeros(v, dtype=np.int64) for _ in range(3))
    digests = np.zeros((v, 2), dtype=np.uint64)
    invalid = np.full(v, -1, dtype=np.int64)
    noise_pack_count(calls, words, t_hi, t_lo, sample_weights(s0, s), packed, ones, called, original, digests, invalid)
    assert not invalid.any()
    bad = calls.copy()
    bad[2, 0, 1], bad[4, :, 0] = 3, 2  # allele indices above 1: counted per variant
    noise_pack_count(
        bad,
        words,
        t_hi,
        t_lo,
        sample_weights(s0, s),
        np.zeros_like(packed),
        ones.copy(),
        called.copy(),
        original.copy(),
        digests.copy(),
        invalid,
    )
    assert invalid.tolist() == [0, 0, 1, 0, s, 0, 0, 0, 0]

    codes = np.empty((v, s), dtype=np.uint8)
    ones_ref, called_ref = np.zeros((v, 1), dtype=np.int64), np.zeros((v, 1), dtype=np.int64)
    noise_xor_count(dosage_from_calls(calls), words, t_hi, t_lo, s, codes, ones_ref, called_ref)
    assert np.array_equal(unpack_codes(packed, s), codes)
    assert np.array_equal(ones, ones_ref[:, 0]) and np.array_equal(called, called_ref[:, 0])
    assert np.array_equal(original, np.where(G >= 0, G, 0).sum(axis=1))
    assert np.array_equal(digests, row_digests(G, s0))
