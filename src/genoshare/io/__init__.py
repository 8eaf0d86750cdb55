"""Reading and writing genotype data (CSV matrix layout; see ``csvmatrix``)."""
