"""The one place that makes a Dask client: every genoshare command gets its workers here.

    with dask_client("local") as client:             # LocalCluster sized to this machine (or SLURM allocation)
    with dask_client("slurm", config="c.yaml") as c:  # dask-jobqueue workers as SLURM jobs
    with dask_client("tcp://10.0.0.5:8786") as c:    # an existing scheduler

Inside the block, plain ``dask.compute`` and ``.compute()`` run on the client's workers
(the client is the default scheduler). On exit the client is closed; a cluster made here is
shut down with it (SLURM jobs are cancelled, then checked for with ``squeue``); a scheduler
reached by address is left running.

Why processes with one thread each by default: the numba kernels are ``nogil`` and would
scale in threads, but the keystream calls into ``cryptography`` (OpenSSL) per block and the
surrounding NumPy/zarr glue may hold the GIL, and with one thread per process a worker's
memory limit bounds exactly one task. The cost, pickling chunks between processes, is small
here because every task reads its own chunk from the store and returns small results.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from genoshare.errors import GenoshareError, InputError

__all__ = ["dask_client", "progress", "load_slurm_config", "SlurmConfig", "local_cluster_size"]

#: Seconds to wait for a scheduler given by address to answer.
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for the first SLURM worker unless the config or the caller says otherwise.
SLURM_STARTUP_TIMEOUT = 300.0

# Logger -> the least level shown while a client is open. Tornado's errors are tracebacks of
# background tasks (e.g. a failed sbatch) that reach the user as one GenoshareError anyway.
_NOISY_LOGGERS = {
    "distributed": logging.ERROR,
    "dask_jobqueue": logging.ERROR,
    "bokeh": logging.ERROR,
    "tornado": logging.CRITICAL,
    "asyncio": logging.CRITICAL,
}


# ----------------------------------------------------------------------------------------------
# configuration of the "slurm" scheduler


@dataclass(frozen=True)
class SlurmConfig:
    """One section of a cluster config file (see config/cluster.example.yaml).

    ``jobqueue`` holds every key of the section except genoshare's own (``jobs``, ``startup_timeout``): they are
    dask_jobqueue.SLURMCluster's parameters, passed through unchanged, so any of them (``job_script_prologue``,
    ``worker_extra_args``, ``job_cpu``, ...) works, and dask-jobqueue is the one that checks them.
    """

    path: str
    section: str
    jobqueue: dict[str, Any]
    jobs: int = 1
    startup_timeout: float = SLURM_STARTUP_TIMEOUT

    def __getattr__(self, name: str):
        # cfg.cores, cfg.log_directory, ...: a SLURMCluster parameter as the section gives it (None if absent)
        if name.startswith("_") or name in ("path", "section", "jobqueue", "jobs", "startup_timeout"):
            raise AttributeError(name)
        return self.jobqueue.get(name)

    def cluster_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of dask_jobqueue.SLURMCluster (the dashboard on a free port)."""
        return {"scheduler_options": {"dashboard_address": ":0"}, **self.jobqueue}


#: genoshare's own keys of a section; everything else belongs to dask-jobqueue.
OWN_KEYS = ("jobs", "startup_timeout")
#: Keys holding paths: ~ and $VARS are expanded here (dask-jobqueue takes them literally).
_PATH_KEYS = ("local_directory", "log_directory", "python")


def _jobqueue_problem(kwargs: dict[str, Any]) -> str | None:
    """What dask-jobqueue itself says about these SLURMCluster parameters, or None: its job class builds the
    worker job script without starting a scheduler or submitting anything."""
    import inspect

    from dask_jobqueue.core import JobQueueCluster
    from dask_jobqueue.slurm import SLURMJob

    cluster_only = set(inspect.signature(JobQueueCluster.__init__).parameters) - {"self", "job_kwargs"}
    job_kwargs = {k: v for k, v in kwargs.items() if k not in cluster_only or k in ("interface", "protocol")}
    try:
        SLURMJob(scheduler="tcp://127.0.0.1:1", name="genoshare-config-check", **job_kwargs).job_script()
    except TypeError as exc:
        m = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
        if m:
            return (
                f"unknown key {m.group(1)} (neither genoshare's ({', '.join(OWN_KEYS)}) nor a parameter of "
                "dask_jobqueue.SLURMCluster)"
            )
        return " ".join(str(exc).split())
    except (ValueError, ZeroDivisionError) as exc:
        text = " ".join(str(exc).split())
        if "specify how much cores and memory" in text:
            missing = [k for k in ("cores", "memory") if kwargs.get(k) is None]
            return f"missing required key(s) {', '.join(missing)}"
        return text
    return None


