"""Benchmarks of genoshare: ``make bench`` (``python -m benchmarks.run``) runs them all."""
