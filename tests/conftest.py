# ---- dense-reference fixtures (tests/dense_reference.py; test_encode, test_ldstats, test_calibration, test_utility)
import dataclasses as _dc
import os as _os
import sys as _sys
import types as _types

import numpy as _np
import pytest as _pytest

_TESTS_DIR = _os.path.dirname(_os.path.abspath(__file__))
if _TESTS_DIR not in _sys.path:
    _sys.path.insert(0, _TESTS_DIR)

LACTOSE_DIR = _os.path.join(_os.path.dirname(_TESTS_DIR), "data", "opensnp-lactose")


def load_lactose_variant_major(name="reference.csv.gz"):
    """Lactose cohort CSV (PATIENT_ID, then one column per SNP) -> variant-major int8 (m, n)."""
    import pandas as pd

    df = pd.read_csv(_os.path.join(LACTOSE_DIR, name))
    vals = df.iloc[:, 1:].to_numpy()
    return _np.ascontiguousarray(vals.T.astype(_np.int8))


@_pytest.fixture(scope="session")
def lactose_ref():
    """Real reference panel, variant-major int8 (9091, 60), no missing."""
    G = load_lactose_variant_major("reference.csv.gz")
    assert G.shape == (9091, 60)
    assert set(_np.unique(G).tolist()) <= {0, 1, 2}
    return G


@_pytest.fixture(scope="session")
def lactose_dense_stats(lactose_ref):
    """Dense-reference LD statistics (tests/dense_reference.py) of the full lactose reference, window None,
    cached per zero_cell mode (~8 s each)."""
    cache = {}

    def get(zero_cell):
        if zero_cell not in cache:
            from dense_reference import dense_ldstats

            cache[zero_cell] = dense_ldstats(lactose_ref, zero_cell, window=None)
        return cache[zero_cell]

    return get


@_pytest.fixture(scope="session")
def lactose_pkg_stats(lactose_ref):
    """Package LD statistics of the full lactose reference (window None), cached per zero_cell mode."""
    cache = {}

    def get(zero_cell):
        if zero_cell not in cache:
            from genoshare.mechanism.ldstats import compute_ldstats

            cache[zero_cell] = compute_ldstats(lactose_ref, zero_cell=zero_cell, window=None, contigs=None)
        return cache[zero_cell]

    return get


def _make_pkg_stats(t_diag, s_pos, s_neg, f2, n_ref=100):
    """A package LD-statistics object carrying the given values (built from a real compute_ldstats result so that
    calibrate() sees its own type)."""
    from dense_reference import simulate_genotypes
    from genoshare.mechanism.ldstats import compute_ldstats

    t_diag, s_pos, s_neg = (_np.asarray(x, dtype=_np.float64) for x in (t_diag, s_pos, s_neg))
    m = len(t_diag) // 2
    G = simulate_genotypes(_np.random.default_rng(0), m, 5, special=False)
    tmpl = compute_ldstats(G, zero_cell="haldane")
    vals = dict(t_diag=t_diag, s_pos=s_pos, s_neg=s_neg, f2=float(f2), n_ref=int(n_ref))
    if _dc.is_dataclass(tmpl):
        names = {f.name for f in _dc.fields(tmpl)}
        return _dc.replace(tmpl, **{k: v for k, v in vals.items() if k in names})
    try:
        import copy

        obj = copy.copy(tmpl)
        for k, v in vals.items():
            setattr(obj, k, v)
        return obj
    except Exception:
        return _types.SimpleNamespace(**vals)


@_pytest.fixture
def pkg_stats_factory():
    """Function (t_diag, s_pos, s_neg, f2, n_ref=100) -> package LD-statistics object with those values."""
    return _make_pkg_stats


# ---- every test gets its own private directory (release ledger), never the user's real one. Module- and
# session-scoped fixtures run before the per-test fixture below, so the whole session first gets one of its own.
_SESSION_PRIVATE = None


def pytest_configure(config):
    import tempfile

    global _SESSION_PRIVATE
    _SESSION_PRIVATE = tempfile.mkdtemp(prefix="genoshare-test-private-")
    _os.environ["GENOSHARE_PRIVATE_DIR"] = _SESSION_PRIVATE


def pytest_unconfigure(config):
    import shutil

    if _SESSION_PRIVATE:
        shutil.rmtree(_SESSION_PRIVATE, ignore_errors=True)


@_pytest.fixture(autouse=True)
def _private_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENOSHARE_PRIVATE_DIR", str(tmp_path_factory.mktemp("private")))


# ---- a running SLURM (scripts/slurm/start.sh): tests skip without it, but never in CI
from tools import in_ci  # noqa: E402  (tests/ is on sys.path from the top of this file)


@_pytest.fixture(scope="module")
def slurm():
    """A SLURM that answers `sinfo` with a usable node; skip (or fail under CI) otherwise."""
    import subprocess

    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%T %c"], capture_output=True, text=True, timeout=10, check=False)
        problem = None if res.returncode == 0 else (res.stderr.strip() or f"exit status {res.returncode}")
    except FileNotFoundError:
        problem = "sinfo not found (apt-get install slurm-wlm munge: scripts/slurm/install.sh)"
    except subprocess.TimeoutExpired:
        problem = "sinfo did not answer within 10 s"
    if problem is None:
        states = [line.split() for line in res.stdout.splitlines() if line.strip()]
        usable = [int(c) for s, c in states if s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing")]
        if not usable:
            problem = f"no usable SLURM node (sinfo: {res.stdout.strip() or 'nothing'})"
    if problem is not None:
        msg = f"SLURM is not running: {problem}; start it with scripts/slurm/start.sh (as root)"
        if in_ci():
            _pytest.fail(f"{msg} -- CI must start SLURM before the tests", pytrace=False)
        _pytest.skip(msg)
    return {"cpus": max(usable)}
