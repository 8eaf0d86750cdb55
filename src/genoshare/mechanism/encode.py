"""Genotype <-> bit encoding (SPEC 1): 0 -> 00, 1 -> 01, 2 -> 11; decoding sums the bits."""

from __future__ import annotations

import numpy as np

from genoshare.kernels.noise import MISSING, decode_codes, encode_codes


def encode(G: np.ndarray) -> np.ndarray:
    """(m, n) int8 genotypes (-1 missing) -> (m, n, 2) uint8 bits: [..., 0] high, [..., 1] low.

    Missing genotypes give 00; carry ``G < 0`` as the missing mask.
    """
    codes = encode_codes(np.ascontiguousarray(G, dtype=np.int8))
    codes[codes == MISSING] = 0
    return np.stack([codes >> 1, codes & 1], axis=-1).astype(np.uint8)


def decode(bits: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """(m, n, 2) bits -> (m, n) int8 genotypes; the code 10 decodes to 1; -1 where missing."""
    codes = ((bits[..., 0] & 1) << 1 | (bits[..., 1] & 1)).astype(np.uint8)
    codes[np.asarray(missing, dtype=bool)] = MISSING
    return decode_codes(codes)
