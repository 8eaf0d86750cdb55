"""VCF Zarr stores: layout, round trips through vcztools / bio2zarr / PLINK, validation errors, atomic writes."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from tools import require_tool
import zarr

import genoshare.io.vcz as vcz_mod
from genoshare.errors import InputError
from genoshare.io.vcz import (
    export_plink,
    export_vcf,
    init_vcz,
    open_vcz,
    read_dosage,
    write_vcz,
)


def _tool(name):
    """Path of a required command-line tool (tests/tools.py: missing fails in CI, skips elsewhere)."""
    return require_tool(name)


def make_data(m=53, n=37, seed=0, missing=0.05):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.95, size=(m, 1))
    g = rng.binomial(2, freq, size=(m, n)).astype(np.int8)
    g[rng.random((m, n)) < missing] = -1
    bases = np.array(["A", "C", "G", "T"], dtype=object)
    ref = rng.integers(0, 4, size=m)
    alt = (ref + rng.integers(1, 4, size=m)) % 4
    alleles = np.stack([bases[ref], bases[alt]], axis=1)
    pos = np.cumsum(rng.integers(1, 500, size=m)) + 100
    meta = dict(
        sample_ids=[f"s{i:03d}" for i in range(n)],
        contig_ids=["1"],
        variant_contig=np.zeros(m, dtype=np.int64),
        variant_position=pos,
        variant_allele=alleles,
        variant_id=[f"1:{p}" for p in pos.tolist()],
    )
    return g, meta


def assert_one_line(exc, path):
    msg = str(exc)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg


# --------------------------------------------------------------------------------------------------------------
# writing and reading back
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [(10, 8), (53, 37), (7, 100), (1000, 5), None])
def test_write_read_round_trip(tmp_path, chunks):
    g, meta = make_data()
    out = write_vcz(tmp_path / "x.vcz", g, chunks=chunks, **meta)
    info = open_vcz(out)
    assert (info.n_variants, info.n_samples, info.ploidy) == (53, 37, 2)
    want = (53, 37) if chunks is None else (min(chunks[0], 53), min(chunks[1], 37))
    assert info.chunks == want
    assert info.sample_ids == meta["sample_ids"]
    assert info.contig_ids == ["1"]
    np.testing.assert_array_equal(info.variant_position, meta["variant_position"])
    assert info.variant_position.dtype == np.int64 and info.variant_contig.dtype == np.int64
    assert info.variant_allele.tolist() == meta["variant_allele"].tolist()
    assert info.variant_id.tolist() == meta["variant_id"]
    assert info.zarr_format == 2
    assert info.biallelic.all()
    np.testing.assert_array_equal(read_dosage(info, 0, 53), g)
    np.testing.assert_array_equal(read_dosage(out, 5, 20, 3, 30), g[5:20, 3:30])
    # calls: unphased, 1 -> 0/1, mask = missing
    root = zarr.open_group(str(out), mode="r")
    gt = root["call_genotype"][:]
    assert set(map(tuple, gt.reshape(-1, 2).tolist())) <= {(0, 0), (0, 1), (1, 1), (-1, -1)}
    np.testing.assert_array_equal(root["call_genotype_mask"][:], gt < 0)
    assert not root["call_genotype_phased"][:].any()
    # nothing left beside the store
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.vcz"]


def test_layout_matches_bio2zarr(tmp_path):
    g, meta = make_data()
    out = write_vcz(tmp_path / "x.vcz", g, chunks=(20, 16), contig_lengths=[100_000], **meta)
    attrs = json.loads((out / ".zattrs").read_text())
    assert attrs["vcf_zarr_version"] == "0.5" and attrs["source"].startswith("genoshare-")
    root = zarr.open_group(str(out), mode="r")
    assert root.metadata.zarr_format == 2
    expected_dims = {
        "call_genotype": ["variants", "samples", "ploidy"],
        "call_genotype_mask": ["variants", "samples", "ploidy"],
        "call_genotype_phased": ["variants", "samples"],
        "variant_position": ["variants"],
        "variant_contig": ["variants"],
        "variant_allele": ["variants", "alleles"],
        "variant_id": ["variants"],
        "variant_id_mask": ["variants"],
        "variant_length": ["variants"],
        "sample_id": ["samples"],
        "contig_id": ["contigs"],
        "contig_length": ["contigs"],
        "region_index": ["region_index_values", "region_index_fields"],
    }
    for name, dims in expected_dims.items():
        assert root[name].attrs["_ARRAY_DIMENSIONS"] == dims, name
    zarray = json.loads((out / "call_genotype" / ".zarray").read_text())
    assert zarray["chunks"] == [20, 16, 2] and zarray["dtype"] == "|i1" and zarray["fill_value"] == -1
    assert zarray["compressor"] == {"id": "blosc", "cname": "zstd", "clevel": 7, "shuffle": 2, "blocksize": 0}
    pos = json.loads((out / "variant_position" / ".zarray").read_text())
    assert pos["compressor"]["shuffle"] == 1 and pos["dtype"] == "<i4"
    assert root["variant_length"][:].tolist() == [1] * 53
    # region index as bio2zarr's finalise computes it
    from bio2zarr.vcz import VcfZarrIndexer

    copy = tmp_path / "copy.vcz"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "region_index")
    VcfZarrIndexer(zarr.storage.LocalStore(str(copy))).create_index()
    np.testing.assert_array_equal(root["region_index"][:], zarr.open_group(str(copy))["region_index"][:])


def test_init_vcz_empty_then_dask_to_zarr(tmp_path):
    """The lead's pipeline contract: init_vcz leaves call arrays empty (missing) and regular-chunked, and
    dask.array.to_zarr can fill them blockwise."""
    da = pytest.importorskip("dask.array")
    g, meta = make_data(m=50, n=32)  # dask.to_zarr rechunks to multiples of the zarr chunks ("auto")
    root = init_vcz(tmp_path / "e.vcz", chunks=(10, 8), **meta)
    assert root["call_genotype"].chunks == (10, 8, 2)
    assert root["call_genotype_phased"].chunks == (10, 8)
    assert (read_dosage(tmp_path / "e.vcz", 0, 50) == -1).all()  # unwritten chunks read as missing
    assert root["call_genotype_mask"][:].all()
    calls = da.from_array(vcz_mod.dosage_to_calls(g), chunks=(10, 8, 2))
    da.to_zarr(calls, root["call_genotype"])
    da.to_zarr(calls < 0, root["call_genotype_mask"])
    np.testing.assert_array_equal(read_dosage(tmp_path / "e.vcz", 0, 50), g)
    np.testing.assert_array_equal(root["call_genotype_mask"][:], vcz_mod.dosage_to_calls(g) < 0)


def test_missing_ids_are_synthesised(tmp_path):
    g, meta = make_data(m=5, n=4)
    meta["variant_id"] = [".", "rs1", "", ".", "rs5"]
    out = write_vcz(tmp_path / "x.vcz", g, **meta)
    info = open_vcz(out)
    pos, al = meta["variant_position"], meta["variant_allele"]
    assert info.variant_id[1] == "rs1" and info.variant_id[4] == "rs5"
    for i in (0, 2, 3):
        assert info.variant_id[i] == f"1:{pos[i]}:{al[i, 0]}:{al[i, 1]}"


# --------------------------------------------------------------------------------------------------------------
# other tools read what we write; we read what bio2zarr writes
# --------------------------------------------------------------------------------------------------------------


def test_vcztools_vcf_round_trips_through_bio2zarr(tmp_path):
    _tool("bgzip")
    _tool("tabix")
    from bio2zarr import vcf as b2z_vcf

    g, meta = make_data()
    store = write_vcz(tmp_path / "x.vcz", g, chunks=(16, 16), **meta)
    vcf = export_vcf(store, tmp_path / "x.vcf.gz")
    assert (tmp_path / "x.vcf.gz.tbi").stat().st_size > 0
    header = subprocess.run(["bgzip", "-dc", str(vcf)], capture_output=True, check=True).stdout.decode()
    assert "vcztools" not in header.split("#CHROM")[0]  # --no-version: deterministic header
    b2z_vcf.convert([str(vcf)], str(tmp_path / "back.vcz"))
    back = open_vcz(tmp_path / "back.vcz")
    assert back.sample_ids == meta["sample_ids"]
    np.testing.assert_array_equal(back.variant_position, meta["variant_position"])
    assert back.variant_allele[:, :2].tolist() == meta["variant_allele"].tolist()
    assert back.variant_id.tolist() == meta["variant_id"]
    np.testing.assert_array_equal(read_dosage(back, 0, 53), g)


def test_vcztools_plink_read_by_plink19(tmp_path):
    plink = _tool("plink1.9")
    g, meta = make_data(missing=0.0)
    store = write_vcz(tmp_path / "x.vcz", g, **meta)
    prefix = export_plink(store, tmp_path / "x", phenotype=[1, 2] * 18 + [1])
    fam = (tmp_path / "x.fam").read_text().splitlines()
    assert [ln.split("\t")[5] for ln in fam] == ["1", "2"] * 18 + ["1"]
    bim = [ln.split("\t") for ln in (tmp_path / "x.bim").read_text().splitlines()]
    assert [(b[4], b[5]) for b in bim] == [(a, r) for r, a in meta["variant_allele"].tolist()]  # A1=ALT, A2=REF
    r = subprocess.run([plink, "--bfile", str(prefix), "--freq", "--out", str(tmp_path / "f")], capture_output=True)
    assert r.returncode == 0, r.stdout.decode()[-2000:]
    rows = [ln.split() for ln in (tmp_path / "f.frq").read_text().splitlines()[1:]]
    maf = np.array([float(x[4]) for x in rows])
    alt = g.mean(axis=1) / 2
    np.testing.assert_allclose(maf, np.minimum(alt, 1 - alt), atol=1e-4)


def test_bio2zarr_store_opens(tmp_path):
    """A bio2zarr store from a coalescent VCF with multi-allelic sites and numeric ids opens and reads back."""
    import msprime
    from bio2zarr import vcf as b2z_vcf

    _tool("bgzip")
    ts = msprime.sim_ancestry(12, sequence_length=50_000, recombination_rate=1e-8, population_size=1e4, random_seed=3)
    ts = msprime.sim_mutations(ts, rate=3e-7, random_seed=4)  # JC69: a few sites get 3+ alleles
    with open(tmp_path / "t.vcf", "w") as f:
        ts.write_vcf(f)
    vcf_pos = [int(ln.split("\t", 2)[1]) for ln in (tmp_path / "t.vcf").read_text().splitlines() if ln[0] != "#"]
    subprocess.run(["bgzip", str(tmp_path / "t.vcf")], check=True)
    for fmt in (2, 3):
        out = tmp_path / f"t{fmt}.vcz"
        b2z_vcf.convert(
            [str(tmp_path / "t.vcf.gz")], str(out), variants_chunk_size=100, samples_chunk_size=5, zarr_format=fmt
        )
        info = open_vcz(out)
        assert info.zarr_format == fmt
        assert (info.n_variants, info.n_samples, info.ploidy) == (ts.num_sites, 12, 2)
        assert info.chunks == (100, 5)
        assert info.attrs["vcf_zarr_version"] == "0.5"
        np.testing.assert_array_equal(info.variant_position, vcf_pos)
        n_alleles = np.array(
            [len(set([s.ancestral_state] + [mu.derived_state for mu in s.mutations])) for s in ts.sites()]
        )
        assert (info.biallelic == (n_alleles == 2)).all() and (~info.biallelic).any()
        hap = ts.genotype_matrix()
        dosage = (hap[:, 0::2] > 0).astype(np.int8) + (hap[:, 1::2] > 0)
        np.testing.assert_array_equal(read_dosage(info, 0, ts.num_sites), dosage)


# --------------------------------------------------------------------------------------------------------------
# validation errors and atomicity
# --------------------------------------------------------------------------------------------------------------


def _broken_stores(tmp_path):
    g, meta = make_data(m=12, n=6)
    good = write_vcz(tmp_path / "good.vcz", g, **meta)
    cases = {}
    cases["missing"] = (tmp_path / "nope.vcz", "no such file")
    (tmp_path / "plain.txt").write_text("x")
    cases["file"] = (tmp_path / "plain.txt", "is a file")
    (tmp_path / "emptydir").mkdir()
    cases["not zarr"] = (tmp_path / "emptydir", "not a Zarr store")
    p = tmp_path / "nogt.vcz"
    shutil.copytree(good, p)
    shutil.rmtree(p / "call_genotype")
    cases["no call_genotype"] = (p, "missing array(s) call_genotype")
    p = tmp_path / "short.vcz"
    shutil.copytree(good, p)
    root = zarr.open_group(str(p), mode="r+")
    del root["variant_position"]
    root.create_array("variant_position", data=np.arange(11, dtype=np.int32))
    cases["short positions"] = (p, "variant_position has 11 entries but call_genotype has 12 variants")
    p = tmp_path / "dup.vcz"
    shutil.copytree(good, p)
    root = zarr.open_group(str(p), mode="r+")
    root["sample_id"][1] = "s000"
    cases["duplicate samples"] = (p, "duplicate sample id 's000'")
    p = tmp_path / "contig.vcz"
    shutil.copytree(good, p)
    root = zarr.open_group(str(p), mode="r+")
    root["variant_contig"][3] = 5
    cases["bad contig"] = (p, "variant_contig has values outside")
    return cases


def test_open_vcz_errors(tmp_path):
    for label, (path, fragment) in _broken_stores(tmp_path).items():
        with pytest.raises(InputError) as ei:
            open_vcz(path)
        assert_one_line(ei.value, path)
        assert fragment in str(ei.value), (label, str(ei.value))


def test_write_vcz_refuses_existing_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    g, meta = make_data(m=30, n=6)
    out = tmp_path / "x.vcz"
    out.mkdir()
    with pytest.raises(InputError, match="already exists"):
        write_vcz(out, g, **meta)
    out.rmdir()

    calls = []
    real = vcz_mod.write_calls

    def failing(root, v0, gt, phased=None):
        calls.append(v0)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(root, v0, gt, phased)

    monkeypatch.setattr(vcz_mod, "write_calls", failing)
    with pytest.raises(OSError, match="disk full"):
        write_vcz(out, g, chunks=(10, 6), **meta)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(vcz_mod, "write_calls", real)
    # overwrite replaces a previous store completely
    write_vcz(out, g, **meta)
    write_vcz(out, np.zeros_like(g), overwrite=True, **meta)
    assert (read_dosage(out, 0, 30) == 0).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.vcz"]


def test_write_vcz_rejects_bad_genotypes(tmp_path):
    g, meta = make_data(m=8, n=4)
    with pytest.raises(ValueError, match="shape"):
        write_vcz(tmp_path / "a.vcz", g[:, :3], **meta)
    bad = g.copy()
    bad[3, 1] = 3
    with pytest.raises(ValueError, match="0, 1, 2 or -1"):
        write_vcz(tmp_path / "b.vcz", bad, **meta)
    assert list(tmp_path.iterdir()) == []
