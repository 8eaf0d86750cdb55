"""LD statistics files: computed once per (cohort site set, reference panel, window, zero-cell
rule) and reused by every release of an epsilon sweep (SPEC 2: they do not depend on epsilon).

An .npz holding T_jj, S+_j, S-_j, the panel's ALT frequencies at the sites, and JSON metadata
with F^2, the settings and a SHA-256 of the ordered site list, so a file computed for other
sites or settings is refused. Everything in it derives from the public panel and the cohort's
site list (public metadata), never from the cohort's genotypes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from genoshare import __version__
from genoshare.errors import InputError
from genoshare.io.atomic import atomic_file
from genoshare.mechanism.ldstats import LDStats

FORMAT = "genoshare-ldstats-1"


def sites_digest(*columns) -> str:
    """SHA-256 of an ordered site list given as parallel columns (ids, or contig/pos/ref/alt)."""
    h = hashlib.sha256()
    for row in zip(*columns):
        h.update("\t".join(map(str, row)).encode() + b"\n")
    return h.hexdigest()


def save_ldstats(path, stats: LDStats, panel_af: np.ndarray, sites: str, panel_sha256: str) -> Path:
    path = Path(path)
    meta = {
        "format": FORMAT,
        "version": __version__,
        "f2": stats.f2,
        "n_ref": stats.n_ref,
        "zero_cell": stats.zero_cell,
        "window": "all" if stats.window is None else stats.window,
        "n_variants": stats.n_variants,
        "sites_sha256": sites,
        "panel_sha256": panel_sha256,
    }
    try:
        with atomic_file(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                t_diag=stats.t_diag,
                s_pos=stats.s_pos,
                s_neg=stats.s_neg,
                panel_af=panel_af,
                meta=np.array(json.dumps(meta)),
            )
    except OSError as exc:
        raise InputError(path, f"cannot write LD statistics ({exc.strerror or exc})") from None
    return path


def load_ldstats(path, *, sites: str, zero_cell: str, window: int | None) -> tuple[LDStats, np.ndarray]:
    """Load and check that the file was computed for these sites and settings."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in ("t_diag", "s_pos", "s_neg", "panel_af")}
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a genoshare LD statistics file ({' '.join(str(exc).split())})") from None
    if meta.get("format") != FORMAT:
        raise InputError(path, "not a genoshare LD statistics file")
    want_window = "all" if window is None else window
    if meta["zero_cell"] != zero_cell or meta["window"] != want_window:
        raise InputError(
            path,
            f"computed with zero-cell {meta['zero_cell']} and window {meta['window']}, but this "
            f"release asks for zero-cell {zero_cell} and window {want_window}",
        )
    if meta["sites_sha256"] != sites:
        raise InputError(path, "computed for a different set of sites (cohort, panel or alignment policy differ)")
    stats = LDStats(
        t_diag=arrays["t_diag"],
        s_pos=arrays["s_pos"],
        s_neg=arrays["s_neg"],
        f2=float(meta["f2"]),
        n_ref=int(meta["n_ref"]),
        zero_cell=zero_cell,
        window=window,
    )
    return stats, arrays["panel_af"]
