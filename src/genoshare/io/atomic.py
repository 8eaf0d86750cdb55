"""Files that appear complete or not at all: written under a temporary sibling name, renamed when done."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genoshare.errors import InputError


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


# ------------------------------------------------------------------------------------------------------------------
# the output directory: checked up front, and file-system failures while writing it

#: errno values that mean "this file system will not take the write" (full, quota, read-only, permissions, ...):
#: the user can act on them, so they are reported as one line naming the output, not as a traceback.
FILESYSTEM_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EFBIG,
        errno.EIO,
        errno.ENAMETOOLONG,
        errno.EMLINK,
        errno.ENOTDIR,
        errno.EISDIR,
    }
)


def filesystem_error(exc: BaseException | None) -> OSError | None:
    """The first OSError with a :data:`FILESYSTEM_ERRNOS` errno in ``exc``, its causes and contexts (and the
    members of an exception group), or None. Dask re-raises a worker's exception with its errno intact; zarr and
    numcodecs sometimes wrap it, hence the walk."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in FILESYSTEM_ERRNOS:
            return e
        todo.extend([e.__cause__, e.__context__, *getattr(e, "exceptions", ())])
    return None


def write_failure(out, err: OSError, what: str = "cannot write the output", inside=None) -> InputError:
    """One line naming ``out``: ``OUT: cannot write the output: No space left on device``. With ``inside`` (the
    directory being written), an error about a file elsewhere (an input that cannot be read) names that file."""
    problem = err.strerror or os.strerror(err.errno)
    if inside is not None and err.filename and not isinstance(err.filename, int):
        f = Path(os.fsdecode(err.filename)).absolute()
        if not f.is_relative_to(Path(inside).absolute()):
            return InputError(f, problem)
    return InputError(out, f"{what}: {problem}")


@contextmanager
def filesystem_errors_as(out, what: str = "cannot write the output", inside=None) -> Iterator[None]:
    """Turn a file-system failure inside the block into :func:`write_failure` naming ``out``, and an InputError
    about a path inside the directory ``inside`` (a hidden work directory) into one about ``out``; other
    exceptions pass through unchanged."""
    try:
        yield
    except InputError as exc:
        if inside is not None and Path(exc.path).absolute().is_relative_to(Path(inside).absolute()):
            err = filesystem_error(exc)
            raise (
                write_failure(out, err, what, inside) if err is not None else InputError(out, f"{what}: {exc.problem}")
            ) from exc
        raise
    except Exception as exc:
        err = filesystem_error(exc)
        if err is None:
            raise
        raise write_failure(out, err, what, inside) from exc


def check_output(out, overwrite: bool = False, notify=None) -> Path:
    """Check before any work that ``out`` can be created: it does not exist (or ``overwrite``), its directory
    exists and takes a new directory (a real probe: ``os.access`` says yes to root on a read-only file system).
    Removes hidden work/temporary directories that killed runs left there (:mod:`genoshare.io.workdir`).
    Returns the parent directory. Raises InputError(out, ...)."""
    from genoshare.io.workdir import make_hidden_dir, remove_stale

    out = Path(out)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise InputError(out, "output already exists; choose another path or remove it")
        if not out.is_dir() or out.is_symlink():
            raise InputError(out, "output exists and is not a directory; refusing to replace it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise InputError(out, f"cannot create output: directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError(out, f"cannot create output: {parent} is not a directory")
    remove_stale(parent, notify)
    try:
        os.rmdir(make_hidden_dir(out, "tmp"))
    except OSError as e:
        raise InputError(out, f"cannot create output in {parent}: {e.strerror or e}") from None
    return parent
