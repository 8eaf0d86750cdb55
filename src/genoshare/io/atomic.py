"""Files that appear complete or not at all: written under a temporary sibling name, renamed when done."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same directory, so the rename is atomic); when the block succeeds
    it is renamed to ``path``, on any exception it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
