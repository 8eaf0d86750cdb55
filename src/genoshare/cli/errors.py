"""The one way every genoshare command reports a user-facing problem: one line, exit status 2."""

from __future__ import annotations

import functools
import sys

import click

from genoshare.errors import GenoshareError

EXIT_ERROR = 2


def fail_cleanly(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GenoshareError as exc:
            click.echo(f"genoshare: error: {' '.join(str(exc).split())}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper
