"""Exports of a released VCF Zarr store: PLINK 1 binary and bgzipped VCF through vcztools
(plus bgzip/tabix from htslib), and the CSV matrix layout.

Each writer produces ``<stem>.<ext>`` files inside the release's temporary directory, so an
export that fails leaves no release behind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from genoshare.errors import GenoshareError
from genoshare.io.csvmatrix import write_matrix
from genoshare.io.vcz import open_vcz, read_dosage


def _run(cmd, what: str, **kw) -> None:
    proc = subprocess.run(cmd, capture_output=True, **kw)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GenoshareError(f"{what} failed: {err[-1] if err else f'exit status {proc.returncode}'}")


def _vcztools(*args) -> list[str]:
    return [sys.executable, "-m", "vcztools", *map(str, args)]


def export_plink(store: Path, stem: Path) -> list[Path]:
    """PLINK 1 .bed/.bim/.fam (A1 = ALT, A2 = REF)."""
    _run(_vcztools("view-plink", store, "-o", stem), "PLINK export (vcztools view-plink)")
    return [stem.with_suffix(s) for s in (".bed", ".bim", ".fam")]


def export_vcf(store: Path, stem: Path) -> list[Path]:
    """bgzipped VCF with a tabix index."""
    bgzip, tabix = shutil.which("bgzip"), shutil.which("tabix")
    if not bgzip or not tabix:
        raise GenoshareError("VCF export needs bgzip and tabix from htslib (Debian package 'tabix')")
    out = Path(f"{stem}.vcf.gz")
    with open(out, "wb") as fh:
        view = subprocess.Popen(_vcztools("view", "--no-version", store), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        zipper = subprocess.run([bgzip, "-c"], stdin=view.stdout, stdout=fh, stderr=subprocess.PIPE)
        view.stdout.close()
        err = view.stderr.read().decode(errors="replace").strip().splitlines()
        if view.wait() != 0:
            raise GenoshareError(f"VCF export (vcztools view) failed: {err[-1] if err else 'no message'}")
        if zipper.returncode != 0:
            raise GenoshareError("VCF export (bgzip) failed: " + zipper.stderr.decode(errors="replace").strip())
    _run([tabix, "-f", "-p", "vcf", str(out)], "VCF index (tabix)")
    return [out, Path(f"{out}.tbi")]


def export_csv(store: Path, stem: Path) -> list[Path]:
    """The CSV matrix layout (one row per individual). Holds the n x m matrix in memory:
    meant for cohorts that fit comfortably, as the layout itself is."""
    info = open_vcz(store)
    out = Path(f"{stem}.csv.gz")
    write_matrix(out, info.sample_ids, list(info.variant_id), read_dosage(info, 0, info.n_variants))
    return [out]
