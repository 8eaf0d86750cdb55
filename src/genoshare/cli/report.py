"""`genoshare report`: the committee's HTML privacy report (registered on the ``genoshare`` group in
cli/__init__.py; the work is in genoshare.report.build)."""

from __future__ import annotations

from pathlib import Path

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly


@click.command("report")
@options.releases
@click.option("--attacks", multiple=True, type=click.Path(), help="JSON of `genoshare attack --json` (repeat).")
@click.option("--retention", multiple=True, type=click.Path(), help="retention.json of `retention-table` (repeat).")
@click.option(
    "--evaluation",
    "evaluations",
    multiple=True,
    type=click.Path(),
    help="JSON of `genoshare evaluate`, named <release>.json (repeat).",
)
@click.option("--model-audit", "model_audits", multiple=True, type=click.Path(), help="Model-audit JSON (repeat).")
@click.option("--ledger", is_flag=True, help="Read the owner's ledger for the cumulative epsilon of each cohort.")
@options.private_dir
@click.option(
    "--budget",
    type=options.POSITIVE_FLOAT,
    default=None,
    help="The cohort's privacy budget: the ledger's cumulative epsilon is shown against it.",
)
@click.option(
    "--retention-target",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="The owner's GWAS retention target for the recommendation.",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="report.html (report.json beside it).")
@_fail_cleanly
def report(releases, attacks, retention, evaluations, model_audits, ledger, private, budget, retention_target, out):
    """One self-contained HTML privacy report (and report.json) for a data-access committee (docs/report.md)."""
    from genoshare.report.build import build

    build(
        releases,
        out,
        attacks,
        retention,
        model_audits,
        ledger,
        budget,
        retention_target,
        evaluations=evaluations,
        private=private,
    )
    click.echo(f"wrote {out} and {Path(out).with_name('report.json')}")
