"""Phenotypes and covariates in a release.

Nothing but genotypes is released unless listed. A listed binary phenotype can be protected by randomized response
with its own epsilon_ph: each individual's value is kept with probability e^eps / (1 + e^eps) and flipped
otherwise, which is eps-DP for that column under replace-one neighbours (one bit per individual). Several randomized
columns compose (basic composition: their epsilons add). Any other listed column is released in the clear, and the
manifest says so in words (:func:`clear_statement`): the release's guarantee then does not cover membership.

Randomness is cryptographic and position-addressed like the genotype noise (SPEC 3): column ``name`` has its own
AES-256-CTR key ``HMAC-SHA256(phenotype key, "genoshare/v1/phenotype/" + name)`` and sample i's flip reads the
little-endian uint64 at offset 8 i: flip if it is below the integer threshold T = ceil(2^64 / (1 + e^eps)). The
accounted epsilon is that of the quantised flip probability, ln((2^64 - T) / T) <= the requested epsilon_ph.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping

import numpy as np

from genoshare.errors import GenoshareError
from genoshare.mechanism.keystream import keystream

TWO64 = 1 << 64
PH_BYTES = 8


def derive_phenotype_key(master: bytes) -> bytes:
    """The phenotype stage's key, derived from the release's master key like the other stream keys."""
    if len(master) != 32:
        raise ValueError("master key must be 32 bytes")
    return hmac.new(master, b"genoshare/v1/phenotype", hashlib.sha256).digest()


def _column_key(key: bytes, column: str) -> bytes:
    return hmac.new(key, b"genoshare/v1/phenotype/" + column.encode("utf-8"), hashlib.sha256).digest()


def rr_threshold(epsilon: float) -> tuple[int, float]:
    """(T, accounted epsilon): flip iff a uniform uint64 < T; T >= 2^64 / (1 + e^eps) so the accounted epsilon
    ln((2^64 - T) / T) never exceeds the request."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise GenoshareError(f"phenotype epsilon must be a positive number, not {epsilon}")
    if epsilon > 44:
        raise GenoshareError(
            f"phenotype epsilon {epsilon:g} is beyond what a 64-bit flip threshold resolves "
            "(at most 44); release the column in the clear instead"
        )
    # The 1e-12 relative margin dwarfs the float rounding of the division and of the logarithms below.
    t = max(1, math.ceil(TWO64 / (1.0 + math.exp(epsilon)) * (1.0 + 1e-12)))
    return t, math.log(TWO64 - t) - math.log(t)


def keep_probability(epsilon: float) -> float:
    """Probability that randomized response keeps the true value (quantised threshold)."""
    t, _ = rr_threshold(epsilon)
    return (TWO64 - t) / TWO64


def randomize_binary(values: np.ndarray, epsilon: float, key: bytes, column: str, s0: int = 0) -> np.ndarray:
    """Randomized response on one binary column.

    values: 0/1 per sample; missing as a negative number or NaN (stays missing, never flipped). s0: global index of
    values[0] (position addressing: any split of the samples gives the same flips). Returns a float64 array with
    0.0/1.0 and NaN for missing.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    missing = np.isnan(v) | (v < 0)
    observed = v[~missing]
    if observed.size and not np.all((observed == 0) | (observed == 1)):
        bad = observed[(observed != 0) & (observed != 1)][0]
        raise GenoshareError(f"phenotype {column!r}: randomized response needs a binary column (0/1), found {bad:g}")
    t, _ = rr_threshold(epsilon)
    words = keystream(_column_key(key, column), PH_BYTES * int(s0), PH_BYTES * v.size).view("<u8")
    flip = words < np.uint64(t)
    out = np.where(flip, 1.0 - v, v)
    out[missing] = np.nan
    return out


# ------------------------------------------------------------------------------------------------------------------
# manifest entries


def clear_statement(columns: Iterable[str]) -> str:
    """What the manifest says when phenotypes or covariates are released in the clear."""
    cols = list(columns)
    if not cols:
        return ""
    listed = ", ".join(repr(c) for c in cols)
    return (
        f"phenotypes/covariates released in the clear: {listed}. They are not protected by differential "
        "privacy: anyone who knows a participant's values of these columns may find that participant's row, "
        "so membership in the cohort is not protected; the genotype guarantee (the xor and af stages) still "
        "bounds what the release reveals about each row's genotypes, given these columns."
    )


def phenotype_entry(rr: Mapping[str, float] | None = None, clear: Iterable[str] | None = None) -> dict:
    """The phenotype stage of the manifest's privacy object.

    rr: column -> requested epsilon_ph of each randomized binary column; clear: columns released in the clear.
    Nothing listed: nothing released, epsilon 0.
    """
    rr = dict(rr or {})
    clear = list(clear or [])
    both = sorted(set(rr) & set(clear))
    if both:
        raise GenoshareError(f"phenotype column {both[0]!r} is listed both for randomized response and in the clear")
    if not rr and not clear:
        return {"mechanism": "no phenotype or covariate released", "epsilon": 0.0, "delta": 0.0, "released": []}
    columns = []
    for name, eps in rr.items():
        t, eps_q = rr_threshold(eps)
        columns.append(
            {
                "name": name,
                "epsilon": eps_q,
                "epsilon_requested": float(eps),
                "keep_probability": (TWO64 - t) / TWO64,
                "flip_probability": t / TWO64,
            }
        )
    if rr:
        mechanism = "randomized response on binary phenotype(s)" + (
            "; other columns released in the clear" if clear else ""
        )
    else:
        mechanism = "none: released in the clear"
    entry = {
        "mechanism": mechanism,
        "epsilon": float(sum(c["epsilon"] for c in columns)),
        "delta": 0.0,
        "randomized": columns,
        "in_clear": clear,
        "randomness": "AES-256-CTR keystream per column, 8 bytes per sample at offset 8 i",
    }
    if len(columns) > 1:
        entry["composition"] = "basic composition over the randomized columns"
    if clear:
        entry["statement"] = clear_statement(clear)
    return entry
