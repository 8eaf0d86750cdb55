"""Faults a release meets on a real machine: a full disk, an unwritable output directory, a run killed with
SIGKILL (its hidden work directory, its ledger reservation), two releases racing for one --budget, a Dask worker
killed mid-release, a SLURM job cancelled mid-workflow. Real CLI processes, real file systems (tmpfs mounts,
which need root: the tests run as root in CI, and must not skip there)."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from genoshare.privacy.ledger import Ledger
from genoshare.simulate import simulate_cohort

GENOSHARE = [sys.executable, "-m", "genoshare.cli"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def run(*args, check=False, timeout=300, env=None):
    proc = subprocess.run([*GENOSHARE, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def one_line_error(p, *words) -> str:
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    errors = [ln for ln in p.stderr.strip().splitlines() if ln.startswith("genoshare: error:")]
    assert len(errors) == 1 and "Traceback" not in p.stderr, p.stderr[-3000:]
    for w in words:
        assert w in errors[0], (w, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "s"
    simulate_cohort(
        d, cases=40, controls=40, panel=60, variants=600, seed=9, holdout=0, formats=("csv", "vcz", "plink")
    )
    return d


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
    if p.returncode != 0:
        msg = f"cannot mount a tmpfs ({p.stderr.strip() or p.returncode}): these tests need root"
        if in_ci():
            pytest.fail(f"{msg} -- CI runs as root and must run them", pytrace=False)
        pytest.skip(msg)


@pytest.fixture
def mounts():
    """mount(dir, options): a tmpfs at dir, unmounted after the test."""
    done = []

    def mount(target: Path, options: str) -> Path:
        _mount(target, options)
        done.append(target)
        return target

    yield mount
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def fill(directory: Path) -> None:
    """Fill the file system of ``directory`` to the last block."""
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    for size in (4096, 512, 1):  # the last few bytes too
        try:
            with open(directory / "filler", "ab") as f:
                while True:
                    f.write(b"\0" * size)
                    f.flush()
        except OSError:
            pass


def leftovers(directory: Path) -> list[str]:
    return sorted(f.name for f in directory.iterdir() if f.name != "filler")


def rows(private: Path) -> list:
    if not (private / "ledger.sqlite").exists():
        return []
    with Ledger(private / "ledger.sqlite") as led:
        return led.releases()


# ------------------------------------------------------------------------------------------------------------------
# a full disk, an unwritable directory


@pytest.mark.parametrize("kind", ["csv", "vcz", "plink"])
def test_full_disk_gives_one_line_naming_the_output_and_leaves_nothing(sim, tmp_path, mounts, kind):
    disk = mounts(tmp_path / "disk", "size=2m")
    fill(disk)
    cohort, panel = {
        "csv": ("cohort.csv.gz", "panel.csv.gz"),
        "vcz": ("cohort.vcz", "panel.vcz"),
        "plink": ("cohort.bed", "panel.vcz"),
    }[kind]
    private = tmp_path / "private"
    out = disk / "rel"
    extra = [] if kind == "csv" else ["--workers", 1]
    p = run(
        "release",
        sim / cohort,
        "--reference",
        sim / panel,
        "--epsilon",
        1200,
        "--out",
        out,
        "--seed",
        1,
        "--private-dir",
        private,
        "--budget",
        1e9,
        *extra,
    )
    line = one_line_error(p, str(out), "No space left on device")
    if kind == "plink":  # the PLINK input is converted into a work directory beside the output first
        assert "work directory" in line
    assert leftovers(disk) == []  # no release, no temporary release directory, no work directory
    assert rows(private) == []  # the reservation of a failed release is deleted


def test_read_only_output_directory_is_refused_before_any_work(sim, tmp_path, mounts):
    ro = mounts(tmp_path / "ro", "ro,size=1m")
    private = tmp_path / "private"
    for cohort, panel in (("cohort.csv.gz", "panel.csv.gz"), ("cohort.bed", "panel.vcz")):
        t0 = time.perf_counter()
        p = run(
            "release",
            sim / cohort,
            "--reference",
            sim / panel,
            "--epsilon",
            1200,
            "--out",
            ro / "rel",
            "--private-dir",
            private,
        )
        one_line_error(p, str(ro / "rel"), "Read-only file system")
        assert "ledger:" not in p.stdout + p.stderr and "Dask" not in p.stderr  # refused before any work
        assert time.perf_counter() - t0 < 60
    assert rows(private) == []
    p = run("ingest", sim / "cohort.bed", "--out", ro / "c.vcz")
    one_line_error(p, str(ro / "c.vcz"), "Read-only file system")


def test_unwritable_bind_mounted_output(sim, tmp_path, mounts):
    """A read-only bind mount of an ordinary directory (root ignores chmod: this is how it meets EROFS)."""
    src = tmp_path / "src"
    src.mkdir()
    target = tmp_path / "bound"
    target.mkdir()
    p = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(target)], capture_output=True, text=True)
    if p.returncode != 0:
        if in_ci():
            pytest.fail(f"cannot bind-mount: {p.stderr.strip()}", pytrace=False)
        pytest.skip(f"cannot bind-mount: {p.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
        p = run(
            "release",
            sim / "cohort.csv.gz",
            "--reference",
            sim / "panel.csv.gz",
            "--epsilon",
            1200,
            "--out",
            target / "rel",
        )
        one_line_error(p, str(target / "rel"), "Read-only file system")
        assert list(src.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


# ------------------------------------------------------------------------------------------------------------------
# killed runs and the ledger: the store pipeline entry is instrumented to prove what a run reached

_WRAPPER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import genoshare.api as api, genoshare.pipeline as pipeline

    marker, hold = Path(os.environ["GENOSHARE_TEST_MARKER"]), os.environ.get("GENOSHARE_TEST_HOLD") == "1"

    def instrument(orig):
        def wrapped(*args, **kwargs):  # the genotype work of a release starts here
            marker.write_text(str(os.getpid()))
            while hold:
                time.sleep(0.2)
            return orig(*args, **kwargs)
        return wrapped

    if __name__ == "__main__":  # not in the Dask worker processes, which import this module again
        pipeline.release_passes = instrument(pipeline.release_passes)
        api.release_genotypes = instrument(api.release_genotypes)
        from genoshare.cli import main
        sys.argv[0] = "genoshare"
        main()
""")


def _instrumented(tmp_path: Path, name: str, args, hold: bool):
    wrapper = tmp_path / "instrumented.py"
    wrapper.write_text(_WRAPPER)
    marker = tmp_path / f"{name}.reached"
    env = {**os.environ, "GENOSHARE_TEST_MARKER": str(marker), "GENOSHARE_TEST_HOLD": "1" if hold else "0"}
    proc = subprocess.Popen(
        [sys.executable, str(wrapper), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    return proc, marker


def _wait_for(path: Path, proc, timeout=180):
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before reaching the release: {proc.stderr.read()}")
        if time.time() > deadline:
            raise AssertionError("the instrumented release did not reach its genotype work")
        time.sleep(0.1)


def test_race_for_one_budget_killed_run_stale_work_dir_and_ledger_cancel(sim, tmp_path):
    """Release A (PLINK input: converted into a work directory) reserves its row and holds at the start of its
    genotype work; release B of the same cohort under the same --budget is refused before any (its instrumented
    pipeline entry is never reached); A is killed with SIGKILL: its work directory, owner-only and named with
    host and pid, stays with a copy of the cohort, and its reservation keeps counting; the next release removes
    the work directory, and after `genoshare ledger cancel` the budget fits again."""
    private, parent = tmp_path / "private", tmp_path / "releases"
    parent.mkdir()
    common = [
        "--reference",
        sim / "panel.vcz",
        "--epsilon",
        1200,
        "--budget",
        1000,
        "--private-dir",
        private,
        "--workers",
        1,
        "--seed",
        4,
    ]
    a, a_marker = _instrumented(
        tmp_path, "a", ["release", sim / "cohort.bed", *common, "--out", parent / "a"], hold=True
    )
    try:
        _wait_for(a_marker, a)
        reserved = rows(private)
        # the accountant's total for the XOR stage at --epsilon 1200 is ~825: one fits under 1000, two do not
        assert [r.status for r in reserved] == ["reserved"] and 500 < reserved[0].epsilon <= 1000
        assert reserved[0].output_dir == str(parent / "a")  # where to look before `ledger cancel`
        work = [f for f in parent.iterdir() if ".work-" in f.name]
        assert len(work) == 1, list(parent.iterdir())
        assert stat.S_IMODE(work[0].stat().st_mode) == 0o700
        assert f"-{a.pid}-" in work[0].name and work[0].name.startswith(f".a.work-{socket.gethostname()}-")
        assert (work[0] / "cohort.vcz" / "call_genotype").is_dir()  # the private copy

        b, b_marker = _instrumented(
            tmp_path, "b", ["release", sim / "cohort.vcz", *common, "--out", parent / "b"], hold=False
        )
        _, err = b.communicate(timeout=300)
        assert b.returncode == 2, err
        errors = [ln for ln in err.splitlines() if ln.startswith("genoshare: error:")]
        assert len(errors) == 1 and "privacy budget exceeded" in errors[0], err
        assert f"total {2 * reserved[0].epsilon:.6g}" in errors[0], errors[0]
        assert not b_marker.exists(), "the refused release reached its genotype work"
        assert not (parent / "b").exists()
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.communicate()
    assert not (parent / "a").exists()
    assert work[0].is_dir(), "SIGKILL runs no cleanup: the work directory is still there"
    assert [r.status for r in rows(private)] == ["reserved"]

    # the next release (any output in the same directory) removes the dead run's work directory; the reservation
    # still counts, so it is refused over budget
    p = run("release", sim / "cohort.vcz", *common, "--out", parent / "c")
    one_line_error(p, "privacy budget exceeded")
    assert not work[0].exists() and f"removed {work[0]}" in p.stdout + p.stderr
    assert leftovers(parent) == []

    lst = run("ledger", "list", "--private-dir", private, check=True)
    rid = reserved[0].id
    assert "reserved" in lst.stdout
    run("ledger", "cancel", rid, "--private-dir", private, check=True)
    assert [r.status for r in rows(private)] == ["cancelled"]
    run("release", sim / "cohort.vcz", *common, "--out", parent / "c", check=True)
    final = rows(private)
    assert [r.status for r in final] == ["cancelled", "recorded"]
    from genoshare.privacy.ledger import fingerprint_vcz

    assert final[1].fingerprint == fingerprint_vcz(sim / "cohort.vcz")  # the genotype fingerprint at finalize
    assert final[1].cohort_ids == reserved[0].cohort_ids  # the reservation's id key
    man = json.loads((parent / "c" / "manifest.json").read_text())
    assert final[1].epsilon == pytest.approx(man["privacy"]["total"]["epsilon"]) == pytest.approx(reserved[0].epsilon)
    assert run("ledger", "cancel", final[1].id, "--private-dir", private).returncode == 2  # not a reservation


def test_csv_race_the_second_is_refused_before_genotype_work(sim, tmp_path):
    private = tmp_path / "private"
    common = ["--reference", sim / "panel.csv.gz", "--epsilon", 1200, "--budget", 1000, "--private-dir", private]
    a, a_marker = _instrumented(
        tmp_path, "a", ["release", sim / "cohort.csv.gz", *common, "--out", tmp_path / "a"], hold=True
    )
    try:
        _wait_for(a_marker, a)
        b, b_marker = _instrumented(
            tmp_path, "b", ["release", sim / "cohort.csv.gz", *common, "--out", tmp_path / "b"], hold=False
        )
        _, err = b.communicate(timeout=120)
        assert b.returncode == 2 and "privacy budget exceeded" in err, err
        assert not b_marker.exists() and not (tmp_path / "b").exists()
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.communicate()
    assert [r.status for r in rows(private)] == ["reserved"]


def test_failed_release_leaves_no_row(sim, tmp_path):
    """A release that fails after its reservation (here: a public AF file that does not exist, read after
    the reservation) leaves no ledger row, and a later release sees the full budget."""
    private = tmp_path / "private"
    common = ["--reference", sim / "panel.csv.gz", "--epsilon", 1200, "--budget", 1000, "--private-dir", private]
    p = run(
        "release",
        sim / "cohort.csv.gz",
        *common,
        "--out",
        tmp_path / "a",
        "--af-source",
        f"public:{tmp_path / 'missing.tsv'}",
    )
    one_line_error(p, "missing.tsv")
    assert "ledger: first release" in p.stdout + p.stderr  # it did reserve
    assert rows(private) == [] and not (tmp_path / "a").exists()
    run("release", sim / "cohort.csv.gz", *common, "--out", tmp_path / "b", check=True)
    assert [r.status for r in rows(private)] == ["recorded"]
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert rows(private)[0].epsilon == pytest.approx(man["privacy"]["total"]["epsilon"])


# ------------------------------------------------------------------------------------------------------------------
# a Dask worker killed mid-release


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """A cohort of 1,200 x 6,000 in 250 x 300 chunks: 96 pass-1 and 96 pass-2 tasks, time to kill a worker."""
    from genoshare.io.ingest import ingest

    d = tmp_path_factory.mktemp("chunked")
    simulate_cohort(d / "s", cases=600, controls=600, panel=200, variants=6000, seed=3, holdout=0, formats=("vcz",))
    ingest(d / "s" / "cohort.vcz", d / "cohort.vcz", chunk_variants=250, chunk_samples=300)
    return d / "cohort.vcz", d / "s" / "panel.vcz"


def _release_files(out: Path) -> dict[str, bytes]:
    """Every file of a release directory but the manifest (timings) and the store's root metadata (which holds
    the manifest too), by relative path."""
    files = {}
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out).as_posix()
        if f.is_file() and rel not in ("manifest.json", "release.vcz/zarr.json", "release.vcz/.zattrs"):
            files[rel] = f.read_bytes()
    return files


def _manifest_without_timings(out: Path) -> dict:
    man = json.loads((out / "manifest.json").read_text())
    for key in ("timings", "created"):
        man.pop(key)
    man["privacy"]["xor"]["accounting"].pop("seconds")
    return man


@pytest.mark.slow
def test_worker_killed_mid_release_gives_the_same_bytes(chunked, tmp_path):
    """SIGKILL one of two worker processes of a LocalCluster (given to the release by --scheduler ADDRESS) while
    it runs pass-1 or pass-2 tasks: the nanny restarts it, the scheduler recomputes what was lost, and the
    release is byte-identical to a clean run with the same seed."""
    from distributed import Client, LocalCluster

    cohort, panel = chunked
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        args = [
            "release",
            cohort,
            "--reference",
            panel,
            "--epsilon",
            1200,
            "--seed",
            11,
            "--scheduler",
            cluster.scheduler_address,
            "--relatives",
            "skip",
        ]
        clean = tmp_path / "clean"
        run(*args, "--out", clean, check=True)

        killed_out = tmp_path / "killed"
        proc = subprocess.Popen(
            [*GENOSHARE, *map(str, args), "--out", str(killed_out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        pids = client.run(os.getpid)
        victim = None
        deadline = time.time() + 240
        while victim is None and proc.poll() is None and time.time() < deadline:
            for addr, keys in client.processing().items():
                if any("genoshare-pass1" in str(k) or "genoshare-pass2" in str(k) for k in keys):
                    victim = (addr, pids[addr], sorted(map(str, keys)))
                    os.kill(pids[addr], signal.SIGKILL)
                    break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=600)
        assert victim is not None, "the release finished before a worker could be killed during its passes"
        assert proc.returncode == 0, err
        client.wait_for_workers(2, timeout=60)
        new_pids = client.run(os.getpid)
        assert victim[1] not in new_pids.values(), "the killed worker is still there"
        assert len(new_pids) == 2  # the nanny restarted it

    a, b = _release_files(clean), _release_files(killed_out)
    assert a.keys() == b.keys() and any(k.startswith("release.vcz/call_genotype/") for k in a)
    assert [k for k in a if a[k] != b[k]] == []
    assert _manifest_without_timings(clean) == _manifest_without_timings(killed_out)


def test_sigterm_mid_release_cleans_up(sim, tmp_path):
    """SIGTERM (kill, scancel, Snakemake stopping a job) to the whole process group while the release runs its
    passes: exit 143, and the cleanup a SIGKILL cannot have runs: no temporary release or work directory (with
    the PLINK input's converted copy), no ledger row."""
    private, parent = tmp_path / "private", tmp_path / "releases"
    parent.mkdir()
    a, marker = _instrumented(
        tmp_path,
        "a",
        [
            "release",
            sim / "cohort.bed",
            "--reference",
            sim / "panel.vcz",
            "--epsilon",
            1200,
            "--private-dir",
            private,
            "--workers",
            1,
            "--out",
            parent / "a",
        ],
        hold=True,
    )
    try:
        _wait_for(marker, a)
        assert [r.status for r in rows(private)] == ["reserved"]
        assert any(".work-" in f.name for f in parent.iterdir()) and any(".tmp-" in f.name for f in parent.iterdir())
        os.killpg(a.pid, signal.SIGTERM)
        a.communicate(timeout=120)
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
            a.communicate()
    assert a.returncode == 143
    assert leftovers(parent) == [] and rows(private) == []


# ------------------------------------------------------------------------------------------------------------------
# a SLURM job cancelled mid-workflow

REPO = Path(__file__).resolve().parents[1]
SLURM_FAST = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]


def _workflow_config(path: Path) -> Path:
    """The test workflow, one simulated cohort, sized so that its release runs for some seconds."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "examples" / "test.yaml").read_text())
    cfg["results"] = "results"
    cfg["simulations"]["tiny"].update(cases=300, controls=300, panel=200, variants=4000)
    cfg["cohorts"] = {"tiny": cfg["cohorts"]["tiny"]}
    cfg["panels"] = {"tiny_panel": cfg["panels"]["tiny_panel"]}
    cfg["releases"] = [{"name": "tiny-cancel", "cohort": "tiny", "epsilon": 1000}]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _snakemake_cmd(workdir: Path, cfg: Path, timeout: int = 600) -> list[str]:
    return [
        "timeout",
        "-k",
        "10",
        str(timeout),
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--configfile",
        str(cfg),
        *SLURM_FAST,
    ]


def _workflow_env(private: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    env["GENOSHARE_PRIVATE_DIR"] = str(private)
    return env


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_slurm_job_cancelled_mid_workflow_then_rerun_gives_the_same_release(slurm, tmp_path):
    """`scancel` the release's SLURM job while it runs its passes (its temporary release directory exists): the
    workflow fails with nothing of the release left, no ledger row; the rerun completes, and its release is
    byte-identical to a clean release of
    the same workflow (same seed, same paths) made afterwards."""
    import re

    wf, private = tmp_path / "wf", tmp_path / "private"
    wf.mkdir()
    cfg = _workflow_config(tmp_path / "config.yaml")
    env = _workflow_env(private)
    releases, log = wf / "results" / "releases", wf / "results" / "logs" / "release" / "tiny-cancel.log"
    proc = subprocess.Popen(
        _snakemake_cmd(wf, cfg), cwd=wf, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    job = None
    deadline = time.time() + 500
    while proc.poll() is None and time.time() < deadline:
        first = log.read_text().splitlines()[:1] if log.exists() else []
        m = re.match(r"^rule=release slurm_job_id=(\d+) ", first[0]) if first else None
        if m and releases.is_dir() and any(".tmp-" in f.name for f in releases.iterdir()):  # in its passes
            job = m.group(1)
            subprocess.run(["scancel", job], check=True)
            break
        time.sleep(0.05)
    text, _ = proc.communicate(timeout=600)
    assert job is not None, f"the release job was not seen running:\n{text[-4000:]}"
    assert proc.returncode not in (0, 124, 137), text[-4000:]
    assert "Error in rule release" in text, text[-4000:]
    assert not (releases / "tiny-cancel").exists()
    # SLURM sent SIGTERM first: the release cleaned up after itself, its reservation deleted
    assert rows(private) == []

    rerun = subprocess.run(_snakemake_cmd(wf, cfg), cwd=wf, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert sorted(f.name for f in releases.iterdir()) == ["tiny-cancel"]  # no hidden leftovers
    after_rerun = _release_files(releases / "tiny-cancel")
    man_rerun = _manifest_without_timings(releases / "tiny-cancel")
    import shutil

    shutil.rmtree(releases / "tiny-cancel")
    clean = subprocess.run(
        [*_snakemake_cmd(wf, cfg), "results/releases/tiny-cancel"], cwd=wf, env=env, capture_output=True, text=True
    )
    assert clean.returncode == 0, (clean.stdout + clean.stderr)[-4000:]
    again = _release_files(releases / "tiny-cancel")
    assert after_rerun.keys() == again.keys() and any(k.startswith("release.vcz/call_genotype/") for k in again)
    assert [k for k in again if again[k] != after_rerun[k]] == []
    assert man_rerun == _manifest_without_timings(releases / "tiny-cancel")
    statuses = [r.status for r in rows(private)]
    assert statuses.count("recorded") == 2 and "reserved" not in statuses, statuses


# ------------------------------------------------------------------------------------------------------------------
# the pieces: hidden directory names, stale detection, error translation


def test_hidden_names_and_stale_detection(tmp_path, monkeypatch):
    from genoshare.io import workdir

    monkeypatch.setattr(workdir.socket, "gethostname", lambda: "node-01.example")
    name = workdir.hidden_name(tmp_path / "my.rel-1", "work")
    assert workdir.parse_hidden(name) == {
        "out": "my.rel-1",
        "kind": "work",
        "host": "node-01.example",
        "pid": os.getpid(),
    }
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer exists (reaped)
    live = os.getppid()
    made = {}
    for label, host, pid in (
        ("dead", "node-01.example", dead.pid),
        ("live", "node-01.example", live),
        ("other-host", "node-02", dead.pid),
        ("mine", "node-01.example", os.getpid()),
    ):
        d = tmp_path / f".r.work-{host}-{pid}-0123abcd"
        d.mkdir()
        (d / "cohort.vcz").mkdir()
        made[label] = d
    (tmp_path / ".r.work-node-01.example-notapid-0123abcd").mkdir()  # not ours by name: never touched
    (tmp_path / f".r.tmp-node-01.example-{dead.pid}-0123abcd").write_text("a file, not a directory")
    assert workdir.stale_dirs(tmp_path) == [made["dead"]]
    removed = workdir.remove_stale(tmp_path)
    assert removed == [made["dead"]] and not made["dead"].exists()
    assert all(made[k].is_dir() for k in ("live", "other-host", "mine"))

    d = workdir.make_hidden_dir(tmp_path / "out", "work")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700 and f"-{os.getpid()}-" in d.name


def test_filesystem_errors_are_found_and_name_the_right_path(tmp_path):
    import errno

    from genoshare.errors import InputError
    from genoshare.io.atomic import filesystem_error, filesystem_errors_as, write_failure

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".out.tmp-h-1-00000000" / "x"))
    try:
        try:
            raise full
        except OSError as e:
            raise RuntimeError("wrapped by a library") from e
    except RuntimeError as wrapped:
        assert filesystem_error(wrapped) is full
    assert filesystem_error(ExceptionGroup("g", [ValueError("x"), full])) is full
    assert filesystem_error(OSError(errno.ECONNREFUSED, "refused")) is None and filesystem_error(ValueError()) is None
    e = write_failure(tmp_path / "out", full, inside=tmp_path / ".out.tmp-h-1-00000000")
    assert str(e) == f"{tmp_path / 'out'}: cannot write the output: No space left on device"
    unreadable = OSError(errno.EACCES, "Permission denied", "/data/cohort.vcz/call_genotype/0.0.0")
    e = write_failure(tmp_path / "out", unreadable, inside=tmp_path / ".out.tmp-h-1-00000000")
    assert e.path == "/data/cohort.vcz/call_genotype/0.0.0" and e.problem == "Permission denied"
    with pytest.raises(InputError, match="out: cannot write the work directory here: No space left on device"):
        with filesystem_errors_as(tmp_path / "out", "cannot write the work directory here", inside=tmp_path):
            raise full
    with pytest.raises(ValueError):  # anything else passes through
        with filesystem_errors_as(tmp_path / "out"):
            raise ValueError("not a file system problem")
