rule release:
    """One release per entry of `releases`, reusing the cohort x panel LD statistics."""
    input:
        unpack(release_inputs),
    output:
        directory(f"{RESULTS}/releases/{{release}}"),
    log:
        f"{RESULTS}/logs/release/{{release}}.log",
    localrule: DASK_ON_SLURM
    conda:
        ENV
    threads: 2
    params:
        options=release_options,
        parallel=release_parallel,
    # "--threads {threads}" (CSV) or "--workers {threads}" (LocalCluster) or nothing.
    shell:
        'echo "rule=release slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "parallel={params.parallel:q}; "
        "genoshare release {input.cohort:q} --reference {input.panel:q} "
        "--ldstats {input.ldstats:q} --out {output:q} --overwrite {params.options} "
        "${{parallel:+$parallel {threads}}} >> {log:q} 2>&1"
