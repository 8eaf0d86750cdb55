"""genoshare: differentially private release of cohort genotypes."""

__version__ = "0.1.0"
