"""Is the reference panel really disjoint from the cohort? (issue 15 item 4)

The panel's genotypes are used in the clear (LD statistics, optionally frequencies): a panel that holds cohort
members, e.g. the cohort itself with renamed ids, undoes the protection. Sample ids prove nothing, so before any
genotype work the release compares genotypes: KING-robust phi (:func:`genoshare.privacy.kinship.cross_kinship`)
between every cohort and every panel individual, on a bounded subset of the aligned SNPs (at most
:data:`MAX_SNPS`, fewer for very large cohort x panel products but never below :data:`MIN_SNPS`, taken as
:data:`N_RUNS` runs of consecutive SNPs spread over the data: a few chunks to read, not the whole store).

- any pair with phi > :data:`DUPLICATE` (0.45; a duplicate or MZ twin has 0.5) refuses the release (one line
  naming the panel file);
- phi > :data:`kinship.FIRST_DEGREE` (0.177) gives a warning: a first-degree relative of a cohort member is in the
  panel;
- with fewer than :data:`MIN_SNPS` usable (panel-polymorphic) SNPs phi is too noisy to decide: the check says
  "inconclusive" (a warning, no refusal).

A duplicate must also be near-identical: genotypes differing at no more than :data:`MAX_DISCORDANCE` (2%) of the
SNPs both have called. On msprime simulations of little genome, unrelated pairs reach phi 0.448 by chance
(1,100 SNPs) but still differ at >= 5% of the SNPs.
Unrelated individuals of one population give phi around 0 (measured on the repository's msprime simulations and
the openSNP lactose cohort against its reference: see tests/test_hostile_input.py), far below 0.45.
The outcome (counts and the largest phi) goes to the owner's terminal (notify), never into the release manifest.
"""

from __future__ import annotations

import numpy as np

from genoshare.errors import InputError
from genoshare.privacy.kinship import FIRST_DEGREE, cross_kinship

DUPLICATE = 0.45
MIN_SNPS = 1_000
MAX_SNPS = 4_000
N_RUNS = 4
MAX_DISCORDANCE = 0.02  # of the SNPs both called: a duplicate differs only by genotyping errors
PAIR_SNP_BUDGET = 2e12  # cohort x panel x SNPs multiply-adds above which fewer SNPs (never below MIN_SNPS) are used


