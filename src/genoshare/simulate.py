"""Deterministic case/control cohort simulator with realistic linkage disequilibrium (msprime coalescent).

One coalescent simulation of a single panmictic population provides every individual, so the cohort, the reference
panel and the hold-out set are samples of the SAME population (what SPEC 2 and SPEC 6 need), and neighbouring SNPs
are in LD through the shared genealogy, not by construction.

Model
-----
- ``msprime.sim_ancestry``: ``cases + controls + panel + holdout`` diploid individuals, effective population size
  10,000, recombination rate 1e-8 per bp per generation, one contig (Hudson coalescent, discrete genome).
- ``msprime.sim_mutations``: rate 1.25e-8, ``BinaryMutationModel`` (every site is bi-allelic; REF = ancestral
  state 0, ALT = derived state 1). The genotype is the ALT-allele count, i.e. the sum of the two haplotypes (0/1/2).
- SNPs are kept if their minor allele frequency over ALL simulated individuals is >= ``maf_min``. The contig length
  is chosen from the neutral site-frequency spectrum (expected number of sites with derived count i is
  theta / i, theta = 4 Ne mu L) so that about 15% more than ``variants`` common SNPs arise; if fewer than
  ``variants`` do, the length is multiplied by 1.3 and the whole simulation is rerun (with seeds derived from
  ``seed`` and the attempt number, so this too is deterministic).
- Exactly ``variants`` SNPs are kept by EVEN THINNING in genome order: of K common SNPs, those with index
  floor(t * K / variants), t = 0..variants-1 (so the SNPs span the whole contig; LD between neighbours stays
  strong). Variant ids are ``1:<position>`` with 1-based positions (msprime position + 1), as in VCF.
- Phenotype (liability threshold model): ``n_causal`` causal SNPs are drawn without replacement among the kept SNPs
  with MAF >= 0.1 (among all kept SNPs if there are too few), effect sizes beta ~ N(0, 1) per ALT allele, then
  scaled so that the variance of the genetic liability over all simulated individuals is exactly
  ``heritability``; liability = genetic value (centred) + N(0, 1 - heritability).
- Ascertainment: the cohort is a fixed pool of ``cases + controls`` individuals; the ``cases`` of highest
  liability are the cases, the rest controls (a threshold at the pool's liability quantile). The hold-out set is
  ascertained the same way with the same case fraction (so membership attacks cannot separate members from
  non-members by the disease alone). The reference panel is an unascertained population sample.

Cost at benchmark size (cases = controls = 5,000, panel 1,000, holdout 10,000, 100,000 SNPs; 2 cores shared
with other jobs, so +-50%): coalescent and genotype extraction 118-167 s (msprime.sim_ancestry alone 41 s
uncontended on the 78 Mb contig; it grows faster than linearly with the contig length: 1.0 s at 1/10 of it, 8.5 s at
1/2), then per 10,000 x 100,000 set: CSV 32-57 s, VCZ 11-21 s, VCF (vcztools view | bgzip -l 3) 36-47 s, PLINK
3 s; all formats 326 s in total, 5.2 GB peak memory. ``formats=("vcz", "plink")`` and ``holdout=0`` is the quick route
to a 10,000 x 100,000 cohort.

Caveat: relatedness. A constant-size population of 10,000 is small next to the samples drawn from it (about 180
pairs of the 2,686 haplotypes of a 1,343-person simulation coalesce within the last generation), so there is
cryptic relatedness: on 28,396 SNPs the closest pair of individuals is at about half the median genotype distance,
and on a short (~1 Mb) contig a few pairs can be identical at every common SNP. A model with recent exponential
growth would remove most of it with the same LD (measured: closest pair at 0.57 instead of 0.34 of the median,
adjacent-SNP r^2 0.333 in both, 5 Mb, 600 individuals). Membership-inference results on these cohorts include
the effect of relatives in the hold-out set.

- Alleles: the binary model has no nucleotides, and PLINK reads an allele "0" as missing, so every kept SNP gets a
  REF/ALT nucleotide pair drawn from ``seed`` (independently of everything else): a transition (A/G or C/T, 1/3
  each, 2/3 in all) or a transversion (A/C, A/T, C/G, G/T, 1/12 each), in a random orientation; so ~1/6 of the
  SNPs are strand-ambiguous (A/T or C/G), as on real arrays. REF stays the ancestral allele, ALT the derived one
  that the genotypes count.

Outputs (in ``out_dir``; written to a temporary sibling directory and renamed, so there is never partial output)
-------------------------------------------------------------------------------------------------------------------
``formats`` (default ``("csv",)``) selects any of csv, vcf, plink, vcz; for each of cohort, panel and holdout:

- ``<name>.csv.gz`` (csv), ``<name>.vcz`` (vcz: VCF Zarr via :func:`genoshare.io.vcz.write_vcz`, chunks 1000 x
  10000), ``<name>.vcf.gz`` + ``.tbi`` (vcf: ``vcztools view --no-version | bgzip``, ``tabix -p vcf``),
  ``<name>.bed/.bim/.fam`` (plink: ``vcztools view-plink``; A1 = ALT, A2 = REF; the .fam carries the phenotype,
  1 control / 2 case, for cohort and holdout, -9 for the panel). VCF, PLINK and VCZ have contig "1", the 1-based
  positions, ids ``1:<pos>`` and the REF/ALT nucleotides; the CSV header ids are the same ``1:<pos>``.

- ``cohort.csv.gz``   cases + controls individuals, ids ``ind00001`` ... (neutral: the id does not reveal status)
- ``phenotype.tsv``   header ``id<TAB>phenotype``; PLINK convention: 1 = control, 2 = case; cohort file order
- ``panel.csv.gz``    reference panel, ids ``ref00001`` ...
- ``holdout.csv.gz``  hold-out individuals (never in cohort or panel), ids ``hold00001`` ...; omitted if holdout=0
- ``holdout_phenotype.tsv``  their phenotypes, same convention (omitted if holdout=0)
- ``causal.tsv``      header ``variant_id<TAB>effect<TAB>alt_freq``: effect per ALT allele on the liability scale
- ``simulation.json`` the parameters, derived quantities and package versions
All CSV files use the layout of :mod:`genoshare.io.csvmatrix` (header ``PATIENT_ID,<variant ids>``). The same
arguments and the same package versions give byte-identical files (gzip headers carry no time or file name; the
VCF header no vcztools version or command line; BGZF blocks no time stamp).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import time
from pathlib import Path

import numpy as np

from genoshare.errors import GenoshareError
from genoshare.io.csvmatrix import write_matrix

__all__ = ["simulate_cohort", "draw_alleles", "FORMATS", "POPULATION_SIZE", "RECOMBINATION_RATE", "MUTATION_RATE"]

POPULATION_SIZE = 10_000
RECOMBINATION_RATE = 1e-8
MUTATION_RATE = 1.25e-8
CAUSAL_MAF_MIN = 0.1
_LENGTH_MARGIN = 1.15  # aim for this many times the requested number of common SNPs
_ENLARGE = 1.3  # factor applied to the contig length when a simulation yields too few common SNPs
_MAX_ATTEMPTS = 8
_CHUNK_SITES = 4096
FORMATS = ("csv", "vcf", "plink", "vcz")
#: (REF, ALT) pairs before orientation and their probabilities: transitions 2/3, transversions 1/3
_ALLELE_PAIRS = (("A", "G"), ("C", "T"), ("A", "C"), ("A", "T"), ("C", "G"), ("G", "T"))
_ALLELE_PROBS = (1 / 3, 1 / 3, 1 / 12, 1 / 12, 1 / 12, 1 / 12)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise GenoshareError(message)


def _expected_common_per_bp(n_haplotypes: int, maf_min: float) -> float:
    """Expected number of sites per bp whose minor allele frequency is >= maf_min (neutral SFS, theta/i)."""
    i = np.arange(1, n_haplotypes)
    minor = np.minimum(i, n_haplotypes - i) / n_haplotypes
    harmonic = float(np.sum(1.0 / i[minor >= maf_min]))
    return 4 * POPULATION_SIZE * MUTATION_RATE * harmonic


def _msprime_seed(seed: int, *key: int) -> int:
    state = np.random.SeedSequence([seed, *key]).generate_state(1, dtype=np.uint32)[0]
    return int(state) % (2**32 - 2) + 1  # msprime wants 1 <= seed < 2**32


def _simulate_common_snps(n_individuals: int, sequence_length: int, maf_min: float, seed: int, attempt: int):
    """One coalescent + mutation simulation; return (positions, diploid genotypes (K, n) int8, n_sites)."""
    import msprime  # imported lazily: only the simulator needs it

    ts = msprime.sim_ancestry(
        samples=n_individuals,
        ploidy=2,
        population_size=POPULATION_SIZE,
        recombination_rate=RECOMBINATION_RATE,
        sequence_length=sequence_length,
        random_seed=_msprime_seed(seed, 1, attempt),
        record_provenance=False,
    )
    ts = msprime.sim_mutations(
        ts,
        rate=MUTATION_RATE,
        model=msprime.BinaryMutationModel(),
        discrete_genome=True,
        random_seed=_msprime_seed(seed, 2, attempt),
        record_provenance=False,
    )
    # haplotype order: individual 0 hap 0, individual 0 hap 1, individual 1 hap 0, ...
    hap_nodes = np.asarray(ts.individuals_nodes, dtype=np.int32).reshape(-1)
    n_hap = hap_nodes.size
    lo = math.ceil(maf_min * n_hap - 1e-9)  # minimum minor-allele count
    site_pos = ts.sites_position
    positions: list[np.ndarray] = []
    genos: list[np.ndarray] = []
    buf = np.empty((_CHUNK_SITES, n_hap), dtype=np.int8)
    ids = np.empty(_CHUNK_SITES, dtype=np.int64)
    k = 0

    def flush(k: int) -> None:
        block = buf[:k]
        count = block.sum(axis=1, dtype=np.int32)
        keep = np.minimum(count, n_hap - count) >= max(lo, 1)
        if keep.any():
            b = block[keep]
            genos.append(b[:, 0::2] + b[:, 1::2])
            positions.append(site_pos[ids[:k][keep]].astype(np.int64))

    for var in ts.variants(samples=hap_nodes, copy=False):
        if len(var.alleles) != 2:  # cannot happen with the binary model; kept for safety
            continue
        buf[k] = var.genotypes
        ids[k] = var.site.id
        k += 1
        if k == _CHUNK_SITES:
            flush(k)
            k = 0
    if k:
        flush(k)
    if genos:
        return np.concatenate(positions), np.concatenate(genos), ts.num_sites
    return np.empty(0, np.int64), np.empty((0, n_individuals), np.int8), ts.num_sites


def draw_alleles(n_sites: int, seed: int) -> np.ndarray:
    """(n_sites, 2) object array of REF/ALT nucleotides, deterministic in ``seed`` (see the module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    pairs = np.array(_ALLELE_PAIRS, dtype=object)
    out = pairs[rng.choice(len(_ALLELE_PAIRS), size=n_sites, p=_ALLELE_PROBS)]
    flip = rng.random(n_sites) < 0.5
    out[flip] = out[flip][:, ::-1]
    return out


def _parse_formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f for f in formats.replace(" ", "").split(",") if f]
    formats = tuple(dict.fromkeys(str(f).lower() for f in formats))
    _check(len(formats) > 0, "formats: choose at least one of " + ", ".join(FORMATS))
    unknown = [f for f in formats if f not in FORMATS]
    _check(not unknown, f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return formats


def _write_dataset(tmp: Path, name: str, ids, geno, pheno, sites: dict, formats, files: dict) -> None:
    """Write one individual set (cohort / panel / holdout) in every requested format; record the names."""
    from genoshare.io.vcz import export_plink, export_vcf, write_vcz

    entry = files.setdefault("formats", {}).setdefault(name, {})
    if "csv" in formats:
        write_matrix(tmp / f"{name}.csv.gz", ids, sites["variant_id"], geno)
        entry["csv"] = f"{name}.csv.gz"
    if not {"vcz", "vcf", "plink"} & set(formats):
        return
    store = tmp / f"{name}.vcz" if "vcz" in formats else tmp / f".{name}.scratch.vcz"
    write_vcz(store, geno, sample_ids=ids, **sites)
    if "vcz" in formats:
        entry["vcz"] = f"{name}.vcz"
    if "vcf" in formats:
        export_vcf(store, tmp / f"{name}.vcf.gz")
        entry["vcf"] = f"{name}.vcf.gz"
    if "plink" in formats:
        export_plink(store, tmp / name, phenotype=None if pheno is None else pheno.tolist())
        entry["plink"] = f"{name}.bed"
    if "vcz" not in formats:
        shutil.rmtree(store)


def _ids(prefix: str, n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _ascertain(liability: np.ndarray, n_cases: int) -> np.ndarray:
    """PLINK phenotype codes: 2 for the n_cases highest liabilities, 1 for the rest (ties broken by index)."""
    order = np.argsort(-liability, kind="stable")
    pheno = np.ones(liability.size, dtype=np.int8)
    pheno[order[:n_cases]] = 2
    return pheno


def _write_tsv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(str(x) for x in row) + "\n")


def _versions(formats=("csv",)) -> dict[str, str]:
    import msprime
    import tskit

    import genoshare

    versions = {
        "genoshare": genoshare.__version__,
        "msprime": msprime.__version__,
        "tskit": tskit.__version__,
        "numpy": np.__version__,
    }
    if set(formats) - {"csv"}:
        import numcodecs
        import vcztools
        import zarr

        versions.update(zarr=zarr.__version__, numcodecs=numcodecs.__version__, vcztools=vcztools.__version__)
    return versions


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists():
        _check(out_dir.is_dir(), f"{out_dir}: exists and is not a directory")
        _check(
            overwrite or not any(out_dir.iterdir()),
            f"{out_dir}: output directory already exists and is not empty; choose another or remove it",
        )


def simulate_cohort(
    out_dir,
    cases: int,
    controls: int,
    panel: int,
    variants: int,
    seed: int,
    holdout: int | None = None,
    n_causal: int = 10,
    heritability: float = 0.5,
    maf_min: float = 0.05,
    *,
    overwrite: bool = False,
    formats=("csv",),
) -> dict:
    """Simulate a case/control cohort, a reference panel and a hold-out set into ``out_dir``; see module docstring.

    ``holdout`` defaults to ``cases + controls``. ``formats``: any of "csv", "vcf", "plink", "vcz" (a sequence or
    a comma-separated string). Returns a summary dict (the content of simulation.json plus
    ``out_dir`` and ``seconds``). Raises GenoshareError for impossible requests.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    if holdout is None:
        holdout = cases + controls
    for name, v in (("cases", cases), ("controls", controls), ("panel", panel), ("variants", variants)):
        _check(isinstance(v, (int, np.integer)) and v >= 1, f"{name} must be a positive integer, got {v!r}")
    _check(isinstance(holdout, (int, np.integer)) and holdout >= 0, f"holdout must be >= 0, got {holdout!r}")
    _check(isinstance(seed, (int, np.integer)) and seed >= 0, f"seed must be a non-negative integer, got {seed!r}")
    _check(0 <= n_causal <= variants, f"n_causal must be between 0 and variants ({variants}), got {n_causal}")
    _check(0.0 <= heritability <= 1.0, f"heritability must be in [0, 1], got {heritability}")
    _check(0.0 <= maf_min < 0.5, f"maf_min must be in [0, 0.5), got {maf_min}")
    cases, controls, panel, variants, holdout, seed = map(int, (cases, controls, panel, variants, holdout, seed))
    formats = _parse_formats(formats)
    _prepare_out_dir(out_dir, overwrite)

    n_cohort = cases + controls
    n_total = n_cohort + panel + holdout
    n_hap = 2 * n_total
    _check(
        maf_min * n_hap <= n_hap / 2,
        f"maf_min {maf_min} is not achievable with {n_total} individuals",
    )

    # --- genotypes -----------------------------------------------------------------------------------------
    per_bp = _expected_common_per_bp(n_hap, maf_min)
    _check(per_bp > 0, f"no SNP can reach MAF {maf_min} with {n_total} individuals")
    length = max(10_000, int(math.ceil(variants * _LENGTH_MARGIN / per_bp)))
    attempts = 0
    while True:
        positions, geno, n_sites = _simulate_common_snps(n_total, length, maf_min, seed, attempts)
        attempts += 1
        if positions.size >= variants:
            break
        _check(
            attempts < _MAX_ATTEMPTS,
            f"could not obtain {variants} SNPs with MAF >= {maf_min} after {attempts} simulations "
            f"(last: {length} bp, {positions.size} common SNPs)",
        )
        length = int(math.ceil(length * _ENLARGE))
    n_common = positions.size
    keep = (np.arange(variants, dtype=np.int64) * n_common) // variants
    positions = positions[keep]
    geno = np.ascontiguousarray(geno[keep])  # (variants, n_total) variant-major, ALT counts
    variant_ids = [f"1:{p + 1}" for p in positions.tolist()]
    alleles = draw_alleles(variants, seed)
    alt_freq = geno.mean(axis=1, dtype=np.float64) / 2.0

    # --- phenotype ------------------------------------------------------------------------------------------
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    maf = np.minimum(alt_freq, 1.0 - alt_freq)
    candidates = np.flatnonzero(maf >= CAUSAL_MAF_MIN)
    if candidates.size < n_causal:
        candidates = np.arange(variants)
    causal = np.sort(rng.choice(candidates, size=n_causal, replace=False)) if n_causal else np.empty(0, np.int64)
    beta = rng.normal(0.0, 1.0, size=n_causal)
    genetic = beta @ geno[causal].astype(np.float64) if n_causal else np.zeros(n_total)
    sd = float(genetic.std())
    if sd > 0 and heritability > 0:
        scale = math.sqrt(heritability) / sd
    else:
        scale = 0.0
    beta = beta * scale
    genetic = (genetic - genetic.mean()) * scale
    liability = genetic + rng.normal(0.0, math.sqrt(1.0 - heritability), size=n_total)

    # individuals: [0, n_cohort) cohort, then panel, then hold-out (msprime samples are exchangeable)
    cohort_idx = slice(0, n_cohort)
    panel_idx = slice(n_cohort, n_cohort + panel)
    hold_idx = slice(n_cohort + panel, n_total)
    cohort_pheno = _ascertain(liability[cohort_idx], cases)
    hold_cases = int(round(holdout * cases / n_cohort))
    hold_pheno = _ascertain(liability[hold_idx], hold_cases)

    cohort_ids = _ids("ind", n_cohort)
    panel_ids = _ids("ref", panel)
    hold_ids = _ids("hold", holdout)

    summary = {
        "model": {
            "population_size": POPULATION_SIZE,
            "recombination_rate": RECOMBINATION_RATE,
            "mutation_rate": MUTATION_RATE,
            "mutation_model": "binary (REF = ancestral 0, ALT = derived 1)",
            "sequence_length": length,
            "simulations_run": attempts,
            "sites_simulated": int(n_sites),
            "common_snps": int(n_common),
            "snp_selection": "even thinning of the common SNPs in genome order",
            "variant_id": "1:<1-based position>",
            "alleles": "REF/ALT nucleotides drawn per SNP from the seed: transitions A/G, C/T (1/3 each), "
            "transversions A/C, A/T, C/G, G/T (1/12 each), random orientation",
            "strand_ambiguous_snps": int(sum(1 for r, a in alleles.tolist() if {r, a} in ({"A", "T"}, {"C", "G"}))),
        },
        "parameters": {
            "cases": cases,
            "controls": controls,
            "panel": panel,
            "holdout": holdout,
            "variants": variants,
            "seed": seed,
            "n_causal": int(n_causal),
            "heritability": float(heritability),
            "maf_min": float(maf_min),
            "formats": list(formats),
        },
        "phenotype": {
            "coding": "PLINK: 1 = control, 2 = case",
            "ascertainment": "cases = highest liability within the cohort pool (hold-out: same case fraction)",
            "holdout_cases": hold_cases,
            "holdout_controls": holdout - hold_cases,
            "causal_maf_min": CAUSAL_MAF_MIN,
        },
        "files": {
            "cohort": "cohort.csv.gz" if "csv" in formats else None,
            "phenotype": "phenotype.tsv",
            "panel": "panel.csv.gz" if "csv" in formats else None,
            "holdout": "holdout.csv.gz" if holdout and "csv" in formats else None,
            "holdout_phenotype": "holdout_phenotype.tsv" if holdout else None,
            "causal": "causal.tsv",
        },
        "versions": _versions(formats),
    }

    # --- write (temporary sibling directory, then rename) ----------------------------------------------------
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp, 0o777)  # honours the umask, unlike tempfile.mkdtemp
    try:
        sites = dict(
            contig_ids=["1"],
            contig_lengths=[int(length)],
            variant_contig=np.zeros(variants, dtype=np.int64),
            variant_position=positions + 1,
            variant_allele=alleles,
            variant_id=variant_ids,
        )
        files = summary["files"]
        _write_dataset(tmp, "cohort", cohort_ids, geno[:, cohort_idx], cohort_pheno, sites, formats, files)
        _write_tsv(tmp / "phenotype.tsv", ["id", "phenotype"], zip(cohort_ids, cohort_pheno.tolist()))
        _write_dataset(tmp, "panel", panel_ids, geno[:, panel_idx], None, sites, formats, files)
        if holdout:
            _write_dataset(tmp, "holdout", hold_ids, geno[:, hold_idx], hold_pheno, sites, formats, files)
            _write_tsv(tmp / "holdout_phenotype.tsv", ["id", "phenotype"], zip(hold_ids, hold_pheno.tolist()))
        _write_tsv(
            tmp / "causal.tsv",
            ["variant_id", "effect", "alt_freq"],
            ((variant_ids[j], f"{b:.6f}", f"{alt_freq[j]:.6f}") for j, b in zip(causal.tolist(), beta.tolist())),
        )
        with open(tmp / "simulation.json", "w", encoding="utf-8", newline="\n") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
            f.write("\n")
        _prepare_out_dir(out_dir, overwrite)  # re-check: something may have appeared meanwhile
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    summary["out_dir"] = str(out_dir)
    summary["seconds"] = round(time.perf_counter() - t_start, 3)
    return summary
