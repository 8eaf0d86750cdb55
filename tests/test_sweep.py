"""`genoshare release --epsilon A,B,... --out DIR`: an epsilon sweep (issue 14, item 3). Each member DIR/epsilon-E/
must be the single-epsilon release with the same keys, byte for byte; without a seed the members must not share
a key; the whole sweep is checked against --budget before any genotype work; bad lists are one-line errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from genoshare.cli import main
from genoshare.io.csvmatrix import read_matrix
from genoshare.privacy.ledger import Ledger
from genoshare.simulate import simulate_cohort

GENOSHARE = [sys.executable, "-m", "genoshare.cli"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "s"
    simulate_cohort(d, cases=30, controls=30, panel=50, variants=300, seed=11, holdout=0, formats=("csv", "vcz"))
    from genoshare.io.ingest import ingest

    # a store of several variant x sample chunks (3 x 2): the store sweep's reads are counted per chunk
    ingest(d / "cohort.vcz", d / "chunked.vcz", chunk_variants=100, chunk_samples=32)
    return d


def csv_args(sim, *more):
    return ["release", str(sim / "cohort.csv.gz"), "--reference", str(sim / "panel.csv.gz"), *map(str, more)]


def invoke(args):
    return CliRunner().invoke(main, args, prog_name="genoshare", catch_exceptions=False)


def comparable(manifest_path):
    """The manifest without what differs between two runs of the same release (wall-clock times)."""
    m = json.loads(manifest_path.read_text())
    m.pop("timings"), m.pop("created")
    m["privacy"]["xor"]["accounting"].pop("seconds", None)
    return m


def test_csv_sweep_members_equal_single_releases(sim, tmp_path):
    res = invoke(csv_args(sim, "--epsilon", "1000,5000", "--seed", 3, "--out", tmp_path / "sweep"))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["epsilon-1000", "epsilon-5000"]
    for eps in (1000, 5000):
        single = tmp_path / f"single-{eps}"
        assert invoke(csv_args(sim, "--epsilon", eps, "--seed", 3, "--out", single)).exit_code == 0
        member = tmp_path / "sweep" / f"epsilon-{eps}"
        assert (member / "release.csv.gz").read_bytes() == (single / "release.csv.gz").read_bytes()
        assert comparable(member / "manifest.json") == comparable(single / "manifest.json")
        assert json.loads((member / "manifest.json").read_text())["epsilon_requested"] == eps
    # the two members differ from each other (different epsilon), and each has its own ledger row
    a, b = ((tmp_path / "sweep" / f"epsilon-{e}" / "release.csv.gz").read_bytes() for e in (1000, 5000))
    assert gzip.decompress(a) != gzip.decompress(b)
    with Ledger.open() as ledger:
        dirs = [e.output_dir for e in ledger.releases() if e.status == "recorded"]
    assert sum(d.endswith("sweep/epsilon-1000") for d in dirs) == 1
    assert sum(d.endswith("sweep/epsilon-5000") for d in dirs) == 1


def _differing_fraction(d, e1, e2):
    g1 = read_matrix(d / f"epsilon-{e1}" / "release.csv.gz").genotypes
    g2 = read_matrix(d / f"epsilon-{e2}" / "release.csv.gz").genotypes
    return float((g1 != g2).mean())


def test_without_seed_every_member_has_its_own_key(sim, tmp_path):
    """At (almost) equal epsilon, members with one shared key would be (almost) the same release; with a seed
    they are, without a seed they differ as much as two independent releases do."""
    res = invoke(csv_args(sim, "--epsilon", "1000,1000.001", "--seed", 5, "--out", tmp_path / "seeded"))
    assert res.exit_code == 0, res.output
    assert _differing_fraction(tmp_path / "seeded", 1000, "1000.001") < 0.01
    res = invoke(csv_args(sim, "--epsilon", "1000,1000.001", "--out", tmp_path / "fresh"))
    assert res.exit_code == 0, res.output
    assert _differing_fraction(tmp_path / "fresh", 1000, "1000.001") > 0.05
    for name in ("epsilon-1000", "epsilon-1000.001"):
        assert not json.loads((tmp_path / "fresh" / name / "manifest.json").read_text()).get(
            "reproducible_test_release", False
        )


def test_budget_refuses_the_whole_sweep_before_genotype_work(sim, tmp_path, monkeypatch):
    from genoshare import api

    def no_genotype_work(*a, **k):
        raise AssertionError("genotype work started")

    monkeypatch.setattr(api, "release_genotypes", no_genotype_work)
    monkeypatch.setattr(api, "compute_ldstats", no_genotype_work)
    out = tmp_path / "sweep"
    # each member alone fits the budget, the two together do not
    res = invoke(csv_args(sim, "--epsilon", "1000,1500", "--budget", 2000, "--out", out))
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("genoshare: error:")]
    assert len(lines) == 1 and "budget" in lines[0] and "2500" in lines[0], res.stderr
    assert not out.exists()
    with Ledger.open() as ledger:
        assert ledger.releases() == []


def test_failed_member_removes_the_whole_sweep(sim, tmp_path, monkeypatch):
    from genoshare import api

    real, calls = api.release_genotypes, []

    def fail_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise api.GenoshareError("simulated failure of the second member")
        return real(*a, **k)

    monkeypatch.setattr(api, "release_genotypes", fail_second)
    out = tmp_path / "sweep"
    res = invoke(csv_args(sim, "--epsilon", "1000,5000", "--seed", 1, "--out", out))
    assert res.exit_code == 2 and "simulated failure" in res.stderr, res.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with Ledger.open() as ledger:
        rows = ledger.releases()
        assert [r.status for r in rows] == ["cancelled"]  # the first member's row, no longer counted
        assert ledger.cumulative(rows[0].fingerprint)["epsilon"] == 0


@pytest.mark.parametrize(
    "value, words",
    [
        ("1000,,x", ["empty item"]),
        ("0,5", ["0 is not a positive"]),
        ("1000,x", ["'x' is not a number"]),
        ("5,5.0", ["listed twice"]),
        ("-3", ["-3"]),
    ],
)
def test_bad_epsilon_lists_are_one_line_errors(sim, tmp_path, value, words):
    out = tmp_path / "o"
    p = subprocess.run([*GENOSHARE, *csv_args(sim, "--epsilon", value, "--out", out)], capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genoshare: error: Invalid value for '--epsilon'"), p.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not out.exists()


def test_store_sweep_members_equal_single_releases(sim, tmp_path):
    common = ["--reference", sim / "panel.vcz", "--seed", 4, "--workers", 1, "--window", 100]

    def run(*args):
        p = subprocess.run(
            [*GENOSHARE, "release", str(sim / "chunked.vcz"), *map(str, common), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr

    run("--epsilon", "900,2000", "--out", tmp_path / "sweep")
    for eps in (900, 2000):
        run("--epsilon", eps, "--out", tmp_path / f"single-{eps}")
        member, single = tmp_path / "sweep" / f"epsilon-{eps}", tmp_path / f"single-{eps}"
        a = zarr.open_group(str(member / "release.vcz"), mode="r")
        b = zarr.open_group(str(single / "release.vcz"), mode="r")
        assert np.array_equal(a["call_genotype"][:], b["call_genotype"][:])
        assert comparable(member / "manifest.json") == comparable(single / "manifest.json")
        assert (member / "frequencies.tsv").read_bytes() == (single / "frequencies.tsv").read_bytes()
    with Ledger.open() as ledger:
        assert len([e for e in ledger.releases() if e.output_dir.endswith(("epsilon-900", "epsilon-2000"))]) == 2


def test_store_sweep_budget_refused_before_genotype_work(sim, tmp_path, monkeypatch):
    """The store sweep's up-front check counts the rows sharing the cohort's id key, as the members' do."""
    from genoshare import pipeline

    def no_release(*a, **k):
        raise AssertionError("genotype work started")

    monkeypatch.setattr(pipeline, "release_passes", no_release)
    monkeypatch.setattr(pipeline, "panel_ldstats", no_release)
    with Ledger.open() as ledger:  # an earlier release of this cohort spent 700
        from genoshare.io.vcz import open_vcz
        from genoshare.privacy.ledger import LedgerEntry, cohort_ids_key, fingerprint_path

        info = open_vcz(sim / "cohort.vcz")
        fp = cohort_ids_key(info.sample_ids, info.variant_id)
        ledger.record(
            LedgerEntry(
                fingerprint=fingerprint_path(sim / "cohort.vcz"),
                cohort_ids=fp,
                stages={"xor": {"epsilon": 700.0, "delta": 0.0}},
            )
        )
    out = tmp_path / "sweep"
    res = invoke(
        [
            "release",
            str(sim / "cohort.vcz"),
            "--reference",
            str(sim / "panel.vcz"),
            "--epsilon",
            "500,600",
            "--budget",
            1500,
            "--workers",
            1,
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == 2, res.output
    assert "1100" in res.stderr and "budget 1500" in res.stderr and fp[:12] in res.stderr, res.stderr
    assert not out.exists()


def test_store_sweep_reads_each_cohort_chunk_once(sim, tmp_path, monkeypatch):
    """The k members' pass graphs are computed together and share the tasks that read the cohort's chunks: one
    read task per chunk of call_genotype, the same tasks in every member's graph."""
    from genoshare import sweep

    seen = []
    real = sweep.Rendezvous.compute

    def spy(self, collections, progress=None):
        from dask.highlevelgraph import HighLevelGraph

        def flat(cs):
            for c in cs:
                yield from flat(c) if isinstance(c, (tuple, list)) else [c]

        seen.append(dict(HighLevelGraph.merge(*[c.__dask_graph__() for c in flat(collections)])))
        return real(self, collections, progress)

    monkeypatch.setattr(sweep.Rendezvous, "compute", spy)
    res = invoke(
        [
            "release",
            str(sim / "chunked.vcz"),
            "--reference",
            str(sim / "panel.vcz"),
            "--epsilon",
            "900,2000,4000",
            "--seed",
            2,
            "--workers",
            1,
            "--window",
            100,
            "--out",
            str(tmp_path / "sweep"),
        ]
    )
    assert res.exit_code == 0, res.output
    assert len(seen) == 3

    def read_keys(dsk):
        return {
            k
            for k in dsk
            if isinstance(k, tuple)
            and str(k[0]).startswith(("from-zarr", "original-array"))
            or isinstance(k, str)
            and k.startswith("original-array")
        }

    z = zarr.open_array(str(sim / "chunked.vcz" / "call_genotype"), mode="r")
    n_chunks = int(np.prod([-(-s // c) for s, c in zip(z.shape, z.chunks)]))
    keys = [{k for k in read_keys(d) if isinstance(k, tuple)} for d in seen]
    assert n_chunks == 6 and len(keys[0]) == n_chunks and keys[0] == keys[1] == keys[2]
    assert {p.name for p in (tmp_path / "sweep").iterdir()} == {"epsilon-900", "epsilon-2000", "epsilon-4000"}


def test_store_sweep_member_failing_before_the_passes_stops_all(sim, tmp_path, monkeypatch):
    """A member that fails before its passes must not leave the others waiting for it: the whole sweep fails with
    that member's error, nothing is left behind, no ledger row stays counted."""
    from genoshare import api

    real = api.calibrate

    def fail_2000(stats, epsilon, calibration):
        if epsilon == 2000:
            raise api.GenoshareError("simulated calibration failure at 2000")
        return real(stats, epsilon, calibration)

    monkeypatch.setattr(api, "calibrate", fail_2000)
    out = tmp_path / "sweep"
    res = invoke(
        [
            "release",
            str(sim / "chunked.vcz"),
            "--reference",
            str(sim / "panel.vcz"),
            "--epsilon",
            "900,2000,4000",
            "--seed",
            2,
            "--workers",
            1,
            "--window",
            100,
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == 2 and "simulated calibration failure at 2000" in res.stderr, res.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with Ledger.open() as ledger:
        assert all(r.status == "cancelled" for r in ledger.releases())
