"""Phenotypes: randomized response on a binary column (flip rate, accounting, addressing) and the clear-text note."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from genoshare.errors import GenoshareError
from genoshare.privacy.accountant import compose
from genoshare.privacy.phenotype import (
    TWO64,
    clear_statement,
    derive_phenotype_key,
    keep_probability,
    phenotype_entry,
    randomize_binary,
    rr_threshold,
)

KEY = derive_phenotype_key(bytes(range(32)))
ALARM = 1e-6


@pytest.mark.parametrize("eps", [0.1, 1.0, 3.0, 8.0])
def test_flip_rate_matches(eps):
    n = 200_000
    y = (np.arange(n) % 3 == 0).astype(float)
    out = randomize_binary(y, eps, KEY, "case")
    flips = int(np.count_nonzero(out != y))
    q = 1.0 / (1.0 + math.exp(eps))
    assert stats.binomtest(flips, n, q).pvalue > ALARM
    # the same rate for true 0s and true 1s (the mechanism does not depend on the value)
    f1 = int(np.count_nonzero(out[y == 1] != 1))
    f0 = int(np.count_nonzero(out[y == 0] != 0))
    table = [[f1, int((y == 1).sum()) - f1], [f0, int((y == 0).sum()) - f0]]
    assert stats.chi2_contingency(table)[1] > ALARM


@pytest.mark.parametrize("eps", [1e-3, 0.5, 1.0, 10.0, 40.0])
def test_accounting_uses_the_quantised_threshold(eps):
    t, eps_q = rr_threshold(eps)
    assert eps_q <= eps
    assert eps_q >= eps - max(1e-9, 1.01 / (t - 1))  # nearly tight; at eps = 40, T ~ 78 and one step is 1/T
    assert eps_q == pytest.approx(math.log((TWO64 - t) / t), abs=1e-12)
    assert keep_probability(eps) == pytest.approx(math.exp(eps) / (1 + math.exp(eps)), rel=1e-9)


def test_bad_epsilons_and_values():
    for bad in (0.0, -1.0, math.inf, math.nan, 50.0):
        with pytest.raises(GenoshareError):
            rr_threshold(bad)
    with pytest.raises(GenoshareError, match="binary"):
        randomize_binary(np.array([0, 1, 2]), 1.0, KEY, "case")


def test_missing_stays_missing():
    y = np.array([0, 1, -9, np.nan, 1, 0, -1] * 1000, dtype=float)
    out = randomize_binary(y, 0.01, KEY, "case")  # almost every observed value flips with probability ~1/2
    miss = np.isnan(y) | (y < 0)
    assert np.all(np.isnan(out[miss]))
    assert np.all(np.isin(out[~miss], [0.0, 1.0]))


def test_position_addressed_and_per_column():
    n = 10_000
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n).astype(float)
    whole = randomize_binary(y, 1.0, KEY, "case")
    parts = np.concatenate([randomize_binary(y[i : i + 777], 1.0, KEY, "case", s0=i) for i in range(0, n, 777)])
    assert np.array_equal(whole, parts)
    again = randomize_binary(y, 1.0, KEY, "case")
    assert np.array_equal(whole, again)
    # another column (or key) has its own independent flips
    other = randomize_binary(y, 1.0, KEY, "smoker")
    fa, fb = whole != y, other != y
    assert not np.array_equal(fa, fb)
    table = [[int(np.sum(fa & fb)), int(np.sum(fa & ~fb))], [int(np.sum(~fa & fb)), int(np.sum(~fa & ~fb))]]
    assert stats.chi2_contingency(table)[1] > ALARM
    assert not np.array_equal(whole, randomize_binary(y, 1.0, derive_phenotype_key(bytes(32)), "case"))


def test_entries_and_accounting():
    none = phenotype_entry()
    assert none["epsilon"] == 0.0 and none["delta"] == 0.0 and none["released"] == []

    rr = phenotype_entry({"case": 1.0, "smoker": 0.5})
    assert rr["epsilon"] == pytest.approx(1.5, abs=1e-9) and rr["epsilon"] <= 1.5
    assert rr["delta"] == 0.0 and "randomized response" in rr["mechanism"]
    assert {c["name"] for c in rr["randomized"]} == {"case", "smoker"}
    assert "basic composition" in rr["composition"]
    assert "not_covered" not in compose({"phenotype": rr})

    clear = phenotype_entry(clear=["age", "sex"])
    text = clear["statement"]
    assert "in the clear" in text and "'age'" in text and "'sex'" in text and "not protected" in text
    total = compose({"phenotype": clear})
    assert total["not_covered"][0]["stage"] == "phenotype"

    mixed = phenotype_entry({"case": 1.0}, clear=["age"])
    assert mixed["epsilon"] == pytest.approx(1.0, abs=1e-9) and mixed["in_clear"] == ["age"]
    t = compose({"phenotype": mixed})
    assert t["epsilon"] == pytest.approx(1.0, abs=1e-9) and t["not_covered"]

    with pytest.raises(GenoshareError):
        phenotype_entry({"case": 1.0}, clear=["case"])
    assert clear_statement([]) == ""
