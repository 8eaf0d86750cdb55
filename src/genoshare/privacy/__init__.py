"""Privacy accounting of a release: the XOR stage's true loss (pure and via its privacy loss distribution), the
allele-frequency sources (public, published, DP), phenotypes, their composition and the attack guarantee.

Submodules: :mod:`.accountant`, :mod:`.dp_af`, :mod:`.phenotype` (and the release ledger). The main functions are
re-exported lazily, so importing this package does not load dp-accounting.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "XorAccount": "accountant",
    "xor_account": "accountant",
    "default_delta": "accountant",
    "epsilon_pure": "accountant",
    "guarantee_table": "accountant",
    "tpr_bound": "accountant",
    "compose": "accountant",
    "privacy_object": "accountant",
    "dp_allele_counts": "dp_af",
    "gaussian_calibration": "dp_af",
    "derive_af_key": "dp_af",
    "af_public_entry": "dp_af",
    "af_published_entry": "dp_af",
    "af_dp_entry": "dp_af",
    "randomize_binary": "phenotype",
    "derive_phenotype_key": "phenotype",
    "phenotype_entry": "phenotype",
    "clear_statement": "phenotype",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
