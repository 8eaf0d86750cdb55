"""Privacy commands: ``genoshare ledger list|show|cancel``, ``genoshare check-release``, ``genoshare kinship``.

Registered on the ``genoshare`` group in cli/__init__.py. Errors a user can act on are one line on stderr with exit
status 2; check-release exits 1 when the release fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly
from genoshare.errors import GenoshareError

__all__ = ["ledger", "check_release_cmd", "kinship_cmd", "COMMANDS"]

_private_option = options.private_dir


def _open_ledger(private):
    from genoshare.privacy.ledger import LEDGER_FILE, Ledger, private_dir

    path = private_dir(private, create=False) / LEDGER_FILE
    if not path.exists():
        return None, path
    return Ledger(path), path


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _row(e) -> list:
    flags = []
    if e.test_release:
        flags.append("test")
    if e.status != "recorded":
        flags.append(e.status)
    return [
        e.id,
        e.created,
        e.fingerprint[:12],
        _fmt(e.epsilon),
        f"{e.delta:.3g}",
        e.af_source or "",
        ",".join(flags),
        e.output_dir or "",
    ]


_HEADERS = ["id", "created (UTC)", "cohort", "epsilon", "delta", "af source", "flags", "output"]


@click.group("ledger")
def ledger():
    """The release ledger: every release of every cohort, with its privacy loss."""


@ledger.command("list")
@_private_option
@options.as_json
@_fail_cleanly
def ledger_list(private, as_json):
    """All recorded releases, oldest first, and each cohort's cumulative loss."""
    from tabulate import tabulate

    led, path = _open_ledger(private)
    entries = [] if led is None else led.releases()
    cohorts = list(dict.fromkeys(e.fingerprint for e in entries))
    cums = [led.cumulative(fp) for fp in cohorts] if led else []
    if as_json:
        click.echo(
            json.dumps({"ledger": str(path), "releases": [e.to_dict() for e in entries], "cohorts": cums}, indent=2)
        )
        return
    if not entries:
        click.echo(f"no releases recorded in {path}")
        return
    click.echo(f"ledger {path}")
    click.echo(tabulate([_row(e) for e in entries], headers=_HEADERS, tablefmt="simple"))
    click.echo("")
    for c in cums:
        click.echo(
            f"cohort {c['fingerprint'][:12]}: {c['n_releases']} release(s), cumulative epsilon "
            f"{_fmt(c['epsilon'])}, delta {c['delta']:.3g} ({c['composition']})"
        )


@ledger.command("show")
@click.argument("what", metavar="ID|FINGERPRINT")
@_private_option
@options.as_json
@_fail_cleanly
def ledger_show(what, private, as_json):
    """One release (by id) or one cohort (by fingerprint or a unique prefix of >= 8 hex digits)."""
    led, path = _open_ledger(private)
    if led is None:
        raise GenoshareError(f"no ledger at {path}")
    text = what.strip()
    if text.isdigit() and len(text) < 8:
        e = led.get(int(text))
        cum = led.cumulative(e.fingerprint)
        if as_json:
            click.echo(json.dumps({"release": e.to_dict(), "cohort": cum}, indent=2))
            return
        for k, v in e.to_dict().items():
            click.echo(f"{k}: {json.dumps(v) if isinstance(v, dict) else v}")
        click.echo(
            f"cohort cumulative: epsilon {_fmt(cum['epsilon'])}, delta {cum['delta']:.3g} over "
            f"{cum['n_releases']} release(s) ({cum['composition']})"
        )
        return
    fp = led.resolve_fingerprint(text)
    entries = led.releases(fp)
    cum = led.cumulative(fp)
    if as_json:
        click.echo(json.dumps({"cohort": cum, "releases": [e.to_dict() for e in entries]}, indent=2))
        return
    from tabulate import tabulate

    click.echo(f"cohort {fp}")
    click.echo(
        f"cumulative: epsilon {_fmt(cum['epsilon'])}, delta {cum['delta']:.3g} over {cum['n_releases']} "
        f"release(s) ({cum['composition']}); {cum['n_test_releases']} test, {cum['n_reserved']} in progress"
    )
    for name, s in cum["stages"].items():
        click.echo(f"  stage {name}: epsilon {_fmt(s['epsilon'])}, delta {s['delta']:.3g}")
    click.echo(tabulate([_row(e) for e in entries], headers=_HEADERS, tablefmt="simple"))


