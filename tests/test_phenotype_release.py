"""Phenotypes in a release (--phenotypes FILE, --release-phenotype COL[:rr=EPS]): the table and the columns listed."""

from __future__ import annotations

import re

import numpy as np
import pytest

from genoshare.errors import GenoshareError, InputError
from genoshare.io.phenotypes import (
    ColumnRequest,
    parse_release_specs,
    prepare_phenotypes,
    read_phenotype_table,
)
from genoshare.privacy.phenotype import derive_phenotype_key, randomize_binary


# ------------------------------------------------------------------------------------------------------------------
# the table and the specs


def test_separators_id_column_fid_and_missing(tmp_path):
    tab = tmp_path / "a.tsv"
    tab.write_text("#FID\tIID\tcase\tage\n f1 \tA\t2\t43.5\nf2\tB\t-9\t\nf3\tC\tNA\t-9\n")
    t = read_phenotype_table(tab)
    assert t.id_column == "IID" and t.columns == ["case", "age"]  # FID is not a releasable column
    assert t.ids == ["A", "B", "C"]
    assert t.values == {"case": ["2", None, None], "age": ["43.5", None, None]}

    comma = tmp_path / "b.csv"
    comma.write_text('age,sample_id,note\n30,x,"a, b"\n,y,c\n')
    t = read_phenotype_table(comma)
    assert t.id_column == "sample_id" and t.ids == ["x", "y"] and t.values["note"] == ["a, b", "c"]
    assert t.values["age"] == ["30", None]

    ws = tmp_path / "c.txt"
    ws.write_text("person  bmi   status\np1  22.1  1\np2  nan   0\n")
    t = read_phenotype_table(ws)  # no IID/sample_id/sample/id header: the first column
    assert t.id_column == "person" and t.columns == ["bmi", "status"] and t.values["bmi"] == ["22.1", None]


@pytest.mark.parametrize("values, coding", [
    (["0", "1", "1", None], "01"),
    (["1", "2", None], "plink"),
    (["0", "1", "2"], "plink"),  # PLINK: 0 is missing
    (["1.0", "2.00"], "plink"),
    (["1", "1"], "01"),
    (["0", "1", "3"], None),
    (["case", "control"], None),
    ([None, None], None),
])
def test_binary_coding(tmp_path, values, coding):
    f = tmp_path / "p.tsv"
    f.write_text("id\tx\n" + "".join(f"s{i}\t{'NA' if v is None else v}\n" for i, v in enumerate(values)))
    assert read_phenotype_table(f).binary_coding("x") == coding


def test_coding_is_decided_on_the_whole_file(tmp_path):
    """A PLINK-coded file whose cohort rows hold only 1s (controls) must not turn them into 0/1 cases."""
    f = tmp_path / "p.tsv"
    f.write_text("IID\tcase\nin1\t1\nin2\t1\nout1\t2\n")
    plan = prepare_phenotypes(f, ["case"])
    released = plan.apply(["in1", "in2"], bytes(32))
    assert released.columns["case"] == ["1", "1"]
    codes, fam = released.fam_phenotype()
    assert codes == [1, 1] and fam["column"] == "case"  # controls in the .fam, not cases


def test_specs():
    assert parse_release_specs(["age", "case:rr=1.5", "a:b"]) == [
        ColumnRequest("age"), ColumnRequest("case", 1.5), ColumnRequest("a:b")]
    for bad, msg in ((["case", "case:rr=1"], "twice"), (["case:rr=x"], "rr= takes an epsilon"),
                     (["case:rr=0"], "positive"), (["case:rr=-1"], "positive"), ([":rr=1"], "no column name")):
        with pytest.raises(GenoshareError, match=msg):
            parse_release_specs(bad)


@pytest.fixture
def table(tmp_path):
    f = tmp_path / "pheno.tsv"
    f.write_text("FID\tIID\tcase\tage\nf\ta\t2\t40\nf\tb\t1\t50.5\nf\tc\t1\tNA\nf\tz\t2\t33\n")
    return f


