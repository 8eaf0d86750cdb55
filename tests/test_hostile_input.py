"""Hostile inputs of issue 15 (items 4, 5, 7): a panel that is the cohort under other names, allele indices that
are no genotype, ingest drops missing from the manifest, and releases that could only fail at the end.

Independent truth: the duplicate panel is built by renaming the cohort's ids (so every cohort individual has an
exact copy); the invalid alleles are written into the files by hand; the dropped sites are made by editing two
records of a simulated VCF. "Before genotype work" is checked by replacing the first genotype step of each path
with a function that fails the test, and by the absence of an output directory and of a ledger row.
"""

import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr

from genoshare import api
from genoshare.errors import GenoshareError, InputError
from genoshare.io.csvmatrix import read_matrix, write_matrix
from genoshare.privacy import panel_overlap
from genoshare.privacy.ledger import Ledger
from genoshare.simulate import simulate_cohort
from tools import require_tool

LACTOSE = "data/opensnp-lactose"
GENOSHARE = [sys.executable, "-m", "genoshare.cli"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile") / "s"
    simulate_cohort(d, cases=30, controls=30, panel=40, variants=1200, seed=4, holdout=0, formats=("csv", "vcz", "vcf"))
    return d


def _renamed_store(src, dst):
    shutil.copytree(src, dst)
    root = zarr.open_group(str(dst), mode="r+")
    root["sample_id"][:] = np.array([f"alt{s[3:]}" for s in root["sample_id"][:].tolist()], dtype=object)
    return dst


def _no_rows(private):
    return not (private / "ledger.sqlite").exists() or Ledger.open(private).releases() == []


def _one_line(proc, *words):
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("genoshare: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])


# ---- item 4: the panel must not hold the cohort's genotypes ----------------------------------------------------


def test_renamed_cohort_as_panel_is_refused_csv(tmp_path):
    c = read_matrix(f"{LACTOSE}/data.csv.gz")
    panel = tmp_path / "panel.csv.gz"
    write_matrix(panel, [f"x{s}" for s in c.sample_ids], c.variant_ids, c.genotypes)
    with pytest.raises(InputError, match=r"panel\.csv\.gz: reference panel holds cohort genotypes") as err:
        api.release_csv(
            f"{LACTOSE}/data.csv.gz",
            panel,
            1.0,
            tmp_path / "out",
            seed=1,
            relatives="skip",
            private_dir=tmp_path / "priv",
        )
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists() and _no_rows(tmp_path / "priv")


def test_renamed_cohort_as_panel_is_refused_store(sim, tmp_path):
    panel = _renamed_store(sim / "cohort.vcz", tmp_path / "panel.vcz")
    with pytest.raises(InputError, match=r"reference panel holds cohort genotypes: (\d+) cohort-panel pair") as err:
        api.release_store(
            sim / "cohort.vcz",
            panel,
            1.0,
            tmp_path / "out",
            seed=1,
            relatives="skip",
            private_dir=tmp_path / "priv",
            workers=1,
        )
    # every individual of the 60 with a heterozygous call among the SNPs used (one of them has none: KING's phi
    # is undefined there)
    assert int(err.value.problem.split(": ")[1].split()[0]) >= 55
    assert str(panel) in str(err.value) and not (tmp_path / "out").exists() and _no_rows(tmp_path / "priv")


def test_half_duplicated_panel_is_refused(sim):
    """A panel holding a few cohort members among unrelated people: the duplicates are found."""
    c, p = read_matrix(sim / "cohort.csv.gz"), read_matrix(sim / "panel.csv.gz")
    R = p.genotypes.copy()
    R[:, [3, 17]] = c.genotypes[:, [10, 42]]
    with pytest.raises(InputError, match="2 cohort-panel pair"):
        panel_overlap.check_matrices(c.genotypes, R, c.sample_ids, p.sample_ids, "panel.csv")


def test_unrelated_simulated_panel_is_accepted(sim, tmp_path):
    """One msprime population: cohort and panel are unrelated samples of it. On little genome such pairs reach
    KING phi ~0.4 (measured; the check warns), but are never refused."""
    c, p = read_matrix(sim / "cohort.csv.gz"), read_matrix(sim / "panel.csv.gz")
    notes = []
    rep = panel_overlap.check_matrices(c.genotypes, p.genotypes, c.sample_ids, p.sample_ids, "panel", notes.append)
    assert rep["n_snps"] == 1200 and rep["usable_snps"] >= 1000 and rep["n_duplicate_pairs"] == 0
    assert rep["outcome"] in ("ok", "related") and len(notes) == 1 and notes[0].startswith("panel overlap:")
    # end to end, store path: released, and the outcome stays out of the manifest
    notes = []
    man = api.release_store(
        sim / "cohort.vcz",
        sim / "panel.vcz",
        1.0,
        tmp_path / "out",
        seed=1,
        relatives="skip",
        private_dir=tmp_path / "priv",
        workers=1,
        notify=notes.append,
    )
    assert any(n.startswith("panel overlap:") for n in notes)
    assert "panel overlap" not in (tmp_path / "out" / "manifest.json").read_text() and man["n_samples"] == 60


def test_lactose_cohort_and_reference_pass():
    c, p = read_matrix(f"{LACTOSE}/data.csv.gz"), read_matrix(f"{LACTOSE}/reference.csv.gz")
    rep = panel_overlap.check_matrices(c.genotypes, p.genotypes, c.sample_ids, p.sample_ids, "reference")
    assert rep["outcome"] == "ok" and rep["max_phi"] < 0.177 and rep["usable_snps"] >= 1000


def test_small_data_is_inconclusive_not_refused(tmp_path):
    c = read_matrix(f"{LACTOSE}/data.csv.gz")
    G = c.genotypes[:500]
    notes = []
    rep = panel_overlap.check_matrices(G, G, c.sample_ids, [f"x{s}" for s in c.sample_ids], "p", notes.append)
    assert rep["outcome"] == "inconclusive" and "inconclusive" in notes[0] and "look like duplicates" in notes[0]


def test_subset_is_bounded_runs():
    sel = panel_overlap.subset(1_000_000)
    assert sel.size == 4000 and np.all(np.diff(sel) > 0) and (np.diff(sel) > 1).sum() == 3
    assert panel_overlap.subset(900).size == 900
    assert panel_overlap.subset(10**6, 500_000, 2504).size >= panel_overlap.MIN_SNPS  # biobank: fewer, not < 1,000


# ---- item 5: allele indices above 1 at bi-allelic sites; ingest drops in the manifest -----------------------------


def _edit_vcf(src, dst, edit):
    require_tool("bgzip")
    lines = gzip.open(src, "rt").read().splitlines()
    body = [i for i, ln in enumerate(lines) if not ln.startswith("#")]
    edit(lines, body)
    dst.with_suffix("").write_text("\n".join(lines) + "\n")
    subprocess.run(["bgzip", "-f", str(dst.with_suffix(""))], check=True)
    return dst


def _set_gt(lines, row, sample, gt):
    f = lines[row].split("\t")
    f[9 + sample] = gt
    lines[row] = "\t".join(f)


def test_vcf_gt_0_3_is_refused_at_ingest_and_release(sim, tmp_path):
    vcf = _edit_vcf(sim / "cohort.vcf.gz", tmp_path / "bad.vcf.gz", lambda ls, b: _set_gt(ls, b[5], 2, "0/3"))
    vcf_id = [ln for ln in gzip.open(vcf, "rt").read().splitlines() if not ln.startswith("#")][5].split("\t")[2]
    p = subprocess.run(
        [*GENOSHARE, "ingest", str(vcf), "--out", str(tmp_path / "bad.vcz")], capture_output=True, text=True
    )
    _one_line(p, "bad.vcf.gz", "allele index above 1", vcf_id)
    assert not (tmp_path / "bad.vcz").exists()
    with pytest.raises(InputError, match=f"bad.vcf.gz: allele index above 1 at bi-allelic site {vcf_id}"):
        api.release_store(
            vcf,
            sim / "panel.vcz",
            1.0,
            tmp_path / "out",
            seed=1,
            relatives="skip",
            private_dir=tmp_path / "priv",
            workers=1,
        )
    assert not (tmp_path / "out").exists() and _no_rows(tmp_path / "priv")


def _kept_site(root, start=7):
    """A site the alignment keeps: not strand-ambiguous (A/T, C/G)."""
    alleles = root["variant_allele"][:]
    return next(
        j
        for j in range(start, len(alleles))
        if {str(alleles[j][0]), str(alleles[j][1])} not in ({"A", "T"}, {"C", "G"})
    )


def test_vcz_value_3_is_refused_in_pass_one(sim, tmp_path):
    bad = tmp_path / "cohort.vcz"
    shutil.copytree(sim / "cohort.vcz", bad)
    root = zarr.open_group(str(bad), mode="r+")
    j = _kept_site(root)
    root["call_genotype"][j, 3, 1] = 3
    vid = str(root["variant_id"][j])
    with pytest.raises(InputError, match=f"allele index above 1 at bi-allelic variant {vid} .*1 variant") as err:
        api.release_store(
            bad,
            sim / "panel.vcz",
            1.0,
            tmp_path / "out",
            seed=1,
            relatives="skip",
            private_dir=tmp_path / "priv",
            workers=1,
        )
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and _no_rows(tmp_path / "priv")
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no work or temporary directory left


def test_panel_value_3_is_refused(sim, tmp_path):
    bad = tmp_path / "panel.vcz"
    shutil.copytree(sim / "panel.vcz", bad)
    root = zarr.open_group(str(bad), mode="r+")
    j = _kept_site(root, 11)
    root["call_genotype"][j, 0, 0] = 2
    with pytest.raises(InputError, match=f"allele index above 1 at bi-allelic site {j + 1} of the reference panel"):
        api.release_store(
            sim / "cohort.vcz",
            bad,
            1.0,
            tmp_path / "out",
            seed=1,
            relatives="skip",
            private_dir=tmp_path / "priv",
            workers=1,
        )


def test_csv_values_other_than_genotypes_are_refused(tmp_path):
    for bad in ("3", "-1", "1.5"):
        f = tmp_path / "c.csv"
        f.write_text(f"ID,s1,s2\na,0,{bad}\nb,1,2\n")
        with pytest.raises(InputError, match=f"value '{bad}' is not a genotype"):
            read_matrix(f)


def test_manifest_alignment_counts_sites_dropped_at_ingest(sim, tmp_path):
    def edit(lines, body):
        f = lines[body[4]].split("\t")
        f[4] += "," + next(a for a in "ACGT" if a not in (f[3], f[4]))  # a second ALT allele: multi-allelic
        lines[body[4]] = "\t".join(f)
        _set_gt(lines, body[9], 0, "1")  # one haploid call: not diploid

    vcf = _edit_vcf(sim / "cohort.vcf.gz", tmp_path / "cohort.vcf.gz", edit)
    man = api.release_store(
        vcf,
        sim / "panel.vcz",
        1.0,
        tmp_path / "out",
        seed=1,
        relatives="skip",
        private_dir=tmp_path / "priv",
        workers=1,
    )
    al = man["alignment"]
    assert al["dropped_at_ingest"] == {"multiallelic": 1, "missing_allele": 0, "non_diploid": 1}
    assert al["cohort_sites"] == 1198 and al["kept"] <= 1198
    assert "panel_dropped_at_ingest" not in al  # the simulated panel store was not made by ingest


# ---- item 7: what can only fail at the end fails at the start -----------------------------------------------------


@pytest.fixture
def no_genotype_work(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("genotype work started")

    from genoshare import pipeline

    monkeypatch.setattr(pipeline, "panel_ldstats", boom)
    monkeypatch.setattr(panel_overlap, "check_stores", boom)
    monkeypatch.setattr(panel_overlap, "check_matrices", boom)


def test_export_ids_with_spaces_refused_before_genotype_work(sim, tmp_path, no_genotype_work):
    bad = tmp_path / "cohort.vcz"
    shutil.copytree(sim / "cohort.vcz", bad)
    root = zarr.open_group(str(bad), mode="r+")
    ids = root["sample_id"][:].tolist()
    ids[4] = "ind 0005"
    root["sample_id"][:] = np.array(ids, dtype=object)
    for kind in ("plink", "vcf"):
        with pytest.raises(InputError, match=f"sample id 'ind 0005' contains whitespace .*--export {kind}"):
            api.release_store(
                bad,
                sim / "panel.vcz",
                1.0,
                tmp_path / "out",
                seed=1,
                exports=(kind,),
                private_dir=tmp_path / "priv",
                workers=1,
            )
        assert not (tmp_path / "out").exists() and _no_rows(tmp_path / "priv")
    ids[4] = 'ind"05'
    root["sample_id"][:] = np.array(ids, dtype=object)
    with pytest.raises(InputError, match="sample id 'ind\"05' contains '\"'"):
        api.release_store(
            bad,
            sim / "panel.vcz",
            1.0,
            tmp_path / "out",
            seed=1,
            exports=("plink",),
            private_dir=tmp_path / "priv",
            workers=1,
        )
    assert not (tmp_path / "out").exists() and _no_rows(tmp_path / "priv")


def test_export_id_rules_match_what_vcztools_rejects(tmp_path):
    """Independent truth: ids that pass the check export, ids it refuses make vcztools fail or corrupt the .fam."""
    from genoshare.io.outputs import check_export_ids
    from genoshare.io.vcz import export_plink, export_vcf, write_vcz

    G = np.array([[0, 1, 2], [1, 1, 0]], dtype=np.int8)

    def store(name, sids, vids):
        return write_vcz(
            tmp_path / name,
            G,
            sample_ids=sids,
            contig_ids=["1"],
            variant_contig=np.zeros(2, int),
            variant_position=np.array([1, 2]),
            variant_allele=np.array([["A", "G"]] * 2, dtype=object),
            variant_id=vids,
        )

    good = store("good.vcz", ["a", "b,c", "d-e"], ["rs1", "rs2"])
    check_export_ids(("plink", "vcf"), ["a", "b,c", "d-e"], ["rs1", "rs2"], good)
    export_vcf(good, tmp_path / "good.vcf.gz")
    export_plink(good, tmp_path / "good")
    assert (tmp_path / "good.fam").read_text().split()[:2] == ["a", "a"]
    nonascii = store("na.vcz", ["a", "b", "c"], ["rs1", "rsé2"])
    with pytest.raises(InputError, match="variant id 'rsé2' is not ASCII"):
        check_export_ids(("vcf",), ["a", "b", "c"], ["rs1", "rsé2"], nonascii)
    with pytest.raises(GenoshareError, match="vcztools view"):
        export_vcf(nonascii, tmp_path / "na.vcf.gz")
    quoted = store("q.vcz", ['a"x', "b", "c"], ["rs1", "rs2"])
    with pytest.raises(InputError, match="contains '\"'"):
        check_export_ids(("plink",), ['a"x', "b", "c"], ["rs1", "rs2"], quoted)
    export_plink(quoted, tmp_path / "q")
    assert (tmp_path / "q.fam").read_text().split()[0] != 'a"x'  # vcztools wrote something else


def test_output_inside_input_refused(sim, tmp_path, no_genotype_work):
    store = tmp_path / "cohort.vcz"
    shutil.copytree(sim / "cohort.vcz", store)
    before = sorted(p.name for p in store.iterdir())
    with pytest.raises(InputError, match="lies inside the input"):
        api.release_store(store, sim / "panel.vcz", 1.0, store / "rel", seed=1, private_dir=tmp_path / "priv")
    assert sorted(p.name for p in store.iterdir()) == before and _no_rows(tmp_path / "priv")
    # an output that contains an input (--overwrite would delete it), CSV path
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(sim / "cohort.csv.gz", d / "cohort.csv.gz")
    with pytest.raises(InputError, match="contains the input"):
        api.release_csv(
            d / "cohort.csv.gz", sim / "panel.csv.gz", 1.0, d, overwrite=True, seed=1, private_dir=tmp_path / "priv"
        )
    assert (d / "cohort.csv.gz").exists()
    p = subprocess.run(
        [
            *GENOSHARE,
            "release",
            str(store),
            "--reference",
            str(sim / "panel.vcz"),
            "--epsilon",
            "1",
            "--out",
            str(store / "rel"),
        ],
        capture_output=True,
        text=True,
    )
    _one_line(p, str(store / "rel"), "lies inside the input")


def test_phenotype_matching_no_id_refused_before_ledger(sim, tmp_path, no_genotype_work):
    pheno = tmp_path / "pheno.tsv"
    pheno.write_text("IID\tcase\n" + "".join(f"other{i}\t{1 + i % 2}\n" for i in range(20)))
    for release, cohort, panel in (
        (api.release_csv, sim / "cohort.csv.gz", sim / "panel.csv.gz"),
        (api.release_store, sim / "cohort.vcz", sim / "panel.vcz"),
    ):
        with pytest.raises(InputError, match="pheno.tsv: no row matches a cohort sample id"):
            release(
                cohort,
                panel,
                1.0,
                tmp_path / "out",
                seed=1,
                phenotypes=pheno,
                release_phenotype=["case"],
                private_dir=tmp_path / "priv",
            )
        assert not (tmp_path / "out").exists() and _no_rows(tmp_path / "priv")


def test_valid_release_is_unchanged_by_the_checks(sim, tmp_path, monkeypatch):
    """Same seed, same inputs: the release data are byte-identical with and without the new checks (they only
    read), and the manifest differs in nothing but timings."""
    import json

    def run(name):
        api.release_csv(
            sim / "cohort.csv.gz",
            sim / "panel.csv.gz",
            1.0,
            tmp_path / name,
            seed=3,
            relatives="skip",
            private_dir=tmp_path / f"p{name}",
        )

        def steady(x):  # without the clock: timings, creation time, seconds
            if isinstance(x, dict):
                return {k: steady(v) for k, v in x.items() if k not in ("timings", "created", "seconds")}
            return [steady(v) for v in x] if isinstance(x, list) else x

        man = steady(json.loads((tmp_path / name / "manifest.json").read_text()))
        return (tmp_path / name / "release.csv.gz").read_bytes(), man

    with_checks = run("a")
    monkeypatch.setattr(panel_overlap, "check_matrices", lambda *a, **k: {"message": "panel overlap: not checked"})
    assert run("b") == with_checks


def test_cli_error_is_one_line_exit_2(tmp_path):
    c = read_matrix(f"{LACTOSE}/data.csv.gz")
    panel = tmp_path / "panel.csv.gz"
    write_matrix(panel, [f"x{s}" for s in c.sample_ids], c.variant_ids, c.genotypes)
    p = subprocess.run(
        [
            *GENOSHARE,
            "release",
            f"{LACTOSE}/data.csv.gz",
            "--reference",
            str(panel),
            "--epsilon",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    _one_line(p, "panel.csv.gz", "reference panel holds cohort genotypes")
    assert isinstance(InputError("x", "y"), GenoshareError)
