"""The CSV genotype-matrix layout: round trips, strict validation, the bundled real cohort."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import numpy as np
import pytest

from genoshare.errors import InputError
from genoshare.io.csvmatrix import GenotypeMatrix, read_matrix, validate_same_variants, write_matrix

REPO = Path(__file__).resolve().parents[1]
LACTOSE = REPO / "data" / "opensnp-lactose" / "data.csv.gz"


def _random(m=37, n=11, missing=0.1, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, size=(m, n)).astype(np.int8)
    g[rng.random((m, n)) < missing] = -1
    sids = [f"s{i}" for i in range(n)]
    vids = [f"1:{100 + 10 * j}" for j in range(m)]
    return sids, vids, g


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz"])
@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_round_trip(tmp_path, name, missing):
    sids, vids, g = _random(missing=missing)
    g[0, 0] = -1 if missing else 0  # a missing first cell
    g[-1, -1] = -1 if missing else 2  # a missing last cell of the last row
    p = tmp_path / name
    write_matrix(p, sids, vids, g)
    gm = read_matrix(p)
    assert isinstance(gm, GenotypeMatrix)
    assert gm.sample_ids == sids
    assert gm.variant_ids == vids
    assert gm.genotypes.dtype == np.int8
    assert gm.genotypes.shape == (len(vids), len(sids))  # variant-major
    np.testing.assert_array_equal(gm.genotypes, g)
    assert gm.id_column == "PATIENT_ID"
    assert gm.n_missing == int((g < 0).sum())
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    # nothing left behind in the directory but the output
    assert sorted(os.listdir(tmp_path)) == [name]


def test_file_layout_is_transposed_and_empty_for_missing(tmp_path):
    g = np.array([[0, 1], [2, -1], [1, 1]], dtype=np.int8)  # 3 SNPs x 2 individuals
    p = tmp_path / "x.csv"
    write_matrix(p, ["a", "b"], ["rs1", "rs2", "rs3"], g, id_column="IID")
    assert p.read_text() == "IID,rs1,rs2,rs3\na,0,2,1\nb,1,,1\n"


def test_gzip_is_deterministic(tmp_path):
    sids, vids, g = _random()
    write_matrix(tmp_path / "a.csv.gz", sids, vids, g)
    time.sleep(1.1)
    write_matrix(tmp_path / "b.csv.gz", sids, vids, g)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()


def test_ids_needing_quotes_round_trip(tmp_path):
    g = np.array([[0, 1]], dtype=np.int8)
    p = tmp_path / "q.csv"
    write_matrix(p, ["smith, j", 'o"neil'], ["rs1"], g)
    gm = read_matrix(p)
    assert gm.sample_ids == ["smith, j", 'o"neil']
    np.testing.assert_array_equal(gm.genotypes, g)


def test_lenient_spellings_accepted(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_bytes(b"\xef\xbb\xbfID,a,b,c\r\n x , 1.0,NA, 2 \r\ny,0,nan,\r\n\r\n")
    gm = read_matrix(p)
    assert gm.sample_ids == ["x", "y"]
    np.testing.assert_array_equal(gm.genotypes, [[1, 0], [-1, -1], [2, -1]])


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        write_matrix(tmp_path / "x.csv", ["a"], ["r1"], np.array([[3]]))
    with pytest.raises(ValueError):
        write_matrix(tmp_path / "x.csv", ["a", "a"], ["r1"], np.array([[0, 1]]))
    with pytest.raises(ValueError):
        write_matrix(tmp_path / "x.csv", ["a", "b"], ["r1"], np.array([[0], [1]]))  # sample-major by mistake
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- bad input


BAD = {
    # name: (file bytes, substrings the message must contain)
    "empty": (b"", ["empty file"]),
    "blank": (b"\n \n", ["empty file"]),
    "no_snp_columns": (b"PATIENT_ID\n1\n2\n", ["no SNP columns"]),
    "tab_separated": (b"ID\trs1\trs2\na\t0\t1\n", ["no SNP columns", "tab"]),
    "header_only": (b"ID,rs1,rs2\n", ["no individuals"]),
    "value_3": (b"ID,rs1,rs2\na,0,1\nb,3,1\n", ["'b'", "'rs1'", "'3'", "line 3"]),
    "value_minus_1": (b"ID,rs1,rs2\na,0,-1\n", ["'a'", "'rs2'", "'-1'"]),
    "value_1.5": (b"ID,rs1,rs2\na,0,1\nb,1,1.5\n", ["'b'", "'rs2'", "'1.5'"]),
    "non_numeric": (b"ID,rs1,rs2\na,AG,1\n", ["non-numeric", "'a'", "'rs1'", "'AG'"]),
    "dup_individual": (b"ID,rs1\nx,0\ny,1\nx,2\n", ["duplicate individual id", "'x'", "lines 2 and 4"]),
    "dup_snp": (b"ID,rs1,rs2,rs1\na,0,1,2\n", ["duplicate SNP id", "'rs1'"]),
    "empty_snp_name": (b"ID,rs1,,rs3\na,0,1,2\n", ["empty name"]),
    "ragged_short": (b"ID,rs1,rs2,rs3\na,0,1,2\nb,0,1\n", ["line 3", "'b'", "3 fields", "header has 4"]),
    "ragged_long": (b"ID,rs1,rs2\na,0,1,2\n", ["line 2", "'a'", "4 fields", "header has 3"]),
    "empty_id": (b"ID,rs1\n,1\n", ["empty individual id"]),
    "bad_quote": (b'ID,rs1\n"a,1\n', ["line 2", "not valid CSV"]),
    "not_utf8": (b"ID,rs1\n\xff\xfe,1\n", ["line 2", "UTF-8"]),
    "binary": (b"\x00\x01\x02ID,rs\n", ["binary"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("gz", [False, True])
def test_bad_input_raises_one_line_input_error(tmp_path, case, gz):
    data, needles = BAD[case]
    p = tmp_path / (f"{case}.csv.gz" if gz else f"{case}.csv")
    p.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    with pytest.raises(InputError) as ei:
        read_matrix(p)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p}: ")
    for needle in needles:
        assert needle in msg, (needle, msg)


def _assert_input_error(p, *needles):
    with pytest.raises(InputError) as ei:
        read_matrix(p)
    msg = str(ei.value)
    assert "\n" not in msg and str(p) in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def test_missing_path(tmp_path):
    _assert_input_error(tmp_path / "nope.csv", "no such file")


def test_directory_path(tmp_path):
    _assert_input_error(tmp_path, "directory")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read anything")
def test_unreadable_path(tmp_path):
    p = tmp_path / "secret.csv"
    p.write_text("ID,rs1\na,0\n")
    p.chmod(0)
    _assert_input_error(p, "permission")


def test_corrupt_gzip(tmp_path):
    sids, vids, g = _random(m=500, n=40)
    good = tmp_path / "good.csv.gz"
    write_matrix(good, sids, vids, g)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(data[: len(data) // 2])
    _assert_input_error(truncated, "gzip")
    flipped = bytearray(data)
    for k in range(40, 60):
        flipped[k] ^= 0xFF
    garbled = tmp_path / "garbled.csv.gz"
    garbled.write_bytes(bytes(flipped))
    _assert_input_error(garbled, "gzip")


def test_gz_suffix_without_gzip(tmp_path):
    p = tmp_path / "plain.csv.gz"
    p.write_text("ID,rs1\na,0\n")
    _assert_input_error(p, "not gzip")


# ---------------------------------------------------------------------------------------------- same variants


def test_validate_same_variants():
    g = np.zeros((3, 2), dtype=np.int8)
    a = GenotypeMatrix(["a", "b"], ["r1", "r2", "r3"], g)
    validate_same_variants(a, GenotypeMatrix(["c", "d"], ["r1", "r2", "r3"], g), "cohort.csv", "ref.csv")
    with pytest.raises(InputError) as ei:
        validate_same_variants(a, GenotypeMatrix(["c"], ["r1", "r2"], g[:2, :1]), "cohort.csv", "ref.csv")
    assert str(ei.value) == "ref.csv: has 2 SNP columns but cohort.csv has 3"
    with pytest.raises(InputError) as ei:
        validate_same_variants(a, GenotypeMatrix(["c", "d"], ["r1", "rX", "r3"], g), "cohort.csv", "ref.csv")
    msg = str(ei.value)
    assert msg.startswith("ref.csv: ") and "'rX'" in msg and "'r2'" in msg and "column 2" in msg
    with pytest.raises(InputError) as ei:
        validate_same_variants(a, GenotypeMatrix(["c", "d"], ["r1", "r3", "r2"], g), "cohort.csv", "ref.csv")
    assert "different order" in str(ei.value)


# ---------------------------------------------------------------------------------------------- real data + speed


def test_real_lactose_cohort():
    gm = read_matrix(LACTOSE)
    assert gm.genotypes.shape == (9091, 60)
    assert len(gm.sample_ids) == 60 and len(set(gm.sample_ids)) == 60
    assert len(gm.variant_ids) == 9091
    assert set(np.unique(gm.genotypes).tolist()) == {0, 1, 2}
    assert gm.n_missing == 0


def test_real_cohort_and_reference_have_same_snps():
    ref = LACTOSE.with_name("reference.csv.gz")
    a, b = read_matrix(LACTOSE), read_matrix(ref)
    validate_same_variants(a, b, LACTOSE, ref)
    assert not set(a.sample_ids) & set(b.sample_ids)


def test_round_trip_at_benchmark_size(tmp_path):
    """Correctness at the 401 x 28,396 size (speed is measured by `make bench`, not asserted here)."""
    rng = np.random.default_rng(1)
    m, n = 28_396, 401
    g = rng.choice(np.array([0, 1, 2], dtype=np.int8), p=[0.5, 0.35, 0.15], size=(m, n))
    g[rng.random((m, n)) < 0.001] = -1
    sids = [f"ind{i:05d}" for i in range(n)]
    vids = [f"1:{1000 + 7 * j}" for j in range(m)]
    p = tmp_path / "big.csv.gz"
    write_matrix(p, sids, vids, g)
    gm = read_matrix(p)
    np.testing.assert_array_equal(gm.genotypes, g)
    assert gm.sample_ids == sids and gm.variant_ids == vids
