"""The Snakemake workflow: Snakefile, workflow/, config/, profiles/slurm, scripts/demo.sh.

Lint and format, config validation, the demo run end to end (`make demo`'s script), an added
release reruns only its own jobs, and runs on a real SLURM (scripts/slurm/start.sh): every job
through sbatch, a release whose Dask workers are SLURM jobs, a failing rule reported as failed.

Every Snakemake call is wrapped in `timeout -k 10 N` (a hung executor plugin ignores SIGTERM).
The SLURM tests skip when `sinfo` does not answer, except under CI (CI set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # genoshare, snakemake and snakefmt of this environment
# The plugin's defaults (first status check after 40 s, then every 10 s or more) make tiny
# workflows take minutes.
SLURM_FAST = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]
RULE_LOG = re.compile(r"^rule=(\w+) slurm_job_id=(\S+) host=")

pytestmark = pytest.mark.timeout(900)


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def run(cmd, cwd, timeout: int) -> subprocess.CompletedProcess:
    """Run ``cmd`` under `timeout -k 10 TIMEOUT`; fail the test if it had to be killed."""
    t0 = time.monotonic()
    res = subprocess.run(
        ["timeout", "-k", "10", str(timeout), *map(str, cmd)],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    res.seconds = time.monotonic() - t0
    res.text = res.stdout + res.stderr
    assert res.returncode not in (124, 137), f"timed out after {timeout} s: {cmd}\n{_tail(res.text)}"
    return res


def snakemake(workdir, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """`snakemake` on the repository's Snakefile with ``workdir`` as working directory."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", REPO / "Snakefile", "--directory", workdir, *args]
    return run(cmd, cwd=workdir, timeout=timeout)


