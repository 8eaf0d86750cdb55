"""`genoshare attack`: membership-inference audit of one or more releases (registered on the ``genoshare`` group
in cli/__init__.py)."""

from __future__ import annotations

import json

import click

from genoshare.cli import options
from genoshare.cli.errors import fail_cleanly as _fail_cleanly


def _text(report: dict) -> str:
    lines = []
    split = report["split"]
    lines.append(
        f"{split['releases']} release(s), {split['snps']} SNPs; members {split['members']['calibration']} "
        f"calibration / {split['members']['evaluation']} evaluation, non-members "
        f"{split['nonmembers']['calibration']} / {split['nonmembers']['evaluation']}"
    )
    audit = report.get("audit", {})
    eps = audit.get("epsilon_xor")
    head = f"{'attack':<22} {'AUC':>6} {'TPR@0.1%':>9} {'TPR@1%':>8} {'TPR@5%':>8} {'eps lower bound':>16}"
    lines.append(head)
    for name, r in report.items():
        if name in ("split", "audit"):
            continue
        t = r["tpr_at_fpr"]
        lines.append(
            f"{name:<22} {r['auc']:>6.3f} {t['0.001']['tpr']:>9.3f} {t['0.01']['tpr']:>8.3f} "
            f"{t['0.05']['tpr']:>8.3f} {r['epsilon_lower_bound']:>16.4g}"
        )
    if eps is not None:
        lines.append(
            f"accountant: epsilon_xor {eps:.6g} (replace-one); lower bounds at confidence "
            f"{audit['confidence']:g}, delta {audit['delta']:g}"
        )
        if audit.get("exceeds_accountant"):
            lines.append(
                "EXCEEDED by: "
                + ", ".join(audit["exceeds_accountant"])
                + " (a bug in the accountant or the attack, unless the allele frequencies are published)"
            )
    if audit.get("note"):
        lines.append(f"note: {audit['note']}")
    for note in split.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


@click.command("attack")
@options.original
@options.releases
@click.option(
    "--nonmembers",
    required=True,
    type=click.Path(),
    help="Individuals of the same population used for nothing else (or, with --split-panel, a panel).",
)
@options.reference_optional
@click.option(
    "--attacks",
    default="nn,lrt,classifier",
    show_default=True,
    help="Comma-separated: nn, lrt, classifier, row (row needs a CSV release whose reference panel and "
    "settings in manifest.json are available).",
)
@click.option(
    "--seed-split",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the calibration/evaluation split (and of --split-panel).",
)
@options.delta
@click.option(
    "--confidence",
    default=0.95,
    show_default=True,
    type=options.PROBABILITY_OPEN,
    help="Confidence of the Clopper-Pearson intervals and of the epsilon lower bound.",
)
@click.option(
    "--split-panel",
    is_flag=True,
    help="--nonmembers is a panel: half of it becomes the non-members, the other half the reference.",
)
@options.as_json
@_fail_cleanly
def attack(original, releases, nonmembers, reference, attacks, seed_split, delta, confidence, split_panel, as_json):
    """Membership inference against releases of ORIGINAL: ROC, AUC, TPR at FPR 0.1%/1%/5% and an empirical
    epsilon lower bound per attack, thresholds set on calibration halves and measured on evaluation halves.

    Repeat --release for several release seeds (an audit wants >= 5). --reference: public genotypes for the
    likelihood-ratio test and the classifier."""
    from genoshare.evaluate.attacks import attack_files

    report = attack_files(
        original,
        list(releases),
        nonmembers,
        reference=reference,
        attacks=attacks,
        seed_split=seed_split,
        delta=delta,
        confidence=confidence,
        split_panel=split_panel,
    )
    click.echo(json.dumps(report, indent=2) if as_json else _text(report))
