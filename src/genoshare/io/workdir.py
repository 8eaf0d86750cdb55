"""Hidden directories beside a release output: the work directory (ingested copies of the private cohort) and the
temporary release directory that is renamed into place.

Both are named ``.<out name>.<kind>-<host>-<pid>-<random>`` and created owner-only (0700), so that a run killed
with SIGKILL (no ``finally`` runs) leaves something the next run can recognise as its own kind and as stale: the
next release or ingest into the same directory removes every such directory whose host is this host and whose
process no longer exists (:func:`remove_stale`). Directories of live processes, of other hosts (a shared file
system) and anything not named this way are never touched.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from pathlib import Path

KINDS = ("work", "tmp", "old")
_NAME = re.compile(
    r"^\.(?P<out>.+)\.(?P<kind>work|tmp|old)-(?P<host>[A-Za-z0-9_.-]+?)-(?P<pid>\d+)-(?P<rand>[0-9a-f]{8})$"
)


def host() -> str:
    """This host's name as it appears in hidden directory names (letters, digits, '.', '_', '-')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname() or "localhost").strip("-") or "localhost"


def hidden_name(out, kind: str) -> str:
    """``.<out name>.<kind>-<host>-<pid>-<random>``: the name of a hidden sibling of ``out``."""
    if kind not in KINDS:
        raise ValueError(kind)
    return f".{Path(out).name}.{kind}-{host()}-{os.getpid()}-{secrets.token_hex(4)}"


def parse_hidden(name: str) -> dict | None:
    """{out, kind, host, pid} of a hidden sibling's name, or None if it is not one."""
    m = _NAME.match(name)
    if m is None:
        return None
    return {"out": m["out"], "kind": m["kind"], "host": m["host"], "pid": int(m["pid"])}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as alive; so does a recycled pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_dirs(parent) -> list[Path]:
    """Hidden work/temporary directories in ``parent`` left by dead processes of this host."""
    parent = Path(parent)
    me = host()
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    out = []
    for entry in entries:
        info = parse_hidden(entry.name)
        if info is None or info["host"] != me or info["pid"] == os.getpid() or pid_alive(info["pid"]):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                out.append(Path(entry.path))
        except OSError:
            continue
    return sorted(out)


def remove_stale(parent, notify=None) -> list[Path]:
    """Remove :func:`stale_dirs` of ``parent``; returns what was removed (``notify`` gets one line each)."""
    removed = []
    for d in stale_dirs(parent):
        shutil.rmtree(d, ignore_errors=True)
        if not d.exists():
            removed.append(d)
            if notify is not None:
                notify(f"removed {d}, left by a killed run (process {parse_hidden(d.name)['pid']})")
    return removed


def make_hidden_dir(out, kind: str) -> Path:
    """Create the hidden sibling directory of ``out`` (mode 0700, whatever the umask) and return it."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    d = parent / hidden_name(out, kind)
    os.mkdir(d, 0o700)
    os.chmod(d, 0o700)
    return d


def work_dir(out, notify=None) -> Path:
    """A new private work directory beside ``out`` (in the system's temporary directory if ``out``'s directory
    does not exist), after removing stale ones there. Raises InputError(out, ...) when it cannot be created."""
    import tempfile

    from genoshare.errors import InputError

    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        parent = Path(tempfile.gettempdir())
    remove_stale(parent, notify)
    try:
        return make_hidden_dir(parent / out.name, "work")
    except OSError as e:
        raise InputError(out, f"cannot create a work directory in {parent}: {e.strerror or e}") from None


def remove_own(out, kinds=("tmp",)) -> None:
    """Remove this process's hidden ``kinds`` siblings of ``out``: called once the Dask workers are stopped, since
    a failed release's tasks still running on them can recreate files in the temporary directory after its
    first removal (a full tmpfs still takes new directories and empty files)."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    prefix = f".{out.name}."
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        info = parse_hidden(entry.name)
        if (
            info
            and info["kind"] in kinds
            and info["out"] == out.name
            and info["host"] == host()
            and info["pid"] == os.getpid()
        ):
            shutil.rmtree(entry.path, ignore_errors=True)
