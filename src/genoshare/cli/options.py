"""Every option that two or more genoshare commands take, defined once (one name, type, range and help text) as a
module-level click decorator and stacked on the commands, as bio2zarr's cli.py does::

    @click.command()
    @options.reference
    @options.workers
    def ldstats(reference, workers): ...

Where commands differ only in whether the option is required or in its default, there is one decorator per
variant (``reference`` / ``reference_optional``), built from the same help text. Options only one command takes
stay on that command. tests/test_cli_options.py checks that an option name has one help text across commands.
"""

from __future__ import annotations

import click

POSITIVE_INT = click.IntRange(min=1)
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)
PROBABILITY_OPEN = click.FloatRange(0, 1, min_open=True, max_open=True)  # 0 < x < 1
DELTA_RANGE = click.FloatRange(0, 1, max_open=True)  # 0 <= x < 1

# -- inputs -------------------------------------------------------------------------------------------------------

_REFERENCE = "Public reference panel (CSV matrix, VCF Zarr, PLINK or VCF)."
reference = click.option("--reference", "reference", required=True, type=click.Path(), help=_REFERENCE)
reference_optional = click.option("--reference", "reference", default=None, type=click.Path(), help=_REFERENCE)

_ORIGINAL = "The original cohort the release was made from (CSV matrix or VCF Zarr)."
original = click.option("--original", "original", required=True, type=click.Path(), help=_ORIGINAL)
original_optional = click.option("--original", "original", default=None, type=click.Path(), help=_ORIGINAL)

_RELEASE = "A release directory made by 'genoshare release'."
release_dir = click.option("--release", "release_dir", required=True, type=click.Path(file_okay=False), help=_RELEASE)
releases = click.option(
    "--release", "releases", required=True, multiple=True, type=click.Path(file_okay=False), help=_RELEASE
)
releases_optional = click.option(
    "--release", "releases", multiple=True, type=click.Path(file_okay=False), help=_RELEASE
)

controls = click.option(
    "--controls",
    type=click.Path(),
    default=None,
    help="A separate control set the GWAS is run against: CSV matrix, VCF Zarr, release directory, PLINK or VCF "
    "(verify: the one the owner's table used).",
)
phenotype = click.option(
    "--phenotype",
    type=click.Path(dir_okay=False),
    default=None,
    help="Case/control status of the individuals: TSV with columns id, phenotype (1 control / 2 case as PLINK, "
    "or 0/1; -9, 0 or NA missing).",
)

# -- release settings ---------------------------------------------------------------------------------------------

_EPSILON = (
    "Total epsilon of the release's XOR noise (release: a comma list such as 1000,5000,20000 makes a sweep, "
    "one release per value in OUT/epsilon-E/; kinship: to print each group's cost)."
)


class EpsilonList(click.ParamType):
    """One positive number (exactly POSITIVE_FLOAT: a float) or a comma list of them (a tuple: a sweep)."""

    name = "float[,float...]"

    def convert(self, value, param, ctx):
        if isinstance(value, (float, int, tuple)) or "," not in str(value):
            if isinstance(value, tuple):
                return value
            return POSITIVE_FLOAT.convert(value, param, ctx)
        from genoshare.errors import GenoshareError
        from genoshare.sweep import parse_epsilons

        try:
            return parse_epsilons(value)
        except GenoshareError as exc:
            self.fail(str(exc), param, ctx)


epsilon = click.option("--epsilon", required=True, type=POSITIVE_FLOAT, help=_EPSILON)
epsilon_sweep = click.option("--epsilon", required=True, type=EpsilonList(), help=_EPSILON)
epsilon_optional = click.option("--epsilon", default=None, type=POSITIVE_FLOAT, help=_EPSILON)
delta = click.option(
    "--delta",
    type=DELTA_RANGE,
    default=0.0,
    show_default=True,
    help="Delta of the release (0 for the pure-epsilon XOR stage).",
)
zero_cell = click.option(
    "--zero-cell",
    type=click.Choice(["haldane", "provgen"]),
    default="haldane",
    show_default=True,
    help="Empty-cell handling of the reference log odds ratios.",
)
window = click.option(
    "--window",
    default="1000",
    show_default=True,
    help="LD window: W (pairs of SNPs at most W apart on one contig) or 'all' pairs (the paper).",
)
ambiguous = click.option(
    "--ambiguous",
    type=click.Choice(["drop", "keep"]),
    default="drop",
    show_default=True,
    help="Strand-ambiguous (A/T, C/G) SNPs between cohort and panel.",
)
unmatched = click.option(
    "--unmatched",
    type=click.Choice(["drop", "error"]),
    default="drop",
    show_default=True,
    help="Cohort SNPs absent from the panel.",
)