def load_slurm_config(path: str | Path, section: str = "slurm") -> SlurmConfig:
    """Read and check one section of a cluster config file; any problem is one InputError naming the file.

    dask-jobqueue checks its own parameters (unknown keys, missing cores/memory, sizes). Checked here are only
    genoshare's keys and the values dask-jobqueue accepts but turns into a wrong job (measured with
    dask-jobqueue 0.9): ``walltime: 1:30:00`` unquoted is read by YAML as 5400 and becomes ``#SBATCH -t 5400``
    (minutes); ``job_extra_directives: --qos=x`` (a string) becomes one #SBATCH line per character; more
    ``processes`` than ``cores`` gives workers of 0 threads; a fractional ``cores`` a fractional --nworkers; a
    network ``interface`` this machine lacks only fails after the startup timeout.
    """
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(p, "cluster config file not found" if not p.exists() else "cluster config is not a file")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(p, f"not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(p, f"cannot read cluster config: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(p, "cluster config must be a mapping of sections (e.g. 'slurm:') to settings")
    if section not in doc:
        have = ", ".join(map(str, doc)) or "none"
        raise InputError(p, f"no section '{section}' in cluster config (sections: {have})")
    raw = doc[section]
    if not isinstance(raw, dict):
        raise InputError(p, f"section '{section}' must be a mapping of settings")

    def bad(key: str, why: str):
        return InputError(p, f"section '{section}': {key}: {why}")

    def positive_int(key: str, v) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(key, f"must be a positive integer, not {v!r}")
        return v

    jobqueue = {str(k): v for k, v in raw.items() if k not in OWN_KEYS and v is not None}
    jobs = positive_int("jobs", raw.get("jobs", 1))
    timeout = raw.get("startup_timeout", SLURM_STARTUP_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise bad("startup_timeout", f"must be a positive number of seconds, not {timeout!r}")

    if "cores" in jobqueue:
        # genoshare's default, unlike dask-jobqueue's sqrt(cores): one thread per worker (module docstring)
        jobqueue.setdefault("processes", positive_int("cores", jobqueue["cores"]))
    if "processes" in jobqueue:
        processes = positive_int("processes", jobqueue["processes"])
        if isinstance(jobqueue.get("cores"), int) and processes > jobqueue["cores"]:
            raise bad(
                "processes",
                f"{processes} worker processes per job cannot share {jobqueue['cores']} cores "
                "(each needs at least one thread)",
            )
    walltime = jobqueue.get("walltime")
    if walltime is not None and not isinstance(walltime, str):
        raise bad(
            "walltime",
            f"must be a quoted string like '01:30:00', not {walltime!r} "
            "(YAML reads unquoted 1:30:00 as a number of seconds)",
        )
    extra = jobqueue.get("job_extra_directives")
    if extra is not None and (not isinstance(extra, list) or not all(isinstance(x, str) for x in extra)):
        raise bad("job_extra_directives", "must be a list of strings like ['--qos=normal']")
    interface = jobqueue.get("interface")
    if interface is not None:
        import psutil

        have = sorted(psutil.net_if_addrs())
        if interface not in have:
            raise bad(
                "interface",
                f"no network interface '{interface}' on this machine "
                f"(have: {', '.join(have)}); on the test SLURM use 'lo'",
            )
    for key in _PATH_KEYS:
        if isinstance(jobqueue.get(key), str):
            jobqueue[key] = os.path.expandvars(os.path.expanduser(jobqueue[key]))
    if isinstance(jobqueue.get("memory"), int) and not isinstance(jobqueue["memory"], bool):
        jobqueue["memory"] = str(jobqueue["memory"])
    problem = _jobqueue_problem(jobqueue)
    if problem is not None:
        raise InputError(p, f"section '{section}': {problem}")
    return SlurmConfig(path=str(p), section=section, jobqueue=jobqueue, jobs=jobs, startup_timeout=float(timeout))


# ----------------------------------------------------------------------------------------------
# sizing of the local cluster


def _slurm_allocation() -> tuple[int | None, int | None]:
    """(cpus, bytes) this process may use when it runs inside a SLURM job, else (None, None)."""
    if "SLURM_JOB_ID" not in os.environ:
        return None, None
    cpus = None
    for var in ("SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_TASK"):
        with contextlib.suppress(KeyError, ValueError):
            cpus = int(os.environ[var])
            break
    mem = None
    with contextlib.suppress(KeyError, ValueError):
        mem = int(os.environ["SLURM_MEM_PER_NODE"]) * 2**20
    if mem is None and cpus is not None:
        with contextlib.suppress(KeyError, ValueError):
            mem = int(os.environ["SLURM_MEM_PER_CPU"]) * 2**20 * cpus
    return cpus, mem


def local_cluster_size(
    n_workers: int | None = None, threads_per_worker: int | None = None, memory_limit: str | int | None = None
) -> tuple[int, int, int]:
    """(workers, threads per worker, memory bytes per worker) of the default local cluster.

    CPUs: dask's count (honours CPU affinity and cgroup quotas), capped by the SLURM allocation
    when run inside a job. Memory: distributed's limit (RAM, cgroup, rlimit), capped likewise,
    split evenly between workers.
    """
    from dask.system import CPU_COUNT
    from dask.utils import parse_bytes
    from distributed.system import MEMORY_LIMIT

    cpus, mem = CPU_COUNT, MEMORY_LIMIT
    job_cpus, job_mem = _slurm_allocation()
    if job_cpus:
        cpus = min(cpus, job_cpus)
    if job_mem:
        mem = min(mem, job_mem)
    for name, v in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise GenoshareError(f"{name} must be a positive integer, not {v!r}")
    threads = threads_per_worker or 1
    workers = n_workers or max(1, cpus // threads)
    if memory_limit is None:
        per_worker = mem // workers
    else:
        try:
            per_worker = parse_bytes(memory_limit)
        except (ValueError, TypeError):
            raise GenoshareError(f"memory_limit must be a size like '4GB', not {memory_limit!r}") from None
    return workers, threads, int(per_worker)


# ----------------------------------------------------------------------------------------------
# the factory


@contextlib.contextmanager
def dask_client(
    scheduler: str = "local",
    *,
    config: str | Path | None = None,
    section: str = "slurm",
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | None = None,
    quiet: bool = False,
    timeout: float | None = None,
) -> Iterator[distributed.Client]:  # noqa: F821
    """A distributed.Client for ``scheduler``: "local", "slurm" or "tcp://HOST:PORT".

    n_workers, threads_per_worker and memory_limit size the "local" cluster only (defaults:
    one single-threaded worker process per CPU, RAM split evenly); with "slurm" the config
    file's section (cores, memory, processes, jobs, ...) sizes the jobs instead. ``timeout``
    (seconds) bounds connecting to an address (default 10) or waiting for the first SLURM
    worker (default: the section's startup_timeout, else 300). Unless ``quiet``, the dashboard
    address goes to stderr. Problems the user can fix are one-line GenoshareErrors.
    """
    if not isinstance(scheduler, str) or not scheduler:
        raise GenoshareError(f"unknown scheduler {scheduler!r}: use 'local', 'slurm' or 'tcp://HOST:PORT'")
    if scheduler != "local":
        given = [
            k
            for k, v in (
                ("n_workers", n_workers),
                ("threads_per_worker", threads_per_worker),
                ("memory_limit", memory_limit),
            )
            if v is not None
        ]
        if given:
            what = (
                "the config file's section sizes the SLURM jobs"
                if scheduler == "slurm"
                else "the existing scheduler has its own workers"
            )
            raise GenoshareError(f"{', '.join(given)} apply to the local scheduler only ({what})")

    with _quiet_logs():
        if scheduler == "local":
            cm = _local(n_workers, threads_per_worker, memory_limit)
        elif scheduler == "slurm":
            if config is None:
                raise GenoshareError("scheduler 'slurm' needs a cluster config file (see config/cluster.example.yaml)")
            cm = _slurm(load_slurm_config(config, section), timeout)
        elif "://" in scheduler:
            cm = _connect(scheduler, CONNECT_TIMEOUT if timeout is None else timeout)
        else:
            raise GenoshareError(f"unknown scheduler {scheduler!r}: use 'local', 'slurm' or 'tcp://HOST:PORT'")
        with cm as client:
            if not quiet:
                print(
                    f"genoshare: Dask scheduler {client.scheduler.address}, {_dashboard(client)}",
                    file=sys.stderr,
                    flush=True,
                )
            yield client


def _dashboard(client) -> str:
    try:
        link = client.dashboard_link
    except Exception:  # noqa: BLE001 - no dashboard is not an error
        link = None
    if not link or not _has_bokeh():
        return "dashboard not available (pip install bokeh to get one)"
    return f"dashboard {link}"


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


@contextlib.contextmanager
def _quiet_logs():
    """Only errors from distributed and friends while a client is open (startup/shutdown chatter is noise)."""
    saved = {}
    for name, level in _NOISY_LOGGERS.items():
        lg = logging.getLogger(name)
        saved[name] = lg.level
        if lg.getEffectiveLevel() < level:
            lg.setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _local(n_workers, threads_per_worker, memory_limit):
    from distributed import Client, LocalCluster

    import dask

    workers, threads, per_worker = local_cluster_size(n_workers, threads_per_worker, memory_limit)
    # The nanny's default MALLOC_TRIM_THRESHOLD_ disables glibc's dynamic mmap threshold, so every
    # chunk-sized buffer is mapped, page-faulted and unmapped anew (measured: ~25% of worker time
    # on this kind of VM); let the allocator keep and reuse them.
    environ = {
        **dask.config.get("distributed.nanny.pre-spawn-environ", {}),
        "MALLOC_MMAP_THRESHOLD_": str(64 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
    }
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            memory_limit=per_worker,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
    ):
        with Client(cluster) as client:
            yield client


@contextlib.contextmanager
def _connect(address: str, timeout: float):
    from distributed import Client

    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        if len(why) > 200:
            why = why[:200] + "..."
        raise GenoshareError(f"cannot reach Dask scheduler {address} within {timeout:g} s: {why}") from None
    with client:
        yield client


@contextlib.contextmanager
def _sigterm_as_exit():
    """Turn SIGTERM into SystemExit while SLURM jobs are ours, so `finally` cancels them."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run(cmd: list[str], timeout: float = 15.0) -> subprocess.CompletedProcess | None:
    """Run an external command with a timeout; None if it is missing or hangs."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _job_ids(cluster) -> set[str]:
    return {str(job.job_id) for job in list(cluster.workers.values()) if getattr(job, "job_id", None)}


def squeue_states(job_ids) -> dict[str, str]:
    """{job id: 'STATE (reason)'} of the given jobs still pending/running/completing in squeue."""
    ids = sorted(set(map(str, job_ids)))
    if not ids or shutil.which("squeue") is None:
        return {}
    res = _run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i|%T|%r"])
    if res is None or res.returncode != 0:
        return {}
    out = {}
    for line in res.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            out[parts[0]] = parts[1] if parts[2] in ("", "None") else f"{parts[1]} ({parts[2]})"
    return out


@contextlib.contextmanager
def _slurm(cfg: SlurmConfig, timeout: float | None):
    if shutil.which("sbatch") is None:
        raise GenoshareError("scheduler 'slurm': sbatch not found on PATH (is this a SLURM login node?)")
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    wait = cfg.startup_timeout if timeout is None else timeout
    if cfg.log_directory:
        with contextlib.suppress(OSError):
            os.makedirs(cfg.log_directory, exist_ok=True)
    seen: set[str] = set()
    with _sigterm_as_exit():
        try:
            cluster = SLURMCluster(**cfg.cluster_kwargs())
        except (ValueError, OSError) as exc:
            raise InputError(
                cfg.path, f"section '{cfg.section}': cannot set up SLURM workers: {' '.join(str(exc).split())}"
            ) from None
        try:
            _preflight(cluster, cfg)
            cluster.scale(jobs=cfg.jobs)
            client = Client(cluster)
            try:
                _wait_for_first_worker(client, cluster, cfg, wait, seen)
                yield client
            finally:
                seen |= _job_ids(cluster)
                with contextlib.suppress(Exception):
                    client.close()
        finally:
            seen |= _job_ids(cluster)
            with contextlib.suppress(Exception):
                cluster.scale(0)
            with contextlib.suppress(Exception):
                cluster.close(timeout=30)
            _cancel_leftovers(seen)


def _preflight(cluster, cfg: SlurmConfig):
    """``sbatch --test-only`` the worker job script: a bad partition, account or request fails here
    in a second, with SLURM's own words, instead of after the startup timeout."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="genoshare-worker-") as f:
        f.write(cluster.job_script())
        f.flush()
        res = _run(["sbatch", "--test-only", f.name], timeout=30)
    if res is None or res.returncode == 0:
        return
    lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
    why = lines[-1] if lines else f"exit status {res.returncode}"
    for prefix in ("sbatch: error: ", "allocation failure: "):
        why = why.removeprefix(prefix)
    raise InputError(cfg.path, f"section '{cfg.section}': SLURM rejects the worker job: {why}")


def _wait_for_first_worker(client, cluster, cfg: SlurmConfig, wait: float, seen: set[str]):
    deadline = time.monotonic() + wait
    while True:
        seen |= _job_ids(cluster)
        if client.nthreads():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    states = squeue_states(seen)
    if states:
        jobs = "; ".join(f"job {j} {s}" for j, s in sorted(states.items()))
    elif seen:
        jobs = f"job(s) {', '.join(sorted(seen))} no longer in squeue (they ended: see the job logs"
        jobs += f" in {cfg.log_directory})" if cfg.log_directory else ", slurm-<jobid>.out)"
    else:
        jobs = "no job was submitted"
    raise GenoshareError(
        f"no Dask worker joined from SLURM within {wait:g} s ({cfg.path} [{cfg.section}]): squeue says {jobs}"
    )


def _cancel_leftovers(job_ids: set[str]):
    """Make sure none of our jobs survives: scancel what squeue still shows pending or running."""
    if not job_ids or shutil.which("scancel") is None:
        return
    left = {j for j, s in squeue_states(job_ids).items() if not s.startswith("COMPLETING")}
    if left:
        _run(["scancel", *sorted(left)])


# ----------------------------------------------------------------------------------------------
# progress


def progress(futures_or_collection) -> None:
    """Block until the given futures (or a persisted collection's futures) are finished.

    Shows distributed's text progress bar on stderr when stderr is a terminal (stdout stays
    clean for the command's output). Does nothing for a collection that holds no futures
    (e.g. computed without a distributed client). Errors of the tasks are not raised here:
    they surface when the results are gathered/computed.
    """
    from distributed import futures_of, wait

    futures = futures_of(futures_or_collection)
    if not futures:
        return
    if _stderr_is_tty():
        _StderrProgressBar(futures, complete=True)
    else:
        wait(futures)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


_BAR_CLASS = None


def _StderrProgressBar(futures, **kwargs):  # noqa: N802 - a class defined on first use (lazy import)
    """distributed's TextProgressBar drawn on stderr instead of stdout (blocks until done)."""
    global _BAR_CLASS
    if _BAR_CLASS is None:
        from distributed.diagnostics.progressbar import TextProgressBar
        from dask.utils import format_time

        class StderrProgressBar(TextProgressBar):
            def _draw_bar(self, remaining, all, **kw):
                frac = (1 - remaining / all) if all else 1.0
                msg = "\r[{0:<{1}}] | {2}% Completed | {3}".format(
                    "#" * int(self.width * frac), self.width, int(100 * frac), format_time(self.elapsed)
                )
                with contextlib.suppress(ValueError, OSError):
                    sys.stderr.write(msg)
                    sys.stderr.flush()

            def _draw_stop(self, **kw):
                with contextlib.suppress(ValueError, OSError):
                    sys.stderr.write("\33[2K\r")
                    sys.stderr.flush()

        _BAR_CLASS = StderrProgressBar
    return _BAR_CLASS(futures, **kwargs)
