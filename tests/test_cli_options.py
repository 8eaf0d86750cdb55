"""The CLI's shared options (genoshare/cli/options.py): one help text per option name across commands, ranges
enforced by click before any work, usage errors as one line with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import click
import pytest
from click.testing import CliRunner

from genoshare.cli import main

GENOSHARE = [sys.executable, "-m", "genoshare.cli"]

# Same name, a different option: each command writes its own kind of --out (its help says which); compare's
# --release takes DIR EVALUATION pairs; simulate's --cases/--controls are counts, not genotype files; report's
# --attacks are attack JSON files (attack's: which attacks to run) and its --budget is shown, not enforced;
# audit-model's --phenotype is any phenotype table (binary or quantitative, a column chosen by --phenotype-column);
# release's --epsilon also takes a comma list (a sweep), kinship's is one number.
DIFFERENT_OPTION = {
    "--out": None,
    "--release": {"compare"},
    "--cases": {"simulate"},
    "--controls": {"simulate"},
    "--attacks": {"report"},
    "--budget": {"report"},
    "--phenotype": {"audit-model"},
    "--epsilon": {"release"},
}


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path + " ")
        else:
            yield path, cmd


def _shared_options() -> dict[str, list[tuple[str, click.Option]]]:
    by_name = defaultdict(list)
    for path, cmd in _commands(main):
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.name == "help":
                continue
            for opt in p.opts:
                exempt = DIFFERENT_OPTION.get(opt, set())
                if exempt is None or path in exempt:
                    continue
                by_name[opt].append((path, p))
    return {k: v for k, v in by_name.items() if len(v) > 1}


def test_walk_sees_every_command():
    paths = [p for p, _ in _commands(main)]
    assert {"release", "ldstats", "ingest", "verify", "attack", "ledger list", "ledger cancel", "kinship"} <= set(paths)
    assert len(paths) == len(set(paths)) == 17


def test_an_option_has_one_help_text_and_one_type_across_commands():
    shared = _shared_options()
    # the options issue 10 found declared several times with different help are all shared now
    for name in [
        "--scheduler",
        "--workers",
        "--chunk-variants",
        "--chunk-samples",
        "--threads",
        "--controls",
        "--private-dir",
        "--seed",
        "--reference",
        "--phenotype",
        "--json",
        "--zero-cell",
        "--window",
    ]:
        assert name in shared, name
    for name, uses in shared.items():
        helps = {p.help for _, p in uses}
        assert len(helps) == 1, (name, {path: p.help for path, p in uses})
        assert next(iter(helps)), f"{name} has no help text"
        types = {repr(p.type.to_info_dict()) for _, p in uses}
        assert len(types) == 1, (name, {path: p.type.to_info_dict() for path, p in uses})


def test_the_exemptions_are_still_different_options():
    """An exemption that stopped being needed must go: compare's --release and simulate's counts differ in type."""
    cmds = dict(_commands(main))

    def opt(path, name):
        return next(p for p in cmds[path].params if name in p.opts)

    assert opt("compare", "--release").nargs == 2 and opt("verify", "--release").nargs == 1
    assert opt("release", "--epsilon").type.convert("5,7", None, None) == (5.0, 7.0)
    with pytest.raises(click.BadParameter):
        opt("kinship", "--epsilon").type.convert("5,7", None, None)
    for name in ("--cases", "--controls"):
        assert isinstance(opt("simulate", name).type, click.IntRange)
        assert isinstance(opt("gwas", name).type, click.Path)
    assert len({opt(p, "--out").help for p in cmds if any("--out" in q.opts for q in cmds[p].params)}) > 1


RELEASE = ["release", "c.csv", "--reference", "p.csv", "--epsilon", "1", "--out", "o"]
LDSTATS = ["ldstats", "c.vcz", "--reference", "p.vcz", "--out", "ld.npz"]
RETENTION = ["retention-table", "--original", "c.csv", "--reference", "p.csv", "--release", "r"]


@pytest.mark.parametrize(
    "command, option, value",
    [
        *[(c, "--workers", v) for c in (RELEASE, LDSTATS, RETENTION) for v in ("0", "-2")],
        *[(c, "--threads", "0") for c in (RELEASE, RETENTION)],
        *[(c, "--chunk-variants", "0") for c in (RELEASE, LDSTATS)],
        (["ingest", "x.bed", "--out", "o"], "--chunk-samples", "0"),
        (RELEASE, "--budget", "0"),
        (RELEASE, "--epsilon", "-3"),
        (RELEASE, "--sample-block", "0"),
        (["kinship", "c.csv"], "--sample-block", "0"),
        (["kinship", "c.csv"], "--delta", "1"),
        ([*RETENTION[:-2], "--release", "r"], "-k", "1"),
    ],
)
def test_out_of_range_values_are_refused_by_click(command, option, value):
    res = CliRunner().invoke(main, [*command, option, value], prog_name="genoshare", catch_exceptions=False)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genoshare: error: Invalid value for"), res.stderr
    assert option in lines[0] and f"'genoshare {command[0]} -h'" in lines[0]


def test_workers_0_as_a_user_meets_it(tmp_path):
    """Through the console entry point (run()): one line, exit 2, refused before any file is looked at."""
    out = tmp_path / "rel"
    p = subprocess.run(
        [
            *GENOSHARE,
            "release",
            str(tmp_path / "missing.vcz"),
            "--reference",
            str(tmp_path / "missing-panel.vcz"),
            "--epsilon",
            "5",
            "--out",
            str(out),
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        "genoshare: error: Invalid value for '--workers': 0 is not in the range x>=1. "
        "(see 'python -m genoshare.cli release -h')"
    ], p.stderr
    assert p.stdout == "" and not out.exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["release", "c.csv", "--epsilon", "1", "--out", "o"], ["Missing option '--reference'"]),
        (["bogus"], ["No such command 'bogus'"]),
        (["ledger", "list", "--bogus"], ["No such option '--bogus'", "'genoshare ledger list -h'"]),
        (["attack", "--original", "c", "--release", "r", "--nonmembers", "n", "--confidence", "1.5"], ["--confidence"]),
        (["verify", "--release", "r", "--tau", "0"], ["--tau"]),
        (
            [
                "simulate",
                "--cases",
                "0",
                "--controls",
                "1",
                "--panel",
                "1",
                "--variants",
                "1",
                "--seed",
                "1",
                "--out",
                "o",
            ],
            ["--cases"],
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, words):
    res = CliRunner().invoke(main, args, prog_name="genoshare", catch_exceptions=False)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genoshare: error: "), res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_help_still_works_and_a_bare_group_prints_its_help():
    assert CliRunner().invoke(main, ["release", "-h"]).exit_code == 0
    res = CliRunner().invoke(main, ["ledger"])
    assert "Usage:" in res.output and "list" in res.output and "genoshare: error" not in res.output
