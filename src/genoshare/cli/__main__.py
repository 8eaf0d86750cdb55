"""``python -m genoshare.cli``: the same as the ``genoshare`` console script."""

from genoshare.cli import run

run()
