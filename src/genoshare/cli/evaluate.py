"""`genoshare evaluate` and `genoshare compare`: utility of releases."""

from __future__ import annotations

import json

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly


@click.command()
@options.original
@options.release_dir
@_fail_cleanly
def evaluate(original, release_dir):
    """Print utility metrics (point, sample, mean and variance error) as JSON."""
    from genoshare.api import evaluate_release

    click.echo(json.dumps(evaluate_release(original, release_dir), indent=2))


@click.command()
@click.option(
    "--release",
    "releases",
    multiple=True,
    required=True,
    type=(click.Path(file_okay=False), click.Path(dir_okay=False)),
    metavar="DIR EVALUATION",
    help="A release directory and the JSON 'genoshare evaluate' printed for it (repeat, in table order).",
)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Comparison table to write (TSV).")
@click.option("--markdown", type=click.Path(dir_okay=False), default=None, help="Also write the table as Markdown.")
@_fail_cleanly
def compare(releases, out, markdown):
    """One table across releases: epsilons, calibration, allele-frequency source and utility."""
    from genoshare.report.compare import to_markdown, write_comparison

    click.echo(to_markdown(write_comparison(releases, out, markdown)), nl=False)