def subset(m: int, n_cohort: int = 1, n_panel: int = 1, max_snps: int = MAX_SNPS, runs: int = N_RUNS) -> np.ndarray:
    """Positions (sorted) among m aligned SNPs: all of them when m <= the limit, else ``runs`` runs of consecutive
    SNPs, evenly spaced."""
    limit = int(min(max_snps, max(MIN_SNPS, PAIR_SNP_BUDGET // max(1, n_cohort * n_panel))))
    if m <= limit:
        return np.arange(m, dtype=np.int64)
    length = limit // runs
    starts = (np.arange(runs, dtype=np.int64) * (m - length)) // max(1, runs - 1)
    return np.unique(np.concatenate([np.arange(s, s + length, dtype=np.int64) for s in starts]))


def decide(report: dict, panel_path, notify=None) -> dict:
    """Refuse (InputError naming the panel) for duplicates. Otherwise return the report with ``outcome`` (ok,
    related: a warning, inconclusive: a warning) and ``message``, the one line for the owner, which is passed to
    ``notify`` if given (the release prints it only once the release is under way, so that a later error stays
    the only line)."""
    phi = report["max_phi"]
    usable = report["usable_snps"]
    where = f"{report['n_snps']:,} SNPs, {usable:,} usable"
    phi_text = "n/a" if phi is None else f"{phi:.3f}"
    if usable < MIN_SNPS:
        report["outcome"] = "inconclusive"
        dup = f"; {report['n_duplicate_pairs']} pair(s) look like duplicates" if report["n_duplicate_pairs"] else ""
        report["message"] = (
            f"panel overlap: warning: inconclusive (only {usable:,} usable SNPs, need {MIN_SNPS:,} "
            f"for KING kinship; largest cohort-panel kinship {phi_text}{dup}): make sure the panel "
            "is disjoint from the cohort"
        )
    elif report["n_duplicate_pairs"]:
        a, b, p, disc = report["duplicate"]
        raise InputError(
            panel_path,
            f"reference panel holds cohort genotypes: {report['n_duplicate_pairs']} "
            f"cohort-panel pair(s) are duplicates or identical twins (e.g. cohort {a!r} and "
            f"panel {b!r}: KING kinship {p:.3f} > {DUPLICATE}, genotypes differ at "
            f"{100 * disc:.1f}% of {where}); the panel must be public or disjoint from the "
            "cohort",
        )
    elif report["n_related_pairs"]:
        report["outcome"] = "related"
        a, b = report["closest"]
        report["message"] = (
            f"panel overlap: warning: {report['n_related_pairs']} cohort-panel pair(s) look like "
            f"first-degree relatives (KING kinship > {FIRST_DEGREE}; largest {phi_text}, cohort "
            f"{a!r} and panel {b!r}; {where}): if they are, the panel reveals information about "
            "those cohort members (small or simulated data, spanning little genome, give such "
            "values by chance)"
        )
    else:
        report["outcome"] = "ok"
        report["message"] = f"panel overlap: none (largest cohort-panel kinship {phi_text}, {where})"
    if notify is not None:
        notify(report["message"])
    return report


def check_matrices(cohort_G: np.ndarray, panel_G: np.ndarray, cohort_ids, panel_ids, panel_path, notify=None) -> dict:
    """Cohort and panel as variant-major dosage matrices over the same variants (the CSV path)."""
    sel = subset(cohort_G.shape[0], cohort_G.shape[1], panel_G.shape[1])
    g = np.ascontiguousarray(cohort_G[sel], dtype=np.int8)
    report = cross_kinship(
        lambda s0, s1: g[:, s0:s1],
        cohort_ids,
        panel_G[sel],
        panel_ids,
        duplicate=DUPLICATE,
        related=FIRST_DEGREE,
        max_discordance=MAX_DISCORDANCE,
    )
    return decide(report, panel_path, notify)


def check_stores(cohort, panel, alignment, panel_path, notify=None) -> dict:
    """Cohort and panel VCF Zarr stores (:class:`genoshare.io.vcz.VczInfo`) and their
    :class:`genoshare.io.align.Alignment` (the store path): reads only the subset's rows."""
    import zarr

    from genoshare.kernels.noise import dosage_from_calls
    from genoshare.pipeline import _panel_rows

    sel = subset(alignment.n_kept, cohort.n_samples, panel.n_samples)
    if sel.size == 0:
        return decide(
            cross_kinship(
                lambda s0, s1: None, [], np.zeros((0, 0), np.int8), [], duplicate=DUPLICATE, related=FIRST_DEGREE
            ),
            panel_path,
            notify,
        )
    rows = alignment.cohort_index[sel]
    panel_G = _panel_rows(str(panel.path), alignment.panel_index[sel], alignment.panel_swap[sel])
    gt = zarr.open_array(f"{cohort.path}/call_genotype", mode="r")
    # runs of rows that are close together in the store: one slice read each
    breaks = np.flatnonzero(np.diff(rows) > max(1, gt.chunks[0])) + 1
    runs = np.split(rows, breaks)

    def read(s0, s1):
        parts = []
        for r in runs:
            lo, hi = int(r[0]), int(r[-1]) + 1
            calls = np.asarray(gt[lo:hi, s0:s1, :2])[r - lo]
            parts.append(dosage_from_calls(np.ascontiguousarray(calls)))
        return np.concatenate(parts)

    report = cross_kinship(
        read,
        cohort.sample_ids,
        panel_G,
        panel.sample_ids,
        duplicate=DUPLICATE,
        related=FIRST_DEGREE,
        max_discordance=MAX_DISCORDANCE,
    )
    return decide(report, panel_path, notify)
