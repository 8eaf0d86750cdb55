"""`genoshare <verb>`: the click group and the console entry point. Each command lives in the module of its
group (release, data, evaluate, verify, attack, privacy, report): it parses, calls one function and prints.
Nothing else lives here."""

from __future__ import annotations

import contextlib
import sys

import click

from genoshare import __version__
from genoshare.cli.attack import attack
from genoshare.cli.audit import audit_model
from genoshare.cli.data import ingest, simulate
from genoshare.cli.errors import EXIT_ERROR
from genoshare.cli.evaluate import compare, evaluate
from genoshare.cli.privacy import COMMANDS as PRIVACY_COMMANDS
from genoshare.cli.release import ldstats, release
from genoshare.cli.report import report
from genoshare.cli.verify import COMMANDS as VERIFY_COMMANDS


class _Genoshare(click.Group):
    """The genoshare group: a usage error (a missing option, a value out of its range, an unknown command) is one
    line on stderr, ``genoshare: error: ...``, with exit status 2, like every other genoshare error."""

    def parse_args(self, ctx, args):
        with _one_line_usage_errors():
            return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with _one_line_usage_errors():
            return super().invoke(ctx)


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2: a bare group's help, exit 2


@contextlib.contextmanager
def _one_line_usage_errors():
    try:
        yield
    except _NO_ARGS_IS_HELP:
        raise  # a bare group prints its help
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
        click.echo(f"genoshare: error: {' '.join(exc.format_message().split())}{where}", err=True)
        sys.exit(EXIT_ERROR)


@click.group(cls=_Genoshare, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genoshare")
def main():
    """Share a cohort's genotypes under differential privacy and measure what it costs."""


for _command in (
    release,
    ldstats,
    ingest,
    evaluate,
    simulate,
    compare,
    *VERIFY_COMMANDS,
    attack,
    audit_model,
    *PRIVACY_COMMANDS,
    report,
):
    main.add_command(_command)


def run() -> None:
    """The console entry point: ``main`` (click exits through SystemExit), then leave without the interpreter's
    teardown. Finalising the loaded numba/llvmlite, Dask and SciPy state takes ~0.6 s after a release (measured;
    no Python frames involved), a fixed cost on every command. Exit handlers run and output is flushed first."""
    import atexit
    import os

    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
