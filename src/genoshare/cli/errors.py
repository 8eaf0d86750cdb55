"""The one way every genoshare command reports a user-facing problem: one line, exit status 2."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading

import click

from genoshare.errors import GenoshareError

EXIT_ERROR = 2


def fail_cleanly(fn):
    """One line and exit status 2 for a GenoshareError or a file system that will not take a write; SIGTERM
    (``kill``, ``scancel``, Snakemake stopping a job) becomes SystemExit(143), so that the command's cleanup
    runs: temporary and work directories removed, a ledger reservation deleted, Dask workers stopped."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with _sigterm_as_exit():
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


@contextlib.contextmanager
def _sigterm_as_exit():
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the cleanup finish
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
