"""genoshare.io.ingest: every input format to VCF Zarr, site filtering, and bad inputs (real files, real tools)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from genoshare.errors import GenoshareError, InputError
from genoshare.io.csvmatrix import write_matrix
from genoshare.io.ingest import CSV_ALT, CSV_REF, detect_format, ingest
from genoshare.io.validate import BGZF_EOF
from genoshare.io.vcz import export_plink, export_vcf, open_vcz, read_dosage, write_vcz
from test_vcz import _tool, assert_one_line, make_data

M, N = 53, 37


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """One small dataset written as VCZ, VCF.gz (+ .tbi), BCF, plain VCF, PLINK and CSV."""
    d = tmp_path_factory.mktemp("src")
    g, meta = make_data(M, N, seed=7)
    store = write_vcz(d / "x.vcz", g, chunks=(16, 16), **meta)
    _tool("bgzip")
    _tool("tabix")
    export_vcf(store, d / "x.vcf.gz")
    export_plink(store, d / "x")
    bcftools = _tool("bcftools")
    subprocess.run([bcftools, "view", "-Ob", "-o", str(d / "x.bcf"), str(d / "x.vcf.gz")], check=True)
    subprocess.run(f"bgzip -dc {d / 'x.vcf.gz'} > {d / 'x.vcf'}", shell=True, check=True)
    write_matrix(d / "x.csv.gz", meta["sample_ids"], meta["variant_id"], g)
    return d, g, meta


def _vcf_text(meta, rows):
    """A small VCF: rows are (pos, ref, alt, [GT strings])."""
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=1,length=100000>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(meta),
    ]
    for pos, ref, alt, gts in rows:
        lines.append(f"1\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t" + "\t".join(gts))
    return "\n".join(lines) + "\n"


def _bgzip_text(path, text):
    path.with_suffix("").write_text(text)
    subprocess.run(["bgzip", "-f", str(path.with_suffix(""))], check=True)
    return path


def _no_output(out):
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert leftovers == []


# --------------------------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.vcf.gz", "x.bcf", "x.vcf", "x.bed", "x", "x.fam", "x.vcz"])
def test_formats_round_trip(src, tmp_path, name):
    d, g, meta = src
    summary = ingest(d / name, tmp_path / "o.vcz")
    expected_fmt = {"vcf.gz": "vcf", "bcf": "vcf", "vcf": "vcf", "vcz": "vcz"}.get(name.split(".", 1)[-1], "plink")
    assert summary["format"] == expected_fmt
    assert (summary["n_variants"], summary["n_samples"], summary["n_variants_input"]) == (M, N, M)
    assert summary["dropped"] == {"multiallelic": 0, "missing_allele": 0, "non_diploid": 0}
    info = open_vcz(tmp_path / "o.vcz")
    assert info.sample_ids == meta["sample_ids"]
    np.testing.assert_array_equal(info.variant_position, meta["variant_position"])
    assert info.variant_allele[:, :2].tolist() == meta["variant_allele"].tolist()
    assert info.variant_id.tolist() == meta["variant_id"]
    np.testing.assert_array_equal(read_dosage(info, 0, M), g)
    assert info.attrs["genoshare_ingest"]["format"] == expected_fmt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.vcz"]


def test_csv_round_trip(src, tmp_path):
    d, g, meta = src
    s = ingest(d / "x.csv.gz", tmp_path / "o.vcz", chunk_variants=10, chunk_samples=8)
    assert s["format"] == "csv" and s["chunks"] == [10, 8]
    info = open_vcz(tmp_path / "o.vcz")
    assert info.chunks == (10, 8)
    assert info.contig_ids == ["1"] and (info.variant_contig == 0).all()
    np.testing.assert_array_equal(info.variant_position, np.arange(1, M + 1))
    assert info.variant_id.tolist() == meta["variant_id"]
    assert (info.variant_allele == [[CSV_REF, CSV_ALT]]).all()
    np.testing.assert_array_equal(read_dosage(info, 0, M), g)


def test_csv_alleles_work_with_plink19_and_vcztools(src, tmp_path):
    """REF 'N' / ALT '<ALT>' (the CSV has no alleles) survive vcztools -> PLINK 1.9 and vcztools -> VCF -> ingest."""
    plink = _tool("plink1.9")
    d, g, meta = src
    ingest(d / "x.csv.gz", tmp_path / "o.vcz")
    export_plink(tmp_path / "o.vcz", tmp_path / "p")
    r = subprocess.run(
        [plink, "--bfile", str(tmp_path / "p"), "--freq", "--out", str(tmp_path / "f")], capture_output=True
    )
    assert r.returncode == 0, r.stdout.decode()[-2000:]
    rows = [ln.split() for ln in (tmp_path / "f.frq").read_text().splitlines()[1:]]
    assert len(rows) == M and {(r[2], r[3]) for r in rows} <= {("N", "<ALT>"), ("<ALT>", "N")}
    export_vcf(tmp_path / "o.vcz", tmp_path / "o.vcf.gz")
    ingest(tmp_path / "o.vcf.gz", tmp_path / "o2.vcz")
    np.testing.assert_array_equal(read_dosage(tmp_path / "o2.vcz", 0, M), g)
    ingest(tmp_path / "p.bed", tmp_path / "o3.vcz")
    np.testing.assert_array_equal(read_dosage(tmp_path / "o3.vcz", 0, M), g)


def test_vcz_input_copied_or_rechunked(src, tmp_path):
    d, g, _ = src
    same = ingest(d / "x.vcz", tmp_path / "same.vcz", chunk_variants=16, chunk_samples=16)
    assert not same["rewritten"] and same["chunks"] == [16, 16]
    other = ingest(d / "x.vcz", tmp_path / "other.vcz", chunk_variants=7, chunk_samples=5)
    assert other["rewritten"] and other["chunks"] == [7, 5]
    assert open_vcz(tmp_path / "other.vcz").chunks == (7, 5)
    for name in ("same.vcz", "other.vcz"):
        np.testing.assert_array_equal(read_dosage(tmp_path / name, 0, M), g)


def test_zip_store_input(src, tmp_path):
    """bio2zarr can write a .zip store; ingest reads it and writes a directory store."""
    from bio2zarr import vcf as b2z_vcf

    d, g, _ = src
    b2z_vcf.convert([str(d / "x.vcf.gz")], str(tmp_path / "x.vcz.zip"), variants_chunk_size=16)
    s = ingest(tmp_path / "x.vcz.zip", tmp_path / "o.vcz")
    assert s["format"] == "vcz" and s["rewritten"]
    assert (tmp_path / "o.vcz").is_dir()
    np.testing.assert_array_equal(read_dosage(tmp_path / "o.vcz", 0, M), g)


def test_chunk_sizes_passed_to_bio2zarr(src, tmp_path):
    d, g, _ = src
    for name in ("x.vcf.gz", "x.bed"):
        out = tmp_path / f"{name}.vcz"
        s = ingest(d / name, out, chunk_variants=11, chunk_samples=9)
        assert s["chunks"] == [11, 9] and not s["rewritten"]
        assert open_vcz(out).chunks == (11, 9)
        np.testing.assert_array_equal(read_dosage(out, 0, M), g)


def test_drops_counted_by_reason(tmp_path):
    _tool("bgzip")
    samples = ["a", "b", "c"]
    rows = [
        (100, "A", "G", ["0/1", "1/1", "0/0"]),  # kept
        (200, "C", "T,G", ["0/1", "0/2", "1/1"]),  # multiallelic
        (300, "G", ".", ["0/0", "0/0", "0/0"]),  # monomorphic: missing ALT
        (400, "T", "C", ["0/1", "1", "0/0"]),  # a haploid call: non-diploid
        (500, "A", "C", ["./.", "0|1", "1|1"]),  # kept
    ]
    vcf = _bgzip_text(tmp_path / "m.vcf.gz", _vcf_text(samples, rows))
    s = ingest(vcf, tmp_path / "o.vcz", chunk_variants=1)
    assert s["dropped"] == {"multiallelic": 1, "missing_allele": 1, "non_diploid": 1}
    assert (s["n_variants_input"], s["n_variants"], s["rewritten"]) == (5, 2, True)
    info = open_vcz(tmp_path / "o.vcz")
    assert info.variant_position.tolist() == [100, 500]
    assert info.variant_allele.tolist() == [["A", "G"], ["A", "C"]]
    assert info.chunks == (1, 3)
    np.testing.assert_array_equal(read_dosage(info, 0, 2), [[1, 2, 0], [-1, 1, 2]])
    assert info.attrs["genoshare_ingest"]["dropped"] == s["dropped"]


def test_detect_format(src, tmp_path):
    d, _, _ = src
    assert detect_format(d / "x") == "plink"
    assert detect_format(d / "x.bim") == "plink"
    assert detect_format(d / "x.vcz") == "vcz"
    assert detect_format(d / "x.csv.gz") == "csv"
    assert detect_format(d / "x.bcf") == "vcf"
    (tmp_path / "y.txt").write_text("x")
    with pytest.raises(InputError, match="unrecognised input format"):
        detect_format(tmp_path / "y.txt")


# --------------------------------------------------------------------------------------------------------------
# bad inputs: one line naming the file, non-zero exit (an exception), no output
# --------------------------------------------------------------------------------------------------------------


def _copy_plink(d, dst, name="p"):
    for ext in (".bed", ".bim", ".fam"):
        shutil.copy(d / f"x{ext}", dst / f"{name}{ext}")
    return dst / name


def _bad_inputs(d, tmp):
    """label -> (input path, path expected in the message, message fragment)."""
    cases = {}
    raw = (d / "x.vcf.gz").read_bytes()
    p = tmp / "trunc.vcf.gz"
    p.write_bytes(raw[: len(raw) * 2 // 3])
    cases["vcf truncated mid-block"] = (p, p, "truncated")
    p = tmp / "cut.vcf.gz"
    p.write_bytes(raw[: -len(BGZF_EOF)])  # cut at a block boundary: htslib would read it without error
    cases["vcf truncated at block boundary"] = (p, p, "truncated")
    p = tmp / "corrupt.vcf.gz"
    c = bytearray(raw)
    mid = len(c) // 2
    c[mid : mid + 40] = bytes(b ^ 0x5A for b in c[mid : mid + 40])
    p.write_bytes(bytes(c))
    cases["vcf corrupt"] = (p, p, "")
    p = tmp / "garbage.vcf.gz"
    p.write_bytes(np.random.default_rng(0).bytes(5000))
    cases["vcf garbage"] = (p, p, "not a VCF")
    p = tmp / "nohead.vcf"
    p.write_text("\n".join((d / "x.vcf").read_text().splitlines()[6:]) + "\n")
    cases["vcf without header"] = (p, p, "not a VCF")
    p = tmp / "trunc.vcf"
    p.write_bytes((d / "x.vcf").read_bytes()[:-50])
    cases["plain vcf truncated"] = (p, p, "truncated")
    p = tmp / "empty.vcf.gz"
    p.write_bytes(b"")
    cases["vcf empty"] = (p, p, "empty")
    p = tmp / "sites.vcf.gz"
    _bgzip_text(p, _vcf_text([], [(1, "A", "G", [])]).replace("\tFORMAT\t\n", "\n").replace("\tGT\t\n", "\n"))
    cases["vcf without samples"] = (p, p, "no samples")
    p = tmp / "multi.vcf.gz"
    _bgzip_text(p, _vcf_text(["a", "b"], [(10, "A", "C,G", ["0/1", "1/2"]), (20, "T", "A,C", ["0/0", "0/2"])]))
    cases["multi-allelic only"] = (p, p, "no bi-allelic diploid site")
    p = tmp / "haploid.vcf.gz"
    _bgzip_text(p, _vcf_text(["a", "b"], [(10, "A", "C", ["0", "1"]), (20, "T", "A", ["1", "0"])]))
    cases["haploid only"] = (p, p, "non_diploid 2")

    prefix = _copy_plink(d, tmp, "magic")
    b = bytearray((tmp / "magic.bed").read_bytes())
    b[0] = 0x00
    (tmp / "magic.bed").write_bytes(bytes(b))
    cases["bed bad magic"] = (tmp / "magic.bed", tmp / "magic.bed", "magic")
    prefix = _copy_plink(d, tmp, "short")
    (tmp / "short.bed").write_bytes((d / "x.bed").read_bytes()[:-7])
    cases["bed truncated"] = (prefix, tmp / "short.bed", "bytes")
    prefix = _copy_plink(d, tmp, "bim")
    with open(tmp / "bim.bim", "a") as f:
        f.write("1\textra\t0\t999999\tA\tG\n")
    cases["bim has more variants"] = (prefix, tmp / "bim.bed", "variant counts disagree")
    prefix = _copy_plink(d, tmp, "fam")
    lines = (tmp / "fam.fam").read_text().splitlines()
    (tmp / "fam.fam").write_text("\n".join(lines[:-5]) + "\n")  # 32 samples: 8 bytes per variant, not 10
    cases["fam has fewer samples"] = (prefix, tmp / "fam.bed", "sample counts disagree")
    prefix = _copy_plink(d, tmp, "nofam")
    (tmp / "nofam.fam").unlink()
    cases["fam missing"] = (tmp / "nofam.bed", tmp / "nofam.bed", "missing nofam.fam")
    prefix = _copy_plink(d, tmp, "bimfields")
    (tmp / "bimfields.bim").write_text((tmp / "bimfields.bim").read_text().replace("\t0\t", "\t", 1))
    cases["bim malformed"] = (prefix, tmp / "bimfields.bim", "fields")
    p = tmp / "bad.csv"
    p.write_text("PATIENT_ID,a,b\np1,0,3\n")
    cases["csv bad value"] = (p, p, "not a genotype")
    p = tmp / "notzarr"
    p.mkdir()
    cases["directory that is not a store"] = (p, p, "not a Zarr store")
    cases["missing input"] = (tmp / "nothing.vcf.gz", tmp / "nothing.vcf.gz", "no such file")
    return cases


def test_bad_inputs(src, tmp_path):
    d, _, _ = src
    bad = tmp_path / "bad"
    bad.mkdir()
    out = tmp_path / "out.vcz"
    failures = []
    for label, (path, blamed, fragment) in _bad_inputs(d, bad).items():
        try:
            ingest(path, out)
        except InputError as e:
            msg = str(e)
            if "\n" in msg or str(blamed) not in msg or fragment not in msg:
                failures.append(f"{label}: {msg!r}")
        else:
            failures.append(f"{label}: no error")
        _no_output(out)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("kw", [dict(chunk_variants=0), dict(chunk_samples=-3), dict(chunk_variants=2.5)])
def test_bad_chunk_sizes(src, tmp_path, kw):
    d, _, _ = src
    with pytest.raises(GenoshareError, match="must be a positive integer") as ei:
        ingest(d / "x.vcf.gz", tmp_path / "o.vcz", **kw)
    assert "\n" not in str(ei.value)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_or_existing_output(src, tmp_path):
    d, g, _ = src
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "o.vcz"  # parent is a file: cannot be created, even by root
    with pytest.raises(InputError) as ei:
        ingest(d / "x.vcf.gz", out)
    assert_one_line(ei.value, out)
    with pytest.raises(InputError, match="does not exist"):
        ingest(d / "x.vcf.gz", tmp_path / "no" / "such" / "o.vcz")
    (tmp_path / "exists.vcz").mkdir()
    with pytest.raises(InputError, match="already exists"):
        ingest(d / "x.vcf.gz", tmp_path / "exists.vcz")
    s = ingest(d / "x.bed", tmp_path / "exists.vcz", overwrite=True)
    assert s["n_variants"] == M
    np.testing.assert_array_equal(read_dosage(tmp_path / "exists.vcz", 0, M), g)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "exists.vcz"]


def test_failure_during_conversion_leaves_nothing(src, tmp_path, monkeypatch):
    d, _, _ = src
    import genoshare.io.ingest as ingest_mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ingest_mod, "_rewrite", boom)
    with pytest.raises(OSError, match="disk full"):
        ingest(d / "x.vcz", tmp_path / "o.vcz", chunk_variants=5)
    assert list(tmp_path.iterdir()) == []