def write_config(path: Path, source: str = "config/examples/test.yaml", results: str = "results", **changes) -> Path:
    """A copy of a repository config with absolute input paths, results under ``results``."""
    cfg = yaml.safe_load((REPO / source).read_text())
    cfg["results"] = results
    for section in ("cohorts", "panels"):
        for ds in cfg[section].values():
            if "path" in ds:
                ds["path"] = str(REPO / ds["path"])
    cfg.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def job_counts(text: str) -> dict[str, int]:
    """{rule: jobs} from the last 'Job stats' table Snakemake printed (without 'total')."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Job stats:"]
    if not starts:
        return {}
    counts = {}
    for line in lines[starts[-1] + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def rule_logs(results: Path) -> dict[Path, tuple[str, str]]:
    """{log file: (rule, slurm job id)} from the first line every rule writes to its log."""
    found = {}
    for log in sorted((results / "logs").rglob("*.log")):
        first = log.read_text().splitlines()[:1]
        m = RULE_LOG.match(first[0]) if first else None
        assert m, f"{log}: no 'rule=... slurm_job_id=...' first line"
        found[log] = (m.group(1), m.group(2))
    return found


def read_table(path: Path) -> list[dict]:
    header, *rows = [line.split("\t") for line in path.read_text().splitlines()]
    return [dict(zip(header, row)) for row in rows]


# --------------------------------------------------------------------------------------------- static checks


def test_lint_is_clean(tmp_path):
    write_config(tmp_path / "config" / "config.yaml", "config/config.yaml")
    res = snakemake(tmp_path, "--lint", timeout=120)
    assert res.returncode == 0, res.text
    assert "Lints for" not in res.text and "Congratulations" in res.text, res.text


def test_snakefmt_check_is_clean():
    snakefmt = BIN / "snakefmt"
    cmd = [snakefmt] if snakefmt.exists() else [sys.executable, "-m", "snakefmt"]
    res = run([*cmd, "--check", "Snakefile", "workflow"], cwd=REPO, timeout=120)
    assert res.returncode == 0, res.text


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"releases": [{"name": "r", "cohort": "lactose", "epsilon": -1}]},
            "config: releases[0].epsilon: -1 is less than or equal to the minimum of 0",
        ),
        (
            {"releases": [{"name": "r", "cohort": "lactose", "epsilon": 9091, "calibraton": "exact"}]},
            "config: releases[0]: Additional properties are not allowed ('calibraton' was unexpected)",
        ),
        (
            {"releases": [{"name": "r", "cohort": "nobody", "epsilon": 9091}]},
            "config: release 'r': cohort 'nobody' is not under 'cohorts'",
        ),
        (
            {"releases": [{"name": "r", "cohort": "lactose", "epsilon": 9091, "release_phenotype": ["case"]}]},
            "config: releases[0]: 'phenotypes' is a dependency of 'release_phenotype'",
        ),
        (
            {
                "releases": [
                    {
                        "name": "r",
                        "cohort": "lactose",
                        "epsilon": 9091,
                        "phenotypes": "p.tsv",
                        "release_phenotype": ["case:rr=x"],
                    }
                ]
            },
            "config: releases[0].release_phenotype[0]: 'case:rr=x' does not match",
        ),
        (
            {"report": {"cohorts": {"nobody": {"attack": True}}}},
            "config: report.cohorts: 'nobody' is not under 'cohorts'",
        ),
        (
            {"report": {"cohorts": {"lactose": {"retention": "phenotype"}}}},
            "config: report.cohorts.lactose.retention: phenotype needs a simulated cohort",
        ),
        (
            {"report": {"retention_target": 1.5}},
            "config: report.retention_target: 1.5 is greater than the maximum of 1",
        ),
    ],
)
def test_bad_config_is_rejected_in_one_line(tmp_path, change, message):
    cfg = write_config(tmp_path / "bad.yaml", **change)
    res = snakemake(tmp_path, "--dry-run", "--configfile", cfg, timeout=120)
    assert res.returncode == 1, res.text
    lines = [line for line in res.text.splitlines() if line.startswith("config: ")]
    assert len(lines) == 1 and lines[0].startswith(message), res.text
    assert not (tmp_path / "results").exists()


def test_configfile_replaces_the_demo_config(tmp_path):
    """A --configfile is not merged into config/config.yaml: the demo's seed and cohorts stay out."""
    write_config(tmp_path / "config" / "config.yaml", "config/config.yaml")
    mine = write_config(
        tmp_path / "mine.yaml",
        "config/examples/sweep.yaml",
        releases=[{"name": "only", "cohort": "lactose", "epsilon": 9091}],
    )
    res = snakemake(tmp_path, "--dry-run", "--printshellcmds", "--configfile", mine, timeout=120)
    assert res.returncode == 0, res.text
    assert job_counts(res.text) == {"ldstats": 1, "release": 1, "evaluate": 1, "compare": 1, "report": 1, "all": 1}, (
        res.text
    )
    assert "genoshare release" in res.text and "--seed" not in res.text, res.text


def test_phenotype_keys_reach_the_release_command(tmp_path):
    pheno = tmp_path / "pheno tsv"
    pheno.write_text("IID\tcase\n")
    cfg = write_config(
        tmp_path / "mine.yaml",
        releases=[
            {
                "name": "ph",
                "cohort": "lactose",
                "epsilon": 9091,
                "phenotypes": str(pheno),
                "release_phenotype": ["case:rr=1", "age"],
            }
        ],
    )
    res = snakemake(tmp_path, "--dry-run", "--printshellcmds", "--configfile", cfg, timeout=120)
    assert res.returncode == 0, res.text
    cmd = next(line for line in res.text.splitlines() if "genoshare release" in line)
    assert f"--phenotypes '{pheno}' --release-phenotype case:rr=1 --release-phenotype age" in cmd, cmd


