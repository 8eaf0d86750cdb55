"""Per-chromosome inputs (issue 14, item 1): a quoted COHORT / --reference / ingest INPUT pattern holding {chrom}
is one cohort; the release equals the release of the same cohort as one file (real tools: bcftools, plink1.9)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from genoshare.errors import InputError
from genoshare.io.ingest import ingest
from genoshare.io.parts import natural_key, resolve_parts
from genoshare.io.vcz import export_vcf, open_group, open_vcz, read_dosage, write_vcz
from genoshare.simulate import simulate_cohort

GENOSHARE = [sys.executable, "-m", "genoshare.cli"]
CHROMS = ["9", "10", "11"]  # lexicographic order would put 10 and 11 before 9


def run(*args, check=False, timeout=300):
    proc = subprocess.run([*GENOSHARE, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def _one_line_error(p, *words):
    assert p.returncode == 2, (p.returncode, p.stderr)
    errors = [ln for ln in p.stderr.strip().splitlines() if ln.startswith("genoshare: error:")]
    assert len(errors) == 1 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])
    return errors[0]


def _split(store, d, name):
    """store -> d/name.all.vcf.gz (one file, indexed) and d/name.chr{c}.vcf.gz per contig (bcftools view -r)."""
    whole = export_vcf(store, d / f"{name}.all.vcf.gz")
    for c in CHROMS:
        subprocess.run(
            ["bcftools", "view", "-r", c, "-Oz", "-o", str(d / f"{name}.chr{c}.vcf.gz"), str(whole)],
            check=True,
            capture_output=True,
        )
    return whole


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A simulated cohort and panel re-laid on three contigs 9, 10, 11, as one VCF and as per-contig VCFs and
    PLINK filesets."""
    d = tmp_path_factory.mktemp("chrom")
    sim = d / "sim"
    simulate_cohort(sim, cases=20, controls=20, panel=40, variants=240, seed=4, holdout=0, formats=("vcz",))
    for name in ("cohort", "panel"):
        info = open_vcz(sim / f"{name}.vcz")
        m = info.n_variants
        contig = np.repeat(np.arange(3), [m // 3, m // 3, m - 2 * (m // 3)])
        store = write_vcz(
            d / f"{name}.vcz",
            read_dosage(info, 0, m),
            sample_ids=info.sample_ids,
            contig_ids=CHROMS,
            variant_contig=contig,
            variant_position=info.variant_position,
            variant_allele=np.asarray(info.variant_allele)[:, :2],
            variant_id=info.variant_id,
            chunks=(50, 16),
        )
        _split(store, d, name)
    for c in CHROMS:
        subprocess.run(
            [
                "plink1.9",
                "--vcf",
                str(d / f"cohort.chr{c}.vcf.gz"),
                "--keep-allele-order",
                "--double-id",
                "--allow-extra-chr",
                "--make-bed",
                "--out",
                str(d / f"pcohort.chr{c}"),
            ],
            check=True,
            capture_output=True,
        )
    return d


def _release(d, out, cohort, reference, priv):
    run(
        "release",
        cohort,
        "--reference",
        reference,
        "--epsilon",
        3000,
        "--seed",
        11,
        "--chunk-variants",
        50,
        "--private-dir",
        priv,
        "--out",
        out,
        check=True,
    )
    return open_group(out / "release.vcz"), json.loads((out / "manifest.json").read_text())


def _assert_same_release(a, b):
    for k in ("call_genotype", "variant_position", "variant_allele", "variant_id", "sample_id"):
        np.testing.assert_array_equal(np.asarray(a[k][:]), np.asarray(b[k][:]), err_msg=k)
    ca, cb = np.asarray(a["contig_id"][:]), np.asarray(b["contig_id"][:])
    np.testing.assert_array_equal(ca[np.asarray(a["variant_contig"][:])], cb[np.asarray(b["variant_contig"][:])])


def test_natural_order():
    assert sorted(["10", "2", "X", "22", "1", "Y"], key=natural_key) == ["1", "2", "10", "22", "X", "Y"]
    assert sorted(["chr10", "chr2", "chrX"], key=natural_key) == ["chr2", "chr10", "chrX"]


def test_resolve_parts_order_and_plink_prefix(data):
    parts = resolve_parts(data / "cohort.chr{chrom}.vcf.gz")
    assert parts.chroms == ("9", "10", "11") and parts.fmt == "vcf"
    assert [f.name for f in parts.files] == [f"cohort.chr{c}.vcf.gz" for c in CHROMS]
    for pat in ("pcohort.chr{chrom}", "pcohort.chr{chrom}.bed"):
        parts = resolve_parts(data / pat)
        assert parts.fmt == "plink" and [f.name for f in parts.files] == [f"pcohort.chr{c}.bed" for c in CHROMS]


def test_ingest_pattern_equals_single_file(data, tmp_path):
    one = ingest(data / "cohort.all.vcf.gz", tmp_path / "one.vcz", chunk_variants=50)
    parts = ingest(data / "cohort.chr{chrom}.vcf.gz", tmp_path / "parts.vcz", chunk_variants=50)
    plink = ingest(data / "pcohort.chr{chrom}", tmp_path / "plink.vcz", chunk_variants=50)
    assert parts["parts"] == plink["parts"] == 3 and "parts" not in one
    a, b, c = (open_vcz(tmp_path / f"{n}.vcz") for n in ("one", "parts", "plink"))
    for x in (b, c):
        assert x.sample_ids == a.sample_ids
        np.testing.assert_array_equal(x.variant_position, a.variant_position)
        np.testing.assert_array_equal(
            np.asarray(x.contig_ids)[x.variant_contig], np.asarray(a.contig_ids)[a.variant_contig]
        )
        np.testing.assert_array_equal(read_dosage(x, 0, x.n_variants), read_dosage(a, 0, a.n_variants))
    # natural order: contig 9's sites first, then 10, then 11
    assert list(np.asarray(c.contig_ids)[c.variant_contig][[0, -1]]) == ["9", "11"]
    assert c.attrs["genoshare_ingest"]["input"] == "pcohort.chr{chrom}"
    assert c.attrs["genoshare_ingest"]["parts"] == 3
    # VCF Zarr parts are concatenated the same way
    for ch in CHROMS:
        ingest(data / f"cohort.chr{ch}.vcf.gz", tmp_path / f"z.chr{ch}.vcz", chunk_variants=50)
    ingest(tmp_path / "z.chr{chrom}.vcz", tmp_path / "zparts.vcz", chunk_variants=50)
    z = open_vcz(tmp_path / "zparts.vcz")
    np.testing.assert_array_equal(z.variant_position, a.variant_position)
    np.testing.assert_array_equal(read_dosage(z, 0, z.n_variants), read_dosage(a, 0, a.n_variants))
    assert z.attrs["genoshare_ingest"]["format"] == "vcz"
    # the CLI command takes the quoted pattern too
    p = run("ingest", data / "cohort.chr{chrom}.vcf.gz", "--out", tmp_path / "cli.vcz", check=True)
    assert json.loads(p.stdout)["parts"] == 3


def test_release_pattern_equals_single_file(data, tmp_path):
    priv = tmp_path / "priv"
    a, _ = _release(data, tmp_path / "one", data / "cohort.all.vcf.gz", data / "panel.all.vcf.gz", priv)
    b, man = _release(
        data, tmp_path / "parts", data / "cohort.chr{chrom}.vcf.gz", data / "panel.chr{chrom}.vcf.gz", priv
    )
    _assert_same_release(a, b)
    assert man["inputs"]["cohort"] == {"name": "cohort.chr{chrom}.vcf.gz", "format": "vcf", "parts": 3}
    assert man["inputs"]["reference"]["parts"] == 3
    assert str(data) not in json.dumps(man["inputs"]["cohort"])
    # one ledger row per release (the same cohort: the fingerprint of the parts is that of the single file)
    rows = json.loads(run("ledger", "list", "--private-dir", priv, "--json", check=True).stdout)
    assert len(rows["releases"]) == 2 and len(rows["cohorts"]) == 1
    # PLINK filesets per chromosome: the same release as the VCF parts
    c, man = _release(
        data, tmp_path / "plink", data / "pcohort.chr{chrom}", data / "panel.chr{chrom}.vcf.gz", tmp_path / "priv2"
    )
    _assert_same_release(b, c)
    assert man["inputs"]["cohort"] == {"name": "pcohort.chr{chrom}", "format": "plink", "parts": 3}


def test_disagreeing_samples_named(data, tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    for c in CHROMS:
        shutil.copy(data / f"cohort.chr{c}.vcf.gz", d / f"c.chr{c}.vcf.gz")
        for ext in (".bed", ".bim", ".fam"):
            shutil.copy(data / f"pcohort.chr{c}{ext}", d / f"p.chr{c}{ext}")
    names = d / "names.txt"
    first = open_vcz(data / "cohort.vcz").sample_ids
    names.write_text("\n".join(["renamed", *first[1:]]) + "\n")
    subprocess.run(
        ["bcftools", "reheader", "-s", str(names), "-o", str(d / "c.chr10.vcf.gz"), str(data / "cohort.chr10.vcf.gz")],
        check=True,
    )
    fam = d / "p.chr11.fam"
    lines = fam.read_text().splitlines()
    fam.write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # same people, another order
    out = tmp_path / "out"
    for pattern, bad in (("c.chr{chrom}.vcf.gz", "c.chr10.vcf.gz"), ("p.chr{chrom}", "p.chr11")):
        p = run(
            "release",
            d / pattern,
            "--reference",
            data / "panel.vcz",
            "--epsilon",
            3000,
            "--out",
            out,
            "--private-dir",
            tmp_path / "priv",
        )
        line = _one_line_error(p, bad, "sample ids differ")
        assert line.startswith(f"genoshare: error: {d / bad}"), line  # the file that disagrees is the one named
        p = run("ingest", d / pattern, "--out", tmp_path / "x.vcz")
        _one_line_error(p, bad, "sample ids differ")
        assert not out.exists() and not (tmp_path / "x.vcz").exists()
        assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_pattern_matching_nothing_or_with_gap(data, tmp_path):
    out = tmp_path / "out"
    p = run(
        "release",
        data / "nothing.chr{chrom}.vcf.gz",
        "--reference",
        data / "panel.vcz",
        "--epsilon",
        3000,
        "--out",
        out,
        "--private-dir",
        tmp_path / "priv",
    )
    _one_line_error(p, "nothing.chr{chrom}.vcf.gz", "matches no file")
    p = run(
        "release",
        data / "cohort.vcz",
        "--reference",
        data / "nothing{chrom}.bed",
        "--epsilon",
        3000,
        "--out",
        out,
        "--private-dir",
        tmp_path / "priv",
    )
    _one_line_error(p, "nothing{chrom}.bed", "matches no file")
    with pytest.raises(InputError, match="matches no file"):
        ingest(tmp_path / "x{chrom}.vcf.gz", tmp_path / "x.vcz")
    d = tmp_path / "gap"
    d.mkdir()
    for c in ("9", "11"):
        shutil.copy(data / f"cohort.chr{c}.vcf.gz", d / f"c.chr{c}.vcf.gz")
    p = run("ingest", d / "c.chr{chrom}.vcf.gz", "--out", tmp_path / "x.vcz")
    _one_line_error(p, "c.chr{chrom}.vcf.gz", "gap", "chromosome 10")
    assert not out.exists() and not (tmp_path / "x.vcz").exists()
