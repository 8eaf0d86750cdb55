"""`genoshare release` and `genoshare ldstats`: the release commands."""

from __future__ import annotations

import json
import sys

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly
from genoshare.errors import GenoshareError


class _Progress:
    """A tqdm bar fed by (done, total) callbacks; silent when stderr is not a terminal."""

    def __init__(self, desc: str):
        self.desc = desc
        self.bar = None

    def __call__(self, done: int, total: int):
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=self.desc, unit="chunk", leave=False, disable=None, mininterval=0.5, file=sys.stderr
            )
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


@click.command()
@click.argument("cohort", type=click.Path())
@options.reference
@options.epsilon_sweep
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Release directory to create (a sweep: the directory of the epsilon-E/ members).",
)
@click.option(
    "--calibration",
    type=click.Choice(["exact", "nominal"]),
    default="exact",
    show_default=True,
    help="exact: the true epsilon of the drawn noise equals --epsilon; nominal: the paper's scale.",
)
@options.zero_cell
@options.window
@click.option(
    "--af-source",
    default="published",
    show_default=True,
    help="Target allele frequencies: published (the cohort's own), reference, public:FILE, or "
    "dp:EPS[:DELTA] (Gaussian mechanism on allele counts, accounted).",
)
@options.seed
@options.sample_block
@options.threads
@options.scheduler
@options.cluster_config
@options.workers
@click.option("--export", "exports", default="", help="Also write these formats: plink,vcf,csv.")
@options.chunk_variants
@options.chunk_samples
@options.ambiguous
@options.unmatched
@click.option(
    "--ldstats",
    "ldstats",
    type=click.Path(dir_okay=False),
    default=None,
    help="Reuse LD statistics saved by 'genoshare ldstats' (same sites, window and zero-cell rule).",
)
@options.private_dir
@click.option(
    "--budget",
    type=options.POSITIVE_FLOAT,
    default=None,
    help="Refuse the release if this cohort's cumulative epsilon (ledger) would exceed BUDGET.",
)
@click.option(
    "--relatives",
    type=click.Choice(["auto", "check", "refuse", "skip"]),
    default="auto",
    show_default=True,
    help="KING-robust kinship check: auto = check up to 2,000 individuals.",
)
@click.option("--refuse-relatives", is_flag=True, help="Same as --relatives refuse: block a cohort with relatives.")
@click.option(
    "--phenotypes",
    type=click.Path(),
    default=None,
    help="Phenotype/covariate table (header line; tab, comma or whitespace separated; sample id column "
    "IID, sample_id, sample or id, else the first; FID ignored; NA, empty or -9 missing). Nothing "
    "in it is released unless listed with --release-phenotype.",
)
@click.option(
    "--release-phenotype",
    "release_phenotype",
    multiple=True,
    metavar="COL[:rr=EPS]",
    help="Release column COL of --phenotypes to OUT/phenotypes.tsv: in the clear (NOT protected), or, "
    "with :rr=EPS, a binary column (0/1 or PLINK 1/2) by randomized response at epsilon EPS "
    "(accounted). Repeat for more columns.",
)
@options.overwrite
@_fail_cleanly
def release(
    cohort,
    reference,
    epsilon,
    out,
    calibration,
    zero_cell,
    window,
    af_source,
    seed,
    sample_block,
    threads,
    scheduler,
    cluster_config,
    workers,
    exports,
    chunk_variants,
    chunk_samples,
    ambiguous,
    unmatched,
    ldstats,
    private,
    budget,
    relatives,
    refuse_relatives,
    phenotypes,
    release_phenotype,
    overwrite,
):
    """Release COHORT with XOR noise calibrated on a public reference panel.

    CSV matrices are released in memory to OUT/release.csv.gz; VCF Zarr, PLINK and VCF inputs go through the
    blockwise Dask pipeline to OUT/release.vcz (plus --export formats). COHORT and --reference may be a quoted
    pattern holding {chrom} ('cohort.chr{chrom}.vcf.gz'): its files, in natural order, form one cohort."""
    from genoshare import api

    options = dict(
        calibration=calibration,
        zero_cell=zero_cell,
        window=window,
        af_source=af_source,
        seed=seed,
        overwrite=overwrite,
        ldstats=ldstats,
        private_dir=private,
        budget=budget,
        relatives="refuse" if refuse_relatives else relatives,
        phenotypes=phenotypes,
        release_phenotype=release_phenotype,
        notify=lambda line: click.echo(line, err=True),
    )
    if api.is_csv(cohort) and api.is_csv(reference):
        bar = _Progress("release")
        options.update(sample_block=sample_block or api.DEFAULT_SAMPLE_BLOCK, threads=threads, progress=bar)
        extra = dict(
            scheduler=None if scheduler == "local" else scheduler,
            cluster_config=cluster_config,
            workers=workers,
            exports=exports,
            chunk_variants=chunk_variants,
            chunk_samples=chunk_samples,
            ambiguous=None if ambiguous == "drop" else ambiguous,
            unmatched=None if unmatched == "drop" else unmatched,
        )
        options.update(extra)
    else:
        if sample_block is not None or threads is not None:
            raise GenoshareError(
                "--sample-block and --threads apply to CSV inputs; for stores use "
                "--chunk-samples and the scheduler's workers"
            )
        from genoshare.cluster import progress

        bar = None
        options.update(
            scheduler=scheduler,
            cluster_config=cluster_config,
            workers=workers,
            exports=exports,
            chunk_variants=chunk_variants,
            chunk_samples=chunk_samples,
            ambiguous=ambiguous,
            unmatched=unmatched,
            progress=progress,
        )
    try:
        if isinstance(epsilon, tuple):
            from genoshare.sweep import member_name, release_sweep

            manifests = release_sweep(cohort, reference, epsilon, out, **options)
            outs = [f"{out}/{member_name(e)}" for e in epsilon]
        else:
            manifests, outs = [api.release(cohort, reference, epsilon, out, **options)], [out]
    finally:
        if bar is not None:
            bar.close()
    for manifest, member_out in zip(manifests, outs):
        _summary(manifest, member_out)


