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
