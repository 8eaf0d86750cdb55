"""`genoshare gwas`, `genoshare retention-table`, `genoshare verify`: the click commands of the verification
side (registered on the ``genoshare`` group in cli/__init__.py).

Exit status: 0 success (verify: PASS), 1 verify FLAG, 2 a user error (one line on stderr).
"""

from __future__ import annotations

import json
import sys

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly
from genoshare.errors import GenoshareError

EXIT_FLAG = 1
EXIT_ERROR = 2


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise GenoshareError(f"{option} must be a comma-separated list of numbers, not {text!r}") from None


@click.command("gwas")
@click.option(
    "--cases",
    required=True,
    type=click.Path(),
    help="Cases (with --controls), or the whole cohort (with --phenotype or a PLINK .fam phenotype): "
    "CSV matrix, VCF Zarr, release directory, PLINK or VCF.",
)
@options.controls
@options.phenotype
@options.gwas_test
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output TSV: id, statistic, p, n_cases, n_controls.",
)
@options.threads
@_fail_cleanly
def gwas(cases, controls, phenotype, test, out, threads):
    """Case/control association test per SNP, blockwise over VCF Zarr (SPEC 5).

    allelic: 2x2 allele chi-square (PLINK --assoc); genotypic: 2x3 genotype chi-square (PLINK --model GENO);
    dominant: odds-ratio z test with 0.5 added to every cell."""
    from genoshare.evaluate.gwas import run_gwas

    _, s = run_gwas(cases, controls, phenotype, test, out, threads=threads)
    click.echo(
        f"{test} test: {s['n_variants']} SNPs ({s['n_tested']} testable), {s['n_cases']} cases, "
        f"{s['n_controls']} controls; {s['n_p_below_0.05']} with p < 0.05 (min p {s['min_p']:.4g}) -> {out}"
    )
    if s.get("design") == "controls" and not s.get("alleles_checked"):
        click.echo(
            "note: one file has no REF/ALT alleles (a CSV matrix): SNPs are matched by id only, so both "
            "files must count the same allele",
            err=True,
        )
    if s.get("only_in_cases") or s.get("allele_mismatch"):
        click.echo(
            f"SNP matching: {s.get('only_in_cases', 0)} case SNPs not in the controls, "
            f"{s.get('allele_mismatch', 0)} dropped for different alleles, "
            f"{s.get('allele_swapped', 0)} re-oriented",
            err=True,
        )


@click.command("retention-table")
@options.original
@options.reference
@options.release_dir
@options.controls
@options.phenotype
@click.option("-k", "k", type=click.IntRange(min=2), default=10, show_default=True, help="Releases to repeat.")
@options.alpha
@options.tau
@click.option("--tests", default="allelic,genotypic,dominant", show_default=True, help="GWAS tests to tabulate.")
@click.option(
    "--af-file",
    "af_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Release made with --af-source public:FILE: the frequency file, if not at the path in the manifest.",
)
@options.seed
@options.threads
@options.scheduler
@options.cluster_config
@options.workers
@options.overwrite
@_fail_cleanly
def retention_table(
    original,
    reference,
    release_dir,
    controls,
    phenotype,
    k,
    alpha,
    tau,
    tests,
    af_file,
    seed,
    threads,
    scheduler,
    cluster_config,
    workers,
    overwrite,
):
    """The owner's expected SNP retention: repeat the release k times on the original (settings from the
    manifest, fresh keys; the same --af-source) and write RELEASE/retention.json for reviewers. Costs k releases;
    the reruns are never shared, so they leave no ledger row and run no kinship check or check-release.

    --original, --reference: the cohort and the panel RELEASE was made from."""
    from genoshare.evaluate.verify import retention_table as run

    table = run(
        original,
        reference,
        release_dir,
        controls=controls,
        phenotype=phenotype,
        k=k,
        alpha=alpha,
        tau=tau,
        tests=tests,
        af_file=af_file,
        seed=seed,
        overwrite=overwrite,
        threads=threads,
        scheduler=scheduler,
        cluster_config=cluster_config,
        workers=workers,
    )
    parts = [
        f"{t} {e['mean']:.3f} (sd {e['sd']:.3f}, {e['n_reported']} SNPs)"
        if e["mean"] is not None
        else f"{t} n/a (no SNP with p < {alpha:g})"
        for t, e in table["tests"].items()
    ]
    click.echo(f"expected retention over k={k} releases at alpha {alpha:g}, tau {tau:g}: " + "; ".join(parts))
    click.echo(f"wrote {release_dir}/retention.json ({table['engine']} engine, {table['seconds']:.1f} s)")


