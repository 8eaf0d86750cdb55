"""External command-line tools the tests run for real (PLINK, plink2, bcftools, bgzip/tabix).

`.ci/run` installs every one of them, so under CI (env CI set) a missing tool is a failure, never a skip; on a
developer machine without the Debian package the test skips with the package to install.
"""

from __future__ import annotations

import os
import shutil

import pytest

DEBIAN_PACKAGE = {
    "plink1.9": "plink1.9",
    "plink": "plink1.9",
    "plink2": "plink2",
    "bcftools": "bcftools",
    "bgzip": "tabix",
    "tabix": "tabix",
    "chromium": "chromium",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(*names: str) -> str:
    """Path of the first of ``names`` on PATH; fail under CI, skip elsewhere, when none is installed."""
    for name in names:
        exe = shutil.which(name)
        if exe is not None:
            return exe
    package = DEBIAN_PACKAGE.get(names[0], names[0])
    msg = f"{names[0]} is not installed (Debian package {package}; .ci/run installs it)"
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)
