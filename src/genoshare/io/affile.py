"""Public allele-frequency files (``--af-source public:FILE``).

A tab-separated file with a header holding at least the columns ``id`` (the SNP id as in
the cohort) and ``af`` (ALT allele frequency in [0, 1]). SNPs absent from the file keep
the frequency the noise left them (no restoration) and are counted in the manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genoshare.errors import InputError


def read_af_tsv(path, variant_ids: list[str]) -> np.ndarray:
    """ALT frequencies aligned to ``variant_ids``; NaN where the file has none."""
    path = Path(path)
    try:
        df = pd.read_csv(path, sep="\t", dtype={"id": str}, comment="#")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(path, f"not a readable TSV ({str(exc).splitlines()[0]})") from None
    missing_cols = {"id", "af"} - set(df.columns)
    if missing_cols:
        raise InputError(path, f"missing column(s) {', '.join(sorted(missing_cols))}; need a header with id and af")
    af = pd.to_numeric(df["af"], errors="coerce")
    bad = af.isna() | (af < 0) | (af > 1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(path, f"row {row + 2}: af {df['af'].iloc[row]!r} is not a number in [0, 1]")
    dup = df["id"].duplicated()
    if dup.any():
        raise InputError(path, f"duplicate SNP id {df['id'][dup].iloc[0]!r}")
    lookup = pd.Series(af.to_numpy(dtype=np.float64), index=df["id"].to_numpy())
    out = lookup.reindex(pd.Index(variant_ids)).to_numpy(dtype=np.float64)
    if np.isnan(out).all():
        raise InputError(path, "none of the cohort's SNP ids appear in the file")
    return out