@pytest.mark.parametrize("specs, fragment", [
    (["nope"], "no column 'nope' (columns: case, age)"),
    (["age:rr=1"], "column 'age' is not binary (line 2 has '40')"),
    (["IID"], "sample id"),
    (["FID"], "sample id / family id"),
    (["case", "case:rr=1"], "lists column 'case' twice"),
    (["case:rr=50"], "at most 44"),
])
def test_request_errors_name_the_file(table, specs, fragment):
    with pytest.raises(GenoshareError) as e:
        prepare_phenotypes(table, specs)
    assert fragment in str(e.value)
    if fragment != "at most 44":
        assert str(table) in str(e.value)


@pytest.mark.parametrize("text, fragment", [
    ("", "empty file"),
    ("IID\tcase\n", "no individuals"),
    ("IID\tcase\na\t1\nb\t2\na\t1\n", "duplicate sample id 'a' (lines 2 and 4)"),
    ("IID\tcase\na\t1\t3\n", "line 2 has 3 fields, the header 2"),
    ("IID\tcase\tcase\na\t1\t1\n", "names column 'case' twice"),
])
def test_bad_tables(tmp_path, text, fragment):
    f = tmp_path / "bad.tsv"
    f.write_text(text)
    with pytest.raises(InputError, match=re.escape(fragment)) as e:
        prepare_phenotypes(f, ["case"])
    assert e.value.path == str(f)


def test_listing_needs_the_file_and_nothing_is_released_unless_listed(table):
    with pytest.raises(GenoshareError, match="needs --phenotypes"):
        prepare_phenotypes(None, ["case"])
    plan = prepare_phenotypes(table, [])
    assert not plan.released and plan.privacy_entry() is None


def test_apply_matches_by_id_and_addresses_by_cohort_index(table):
    plan = prepare_phenotypes(table, ["case:rr=0.5", "age"])
    cohort = ["c", "x", "a", "b"]  # x has no row; z is not in the cohort
    master = bytes(range(32))
    rel = plan.apply(cohort, master)
    assert rel.n_without_row == 1 and rel.n_dropped == 1
    assert rel.columns["age"] == ["NA", "NA", "40", "50.5"]
    # randomized response on the cohort-ordered 0/1 values, individual i at offset 8 i of the column's stream
    truth = np.array([0, np.nan, 1, 0])  # PLINK 1 -> 0, 2 -> 1
    key = derive_phenotype_key(master)
    for i in range(4):
        one = randomize_binary(truth[i:i + 1], 0.5, key, "case", s0=i)[0]
        want = "NA" if np.isnan(one) else str(int(one) + 1)
        assert rel.columns["case"][i] == want
    entry = rel.manifest_entry()
    assert entry["cohort_without_row"] == 1 and entry["rows_not_in_cohort_dropped"] == 1
    assert [c["n_missing"] for c in entry["columns"]] == [1, 2]


def test_fam_column_only_when_exactly_one_binary(table):
    both = prepare_phenotypes(table, ["case:rr=1", "age"]).apply(["a", "b"], bytes(32))
    codes, fam = both.fam_phenotype()
    assert fam["column"] == "case" and set(codes) <= {1, 2}
    two = table.parent / "two.tsv"
    two.write_text("IID\tcase\tsmoker\na\t2\t0\nb\t1\t1\n")
    rel = prepare_phenotypes(two, ["case:rr=1", "smoker"]).apply(["a", "b"], bytes(32))
    codes, fam = rel.fam_phenotype()
    assert codes is None and fam["column"] is None and "2 released columns are binary" in fam["note"]
    rel = prepare_phenotypes(table, ["age"]).apply(["a", "b"], bytes(32))
    assert rel.fam_phenotype()[0] is None and "no released column is binary" in rel.fam_phenotype()[1]["note"]
