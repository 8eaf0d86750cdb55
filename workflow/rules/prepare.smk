rule simulate:
    """A simulated case/control cohort and reference panel as PLINK (demo and tests).
    Every file it writes is an output, so a rerun starts from an empty directory."""
    output:
        multiext(f"{RESULTS}/simulations/{{simulation}}/cohort", ".bed", ".bim", ".fam"),
        multiext(f"{RESULTS}/simulations/{{simulation}}/panel", ".bed", ".bim", ".fam"),
        phenotype=f"{RESULTS}/simulations/{{simulation}}/phenotype.tsv",
        causal=f"{RESULTS}/simulations/{{simulation}}/causal.tsv",
        summary=f"{RESULTS}/simulations/{{simulation}}/simulation.json",
    log:
        f"{RESULTS}/logs/simulate/{{simulation}}.log",
    conda:
        ENV
    params:
        sim=lambda wildcards: config["simulations"][wildcards.simulation],
        out=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        'echo "rule=simulate slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "genoshare simulate --cases {params.sim[cases]} "
        "--controls {params.sim[controls]} --panel {params.sim[panel]} "
        "--variants {params.sim[variants]} --seed {params.sim[seed]} --holdout 0 "
        "--format plink --out {params.out:q} >> {log:q} 2>&1"


rule ingest:
    """PLINK or VCF input -> VCF Zarr store, once per input."""
    input:
        unpack(ingest_inputs),
    output:
        directory(f"{RESULTS}/ingest/{{dataset}}.vcz"),
    log:
        f"{RESULTS}/logs/ingest/{{dataset}}.log",
    conda:
        ENV
    params:
        chunks=ingest_chunks,
    shell:
        'echo "rule=ingest slurm_job_id=${{SLURM_JOB_ID:-none}} host=$(hostname)" > {log:q}; '
        "genoshare ingest {input.source:q} --out {output:q} {params.chunks} >> {log:q} 2>&1"