def test_compare_table(tmp_path):
    """The comparison module joins manifests and evaluations, in the given order, one line on errors."""
    from genoshare.errors import GenoshareError
    from genoshare.report.compare import main as compare_main, write_comparison

    pairs = []
    for name, eps, err in (("b-release", 2.5, 0.25), ("a-release", 10.0, 0.125)):
        d = tmp_path / name
        d.mkdir()
        # the current manifest names the private cohort by base name; older ones had its path
        cohort = {"name": "c.csv.gz", "format": "csv"} if name == "b-release" else {"path": "/data/c.csv.gz"}
        (d / "manifest.json").write_text(
            json.dumps(
                {
                    "inputs": {"cohort": cohort, "reference": {"path": "/data/p.csv.gz"}},
                    "n_samples": 3,
                    "n_variants": 4,
                    "epsilon_requested": eps,
                    "epsilon_xor": eps * 0.999,
                    "epsilon_nominal": eps * 2,
                    "calibration": "exact",
                    "zero_cell": "haldane",
                    "window": "all",
                    "af_source": {"kind": "published"},
                    "flips": {"total": 7},
                    "reproducible_test_release": False,
                }
            )
        )
        (tmp_path / f"{name}.json").write_text(
            json.dumps({"point_error": err, "sample_error": 0.5, "mean_error": 0.0, "variance_error": 0.1})
        )
        pairs.append((d, tmp_path / f"{name}.json"))
    rows = write_comparison(pairs, tmp_path / "t.tsv", tmp_path / "t.md")
    table = read_table(tmp_path / "t.tsv")
    assert [r["release"] for r in table] == ["b-release", "a-release"] == [r["release"] for r in rows]
    assert table[0]["epsilon_xor"] == repr(2.5 * 0.999) and table[1]["point_error"] == "0.125"
    assert table[0]["cohort"] == "c.csv.gz" and table[0]["window"] == "all" and table[0]["test_release"] == "false"
    assert table[1]["cohort"] == "c.csv.gz"
    assert list(table[0])[-4:] == ["point_error", "sample_error", "mean_error", "variance_error"]
    md = (tmp_path / "t.md").read_text().splitlines()
    assert len(md) == 4 and md[2].startswith("| b-release | c.csv.gz | p.csv.gz | 3 | 4 | 2.5 |")
    with pytest.raises(GenoshareError, match="two releases are named"):
        write_comparison([pairs[0], pairs[0]], tmp_path / "u.tsv")
    (tmp_path / "broken.json").write_text("{")
    assert (
        compare_main(["--release", str(pairs[0][0]), str(tmp_path / "broken.json"), "--out", str(tmp_path / "u.tsv")])
        == 2
    )
    assert not (tmp_path / "u.tsv").exists()


# --------------------------------------------------------------------------------------------- local runs


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`make demo`'s script, with its results in a temporary directory."""
    out = tmp_path_factory.mktemp("demo") / "results"
    res = run(["bash", REPO / "scripts" / "demo.sh", out], cwd=REPO, timeout=600)
    assert res.returncode == 0, res.text
    print(f"demo workflow: {res.seconds:.1f} s")
    return out, res


