"""`genoshare audit-model`: membership-inference audit of a model training recipe (docs/model-audit.md), registered
on the ``genoshare`` group in cli/__init__.py; all logic is in genoshare.audit.run."""

from __future__ import annotations

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly


@click.command("audit-model")
@click.option("--cohort", required=True, type=click.Path(), help="The cohort (CSV matrix or VCF Zarr).")
@click.option("--phenotype", required=True, type=click.Path(), help="Phenotype table (header; id column + values).")
@click.option("--phenotype-column", default=None, help="Column of --phenotype [default: 'phenotype', or the only one].")
@click.option(
    "--model",
    default=None,
    type=click.Choice(["logistic-l2", "logistic-l1", "elastic-net", "ridge", "mlp"]),
    help="Model family [default: logistic-l2 for a binary phenotype, ridge otherwise].",
)
@click.option(
    "--references",
    default=64,
    show_default=True,
    type=int,
    help="References per target; the game trains references + 1 models.",
)
@click.option(
    "--dp-sgd",
    "dp_sgd",
    default=None,
    metavar="NOISE[,NOISE...]",
    help="Also audit DP-SGD training at these noise multipliers.",
)
@options.releases_optional
@click.option(
    "--population",
    default=None,
    type=click.Path(),
    help="Population set for RMIA (CSV/VCZ, disjoint from the cohort) [default: 20% of the cohort].",
)
@click.option(
    "--population-phenotype", default=None, type=click.Path(), help="Phenotypes of --population [default: --phenotype]."
)
@click.option("--max-epsilon", default=None, type=float, help="Owner's limit on the accounted epsilon.")
@click.option("--max-tpr-at-1pct", default=None, type=float, help="Owner's limit on the measured TPR at FPR 1%.")
@click.option(
    "--trained-model",
    default=None,
    type=click.Path(dir_okay=False),
    help="Audit this already-trained linear/logistic model (.npz: coef per SNP for g - 1, intercept).",
)
@click.option(
    "--member-ids",
    "members",
    default=None,
    type=click.Path(dir_okay=False),
    help="With --trained-model: its training set (one id per line).",
)
@click.option(
    "--holdout-ids",
    "holdout",
    default=None,
    type=click.Path(dir_okay=False),
    help="With --trained-model: the hold-out set aside before training (one id per line).",
)
@click.option(
    "--no-relatives-filter",
    "no_relatives_filter",
    is_flag=True,
    help="Skip the KING-robust filter (second degree) that removes one of each related pair from the game.",
)
@options.seed_zero
@options.private_dir
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="AUDIT.json (aggregates only).")
@_fail_cleanly
def audit_model(
    cohort,
    phenotype,
    phenotype_column,
    model,
    references,
    dp_sgd,
    releases,
    population,
    population_phenotype,
    max_epsilon,
    max_tpr_at_1pct,
    trained_model,
    members,
    holdout,
    no_relatives_filter,
    seed,
    private,
    out,
):
    """Measure what a model trained on COHORT leaks (loss, LiRA, RMIA), with DP-SGD and release defences.

    The per-individual scores and IN/OUT matrices go to the private directory; --out holds aggregates only."""
    from genoshare.audit.run import audit_model as run

    report = run(
        cohort,
        phenotype,
        out,
        phenotype_column=phenotype_column,
        model=model,
        references=references,
        dp_sgd=dp_sgd,
        releases=releases,
        population=population,
        population_phenotype=population_phenotype,
        max_epsilon=max_epsilon,
        max_tpr_at_1pct=max_tpr_at_1pct,
        seed=seed,
        private_dir=private,
        relatives="skip" if no_relatives_filter else "filter",
        trained_model=trained_model,
        members=members,
        holdout=holdout,
    )
    for m in report["models"]:
        best = max(m["attacks"].items(), key=lambda kv: kv[1]["auc"])
        eps = "none" if m["epsilon"] is None else f"{m['epsilon']:.3g}"
        click.echo(
            f"{m['name']:<24} epsilon {eps:>6}  {m['utility']['metric']} {m['utility']['value']:.3f}  "
            f"best attack {best[0]} AUC {best[1]['auc']:.3f}"
        )
    click.echo(f"recommended: {report['recommendation']['recommended']}")
