rule evaluate:
    """Utility of one release against its original cohort (JSON)."""
    input:
        unpack(evaluate_inputs),
    output:
        f"{RESULTS}/evaluation/{{release}}.json",
    log:
        f"{RESULTS}/logs/evaluate/{{release}}.log",
    conda:
        ENV
    shell:
        'echo "rule=evaluate slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "genoshare evaluate --original {input.original:q} "
        "--release {input.release:q} > {output:q} 2>> {log:q}"


rule compare:
    """One table across all releases: epsilons, calibration, allele-frequency source, errors."""
    input:
        unpack(compare_inputs),
    output:
        tsv=f"{RESULTS}/comparison.tsv",
        md=f"{RESULTS}/comparison.md",
    log:
        f"{RESULTS}/logs/compare.log",
    conda:
        ENV
    params:
        pairs=compare_pairs,
    shell:
        'echo "rule=compare slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "genoshare compare {params.pairs} "
        "--out {output.tsv:q} --markdown {output.md:q} >> {log:q} 2>&1"


rule audit_release:
    """An extra release with the same settings, for the membership audit's release seeds."""
    input:
        unpack(release_inputs),
    output:
        directory(f"{RESULTS}/audit-releases/{{release}}/seed{{k}}"),
    log:
        f"{RESULTS}/logs/audit_release/{{release}}-seed{{k}}.log",
    wildcard_constraints:
        k="[0-9]+",
    conda:
        ENV
    params:
        options=lambda wildcards: re.sub(
            r" --seed [0-9]+", "", release_options(wildcards)
        ),
        seed=attack_seed_option,
    shell:
        'echo "rule=audit_release slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "genoshare release {input.cohort:q} --reference {input.panel:q} "
        "--ldstats {input.ldstats:q} --out {output:q} --overwrite {params.options} {params.seed} "
        ">> {log:q} 2>&1"


rule attack:
    """Membership inference (nn, lrt) against a release and its audit seeds; the panel is split
    into non-members and the attacker's reference (--split-panel)."""
    input:
        unpack(attack_inputs),
    output:
        f"{RESULTS}/attacks/{{release}}.json",
    log:
        f"{RESULTS}/logs/attack/{{release}}.log",
    conda:
        ENV
    params:
        releases=lambda wildcards, input: " ".join(
            f"--release {shlex.quote(r)}" for r in input.releases
        ),
    shell:
        'echo "rule=attack slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "genoshare attack --original {input.cohort:q} {params.releases} "
        "--nonmembers {input.panel:q} --split-panel --attacks nn,lrt --json "
        "> {output:q}.tmp 2>> {log:q} && mv {output:q}.tmp {output:q}"


rule retention:
    """The owner's GWAS retention table of a release (k repeats), computed on a copy of the
    release directory so the release itself stays as written."""
    input:
        unpack(retention_inputs),
    output:
        f"{RESULTS}/retention/{{release}}/retention.json",
    log:
        f"{RESULTS}/logs/retention/{{release}}.log",
    conda:
        ENV
    params:
        groups=retention_groups,
        k=REPORT["retention_k"],
        seed=lambda wildcards: (
            ""
            if RELEASES[wildcards.release].get("seed", config["seed"]) is None
            else f"--seed {RELEASES[wildcards.release].get('seed', config['seed'])}"
        ),
        work=lambda wildcards, output: os.path.join(os.path.dirname(output[0]), "work"),
    shell:
        'echo "rule=retention slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "rm -rf {params.work:q} && cp -r {input.release:q} {params.work:q} && "
        "genoshare retention-table --original {input.cohort:q} --reference {input.panel:q} "
        "--release {params.work:q} {params.groups} -k {params.k} {params.seed} >> {log:q} 2>&1 && "
        "mv {params.work:q}/retention.json {output:q} && rm -rf {params.work:q}"


rule report:
    """The committee's HTML report: every release, evaluation, attack and retention table."""
    input:
        unpack(report_inputs),
    output:
        html=report(
            f"{RESULTS}/report.html",
            caption="../report/privacy_report.rst",
            category="Privacy report",
        ),
        json=f"{RESULTS}/report.json",
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        ENV
    params:
        args=report_args,
    shell:
        'echo "rule=report slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "genoshare report {params.args} --out {output.html:q} >> {log:q} 2>&1"
