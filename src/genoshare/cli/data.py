"""`genoshare ingest` and `genoshare simulate`: data in."""

from __future__ import annotations

import json

import click

from genoshare.cli.errors import fail_cleanly as _fail_cleanly
from genoshare.errors import GenoshareError


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="VCF Zarr store to create.")
@click.option("--chunk-variants", type=int, default=None, help="Variants per chunk [default: bio2zarr's].")
@click.option("--chunk-samples", type=int, default=None, help="Samples per chunk [default: bio2zarr's].")
@_fail_cleanly
def ingest(input_path, out, chunk_variants, chunk_samples):
    """Convert PLINK (.bed/.bim/.fam), VCF/BCF, VCF Zarr or a CSV matrix into a VCF Zarr store."""
    from genoshare.io.ingest import ingest as run_ingest

    summary = run_ingest(input_path, out, chunk_variants=chunk_variants, chunk_samples=chunk_samples)
    click.echo(json.dumps(summary, indent=2, default=str))


@click.command()
@click.option("--cases", type=int, required=True)
@click.option("--controls", type=int, required=True)
@click.option("--panel", type=int, required=True, help="Reference-panel individuals.")
@click.option("--variants", type=int, required=True, help="SNPs to keep.")
@click.option("--seed", type=int, required=True)
@click.option("--holdout", type=int, default=None, help="Held-out individuals (default: cases + controls).")
@click.option("--format", "formats", default="csv", show_default=True,
              help="Comma-separated output formats: csv, vcz, vcf, plink.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False))
@_fail_cleanly
def simulate(cases, controls, panel, variants, seed, holdout, formats, out):
    """Simulate a case/control cohort, panel and holdout with msprime (deterministic)."""
    from genoshare.simulate import simulate_cohort

    for name, value in (("cases", cases), ("controls", controls), ("panel", panel), ("variants", variants)):
        if value < 1:
            raise GenoshareError(f"--{name} must be at least 1")
    summary = simulate_cohort(out, cases=cases, controls=controls, panel=panel, variants=variants, seed=seed,
                              holdout=holdout, formats=formats)
    click.echo(json.dumps(summary, indent=2, default=str))
