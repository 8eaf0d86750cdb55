"""genoshare workflow: ingest once, LD statistics once per cohort x panel, an epsilon sweep of
releases, one evaluation per release and one comparison table. See docs/workflow.md."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/ldstats.smk"
include: "workflow/rules/release.smk"
include: "workflow/rules/report.smk"


wildcard_constraints:
    simulation=NAME,
    dataset=NAME,
    cohort=NAME,
    panel=NAME,
    release=NAME,


# The comparison table and the committee's report (and, through them, every release, evaluation,
# attack and retention table).
rule all:
    default_target: True
    input:
        f"{RESULTS}/comparison.tsv",
        f"{RESULTS}/comparison.md",
        f"{RESULTS}/report.html",
    localrule: True
