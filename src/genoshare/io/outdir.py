"""Atomic output directories: build in a hidden sibling, rename when complete.

A failed or interrupted run leaves no DIR behind (only, after a hard kill, a hidden
``.DIR.tmp-*`` sibling that the next run ignores).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

from genoshare.errors import GenoshareError


@contextlib.contextmanager
def atomic_directory(out, overwrite: bool = False):
    out = Path(out)
    if out.exists() and not overwrite:
        raise GenoshareError(f"{out}: output directory already exists (use --overwrite to replace it)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise GenoshareError(f"{out}: parent directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GenoshareError(f"{out}: parent directory {parent} is not writable")
    tmp = parent / f".{out.name}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir(mode=0o755)
    os.chmod(tmp, 0o755)  # not group/world writable whatever the umask
    try:
        yield tmp
        for f in tmp.rglob("*"):
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
        if out.exists():
            old = parent / f".{out.name}.old-{secrets.token_hex(6)}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