_SEED = (
    "Seed for reproducible output. A release made with a seed is a TEST release (keys derived from the seed; "
    "not for sharing); simulate: the simulation; verify --inject: the corruptions."
)
seed = click.option("--seed", type=int, default=None, help=_SEED)
seed_required = click.option("--seed", type=int, required=True, help=_SEED)
seed_zero = click.option("--seed", type=int, default=0, show_default=True, help=_SEED)

# -- compute: threads, chunks, Dask -------------------------------------------------------------------------------

threads = click.option(
    "--threads",
    type=POSITIVE_INT,
    default=None,
    help="Worker threads [default: all cores for a CSV release; min(4, CPUs) reading VCF Zarr chunks].",
)
sample_block = click.option(
    "--sample-block",
    type=POSITIVE_INT,
    default=None,
    help="Individuals per block. CSV release: of the flip split [default: 10000] (stores use --chunk-samples); "
    "kinship: per block row, memory ~60 x block x n bytes [default: from 1.5 GB].",
)
chunk_variants = click.option(
    "--chunk-variants",
    type=POSITIVE_INT,
    default=None,
    help="Variants per chunk when ingesting PLINK, VCF or CSV [default: bio2zarr's].",
)
chunk_samples = click.option(
    "--chunk-samples",
    type=POSITIVE_INT,
    default=None,
    help="Samples per chunk when ingesting PLINK, VCF or CSV [default: bio2zarr's].",
)
scheduler = click.option(
    "--scheduler",
    default="local",
    show_default=True,
    help="Dask scheduler for store inputs: local, slurm, or tcp://HOST:PORT.",
)
cluster_config = click.option(
    "--cluster-config",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML file with the 'slurm' section for --scheduler slurm.",
)
workers = click.option(
    "--workers",
    type=POSITIVE_INT,
    default=None,
    help="Worker processes of the local Dask cluster [default: one per CPU].",
)

# -- GWAS and verification ----------------------------------------------------------------------------------------

TESTS = click.Choice(["allelic", "genotypic", "dominant"])
_TEST = "Association test: allelic (2x2 allele chi-square), genotypic (2x3 genotype chi-square) or dominant."
gwas_test = click.option("--test", "test", type=TESTS, default="allelic", show_default=True, help=_TEST)
verify_test = click.option("--test", "test", type=TESTS, default="genotypic", show_default=True, help=_TEST)

_ALPHA = "Significance level of the GWAS (p < ALPHA) [verify: the table's]."
_TAU = "A SNP significant on the original is retained on a release at p < ALPHA / TAU [verify: the table's]."
alpha = click.option("--alpha", type=PROBABILITY_OPEN, default=0.05, show_default=True, help=_ALPHA)
alpha_from_table = click.option("--alpha", type=PROBABILITY_OPEN, default=None, help=_ALPHA)
_TAU_RANGE = click.FloatRange(0, 1, min_open=True)  # 0 < tau <= 1
tau = click.option("--tau", type=_TAU_RANGE, default=0.8, show_default=True, help=_TAU)
tau_from_table = click.option("--tau", type=_TAU_RANGE, default=None, help=_TAU)

# -- owner and output ---------------------------------------------------------------------------------------------

private_dir = click.option(
    "--private-dir",
    "private",
    type=click.Path(file_okay=False),
    default=None,
    help="Owner's private work directory holding the release ledger (ledger.sqlite) [default: "
    "$GENOSHARE_PRIVATE_DIR, else $XDG_DATA_HOME/genoshare, else ~/.local/share/genoshare].",
)
overwrite = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the output if it exists (release: OUT; retention-table: RELEASE/retention.json).",
)
as_json = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of text.")
