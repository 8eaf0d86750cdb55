"""Checks of a release's output location and of the ids its exports must carry, made before any genotype work
(issue 15 item 7): a release that can only fail at the end must fail at the start, before the ledger is touched."""

from __future__ import annotations

import re
from pathlib import Path

from genoshare.errors import InputError

_WHITESPACE = re.compile(r"\s")


def _resolved(path) -> Path:
    return Path(path).expanduser().resolve()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_location(out, *inputs) -> None:
    """Refuse (one line naming OUT) an output directory that is an input, lies inside an input store or
    directory, or contains an input (``--overwrite`` would delete it). ``inputs``: paths, None ignored."""
    o = _resolved(out)
    for p in inputs:
        if p is None:
            continue
        i = _resolved(p)
        if o == i:
            raise InputError(out, f"the output directory is the input {p}; choose another output path")
        if i.is_dir() and _inside(o, i):
            raise InputError(out, f"the output directory lies inside the input {p}; choose a path outside it")
        if _inside(i, o):
            raise InputError(out, f"the output directory contains the input {p}; choose another output path")


def _first_bad(ids, bad) -> str | None:
    return next((str(s) for s in ids if bad(str(s))), None)


def check_export_ids(exports, sample_ids, variant_ids, source) -> None:
    """Refuse (InputError naming ``source``) ids the requested exports cannot write, measured with vcztools:
    PLINK's .fam/.bim are whitespace-separated and vcztools quotes an id holding '"' (a corrupt .fam); the VCF
    export fails on non-ASCII variant ids, and VCF columns take no whitespace (IDs no ';' either); the CSV layout
    takes no leading/trailing blanks or line breaks."""
    exports = tuple(exports or ())
    space = [e for e in exports if e in ("plink", "vcf")]
    rules = []
    for what, ids in (("sample", sample_ids), ("variant", variant_ids)):
        if space:
            rules.append((what, ids, lambda s: bool(_WHITESPACE.search(s)), "contains whitespace", space))
        if "plink" in exports:
            rules.append((what, ids, lambda s: '"' in s, "contains '\"'", ["plink"]))
    if "vcf" in exports:
        rules.append(("variant", variant_ids, lambda s: not s.isascii(), "is not ASCII", ["vcf"]))
        rules.append(("variant", variant_ids, lambda s: ";" in s, "contains ';'", ["vcf"]))
    if "csv" in exports:
        rules.append(
            (
                "sample",
                sample_ids,
                lambda s: s != s.strip() or "\n" in s or "\r" in s,
                "has leading/trailing blanks or a line break",
                ["csv"],
            )
        )
    for what, ids, bad, why, kinds in rules:
        first = _first_bad(ids, bad)
        if first is not None:
            n = sum(bad(str(s)) for s in ids)
            raise InputError(
                source,
                f"{what} id {first[:40]!r} {why} ({n} id(s)), which the {'/'.join(kinds)} "
                f"export cannot write; rename them or leave out --export {','.join(kinds)}",
            )


def check_phenotype_match(plan, sample_ids) -> None:
    """A phenotype file (``--phenotypes``) whose ids match no cohort individual: refuse before any ledger or
    genotype work (it would release only missing values, and the release would still be charged)."""
    if plan is None or plan.table is None or not plan.released:
        return
    ids = set(map(str, sample_ids))
    if not any(t in ids for t in plan.table.ids):
        raise InputError(
            plan.table.path,
            f"no row matches a cohort sample id (file ids e.g. "
            f"{str(plan.table.ids[0])[:40]!r}, cohort e.g. "
            f"{str(next(iter(sample_ids), ''))[:40]!r}); check the id column",
        )


__all__ = ["check_output_location", "check_export_ids", "check_phenotype_match"]
