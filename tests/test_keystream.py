"""The noise stream is AES-256-CTR addressed by position (SPEC 3)."""

import numpy as np
import pytest

from genoshare.mechanism.keystream import (
    derive_keys,
    flip_draws,
    flip_words,
    keystream,
    master_key_from_seed,
    noise_words,
    split_uniforms,
)

# NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt
NIST_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
NIST_IV = int("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", 16)
NIST_PT = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
NIST_CT = bytes.fromhex(
    "601ec313775789a5b7a7f504bbf3d228"
    "f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988d"
    "dfc9c58db67aada613c2dd08457941a6"
)
NIST_KS = bytes(a ^ b for a, b in zip(NIST_PT, NIST_CT))


def test_nist_sp800_38a_ctr_aes256_vectors():
    # The initial counter block f0..ff is block index NIST_IV of our stream.
    assert bytes(keystream(NIST_KEY, 16 * NIST_IV, 64)) == NIST_KS


@pytest.mark.parametrize("block", [0, 1, 2, 3])
def test_nist_blocks_addressed_individually(block):
    got = keystream(NIST_KEY, 16 * (NIST_IV + block), 16)
    assert bytes(got) == NIST_KS[16 * block : 16 * block + 16]


@pytest.mark.parametrize("start,length", [(5, 11), (7, 40), (17, 3), (31, 33)])
def test_unaligned_offsets_match_the_stream(start, length):
    got = keystream(NIST_KEY, 16 * NIST_IV + start, length)
    assert bytes(got) == NIST_KS[start : start + length]


def test_long_stream_is_consistent_across_cuts():
    key = derive_keys(master_key_from_seed(1)).noise
    whole = keystream(key, 0, 3_000_017)
    pieces = np.concatenate([keystream(key, a, b - a) for a, b in [(0, 1), (1, 1_048_577), (1_048_577, 3_000_017)]])
    assert np.array_equal(whole, pieces)


def test_noise_words_do_not_depend_on_chunking():
    key = derive_keys(master_key_from_seed(2)).noise
    n = 37
    full = noise_words(key, n, 0, 11, 0, n)
    sub = noise_words(key, n, 3, 9, 5, 21)
    assert np.array_equal(full[3:9, 5:21], sub)
    # genotype (j, i) is the 8 bytes at 8*(j*n + i): two little-endian uint32
    raw = keystream(key, 8 * (4 * n + 6), 8)
    assert tuple(full[4, 6]) == (int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little"))


def test_flip_and_split_streams_are_addressed_and_distinct():
    keys = derive_keys(master_key_from_seed(3))
    assert len({keys.noise, keys.flip, keys.split}) == 3
    counts = np.array([0, 3, 7, 1])
    d = flip_draws(keys.flip, 20, 2, 7, counts)
    assert d.shape == (4, 7) and np.all(d[0] == 0) and np.all(d[1, 3:] == 0)
    # variant 4 (row 2), block at sample 7: the 16*(4*20 + 7) byte offset, as uint64
    raw = keystream(keys.flip, 16 * (4 * 20 + 7), 56).view("<u8")
    assert np.array_equal(d[2], raw)
    u = split_uniforms(keys.split, 4, 0, 100)
    assert np.array_equal(u[10:20], split_uniforms(keys.split, 4, 10, 20))
    assert u.min() >= 0 and u.max() < 1


def test_keys_differ_by_seed_and_are_not_printed():
    a, b = derive_keys(master_key_from_seed(1)), derive_keys(master_key_from_seed(2))
    assert a.noise != b.noise
    assert "secret" in repr(a) and a.noise.hex() not in repr(a)


def test_noise_words_are_uniform():
    """Chi-square test of the top 4 bits of 2^20 words (false alarm rate 1e-4, fixed key)."""
    from scipy import stats

    w = noise_words(derive_keys(master_key_from_seed(4)).noise, 1024, 0, 512, 0, 1024).ravel()
    counts = np.bincount(w >> np.uint32(28), minlength=16)
    assert stats.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("n_samples,s0", [(20, 7), (3000, 1000), (40000, 0)])
def test_flip_words_are_the_regions_however_they_are_read(n_samples, s0):
    """flip_words makes all regions in one AES-ECB call over counter blocks: the same bytes as the CTR stream."""
    keys = derive_keys(master_key_from_seed(9))
    counts = np.array([0, 5, 1, 0, 0, 17, 2, 0, 9])
    words, first = flip_words(keys.flip, n_samples, 4, s0, counts)
    draws = flip_draws(keys.flip, n_samples, 4, s0, counts)
    for r, k in enumerate(counts):
        want = keystream(keys.flip, 16 * ((4 + r) * n_samples + s0), 8 * k).view("<u8")
        assert np.array_equal(words[first[r] : first[r] + k], want)
        assert np.array_equal(draws[r, :k], want) and np.all(draws[r, k:] == 0)
