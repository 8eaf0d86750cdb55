"""Hostile input classes (docs/hostile-input.md), each on the CSV and the store path: a one-line error with exit
status 2 and nothing written, or a documented correct result checked here against the input.

The classes other modules own: small published cohorts and tampered releases (test_release_safety.py), panels
related to the cohort, allele indices > 1, ingest drop counts and export ids (test_hostile_input.py).
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from genoshare.api import release_csv, release_store
from genoshare.errors import GenoshareError
from genoshare.io.vcz import write_vcz
from genoshare.mechanism.calibrate import MIN_EPSILON

M, N, NR = 300, 40, 60
EPS = 1000.0


def _data(seed=0):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.95, size=(M, 1))
    cohort = rng.binomial(2, freq, size=(M, N)).astype(np.int8)
    panel = rng.binomial(2, freq, size=(M, NR)).astype(np.int8)
    return cohort, panel


def _write_csv(path: Path, g: np.ndarray, ids, snps) -> Path:
    df = pd.DataFrame(g.T.astype(float), columns=snps)
    df[df < 0] = np.nan
    df.insert(0, "PATIENT_ID", ids)
    df.to_csv(path, index=False, float_format="%.0f")
    return path


def _meta(ids, vid=None):
    pairs = np.array([("A", "C"), ("A", "G"), ("C", "T"), ("G", "T")], dtype=object)  # none strand-ambiguous
    pos = np.arange(M) * 100 + 1000
    return dict(
        sample_ids=list(ids),
        contig_ids=["1"],
        variant_contig=np.zeros(M, dtype=np.int64),
        variant_position=pos,
        variant_allele=pairs[np.arange(M) % 4],
        variant_id=vid or [f"rs{j}" for j in range(M)],
    )


@pytest.fixture(scope="module")
def scheduler():
    """One small Dask cluster for the module's store releases (its start-up would dominate each test)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(autouse=True)
def _scheduler(scheduler, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "SCHEDULER", scheduler)


SCHEDULER = "local"


def _release(kind, tmp_path, g, ids=None, snps=None, **opts):
    """Release ``g`` (variant-major) through the CSV or the store path; returns the released (m, n) matrix
    (-1 missing), the sample ids and the manifest."""
    _, panel = _data()
    ids = ids or [f"c{i}" for i in range(g.shape[1])]
    out = tmp_path / f"rel-{kind}"
    opts = {"seed": 5, **opts}
    if kind == "csv":
        snps = snps or [f"rs{j}" for j in range(M)]
        c = _write_csv(tmp_path / "cohort.csv", g, ids, snps)
        r = _write_csv(tmp_path / "panel.csv", panel, [f"r{i}" for i in range(NR)], [f"rs{j}" for j in range(M)])
        release_csv(c, r, opts.pop("epsilon", EPS), out, **opts)
        with gzip.open(out / "release.csv.gz", "rt", encoding="utf-8") as f:
            df = pd.read_csv(io.StringIO(f.read()), dtype={"PATIENT_ID": str})
        got = df.iloc[:, 1:].to_numpy(dtype=float).T
        return np.where(np.isnan(got), -1, got).astype(np.int8), list(df["PATIENT_ID"]), out
    write_vcz(tmp_path / "cohort.vcz", g, **_meta(ids, snps))
    write_vcz(tmp_path / "panel.vcz", panel, **_meta([f"r{i}" for i in range(NR)]))
    release_store(
        tmp_path / "cohort.vcz", tmp_path / "panel.vcz", opts.pop("epsilon", EPS), out, scheduler=SCHEDULER, **opts
    )
    root = zarr.open(str(out / "release.vcz"), mode="r")
    gt = np.asarray(root["call_genotype"][:])
    dos = np.where((gt < 0).any(axis=2), -1, gt.sum(axis=2)).astype(np.int8)
    return dos, [str(s) for s in root["sample_id"][:]], out


PATHS = ["csv", "store"]


@pytest.mark.parametrize("kind", PATHS)
def test_monomorphic_and_all_missing_snps_and_individual(kind, tmp_path):
    """Documented result: a monomorphic SNP stays monomorphic (its frequency, 0, is restored exactly: flips move
    the count to within 1/(2n)); an all-missing SNP and an all-missing individual stay all missing (the
    missingness pattern is released as is, docs/privacy.md)."""
    g, _ = _data()
    g[7] = 0
    g[8] = 2
    g[9] = -1
    g[:, 4] = -1
    rel, ids, _ = _release(kind, tmp_path, g)
    assert ids == [f"c{i}" for i in range(N)]
    assert (rel[7][g[7] >= 0] == 0).all() and (rel[8][g[8] >= 0] == 2).all()
    assert (rel[9] == -1).all()
    assert (rel[:, 4] == -1).all()
    np.testing.assert_array_equal(rel < 0, g < 0)  # missingness kept cell for cell, nothing else missing
    called = g >= 0
    f_in = np.where(called, g, 0).sum(1) / (2 * called.sum(1).clip(1))
    f_out = np.where(called, rel, 0).sum(1) / (2 * called.sum(1).clip(1))
    ok = called.sum(1) > 0
    assert (np.abs(f_out - f_in)[ok] < 1 / (2 * called.sum(1)[ok]) + 1e-12).all()
    assert (rel[~np.isin(np.arange(M), [7, 8, 9])] != g[~np.isin(np.arange(M), [7, 8, 9])]).any()  # noise did act


