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
            _fail(str(exc))
        except Exception as exc:
            # a file system that will not take a write (full, read-only, permissions) outside the places that
            # name their output themselves (genoshare.io.atomic): still one line, naming the file
            from genoshare.io.atomic import filesystem_error

            err = filesystem_error(exc)
            if err is None:
                raise
            _fail(f"{err.filename}: {err.strerror}" if err.filename else str(err.strerror or err))

    return wrapper


def _fail(message: str) -> None:
    click.echo(f"genoshare: error: {' '.join(message.split())}", err=True)
    sys.exit(EXIT_ERROR)