def test_demo_runs_end_to_end(demo):
    out, res = demo
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    names = [r["name"] for r in cfg["releases"]]
    assert f"comparison table    {out}/comparison.tsv" in res.stdout, res.stdout
    table = read_table(out / "comparison.tsv")
    assert [row["release"] for row in table] == names
    for row in table:
        manifest = json.loads((out / "releases" / row["release"] / "manifest.json").read_text())
        evaluation = json.loads((out / "evaluation" / f"{row['release']}.json").read_text())
        assert float(row["epsilon_requested"]) == manifest["epsilon_requested"]
        assert float(row["epsilon_xor"]) == manifest["epsilon_xor"]
        assert float(row["point_error"]) == evaluation["point_error"]
        assert 0 < evaluation["point_error"] < 1
        assert row["test_release"] == "true"  # the demo sets a seed: never for sharing
        assert row["calibration"] == "exact" and row["af_source"] == "published"
        assert row["cohort"] == manifest["inputs"]["cohort"]["name"] and "sha256" not in manifest["inputs"]["cohort"]
    # The simulated PLINK cohort went through ingest and the store pipeline.
    assert (out / "ingest" / "sim.vcz").is_dir()
    assert (out / "releases" / "sim-eps2000" / "release.vcz").is_dir()
    assert (out / "releases" / "lactose-e1" / "release.csv.gz").is_file()
    # LD statistics once per cohort x panel.
    assert sorted(p.relative_to(out / "ldstats").as_posix() for p in (out / "ldstats").rglob("*.npz")) == [
        "lactose/lactose_ref.npz",
        "sim/sim_panel.npz",
    ]
    logs = rule_logs(out)
    assert {rule for rule, _ in logs.values()} == {
        "simulate",
        "ingest",
        "ldstats",
        "release",
        "evaluate",
        "compare",
        "audit_release",
        "attack",
        "retention",
        "report",
    }
    assert {job for _, job in logs.values()} == {"none"}  # local execution
    # The committee's report: every release, the lactose attacks (5 seeds each) and every retention table.
    assert f"privacy report      {out}/report.html" in res.stdout, res.stdout
    report = json.loads((out / "report.json").read_text())
    assert [c["cohort"] for c in report["cohorts"]] == ["data.csv.gz", "sim.vcz"]
    for c in report["cohorts"]:
        assert c["sweep"] and all(r["retention"] and r["evaluation"] for r in c["releases"])
    assert all(r["attacks"] and r["attacks"][0]["releases_audited"] == 5 for r in report["cohorts"][0]["releases"])


def test_adding_a_release_reruns_only_it_and_the_comparison(demo, tmp_path):
    out, _ = demo
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["results"] = str(out)
    cfg["releases"].append({"name": "lactose-e2", "cohort": "lactose", "epsilon": 18182})
    more = tmp_path / "more.yaml"
    more.write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")}
    before.update({p: p.stat().st_mtime_ns for p in (out / "evaluation").glob("*.json")})

    def smk(*args):
        # Same working directory as `make demo` (the repository): its .snakemake records the demo's jobs.
        return run(
            [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", more, *args], cwd=REPO, timeout=300
        )

    dry = smk("--dry-run")
    assert dry.returncode == 0, dry.text
    jobs = {
        "release": 1,
        "evaluate": 1,
        "compare": 1,
        "audit_release": 4,
        "attack": 1,
        "retention": 1,
        "report": 1,
        "all": 1,
    }  # lactose releases are attacked (5 seeds) and get a retention table
    assert job_counts(dry.text) == jobs, dry.text
    assert "wildcards: release=lactose-e2" in dry.text
    res = smk()
    assert res.returncode == 0, res.text
    assert job_counts(res.text) == jobs, res.text
    assert {p: p.stat().st_mtime_ns for p in before} == before, "an earlier release or evaluation was redone"
    assert [row["release"] for row in read_table(out / "comparison.tsv")][-1] == "lactose-e2"
    again = smk("--dry-run")
    assert again.returncode == 0 and "Nothing to be done" in again.text, again.text


# --------------------------------------------------------------------------------------------- SLURM


def _submitted(text: str) -> set[str]:
    return set(re.findall(r"has been submitted with SLURM jobid (\d+)", text))


@pytest.mark.slow
def test_every_job_goes_through_sbatch(slurm, tmp_path):
    cfg = write_config(tmp_path / "config.yaml")
    res = snakemake(tmp_path, "--profile", REPO / "profiles" / "slurm", "--configfile", cfg, *SLURM_FAST, timeout=600)
    assert res.returncode == 0, _tail(res.text, 120)
    print(f"test workflow on SLURM: {res.seconds:.1f} s")
    logs = rule_logs(tmp_path / "results")
    assert {rule for rule, _ in logs.values()} == {
        "simulate",
        "ingest",
        "ldstats",
        "release",
        "evaluate",
        "compare",
        "report",
    }
    jobs = [job for _, job in logs.values()]
    assert all(job.isdigit() for job in jobs), logs  # SLURM_JOB_ID was set in every rule's shell
    assert len(set(jobs)) == len(jobs), "two rules ran in one SLURM job"
    assert set(jobs) == _submitted(res.text), res.text  # ...and they are the jobs sbatch returned
    table = read_table(tmp_path / "results" / "comparison.tsv")
    assert [row["release"] for row in table] == ["lactose-e1", "lactose-e3-nominal", "tiny-eps1000"]
    assert table[1]["calibration"] == "nominal" and table[1]["af_source"] == "reference"


@pytest.mark.slow
def test_release_with_dask_jobqueue_workers(slurm, tmp_path):
    """dask.scheduler slurm: ldstats and release run here, their Dask workers are SLURM jobs."""
    worker_logs = tmp_path / "dask-workers"
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        textwrap.dedent(f"""\
        slurm:
          cores: 1
          memory: 1GB
          processes: 1
          walltime: "00:10:00"
          interface: lo
          jobs: 1
          log_directory: {worker_logs}
          startup_timeout: 120
        """)
    )
    base = yaml.safe_load((REPO / "config" / "examples" / "test.yaml").read_text())
    cfg = write_config(
        tmp_path / "config.yaml",
        cohorts={"tiny": base["cohorts"]["tiny"]},
        panels={"tiny_panel": base["panels"]["tiny_panel"]},
        dask={"scheduler": "slurm", "cluster_config": str(cluster)},
        releases=[{"name": "tiny-jobqueue", "cohort": "tiny", "epsilon": 1000}],
    )
    res = snakemake(tmp_path, "--cores", "2", "--configfile", cfg, timeout=600)
    assert res.returncode == 0, _tail(res.text, 120)
    print(f"jobqueue workflow: {res.seconds:.1f} s")
    results = tmp_path / "results"
    manifest = json.loads((results / "releases" / "tiny-jobqueue" / "manifest.json").read_text())
    assert manifest["scheduler"] == "slurm"
    release_log = (results / "logs" / "release" / "tiny-jobqueue.log").read_text()
    assert "Dask scheduler tcp://127.0.0.1:" in release_log, release_log
    # One worker job for ldstats and one for the release, each with its SLURM job id in the file name.
    outs = sorted(p.name for p in worker_logs.glob("*.out"))
    assert len(outs) >= 2 and all(re.search(r"\d+\.out$", name) for name in outs), outs
    assert read_table(results / "comparison.tsv")[0]["release"] == "tiny-jobqueue"