def _summary(manifest: dict, out) -> None:
    click.echo(f"released {manifest['n_samples']} individuals x {manifest['n_variants']} SNPs to {out}")
    click.echo(
        f"epsilon: requested {manifest['epsilon_requested']:g}, true (XOR stage) "
        f"{manifest['epsilon_xor']:.6g}, nominal {manifest['epsilon_nominal']:.6g} "
        f"[{manifest['calibration']}, zero-cell {manifest['zero_cell']}, window {manifest['window']}]"
    )
    total = manifest["privacy"].get("total", {})
    if total:
        click.echo(
            f"privacy total: epsilon {total['epsilon']:.6g} at delta {total['delta']:.3g} "
            f"({total['composition'].split(':')[0]})"
        )
    click.echo(f"allele frequencies: {manifest['af_source']['privacy']}")
    if "phenotypes" in manifest:
        ph = manifest["phenotypes"]
        cols = ", ".join(f"{c['name']} ({c['release']})" for c in ph["columns"])
        click.echo(
            f"phenotypes: {cols} -> {ph['file']}; {ph['cohort_without_row']} individual(s) without a row, "
            f"{ph['rows_not_in_cohort_dropped']} row(s) not in the cohort dropped"
        )
    if "alignment" in manifest:
        al = manifest["alignment"]
        dropped = ", ".join(f"{k} {v}" for k, v in al["dropped"].items() if v) or "none"
        click.echo(f"sites: {al['kept']} of {al['cohort_sites']} kept (dropped: {dropped})")
    if manifest.get("warning"):
        click.echo(f"WARNING: {manifest['warning']}", err=True)


@click.command()
@click.argument("cohort", type=click.Path())
@options.reference
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="LD statistics file (.npz).")
@options.zero_cell
@options.window
@options.scheduler
@options.cluster_config
@options.workers
@options.chunk_variants
@options.chunk_samples
@options.ambiguous
@options.unmatched
@_fail_cleanly
def ldstats(
    cohort,
    reference,
    out,
    zero_cell,
    window,
    scheduler,
    cluster_config,
    workers,
    chunk_variants,
    chunk_samples,
    ambiguous,
    unmatched,
):
    """Compute the epsilon-free LD statistics of PANEL at COHORT's sites once, for every release of a sweep."""
    from genoshare.api import ldstats_command

    summary = ldstats_command(
        cohort,
        reference,
        out,
        zero_cell=zero_cell,
        window=window,
        scheduler=scheduler,
        cluster_config=cluster_config,
        workers=workers,
        chunk_variants=chunk_variants,
        chunk_samples=chunk_samples,
        ambiguous=ambiguous,
        unmatched=unmatched,
    )
    click.echo(json.dumps(summary, indent=2, default=str))