@click.command("verify")
@options.release_dir
@click.option(
    "--reported",
    type=click.Path(dir_okay=False),
    default=None,
    help="TSV of the SNPs the paper reports significant: column id, optional p.",
)
@options.controls
@options.phenotype
@options.verify_test
@options.alpha_from_table
@options.tau_from_table
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="Flag when retention < expected mean - TOLERANCE [default: from the shipped distribution].",
)
@click.option(
    "--table",
    type=click.Path(dir_okay=False),
    default=None,
    help="Expected-retention table [default: RELEASE/retention.json].",
)
@options.as_json
@click.option(
    "--inject",
    default=None,
    help="Evaluation mode: error-injection curves for these modes (flipping,noise,shifting,replacing); "
    "needs --original and --out.",
)
@click.option(
    "--rates", default="0,0.1,0.2,0.3,0.5", show_default=True, help="--inject: error rates (noise: the sigmas)."
)
@click.option(
    "--reps", type=options.POSITIVE_INT, default=20, show_default=True, help="--inject: corrupted reports per rate."
)
@options.original_optional
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="--inject: curves TSV.")
@options.seed_zero
@options.threads
@_fail_cleanly
def verify(
    release_dir,
    reported,
    controls,
    phenotype,
    test,
    alpha,
    tau,
    tolerance,
    table,
    as_json,
    inject,
    rates,
    reps,
    original,
    out,
    seed,
    threads,
):
    """Check a reported list of significant SNPs against the released copy.

    Recomputes the GWAS on the release, takes the retention of the reported SNPs at alpha / tau and compares it
    with the owner's expected retention. Prints PASS or FLAG with the reason; exit status 0 PASS, 1 FLAG,
    2 error. RELEASE must hold retention.json (or give --table). --inject (evaluation mode) needs --original
    (the cohort RELEASE was made from) and --out."""
    from genoshare.evaluate import verify as v

    if inject is not None:
        if original is None or out is None:
            raise GenoshareError("--inject needs --original COHORT and --out TSV")
        from genoshare.evaluate.gwas import write_table

        modes = [m.strip() for m in inject.split(",") if m.strip()]
        curves = v.injection_evaluation(
            original,
            release_dir,
            controls,
            phenotype,
            test,
            modes=modes,
            rates=_floats(rates, "--rates"),
            reps=reps,
            seed=seed,
            tolerance=tolerance,
            table=table,
            threads=threads,
        )
        write_table(out, curves)
        if as_json:
            click.echo(curves.to_json(orient="records", indent=2))
        else:
            click.echo(
                curves[
                    ["mode", "rate", "n_reported", "wrong_fraction", "retention", "difference", "flagged"]
                ].to_string(index=False, float_format=lambda x: f"{x:.3f}")
            )
        return
    if reported is None:
        raise GenoshareError("--reported TSV is required (or --inject for the evaluation mode)")
    if controls is None and phenotype is None:
        raise GenoshareError("give --controls FILE or --phenotype TSV (the same the owner's table used)")
    res = v.verify_release(
        release_dir,
        reported,
        controls=controls,
        phenotype=phenotype,
        test=test,
        alpha=alpha,
        tau=tau,
        tolerance=tolerance,
        table=table,
        threads=threads,
    )
    for note in res["notes"]:
        click.echo(f"warning: {note}", err=True)
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        click.echo(f"{res['status'].upper()}: {res['reason']}")
    sys.exit(0 if res["status"] == "pass" else EXIT_FLAG)


COMMANDS = (gwas, retention_table, verify)
