"""Helpers of benchmarks/store.py: run a command and sample the memory of its whole process tree.

The store release spawns Dask worker processes (one per core), so ``getrusage`` of one child
is not its footprint. ``run_tree`` starts the command and, every ``interval`` seconds, walks
the tree below it (psutil) and reads /proc/PID/status (VmRSS, VmHWM) and, optionally,
/proc/PID/smaps_rollup (Pss) of every process:

- ``peak_rss_total``: the largest SUM of VmRSS over the tree at one sample (the target
  quantity; shared pages, e.g. libraries mapped by every worker, are counted once per process,
  so it over- rather than under-states);
- ``peak_pss_total``: the same with Pss (shared pages split between their users): closer to
  what the tree really costs the machine;
- ``peak_rss_single``: the largest VmHWM (the kernel's exact per-process high-water mark) of
  any process seen, with its command line;
- ``cpu_s`` (``user_s`` + ``sys_s``) and ``minor_faults``: CPU seconds and minor page faults (pages
  touched for the first time: on this VM ~0.7 GB/s, so they are worth counting) summed over
  the tree, as last sampled before each process ended (up to one period is missed per process).

A 0.2 s sampling period can miss a spike shorter than that in the sum; the per-process VmHWM
cannot miss one (it is the kernel's counter, read at the last sample before the process ends).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import psutil


def _status(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in bytes, or None if the process is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return rss, hwm


_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[float, float, int] | None:
    """(user CPU seconds, system CPU seconds, minor page faults) of a process so far, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            rest = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(rest[11]) / _TICK, int(rest[12]) / _TICK, int(rest[7])


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


class TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.2, pss: bool = True):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.want_pss = pss
        self.stop_event = threading.Event()
        self.t0 = time.perf_counter()
        self.peak_rss_total = 0
        self.peak_rss_total_at = 0.0
        self.peak_rss_total_procs = 0
        self.peak_pss_total = 0
        self.hwm: dict[int, int] = {}
        self.cpu: dict[int, float] = {}  # last seen user CPU seconds per process
        self.sys: dict[int, float] = {}  # last seen system CPU seconds per process
        self.minflt: dict[int, int] = {}  # last seen minor faults per process
        self.cmd: dict[int, str] = {}
        self.samples = 0
        self.max_procs = 0
        self.trace: list[tuple[float, int, int]] = []  # (seconds, rss total, processes), every sample

    def _tree(self) -> list[int]:
        try:
            root = psutil.Process(self.pid)
            return [self.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sample(self) -> None:
        pids = self._tree()
        total = pss = 0
        n = 0
        for pid in pids:
            st = _status(pid)
            if st is None:
                continue
            rss, hwm = st
            n += 1
            total += rss
            if hwm > self.hwm.get(pid, 0):
                self.hwm[pid] = hwm
            stat = _stat(pid)
            if stat is not None:
                self.cpu[pid], self.sys[pid], self.minflt[pid] = stat
            if pid not in self.cmd:
                try:
                    self.cmd[pid] = " ".join(psutil.Process(pid).cmdline())[:160]
                except psutil.Error:
                    self.cmd[pid] = "?"
            if self.want_pss:
                pss += _pss(pid)
        self.samples += 1
        self.max_procs = max(self.max_procs, n)
        t = time.perf_counter() - self.t0
        self.trace.append((round(t, 2), total, n))
        if total > self.peak_rss_total:
            self.peak_rss_total, self.peak_rss_total_at, self.peak_rss_total_procs = total, t, n
        self.peak_pss_total = max(self.peak_pss_total, pss)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def result(self) -> dict:
        single_pid = max(self.hwm, key=self.hwm.get) if self.hwm else None
        # a compact trace: at most ~200 points
        step = max(1, len(self.trace) // 200)
        return {
            "peak_rss_total_bytes": self.peak_rss_total,
            "peak_rss_total_at_s": round(self.peak_rss_total_at, 2),
            "peak_rss_total_processes": self.peak_rss_total_procs,
            "peak_pss_total_bytes": self.peak_pss_total,
            "peak_rss_single_bytes": self.hwm.get(single_pid, 0) if single_pid else 0,
            "peak_rss_single_cmd": self.cmd.get(single_pid, "") if single_pid else "",
            "hwm_by_process": sorted(
                ([self.cmd.get(p, "?")[:80], h] for p, h in self.hwm.items()), key=lambda x: -x[1]
            ),
            "cpu_s": round(sum(self.cpu.values()) + sum(self.sys.values()), 2),
            "user_s": round(sum(self.cpu.values()), 2),
            "sys_s": round(sum(self.sys.values()), 2),
            "minor_faults": sum(self.minflt.values()),
            "minor_fault_bytes": sum(self.minflt.values()) * _PAGE,
            "cpu_by_process": sorted(
                (
                    [self.cmd.get(p, "?")[:80], round(c, 2), round(self.sys.get(p, 0), 2), self.minflt.get(p, 0)]
                    for p, c in self.cpu.items()
                ),
                key=lambda x: -x[1],
            ),
            "samples": self.samples,
            "max_processes": self.max_procs,
            "interval_s": self.interval,
            "trace": self.trace[::step],
        }


def run_tree(
    argv: list[str], interval: float = 0.2, env: dict | None = None, cwd=None, timeout: float | None = None
) -> dict:
    """Run argv, sampling its process tree; returns wall seconds, exit status, output tails and memory."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    sampler = TreeSampler(p.pid, interval)
    sampler.start()
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for c in psutil.Process(p.pid).children(recursive=True):
            try:
                c.kill()
            except psutil.Error:
                pass
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"`{' '.join(argv)}` timed out after {timeout} s") from None
    finally:
        wall = time.perf_counter() - t0
        sampler.stop_event.set()
        sampler.join()
    res = {
        "rc": p.returncode,
        "wall": wall,
        "stdout": out.decode("utf-8", "replace")[-4000:],
        "stderr": err.decode("utf-8", "replace")[-4000:],
        "pid": p.pid,
    }
    res.update(sampler.result())
    return res
