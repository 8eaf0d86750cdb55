"""Config validation and the path/option plumbing of the rules. No algorithm lives here,
each rule is one call of the genoshare CLI."""

import copy
import os
import re
import shlex

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# A --configfile given on the command line replaces the demo config/config.yaml that the
# Snakefile names, instead of being merged into it (Snakemake's default): no demo key, least of
# all its test seed, may leak into a run. --config KEY=VALUE still edits the config in use.
if workflow.overwrite_configfiles:
    config.clear()
    config.update(copy.deepcopy(workflow.config_settings.overwrite_config))


def _validate_config():
    """Schema validation with defaults; the error is one line naming the key."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as exc:
        cause = exc.__cause__ or exc.__context__
        if not hasattr(cause, "absolute_path"):
            raise
        where = "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in cause.absolute_path
        )
        raise WorkflowError(
            f"config: {where.lstrip('.') or 'top level'}: {cause.message} "
            "(schema: workflow/schemas/config.schema.yaml, keys: config/README.md)"
        ) from None


_validate_config()

RESULTS = config["results"].rstrip("/")
NAME = "[A-Za-z0-9][A-Za-z0-9_-]*"
ENV = "../../envs/genoshare.yaml"
DASK = config["dask"]
# With dask-jobqueue the ldstats and release jobs only run the Dask scheduler, so they run
# on the submit host and their workers are the SLURM jobs.
DASK_ON_SLURM = DASK["scheduler"] == "slurm"


def _config_error(message):
    raise WorkflowError(f"config: {message}")


def _check_config():
    datasets = {**config["cohorts"], **config["panels"]}
    both = sorted(set(config["cohorts"]) & set(config["panels"]))
    if both:
        _config_error(f"{both[0]!r} is both a cohort and a panel; names must be unique")
    for name, ds in datasets.items():
        sim = ds.get("simulation")
        if sim is not None and sim not in config["simulations"]:
            _config_error(
                f"{name!r} uses simulation {sim!r}, which is not under 'simulations'"
            )
    for name, cohort in config["cohorts"].items():
        if "panel" in cohort and cohort["panel"] not in config["panels"]:
            _config_error(
                f"cohort {name!r}: panel {cohort['panel']!r} is not under 'panels'"
            )
    seen = set()
    for rel in config["releases"]:
        if rel["name"] in seen:
            _config_error(f"release name {rel['name']!r} is used twice")
        seen.add(rel["name"])
        if rel["cohort"] not in config["cohorts"]:
            _config_error(
                f"release {rel['name']!r}: cohort {rel['cohort']!r} is not under 'cohorts'"
            )
        panel = rel.get("panel", config["cohorts"][rel["cohort"]].get("panel"))
        if panel is None:
            _config_error(
                f"release {rel['name']!r}: no panel (give 'panel' in the release or in its cohort)"
            )
        if panel not in config["panels"]:
            _config_error(
                f"release {rel['name']!r}: panel {panel!r} is not under 'panels'"
            )
        if is_csv(rel["cohort"]) != is_csv(panel):
            _config_error(
                f"release {rel['name']!r}: cohort and panel must both be CSV matrices or "
                "both not (PLINK, VCF, VCF Zarr)"
            )
    if DASK_ON_SLURM and not DASK["cluster_config"]:
        _config_error("dask.scheduler 'slurm' needs dask.cluster_config")


# ---------------------------------------------------------------- datasets


def dataset(name):
    return config["cohorts"].get(name) or config["panels"][name]


def role(name):
    """'cohort' or 'panel': which file of a simulation a dataset is."""
    return "cohort" if name in config["cohorts"] else "panel"


def input_format(name):
    ds = dataset(name)
    if "simulation" in ds:
        return "plink"
    if "format" in ds:
        return ds["format"]
    p = ds["path"].lower().rstrip("/")
    if p.endswith((".csv", ".csv.gz")):
        return "csv"
    if p.endswith((".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")):
        return "vcf"
    if p.endswith((".vcz", ".zarr", ".zip")) or os.path.isdir(ds["path"]):
        return "vcz"
    return "plink"  # a .bed/.bim/.fam or a PLINK prefix


def raw_files(name):
    """The files a dataset is read from (the simulation's PLINK files for simulated ones)."""
    ds = dataset(name)
    if "simulation" in ds:
        prefix = f"{RESULTS}/simulations/{ds['simulation']}/{role(name)}"
    elif input_format(name) == "plink":
        prefix = ds["path"]
        for suffix in (".bed", ".bim", ".fam"):
            if prefix.endswith(suffix):
                prefix = prefix[: -len(suffix)]
    else:
        return [ds["path"]]
    return [f"{prefix}.bed", f"{prefix}.bim", f"{prefix}.fam"]


def prepared(name):
    """What ldstats, release and evaluate read: CSV matrices and VCF Zarr stores as given,
    PLINK and VCF ingested once into a VCF Zarr store."""
    if input_format(name) in ("csv", "vcz"):
        return dataset(name)["path"]
    return f"{RESULTS}/ingest/{name}.vcz"


def is_csv(name):
    return input_format(name) == "csv"


def ingest_inputs(wildcards):
    """The file genoshare ingest is given (a .bed, VCF or CSV) and the PLINK .bim/.fam beside it."""
    files = raw_files(wildcards.dataset)
    return {"source": files[0], "sidecars": files[1:]}


def ingest_chunks(wildcards):
    opts = []
    for key in ("variants", "samples"):
        if config["chunking"][key] is not None:
            opts.append(f"--chunk-{key} {config['chunking'][key]}")
    return " ".join(opts)


# ---------------------------------------------------------------- releases


def release_panel(rel):
    return rel.get("panel") or config["cohorts"][rel["cohort"]]["panel"]


def ldstats_file(cohort, panel):
    return f"{RESULTS}/ldstats/{cohort}/{panel}.npz"


def ldstats_inputs(wildcards):
    return {
        "cohort": prepared(wildcards.cohort),
        "panel": prepared(wildcards.panel),
    }


def dask_options(cohort):
    """Scheduler options of ldstats/release: CSV cohorts run in memory and take none."""
    if is_csv(cohort):
        return ""
    if DASK_ON_SLURM:
        return (
            f"--scheduler slurm --cluster-config {shlex.quote(DASK['cluster_config'])}"
        )
    return f"--scheduler {DASK['scheduler']}"


def parallel_flag(cohort):
    """The option that takes the job's thread count: --threads (CSV, in memory), --workers
    (LocalCluster), or none (dask-jobqueue or an existing scheduler size their own workers).
    The count itself is put in by the shell command, so that running with other thread counts
    (--cores, a profile's set-threads) is not a parameter change that would redo releases.
    """
    if is_csv(cohort):
        return "--threads"
    return "--workers" if DASK["scheduler"] == "local" else ""


def ldstats_options(wildcards):
    return dask_options(wildcards.cohort)


def ldstats_parallel(wildcards):
    return "--workers" if parallel_flag(wildcards.cohort) == "--workers" else ""


def release_inputs(wildcards):
    rel = RELEASES[wildcards.release]
    panel = release_panel(rel)
    inputs = {
        "cohort": prepared(rel["cohort"]),
        "panel": prepared(panel),
        "ldstats": ldstats_file(rel["cohort"], panel),
    }
    if rel["af_source"].startswith("public:"):
        inputs["af_file"] = rel["af_source"][len("public:") :]
    if "phenotypes" in rel:
        inputs["phenotypes"] = rel["phenotypes"]
    return inputs


def release_options(wildcards):
    rel = RELEASES[wildcards.release]
    opts = [
        f"--epsilon {rel['epsilon']!r}",
        f"--calibration {rel['calibration']}",
        f"--af-source {shlex.quote(rel['af_source'])}",
        f"--window {config['ld']['window']}",
        f"--zero-cell {config['ld']['zero_cell']}",
    ]
    # Test/demo configs only: a seed makes the release reproducible and not for sharing.
    seed = rel.get("seed", config["seed"])
    if seed is not None:
        opts.append(f"--seed {seed}")
    if "phenotypes" in rel:
        opts.append(f"--phenotypes {shlex.quote(rel['phenotypes'])}")
    for spec in rel.get("release_phenotype", []):
        opts.append(f"--release-phenotype {shlex.quote(spec)}")
    if not is_csv(rel["cohort"]):
        opts.append(dask_options(rel["cohort"]))
        if config["exports"]:
            opts.append("--export " + ",".join(config["exports"]))
    return " ".join(opts)


def release_parallel(wildcards):
    return parallel_flag(RELEASES[wildcards.release]["cohort"])


def evaluate_inputs(wildcards):
    rel = RELEASES[wildcards.release]
    return {
        "original": prepared(rel["cohort"]),
        "release": f"{RESULTS}/releases/{wildcards.release}",
    }


# ---------------------------------------------------------------- comparison


def compare_inputs(wildcards):
    return {
        "releases": [f"{RESULTS}/releases/{name}" for name in RELEASES],
        "evaluations": [f"{RESULTS}/evaluation/{name}.json" for name in RELEASES],
    }


def compare_pairs(wildcards, input):
    return " ".join(
        f"--release {shlex.quote(d)} {shlex.quote(e)}"
        for d, e in zip(input.releases, input.evaluations)
    )


# ---------------------------------------------------------------- report


REPORT = config["report"]


def report_cohort(rel_name):
    return REPORT["cohorts"].get(RELEASES[rel_name]["cohort"], {})


def attacked(rel_name):
    return bool(report_cohort(rel_name).get("attack", False))


def retention_design(rel_name):
    return report_cohort(rel_name).get("retention", "none")


def attack_seed_option(wildcards):
    """Extra audit releases: the demo's seed plus the seed index (reproducible); none when no seed is set."""
    seed = RELEASES[wildcards.release].get("seed", config["seed"])
    return "" if seed is None else f"--seed {int(seed) + 1000 * int(wildcards.k)}"


def attack_inputs(wildcards):
    rel = RELEASES[wildcards.release]
    extra = [
        f"{RESULTS}/audit-releases/{wildcards.release}/seed{k}"
        for k in range(1, REPORT["attack_seeds"])
    ]
    return {
        "cohort": prepared(rel["cohort"]),
        "panel": prepared(release_panel(rel)),
        "releases": [f"{RESULTS}/releases/{wildcards.release}"] + extra,
    }


def retention_inputs(wildcards):
    rel = RELEASES[wildcards.release]
    inputs = {
        "cohort": prepared(rel["cohort"]),
        "panel": prepared(release_panel(rel)),
        "release": f"{RESULTS}/releases/{wildcards.release}",
    }
    if retention_design(wildcards.release) == "phenotype":
        sim = dataset(rel["cohort"])["simulation"]
        inputs["phenotype"] = f"{RESULTS}/simulations/{sim}/phenotype.tsv"
    return inputs


def retention_groups(wildcards, input):
    if retention_design(wildcards.release) == "phenotype":
        return f"--phenotype {shlex.quote(input.phenotype)}"
    return f"--controls {shlex.quote(input.panel)}"


def report_inputs(wildcards):
    return {
        "releases": [f"{RESULTS}/releases/{name}" for name in RELEASES],
        "evaluations": [f"{RESULTS}/evaluation/{name}.json" for name in RELEASES],
        "attacks": [
            f"{RESULTS}/attacks/{name}.json" for name in RELEASES if attacked(name)
        ],
        "retention": [
            f"{RESULTS}/retention/{name}/retention.json"
            for name in RELEASES
            if retention_design(name) != "none"
        ],
    }


def report_args(wildcards, input):
    args = [f"--release {shlex.quote(d)}" for d in input.releases]
    args += [f"--evaluation {shlex.quote(e)}" for e in input.evaluations]
    args += [f"--attacks {shlex.quote(a)}" for a in input.attacks]
    args += [f"--retention {shlex.quote(r)}" for r in input.retention]
    args.append(f"--retention-target {REPORT['retention_target']!r}")
    return " ".join(args)


def _check_report_config():
    for cohort, opts in REPORT["cohorts"].items():
        if cohort not in config["cohorts"]:
            _config_error(f"report.cohorts: {cohort!r} is not under 'cohorts'")
        ds = config["cohorts"][cohort]
        panel = ds.get("panel")
        if opts.get("attack") and not (is_csv(cohort) and panel and is_csv(panel)):
            _config_error(
                f"report.cohorts.{cohort}.attack: attacks run on CSV cohorts with a CSV panel only"
            )
        if opts.get("retention") == "phenotype" and "simulation" not in ds:
            _config_error(
                f"report.cohorts.{cohort}.retention: phenotype needs a simulated cohort"
            )
        if opts.get("retention") == "controls" and not panel:
            _config_error(
                f"report.cohorts.{cohort}.retention: controls needs the cohort's panel"
            )


_check_config()
RELEASES = {rel["name"]: rel for rel in config["releases"]}
_check_report_config()
