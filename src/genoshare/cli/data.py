"""`genoshare ingest` and `genoshare simulate`: data in."""

from __future__ import annotations

import json

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="VCF Zarr store to create.")
@options.chunk_variants
@options.chunk_samples
@_fail_cleanly
def ingest(input_path, out, chunk_variants, chunk_samples):
    """Convert PLINK (.bed/.bim/.fam), VCF/BCF, VCF Zarr or a CSV matrix into a VCF Zarr store.

    INPUT may be a quoted pattern holding {chrom} ('cohort.chr{chrom}.vcf.gz'): its files, in natural order
    (2 before 10), are concatenated into one store; they must share their sample ids."""
    from genoshare.io.ingest import ingest as run_ingest

    summary = run_ingest(input_path, out, chunk_variants=chunk_variants, chunk_samples=chunk_samples)
    click.echo(json.dumps(summary, indent=2, default=str))


@click.command()
@click.option("--cases", type=options.POSITIVE_INT, required=True, help="Cases to simulate.")
@click.option("--controls", type=options.POSITIVE_INT, required=True, help="Controls to simulate.")
@click.option("--panel", type=options.POSITIVE_INT, required=True, help="Reference-panel individuals.")
@click.option("--variants", type=options.POSITIVE_INT, required=True, help="SNPs to keep.")
@options.seed_required
@click.option("--holdout", type=int, default=None, help="Held-out individuals (default: cases + controls).")
@click.option(
    "--format",
    "formats",
    default="csv",
    show_default=True,
    help="Comma-separated output formats: csv, vcz, vcf, plink.",
)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False))
@_fail_cleanly
def simulate(cases, controls, panel, variants, seed, holdout, formats, out):
    """Simulate a case/control cohort, panel and holdout with msprime (deterministic)."""
    from genoshare.simulate import simulate_cohort

    summary = simulate_cohort(
        out, cases=cases, controls=controls, panel=panel, variants=variants, seed=seed, holdout=holdout, formats=formats
    )
    click.echo(json.dumps(summary, indent=2, default=str))
