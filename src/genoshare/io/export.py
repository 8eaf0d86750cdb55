"""Exports of a released VCF Zarr store, written into the release's temporary directory so a
failed export leaves no release behind: PLINK 1 binary and bgzipped VCF through vcztools
(io/vcz.py), and the CSV matrix layout."""

from __future__ import annotations

from pathlib import Path

from genoshare.io.csvmatrix import write_matrix
from genoshare.io.vcz import export_plink, export_vcf, open_vcz, read_dosage


def export_csv(store: Path, stem: Path) -> Path:
    """The CSV matrix layout (one row per individual). Holds the n x m matrix in memory:
    meant for cohorts that fit comfortably, as the layout itself is."""
    info = open_vcz(store)
    out = Path(f"{stem}.csv.gz")
    write_matrix(out, info.sample_ids, list(info.variant_id), read_dosage(info, 0, info.n_variants))
    return out


def export(store: Path, outdir: Path, kinds, stem: str = "release", fam_phenotype=None) -> None:
    """fam_phenotype: PLINK codes (1/2/-9) for the .fam's column 6, in sample order; None leaves -9."""
    writers = {
        "plink": lambda: export_plink(store, outdir / stem, phenotype=fam_phenotype),
        "vcf": lambda: export_vcf(store, outdir / f"{stem}.vcf.gz"),
        "csv": lambda: export_csv(store, outdir / stem),
    }
    for kind in kinds:
        writers[kind]()