@pytest.mark.slow
def test_failing_rule_is_reported_failed_under_slurm(slurm, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,rs1,rs2,rs3\nc1,0,1,2\nc2,1,3,0\n")  # 3 is not a genotype
    panel = tmp_path / "panel.csv"
    panel.write_text("id,rs1,rs2,rs3\np1,0,1,2\np2,1,1,0\np3,2,0,1\n")
    cfg = write_config(
        tmp_path / "config.yaml",
        simulations={},
        cohorts={"bad": {"path": str(bad), "panel": "panel"}},
        panels={"panel": {"path": str(panel)}},
        releases=[{"name": "never", "cohort": "bad", "epsilon": 10}],
    )
    res = snakemake(tmp_path, "--profile", REPO / "profiles" / "slurm", "--configfile", cfg, *SLURM_FAST, timeout=300)
    assert res.returncode == 1, res.text
    assert "Error in rule ldstats" in res.text, res.text
    submitted = _submitted(res.text)
    assert len(submitted) == 1, res.text  # nothing after the failed job was submitted
    job = submitted.pop()
    assert f"SLURM-job '{job}' failed" in res.text, res.text
    log = (tmp_path / "results" / "logs" / "ldstats" / "bad" / "panel.log").read_text()
    assert log.startswith(f"rule=ldstats slurm_job_id={job} "), log
    assert "genoshare: error:" in log and "bad.csv" in log, log
    assert not (tmp_path / "results" / "ldstats" / "bad" / "panel.npz").exists()
    assert not (tmp_path / "results" / "releases").exists()
    print(f"failing workflow on SLURM reported in {res.seconds:.1f} s")
