rule ldstats:
    """Epsilon-free LD statistics of a panel at a cohort's sites, once per cohort x panel."""
    input:
        unpack(ldstats_inputs),
    output:
        f"{RESULTS}/ldstats/{{cohort}}/{{panel}}.npz",
    log:
        f"{RESULTS}/logs/ldstats/{{cohort}}/{{panel}}.log",
    localrule: DASK_ON_SLURM
    conda:
        ENV
    threads: 2
    params:
        window=config["ld"]["window"],
        zero_cell=config["ld"]["zero_cell"],
        dask=ldstats_options,
        parallel=ldstats_parallel,
    # "--workers {threads}" for a LocalCluster, nothing otherwise (see parallel_flag).
    shell:
        'echo "rule=ldstats slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "parallel={params.parallel:q}; "
        "genoshare ldstats {input.cohort:q} --reference {input.panel:q} "
        "--out {output:q} --window {params.window} --zero-cell {params.zero_cell} "
        "{params.dask} ${{parallel:+$parallel {threads}}} >> {log:q} 2>&1"
