"""One table across releases: what each release cost in privacy and in utility.

Each row joins a release directory's ``manifest.json`` (epsilons, calibration, allele-frequency
source, ...) with the JSON that ``genoshare evaluate`` printed for it (point, sample, mean and
variance error). Rows keep the order they are given in. The table is written as TSV (every
number at full precision) and, optionally, as a Markdown table (rounded, for reading).

    python -m genoshare.report.compare --release DIR EVALUATION.json [--release ...] \
        --out comparison.tsv [--markdown comparison.md]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from genoshare.errors import GenoshareError, InputError

MANIFEST_FILE = "manifest.json"

# (column, where in the manifest) in table order; evaluation metrics follow.
MANIFEST_COLUMNS = (
    ("cohort", ("inputs", "cohort", "name")),  # manifests before issue 15 had inputs.cohort.path
    ("reference", ("inputs", "reference", "path")),
    ("n_samples", ("n_samples",)),
    ("n_variants", ("n_variants",)),
    ("epsilon_requested", ("epsilon_requested",)),
    ("epsilon_xor", ("epsilon_xor",)),
    ("epsilon_nominal", ("epsilon_nominal",)),
    ("calibration", ("calibration",)),
    ("zero_cell", ("zero_cell",)),
    ("window", ("window",)),
    ("af_source", ("af_source", "kind")),
    ("flips", ("flips", "total")),
    ("test_release", ("reproducible_test_release",)),
)
METRIC_ORDER = ("point_error", "sample_error", "mean_error", "variance_error")


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, f"no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"{what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"{what} is not a JSON object")
    return data


def _get(data: dict, keys: tuple[str, ...]):
    for k in keys:
        if not isinstance(data, dict) or k not in data:
            return None
        data = data[k]
    return data


def release_row(release_dir, evaluation) -> dict:
    """One table row: the release's name (its directory name), manifest fields, evaluation metrics."""
    release_dir, evaluation = Path(release_dir), Path(evaluation)
    if not release_dir.is_dir():
        raise InputError(release_dir, "not a release directory")
    manifest = _read_json(release_dir / MANIFEST_FILE, "release manifest")
    metrics = _read_json(evaluation, "evaluation")
    row = {"release": release_dir.name}
    for column, keys in MANIFEST_COLUMNS:
        value = _get(manifest, keys)
        if column == "cohort" and value is None:
            value = _get(manifest, ("inputs", "cohort", "path"))
        if column in ("cohort", "reference") and value is not None:
            value = Path(str(value)).name
        row[column] = value
    names = [m for m in METRIC_ORDER if m in metrics] + sorted(set(metrics) - set(METRIC_ORDER))
    for name in names:
        value = metrics[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InputError(evaluation, f"metric {name!r} is not a number")
        row[name] = value
    return row


def compare(pairs) -> list[dict]:
    """Rows for (release_dir, evaluation_json) pairs, in the given order; names must be unique."""
    rows = [release_row(d, e) for d, e in pairs]
    if not rows:
        raise GenoshareError("compare: give at least one --release DIR EVALUATION")
    seen: dict[str, str] = {}
    for (d, _), row in zip(pairs, rows):
        if row["release"] in seen:
            raise GenoshareError(
                f"compare: two releases are named {row['release']!r} ({seen[row['release']]} "
                f"and {d}); release directory names must be unique"
            )
        seen[row["release"]] = str(d)
    return rows


def _columns(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols.extend(c for c in row if c not in cols)
    return cols


def _tsv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value).replace("\t", " ").replace("\n", " ")


def _md_cell(column: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if column.endswith("_error"):
            return f"{value:.4f}"
        return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def to_tsv(rows: list[dict]) -> str:
    cols = _columns(rows)
    lines = ["\t".join(cols)] + ["\t".join(_tsv_cell(r.get(c)) for c in cols) for r in rows]
    return "\n".join(lines) + "\n"


def to_markdown(rows: list[dict]) -> str:
    cols = _columns(rows)
    numeric = {
        c
        for c in cols
        if all(
            isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows if r.get(c) is not None
        )
    }
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("--:" if c in numeric else "---" for c in cols) + "|"]
    lines += ["| " + " | ".join(_md_cell(c, r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_comparison(pairs, out, markdown=None) -> list[dict]:
    """Build the table and write it as TSV to ``out`` (and Markdown to ``markdown``); returns the rows."""
    rows = compare(pairs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(to_tsv(rows))
    tmp.replace(out)
    if markdown is not None:
        markdown = Path(markdown)
        markdown.parent.mkdir(parents=True, exist_ok=True)
        tmp = markdown.with_name(f".{markdown.name}.tmp")
        tmp.write_text(to_markdown(rows))
        tmp.replace(markdown)
    return rows


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m genoshare.report.compare", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--release",
        nargs=2,
        action="append",
        metavar=("DIR", "EVALUATION"),
        default=[],
        help="a release directory and the JSON 'genoshare evaluate' printed for it (repeat)",
    )
    parser.add_argument("--out", required=True, help="TSV table to write")
    parser.add_argument("--markdown", default=None, help="also write the table as Markdown here")
    args = parser.parse_args(argv)
    try:
        rows = write_comparison(args.release, args.out, args.markdown)
    except GenoshareError as exc:
        print(f"genoshare: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    sys.stdout.write(to_markdown(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