@pytest.mark.parametrize("kind", PATHS)
def test_unusual_sample_ids_are_carried_exactly(kind, tmp_path):
    """Commas, quotes and non-ASCII in sample ids: released with the same ids, in the same order."""
    g, _ = _data()
    ids = [f"c{i}" for i in range(N)]
    ids[1], ids[2], ids[3] = 'a,b"c', "Zoë-ü", "ünïcødé_名前"
    rel, got, _ = _release(kind, tmp_path, g, ids=ids)
    assert got == ids
    assert rel.shape == g.shape


def test_duplicate_variant_ids(tmp_path):
    """CSV: the SNP id is the key that matches cohort and panel, so a duplicate is an error naming the file.
    Store: sites are matched by (contig, position, REF, ALT), ids are labels; a duplicate id is released as is."""
    g, _ = _data()
    snps = [f"rs{j}" for j in range(M)]
    snps[5] = snps[4]
    with pytest.raises(GenoshareError, match=r"cohort\.csv.*duplicate SNP id 'rs4'"):
        _release("csv", tmp_path, g, snps=snps)
    assert not (tmp_path / "rel-csv").exists()
    rel, _, out = _release("store", tmp_path, g, snps=snps)
    vid = [str(v) for v in zarr.open(str(out / "release.vcz"), mode="r")["variant_id"][:]]
    assert vid == snps and rel.shape == g.shape


@pytest.mark.parametrize("kind", PATHS)
def test_one_individual_with_public_frequencies(kind, tmp_path):
    """One individual restored to the PANEL's frequencies is a valid release (the noise is the protection;
    nothing of the cohort steers the flips). With the cohort's own frequencies it is refused (test_release_safety)."""
    g, _ = _data()
    rel, ids, _ = _release(kind, tmp_path, g[:, :1].copy(), af_source="reference")
    assert ids == ["c0"] and rel.shape == (M, 1)
    assert set(np.unique(rel)) <= {0, 1, 2}


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize(
    "eps, match",
    [
        (0.0, "positive"),
        (float("nan"), "positive"),
        (float("inf"), "positive"),
        (-1.0, "positive"),
        (1e-300, "below the smallest epsilon"),
        (1e300, "exceeds the largest true epsilon"),
    ],
)
def test_epsilon_out_of_range(kind, eps, match, tmp_path):
    g, _ = _data()
    with pytest.raises(GenoshareError, match=match) as exc:
        _release(kind, tmp_path, g, epsilon=eps)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / f"rel-{kind}").exists()


def test_smallest_epsilon_is_reachable(tmp_path):
    """Just above MIN_EPSILON a release exists and its true epsilon is at most the request."""
    g, _ = _data()
    _, _, out = _release("csv", tmp_path, g, epsilon=MIN_EPSILON * 1000)
    import json

    man = json.loads((out / "manifest.json").read_text())
    assert 0 < man["epsilon_xor"] <= MIN_EPSILON * 1000


@pytest.mark.parametrize("kind", PATHS)
def test_window_zero_and_negative(kind, tmp_path):
    """Window 0: no SNP pairs, every column calibrated on its own diagonal term (documented); negative: error."""
    g, _ = _data()
    rel, _, out = _release(kind, tmp_path, g, window=0)
    assert rel.shape == g.shape
    (tmp_path / "neg").mkdir()
    with pytest.raises(GenoshareError, match="--window must be >= 0"):
        _release(kind, tmp_path / "neg", g, window=-1)
    assert not (tmp_path / "neg" / f"rel-{kind}").exists()


def test_cli_errors_are_one_line_exit_2(tmp_path):
    """The same errors as a user meets them: one stderr line, exit status 2, no output directory."""
    g, panel = _data()
    c = _write_csv(tmp_path / "c.csv", g, [f"c{i}" for i in range(N)], [f"rs{j}" for j in range(M)])
    r = _write_csv(tmp_path / "p.csv", panel, [f"r{i}" for i in range(NR)], [f"rs{j}" for j in range(M)])
    for eps in ["nan", "1e-300", "-3"]:
        out = tmp_path / f"out{eps}"
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "genoshare.cli",
                "release",
                str(c),
                "--reference",
                str(r),
                "--epsilon",
                eps,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 2, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not out.exists()
