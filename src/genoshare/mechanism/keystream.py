"""Position-addressed cryptographic randomness (SPEC 3).

Every random quantity of a release is read from an AES-256-CTR keystream at an offset
that is a pure function of *where* it is used (variant, sample, bit), never of the order
in which work happens. A statistical generator would not do: a cohort member knows their
own genotypes, hence their own noise bits, and could recover its state and with it
everyone's noise.

Streams (each with its own key derived from one 256-bit master secret):
- ``noise``: 8 bytes per genotype at offset 8*(j*N + i): two little-endian uint32,
  u_hi for the high bit and u_lo for the low bit; noise bit = u < t.
- ``flip``:  for variant j and the sample block starting at s0, the region of 2*s little-endian
  uint64 at offset 16*(j*N + s0) (one word per bit of the block); restoration reads only
  its first k words, the draws of Floyd's algorithm for choosing k of the eligible bits.
- ``split``: 8 bytes per (variant, sample block) at offset 8*(j*B + b): one uint64 turned
  into a uniform for the hypergeometric draw of that block.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
NOISE_BYTES = 8
FLIP_BYTES = 16
SPLIT_BYTES = 8

_ZEROS = np.zeros(1 << 20, dtype=np.uint8)
_ZEROS.setflags(write=False)


@dataclass(frozen=True)
class ReleaseKeys:
    """The three stream keys of one release. Never written anywhere."""

    noise: bytes
    flip: bytes
    split: bytes

    def __repr__(self) -> str:  # keep keys out of logs and tracebacks
        return "ReleaseKeys(<secret>)"


def new_master_key() -> bytes:
    return secrets.token_bytes(32)


def master_key_from_seed(seed: int) -> bytes:
    """A reproducible master key for test releases (``--seed``); not for sharing."""
    return hashlib.sha256(b"genoshare test seed\x00" + str(int(seed)).encode()).digest()


def derive_keys(master: bytes) -> ReleaseKeys:
    if len(master) != 32:
        raise ValueError("master key must be 32 bytes")

    def sub(label: bytes) -> bytes:
        return hmac.new(master, b"genoshare/v1/" + label, hashlib.sha256).digest()

    return ReleaseKeys(noise=sub(b"noise"), flip=sub(b"flip"), split=sub(b"split"))


def keystream(key: bytes, offset: int, nbytes: int, out: np.ndarray | None = None) -> np.ndarray:
    """``nbytes`` of the AES-256-CTR keystream of ``key`` starting at byte ``offset``.

    The counter block is the 128-bit big-endian block index (initial counter 0), as in
    NIST SP 800-38A, so the bytes at a given offset never depend on how the stream was cut.
    """
    if out is None:
        out = np.empty(nbytes, dtype=np.uint8)
    else:
        if not out.flags.c_contiguous:
            raise ValueError("output buffer must be C-contiguous")
        out = out.reshape(-1).view(np.uint8)
        if out.size != nbytes:
            raise ValueError("output buffer has the wrong size")
    if nbytes == 0:
        return out
    first_block, skip = divmod(int(offset), BLOCK)
    enc = Cipher(algorithms.AES(key), modes.CTR(first_block.to_bytes(BLOCK, "big"))).encryptor()
    if skip:
        enc.update(bytes(skip))
    # Encrypting zeros yields the keystream itself; update_into avoids copies.
    pos = 0
    while pos < nbytes:
        step = min(_ZEROS.size, nbytes - pos)
        n = enc.update_into(_ZEROS[:step], out[pos : pos + step])
        if n != step:  # pragma: no cover - CTR is a stream mode, it never buffers
            raise RuntimeError("short keystream")
        pos += step
    return out


def _rows(key: bytes, per_item: int, n_cols: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Keystream bytes for items (r, c) with r in [r0, r1), c in [c0, c1) of an r x n_cols grid."""
    nr, nc = r1 - r0, c1 - c0
    out = np.empty((nr, nc * per_item), dtype=np.uint8)
    if nr == 0 or nc == 0:
        return out
    if c0 == 0 and c1 == n_cols:
        keystream(key, per_item * r0 * n_cols, out.size, out)
    else:
        for r in range(nr):
            keystream(key, per_item * ((r0 + r) * n_cols + c0), nc * per_item, out[r])
    return out


