"""dask_client("slurm") against a real SLURM (scripts/slurm/start.sh starts one on localhost).

Without a working `sinfo` these tests skip, except under CI (CI set), where they fail:
.ci/run must have started SLURM before the tests.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time

import pytest

from genoshare.cluster import dask_client
from genoshare.errors import GenoshareError

pytestmark = pytest.mark.timeout(90)


def _run(cmd: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def slurm_config(tmp_path):
    logs = tmp_path / "logs"
    p = tmp_path / "cluster.yaml"
    p.write_text(
        textwrap.dedent(f"""\
        slurm:
          cores: 1
          memory: 1GB
          processes: 1
          walltime: "00:05:00"
          interface: lo
          jobs: 1
          log_directory: {logs}
          startup_timeout: 45
        """)
    )
    return p


def _active(job_ids) -> dict[str, str]:
    """{job id: state} of those jobs squeue still shows (pending, running, completing)."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    res = _run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T"])
    return dict(line.split() for line in res.stdout.splitlines() if line.strip())


def _gone(job_ids, within: float = 20.0) -> dict[str, str]:
    deadline = time.monotonic() + within
    left = _active(job_ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.3)
        left = _active(job_ids)
    return left


def test_workers_are_slurm_jobs_and_compute(slurm, slurm_config, capsys):
    import dask
    import dask.array as da
    import numpy as np

    t0 = time.monotonic()
    with dask_client("slurm", config=slurm_config) as client:
        started = time.monotonic() - t0
        job_ids = {v for v in client.run(os.getenv, "SLURM_JOB_ID").values()}
        # (client.run(os.environ.get, ...) would pickle the client's own os.environ)
        assert job_ids and None not in job_ids, job_ids
        assert all(s == "RUNNING" for s in _active(job_ids).values()) and _active(job_ids).keys() == job_ids
        assert {j.job_id for j in client.cluster.workers.values()} == job_ids
        x = np.arange(200_000, dtype=np.int64).reshape(400, 500)
        d = da.from_array(x, chunks=(100, 100))
        total, colsum = dask.compute(d.sum(), d.sum(axis=0))
        assert int(total) == int(x.sum())
        np.testing.assert_array_equal(colsum, x.sum(axis=0))
        workers = client.run(os.getpid)
        assert os.getpid() not in workers.values()
    closed = time.monotonic() - t0 - started
    err = capsys.readouterr().err
    assert "genoshare: Dask scheduler tcp://127.0.0.1:" in err
    left = _gone(job_ids)
    assert not left, f"SLURM jobs left after the context exited: {left}"
    print(f"slurm worker up in {started:.1f}s, closed in {closed:.1f}s")


def test_no_job_left_after_an_exception(slurm, slurm_config):
    with pytest.raises(ZeroDivisionError):
        with dask_client("slurm", config=slurm_config, quiet=True) as client:
            job_ids = set(client.run(os.getenv, "SLURM_JOB_ID").values())
            assert _active(job_ids)
            client.submit(lambda: 1 / 0).result()
    assert not _gone(job_ids), "SLURM jobs left after an exception in the block"


def test_pending_worker_times_out_naming_squeue_state(slurm, slurm_config):
    # Fill the node with a job that takes every CPU, so our worker job stays PENDING.
    res = _run(
        [
            "sbatch",
            "--parsable",
            "-J",
            "genoshare-test-blocker",
            "-c",
            str(slurm["cpus"]),
            "--mem=100M",
            "-t",
            "2",
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 60",
        ]
    )
    assert res.returncode == 0, res.stderr
    blocker = res.stdout.strip().split(";")[0]
    try:
        deadline = time.monotonic() + 20
        while _active([blocker]).get(blocker) != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _active([blocker]).get(blocker) == "RUNNING"
        before = set(_run(["squeue", "-h", "-o", "%i"]).stdout.split())
        with pytest.raises(GenoshareError) as ei:
            with dask_client("slurm", config=slurm_config, quiet=True, timeout=4):
                pass
        msg = str(ei.value)
        assert "\n" not in msg and "within 4 s" in msg and "PENDING (Resources)" in msg, msg
        ours = set(_run(["squeue", "-h", "-o", "%i"]).stdout.split()) - before
        assert not _gone(ours), "the pending worker job was not cancelled"
    finally:
        _run(["scancel", blocker])
        _gone([blocker])


def test_rejected_job_fails_fast(slurm, tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("slurm:\n  cores: 1\n  memory: 1GB\n  interface: lo\n  queue: no-such-partition\n")
    t0 = time.monotonic()
    with pytest.raises(GenoshareError) as ei:
        with dask_client("slurm", config=p, quiet=True, timeout=30):
            pass
    msg = str(ei.value)
    assert "\n" not in msg and str(p) in msg and "SLURM rejects the worker job" in msg, msg
    assert time.monotonic() - t0 < 15


def test_release_with_slurm_workers_equals_local(slurm, slurm_config, tmp_path):
    """Issue 3: a release whose Dask workers are SLURM jobs gives the identical output to local."""
    import numpy as np

    from genoshare.api import release_store
    from genoshare.io.vcz import open_vcz, read_dosage
    from genoshare.simulate import simulate_cohort

    sim = tmp_path / "sim"
    simulate_cohort(sim, cases=20, controls=20, panel=30, variants=300, seed=4, holdout=0, formats=("vcz",))
    common = dict(seed=8, window=50)
    local = release_store(sim / "cohort.vcz", sim / "panel.vcz", 500.0, tmp_path / "local", workers=1, **common)
    on_slurm = release_store(
        sim / "cohort.vcz",
        sim / "panel.vcz",
        500.0,
        tmp_path / "slurm",
        scheduler="slurm",
        cluster_config=slurm_config,
        **common,
    )
    assert on_slurm["scheduler"] == "slurm" and local["scheduler"] == "local"
    a, b = open_vcz(tmp_path / "local" / "release.vcz"), open_vcz(tmp_path / "slurm" / "release.vcz")
    assert np.array_equal(read_dosage(a, 0, a.n_variants), read_dosage(b, 0, b.n_variants))
    assert on_slurm["epsilon_xor"] == local["epsilon_xor"]