@ledger.command("cancel")
@click.argument("release_id", type=int)
@_private_option
@_fail_cleanly
def ledger_cancel(release_id, private):
    """Cancel a reservation left by a release that did not finish (it stops counting)."""
    led, path = _open_ledger(private)
    if led is None:
        raise GenoshareError(f"no ledger at {path}")
    e = led.cancel(release_id)
    click.echo(f"release {e.id} cancelled (cohort {e.fingerprint[:12]}, epsilon {_fmt(e.epsilon)})")


@click.command("check-release")
@click.argument("directory", type=click.Path())
@click.option(
    "--quick",
    is_flag=True,
    help="Skip comparing exports and frequencies.tsv with the released genotypes (one read of each).",
)
@options.as_json
@_private_option
@_fail_cleanly
def check_release_cmd(directory, quick, as_json, private):
    """PASS only if nothing in DIRECTORY can undo or bypass the noise; exit status 0 PASS, 1 FAIL.

    Where the owner's ledger exists (--private-dir), the release is also compared with the recorded cohorts."""
    from genoshare.privacy.checkrelease import check_release

    if private is not None and _open_ledger(private)[0] is None:
        raise GenoshareError(f"--private-dir {private}: no ledger there ({_open_ledger(private)[1].name} missing)")
    report = check_release(Path(directory), verify_data=not quick, ledger=private or "auto")
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(0 if report.ok else 1)


@click.command("kinship")
@click.argument("cohort", type=click.Path())
@click.option(
    "--threshold",
    type=float,
    default=0.0884,
    show_default=True,
    help="Report pairs with KING-robust kinship above this (0.0884: 2nd degree or closer).",
)
@options.epsilon_optional
@options.delta
@click.option(
    "--max-variants",
    type=options.POSITIVE_INT,
    default=None,
    help="Use at most this many SNPs, evenly spaced (cost is linear in the SNPs).",
)
@options.sample_block
@click.option(
    "--estimator",
    type=click.Choice(["between", "within"]),
    default="between",
    show_default=True,
    help="KING-robust between-family (eq. 11, as plink2) or within-family estimator.",
)
@options.as_json
@_fail_cleanly
def kinship_cmd(cohort, threshold, epsilon, delta, max_variants, sample_block, estimator, as_json):
    """Related individuals in COHORT (CSV matrix or VCF Zarr) and their group-privacy cost."""
    from genoshare.privacy.kinship import kinship_report

    rep = kinship_report(
        cohort,
        threshold,
        epsilon=epsilon,
        delta=delta,
        estimator=estimator,
        sample_block=sample_block,
        max_variants=max_variants,
    )
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    click.echo(f"{rep['n_samples']} individuals, {rep['n_variants_used']} SNPs, {rep['estimator']}")
    if not rep["pairs"]:
        click.echo(f"no pairs with kinship above {threshold}")
        return
    from tabulate import tabulate

    click.echo(f"{len(rep['pairs'])} pair(s) with kinship above {threshold}:")
    click.echo(
        tabulate(
            [[p["id1"], p["id2"], f"{p['phi']:.4f}", p["degree"]] for p in rep["pairs"]],
            headers=["id1", "id2", "kinship", "degree"],
            tablefmt="simple",
        )
    )
    for g in rep["groups"]:
        cost = f"{g['size']} x epsilon"
        if epsilon is not None:
            cost += f" = {_fmt(g['epsilon'])}"
            if delta:
                cost += f", delta {g['delta']:.3g}"
        click.echo(f"group of {g['size']} ({', '.join(g['members'])}): protected as a group with {cost}")
    if rep.get("warning"):
        click.echo(f"warning: {rep['warning']}")


COMMANDS = (ledger, check_release_cmd, kinship_cmd)
