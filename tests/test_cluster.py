"""genoshare.cluster without SLURM: the local cluster, connecting by address, config checking, progress."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from genoshare.cluster import dask_client, load_slurm_config, local_cluster_size, progress
from genoshare.errors import GenoshareError

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[1]


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    return msg


# ----------------------------------------------------------------------------------------------
# local


def test_local_cluster_computes_dask_array(capsys):
    import dask
    import dask.array as da

    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, size=(600, 400), dtype=np.int8)
    with dask_client("local", n_workers=2) as client:
        info = client.nthreads()
        assert sorted(info.values()) == [1, 1], info  # two single-threaded worker processes
        d = da.from_array(x, chunks=(100, 100))
        got_sum, got_colmean = dask.compute(d.astype(np.int64).sum(), d.mean(axis=0))
        assert int(got_sum) == int(x.astype(np.int64).sum())
        np.testing.assert_allclose(got_colmean, x.mean(axis=0))
        # the workers are other processes
        pids = set(client.run(os.getpid).values())
        assert os.getpid() not in pids and len(pids) == 2
        limits = {w["memory_limit"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}
        assert limits == {local_cluster_size(2)[2]}
    err = capsys.readouterr().err
    assert "genoshare: Dask scheduler tcp://" in err and "dashboard" in err


def test_local_quiet_prints_nothing(capsys):
    with dask_client(n_workers=1, quiet=True) as client:
        assert client.submit(sum, [1, 2, 3]).result() == 6
    assert "Dask" not in capsys.readouterr().err


def test_local_size_defaults_follow_machine_and_slurm_allocation(monkeypatch):
    from dask.system import CPU_COUNT
    from distributed.system import MEMORY_LIMIT

    for var in ("SLURM_JOB_ID", "SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_TASK", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU"):
        monkeypatch.delenv(var, raising=False)
    workers, threads, mem = local_cluster_size()
    assert (workers, threads) == (CPU_COUNT, 1)
    assert mem == MEMORY_LIMIT // CPU_COUNT
    assert local_cluster_size(threads_per_worker=2)[:2] == (max(1, CPU_COUNT // 2), 2)
    assert local_cluster_size(1, 1, "1GiB") == (1, 1, 2**30)
    # LocalCluster inside a SLURM job: sized to the allocation, not the node
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "1")
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1500")
    assert local_cluster_size() == (1, 1, 1500 * 2**20)
    with pytest.raises(GenoshareError):
        local_cluster_size(0)
    with pytest.raises(GenoshareError):
        local_cluster_size(memory_limit="lots")


def test_progress_waits_and_draws_on_stderr_only_on_a_tty(capsys, monkeypatch):
    import dask.array as da
    from distributed import futures_of

    import genoshare.cluster as cl

    with dask_client(n_workers=1, quiet=True):
        x = da.ones((1000, 1000), chunks=(100, 100))
        monkeypatch.setattr(cl, "_stderr_is_tty", lambda: False)
        p = x.sum().persist()
        progress(p)
        assert all(f.done() for f in futures_of(p))  # progress() returned only once all were done
        assert p.compute() == 1e6
        out = capsys.readouterr()
        assert "Completed" not in out.err + out.out
        monkeypatch.setattr(cl, "_stderr_is_tty", lambda: True)
        p2 = (x + 1).sum().persist()
        progress(p2)
        out = capsys.readouterr()
        assert "100% Completed" in out.err and "Completed" not in out.out
        assert p2.compute() == 2e6
    progress(da.ones(3).sum())  # no futures (not persisted): nothing to wait for


# ----------------------------------------------------------------------------------------------
# tcp://


def test_tcp_connects_to_running_scheduler_and_leaves_it_running():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", dashboard_address=":0"
    ) as lc:
        assert lc.scheduler_address.startswith("tcp://")
        with dask_client(lc.scheduler_address, quiet=True) as client:
            assert client.scheduler.address == lc.scheduler_address
            assert client.submit(lambda v: v * 2, 21).result() == 42
        assert lc.status.name == "running"
        assert len(lc.scheduler.workers) == 1


def test_tcp_unreachable_is_one_line_error():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GenoshareError) as ei:
        with dask_client(f"tcp://127.0.0.1:{port}", timeout=1):
            pass
    msg = _one_line(ei.value)
    assert f"tcp://127.0.0.1:{port}" in msg and "cannot reach" in msg


def test_unknown_scheduler_and_misplaced_options():
    with pytest.raises(GenoshareError, match="unknown scheduler 'lokal'"):
        with dask_client("lokal"):
            pass
    with pytest.raises(GenoshareError, match="local scheduler only"):
        with dask_client("slurm", config="x.yaml", n_workers=2):
            pass
    with pytest.raises(GenoshareError, match="needs a cluster config"):
        with dask_client("slurm"):
            pass


# ----------------------------------------------------------------------------------------------
# cluster config


def _write(tmp_path, text: str, name="cluster.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_example_config_loads():
    cfg = load_slurm_config(REPO / "config" / "cluster.example.yaml")
    assert (cfg.cores, cfg.memory, cfg.processes, cfg.jobs, cfg.interface) == (1, "2GB", 1, 1, "lo")
    assert cfg.walltime == "00:30:00"
    kw = cfg.cluster_kwargs()
    assert kw["scheduler_options"] == {"dashboard_address": ":0"} and "queue" not in kw


def test_config_defaults(tmp_path):
    p = _write(
        tmp_path,
        """\
        slurm:
          cores: 4
          memory: 8GB
          log_directory: ~/logs
        """,
    )
    cfg = load_slurm_config(p)
    assert (cfg.processes, cfg.jobs, cfg.walltime, cfg.job_extra_directives) == (4, 1, None, None)
    assert cfg.log_directory == os.path.expanduser("~/logs")


@pytest.mark.parametrize(
    "text, needle",
    [
        ("slurm: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "mapping of sections"),
        ("other:\n  cores: 1\n", "no section 'slurm'"),
        ("slurm: 3\n", "must be a mapping"),
        ("slurm:\n  cores: 1\n  memory: 1GB\n  coress: 2\n", "unknown key coress (neither genoshare's"),
        ("slurm:\n  memory: 1GB\n", "missing required key(s) cores"),
        ("slurm:\n  cores: 0\n  memory: 1GB\n", "cores: must be a positive integer"),
        ("slurm:\n  cores: 2\n  memory: lots\n", "Could not interpret 'lots' as a byte unit"),  # dask-jobqueue's words
        ("slurm:\n  cores: 2\n  processes: 3\n  memory: 1GB\n", "processes: 3 worker processes"),
        ("slurm:\n  cores: 2\n  memory: 1GB\n  walltime: 1:30:00\n", "walltime: must be a quoted string"),
        (
            "slurm:\n  cores: 2\n  memory: 1GB\n  job_extra_directives: --qos=x\n",
            "job_extra_directives: must be a list",
        ),
        ("slurm:\n  cores: 2\n  memory: 1GB\n  interface: nosuchif0\n", "no network interface 'nosuchif0'"),
        ("slurm:\n  cores: 2\n  memory: 1GB\n  jobs: 1.5\n", "jobs: must be a positive integer"),
        ("slurm:\n  cores: 2\n  memory: 1GB\n  startup_timeout: -1\n", "startup_timeout: must be a positive"),
    ],
)
def test_bad_config_is_one_line_error_naming_the_file(tmp_path, text, needle):
    p = _write(tmp_path, text)
    with pytest.raises(GenoshareError) as ei:
        with dask_client("slurm", config=p):
            pass
    msg = _one_line(ei.value)
    assert str(p) in msg and needle in msg, msg


def test_any_dask_jobqueue_parameter_passes_through(tmp_path):
    """Keys genoshare does not know are SLURMCluster's: they reach the worker job script unchanged."""
    from dask_jobqueue.slurm import SLURMJob

    p = _write(
        tmp_path,
        """\
        slurm:
          cores: 2
          memory: 4GB
          job_script_prologue: ["module load python/3.11"]
          worker_extra_args: ["--lifetime", "55m"]
          job_cpu: 2
        """,
    )
    cfg = load_slurm_config(p)
    kw = cfg.cluster_kwargs()
    assert kw["job_script_prologue"] == ["module load python/3.11"] and kw["processes"] == 2
    script = SLURMJob(
        scheduler="tcp://127.0.0.1:1", name="t", **{k: v for k, v in kw.items() if k != "scheduler_options"}
    ).job_script()
    assert "module load python/3.11" in script and "--lifetime 55m" in script and "--nthreads 1" in script


def test_missing_config_file(tmp_path):
    p = tmp_path / "nope.yaml"
    with pytest.raises(GenoshareError) as ei:
        load_slurm_config(p)
    msg = _one_line(ei.value)
    assert str(p) in msg and "not found" in msg
    with pytest.raises(GenoshareError, match="not a file"):
        load_slurm_config(tmp_path)


def test_other_section(tmp_path):
    p = _write(tmp_path, "slurm:\n  cores: 1\n  memory: 1GB\nbig:\n  cores: 8\n  memory: 32GB\n  jobs: 4\n")
    cfg = load_slurm_config(p, "big")
    assert (cfg.cores, cfg.jobs, cfg.section) == (8, 4, "big")
    with pytest.raises(GenoshareError, match=r"no section 'huge' in cluster config \(sections: slurm, big\)"):
        load_slurm_config(p, "huge")
