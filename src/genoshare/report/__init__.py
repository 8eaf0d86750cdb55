"""Reports across releases (the comparison table of an epsilon sweep)."""