def noise_words(key: bytes, n_samples: int, v0: int, v1: int, s0: int, s1: int) -> np.ndarray:
    """uint32 (v1-v0, s1-s0, 2): [..., 0] = u_hi, [..., 1] = u_lo for each genotype."""
    raw = _rows(key, NOISE_BYTES, n_samples, v0, v1, s0, s1)
    return raw.view("<u4").reshape(v1 - v0, s1 - s0, 2)


def flip_words(key: bytes, n_samples: int, v0: int, s0: int, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first counts[r] words of the flip region of variant v0 + r in the block starting at
    sample s0, as (words, first): row r's words are words[first[r] : first[r] + counts[r]]."""
    counts = np.asarray(counts, dtype=np.int64)
    first = np.zeros(counts.size, dtype=np.int64)
    rows = np.flatnonzero(counts)
    if rows.size == 0:
        return np.zeros(0, dtype=np.uint64), first
    # Each region starts on a block boundary (FLIP_BYTES = 16): its words are whole blocks of the stream.
    first_blocks = (FLIP_BYTES * ((v0 + rows) * n_samples + s0)) // BLOCK
    n_blocks = (counts[rows] + 1) // 2
    words = counter_keystream(key, first_blocks, n_blocks).view("<u8")
    first[rows] = 2 * (np.cumsum(n_blocks) - n_blocks)
    return words, first


def counter_keystream(key: bytes, first_blocks: np.ndarray, n_blocks: np.ndarray) -> np.ndarray:
    """The keystream blocks first_blocks[r] .. first_blocks[r] + n_blocks[r] - 1 for every r, concatenated (uint8).

    The same bytes as :func:`keystream` (CTR block i is AES_k(i as a 128-bit big-endian integer)), made by one
    AES-ECB call over the counter blocks: with a region per variant, setting up a CTR cipher per region cost
    about as much as the AES work itself.
    """
    from genoshare.kernels.noise import ctr_counter_blocks

    first_blocks = np.ascontiguousarray(first_blocks, dtype=np.int64)
    n_blocks = np.ascontiguousarray(n_blocks, dtype=np.int64)
    total = int(n_blocks.sum())
    counters = np.empty((total, 2), dtype=np.uint64)
    ctr_counter_blocks(first_blocks, n_blocks, counters)
    out = np.empty(total * BLOCK + BLOCK - 1, dtype=np.uint8)  # update_into wants block_size - 1 spare bytes
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    if enc.update_into(counters.view(np.uint8).reshape(-1), out) != total * BLOCK:  # pragma: no cover
        raise RuntimeError("short keystream")
    return out[: total * BLOCK]


def flip_draws(key: bytes, n_samples: int, v0: int, s0: int, counts: np.ndarray) -> np.ndarray:
    """uint64 (len(counts), max(counts)): row r holds the first counts[r] words of the flip
    region of variant v0 + r in the block starting at sample s0 (zeros beyond)."""
    counts = np.asarray(counts, dtype=np.int64)
    width = int(counts.max()) if counts.size else 0
    words, first = flip_words(key, n_samples, v0, s0, counts)
    out = np.zeros((counts.size, width), dtype=np.uint64)
    lane = np.arange(width)
    take = lane[None, :] < counts[:, None]
    out[take] = words[(first[:, None] + lane[None, :])[take]]
    return out


def split_uniforms(key: bytes, n_blocks: int, v0: int, v1: int) -> np.ndarray:
    """float64 (v1-v0, n_blocks) uniforms in [0, 1) with 53 random bits each."""
    raw = _rows(key, SPLIT_BYTES, n_blocks, v0, v1, 0, n_blocks)
    words = raw.view("<u8").reshape(v1 - v0, n_blocks)
    return (words >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
