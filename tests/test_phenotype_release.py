"""Phenotypes in a release (--phenotypes FILE, --release-phenotype COL[:rr=EPS]): the table, the columns listed,
randomized response against its accounted flip rate, clear columns as given, both engines, the PLINK .fam, the
accounting (manifest total, ledger, budget) and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tools import require_tool
from scipy import stats

from genoshare.errors import GenoshareError, InputError
from genoshare.io.phenotypes import (
    PHENOTYPES_FILE,
    ColumnRequest,
    parse_release_specs,
    prepare_phenotypes,
    read_phenotype_table,
)
from genoshare.privacy.checkrelease import check_release
from genoshare.privacy.phenotype import derive_phenotype_key, randomize_binary

ROOT = Path(__file__).resolve().parents[1]
LACTOSE = ROOT / "data" / "opensnp-lactose"
GENOSHARE = [sys.executable, "-m", "genoshare.cli"]
ALARM = 1e-6  # false-alarm rate of every statistical test here


def run(*args):
    return subprocess.run([*GENOSHARE, *map(str, args)], capture_output=True, text=True, timeout=300)


def read_tsv(path) -> tuple[list[str], list[list[str]]]:
    rows = [ln.split("\t") for ln in Path(path).read_text().splitlines()]
    return rows[0], rows[1:]


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


@pytest.mark.parametrize(
    "values, coding",
    [
        (["0", "1", "1", None], "01"),
        (["1", "2", None], "plink"),
        (["0", "1", "2"], "plink"),  # PLINK: 0 is missing
        (["1.0", "2.00"], "plink"),
        (["1", "1"], "01"),
        (["0", "1", "3"], None),
        (["case", "control"], None),
        ([None, None], None),
    ],
)
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
        ColumnRequest("age"),
        ColumnRequest("case", 1.5),
        ColumnRequest("a:b"),
    ]
    for bad, msg in (
        (["case", "case:rr=1"], "twice"),
        (["case:rr=x"], "rr= takes an epsilon"),
        (["case:rr=0"], "positive"),
        (["case:rr=-1"], "positive"),
        ([":rr=1"], "no column name"),
    ):
        with pytest.raises(GenoshareError, match=msg):
            parse_release_specs(bad)


@pytest.fixture
def table(tmp_path):
    f = tmp_path / "pheno.tsv"
    f.write_text("FID\tIID\tcase\tage\nf\ta\t2\t40\nf\tb\t1\t50.5\nf\tc\t1\tNA\nf\tz\t2\t33\n")
    return f


@pytest.mark.parametrize(
    "specs, fragment",
    [
        (["nope"], "no column 'nope' (columns: case, age)"),
        (["age:rr=1"], "column 'age' is not binary (line 2 has '40')"),
        (["IID"], "sample id"),
        (["FID"], "sample id / family id"),
        (["case", "case:rr=1"], "lists column 'case' twice"),
        (["case:rr=50"], "at most 44"),
    ],
)
def test_request_errors_name_the_file(table, specs, fragment):
    with pytest.raises(GenoshareError) as e:
        prepare_phenotypes(table, specs)
    assert fragment in str(e.value)
    if fragment != "at most 44":
        assert str(table) in str(e.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty file"),
        ("IID\tcase\n", "no individuals"),
        ("IID\tcase\na\t1\nb\t2\na\t1\n", "duplicate sample id 'a' (lines 2 and 4)"),
        ("IID\tcase\na\t1\t3\n", "line 2 has 3 fields, the header 2"),
        ("IID\tcase\tcase\na\t1\t1\n", "names column 'case' twice"),
    ],
)
def test_bad_tables(tmp_path, text, fragment):
    f = tmp_path / "bad.tsv"
    f.write_text(text)
    with pytest.raises(InputError, match=re.escape(fragment)) as e:
        prepare_phenotypes(f, ["case"])
    assert e.value.path == str(f)


def test_a_column_named_like_the_output_id_column_is_refused(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("IID\tsample_id\tcase\na\tx\t1\n")
    assert prepare_phenotypes(f, ["case"]).released
    with pytest.raises(InputError, match="cannot be a column of phenotypes.tsv"):
        prepare_phenotypes(f, ["sample_id"])


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
        one = randomize_binary(truth[i : i + 1], 0.5, key, "case", s0=i)[0]
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


# ------------------------------------------------------------------------------------------------------------------
# CSV engine: a cohort of a few thousand individuals (few SNPs: the phenotype is what is tested)

N = 3000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(11)
    m = 12
    header = "PATIENT_ID," + ",".join(f"rs{j}" for j in range(m))
    ids = [f"p{i:05d}" for i in range(N)]
    for name, rows in (("cohort", ids), ("panel", [f"r{i}" for i in range(120)])):
        G = rng.integers(0, 3, (len(rows), m))
        (d / f"{name}.csv").write_text(
            header + "\n" + "\n".join(f"{s}," + ",".join(map(str, g)) for s, g in zip(rows, G)) + "\n"
        )
    # the table: shuffled, 50 cohort individuals without a row, 40 rows of other people, missing in every form
    present = [s for s in ids if s not in set(ids[100:150])]
    rows = present + [f"other{i}" for i in range(40)]
    order = rng.permutation(len(rows))
    case = rng.choice(["1", "2", "1", "2", "-9", "0"], len(rows), p=[0.4, 0.4, 0.05, 0.05, 0.05, 0.05])
    smoker = rng.choice(["0", "1", "NA"], len(rows), p=[0.6, 0.35, 0.05])
    age = [f"{a:.1f}" for a in rng.uniform(18, 90, len(rows))]
    for i in rng.choice(len(rows), 60, replace=False):
        age[i] = rng.choice(["NA", "", "-9"])
    lines = ["FID\tIID\tcase\tsmoker\tage\tsecret_note"]
    lines += [f"fam{k}\t{rows[k]}\t{case[k]}\t{smoker[k]}\t{age[k]}\tdo-not-release-{k}" for k in order]
    (d / "pheno.tsv").write_text("\n".join(lines) + "\n")
    truth = {rows[k]: (case[k], smoker[k], age[k]) for k in range(len(rows))}
    return {"dir": d, "ids": ids, "truth": truth}


def _release_csv(big, out, specs, seed=5, **kw):
    from genoshare.api import release_csv

    kw.setdefault("private_dir", Path(out).parent / "priv")  # module fixtures run outside the per-test private dir
    return release_csv(
        big["dir"] / "cohort.csv",
        big["dir"] / "panel.csv",
        30.0,
        out,
        seed=seed,
        relatives="skip",
        phenotypes=big["dir"] / "pheno.tsv",
        release_phenotype=specs,
        **kw,
    )


@pytest.fixture(scope="module")
def csv_release(big, tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "rel"
    man = _release_csv(big, out, ["case:rr=1", "smoker:rr=0.5", "age"], af_source="dp:1")
    return out, man


def test_randomized_flip_rate_matches_the_accounted_probability(big, csv_release):
    out, man = csv_release
    header, rows = read_tsv(out / PHENOTYPES_FILE)
    assert header == ["sample_id", "case", "smoker", "age"]  # listed columns only, in the order listed
    assert [r[0] for r in rows] == big["ids"]
    stage = {c["name"]: c for c in man["privacy"]["phenotype"]["randomized"]}
    for col, k, to01 in (("case", 1, {"1": 0, "2": 1}), ("smoker", 2, {"0": 0, "1": 1})):
        q = stage[col]["flip_probability"]
        assert q == pytest.approx(1 / (1 + np.exp(stage[col]["epsilon_requested"])), rel=1e-9)
        flips = n = 0
        per_value = {0: [0, 0], 1: [0, 0]}
        for r in rows:
            t = big["truth"].get(r[0])
            true = None if t is None else to01.get(t[k - 1])
            if true is None:
                assert r[k] == "NA"  # missing (also PLINK's 0, and no row at all) stays missing, never flipped
                continue
            assert r[k] in to01  # written back in the coding it came in
            flipped = to01[r[k]] != true
            flips += flipped
            n += 1
            per_value[true][flipped] += 1
        assert n > 2500
        assert stats.binomtest(flips, n, q).pvalue > ALARM, (col, flips, n, q)
        assert stats.chi2_contingency([per_value[0], per_value[1]])[1] > ALARM  # same rate for 0s and 1s


def test_clear_columns_equal_the_input_and_counts(big, csv_release):
    out, man = csv_release
    _, rows = read_tsv(out / PHENOTYPES_FILE)
    for r in rows:
        t = big["truth"].get(r[0])
        want = "NA" if t is None or t[2] in ("NA", "", "-9") else t[2]
        assert r[3] == want
    ph = man["phenotypes"]
    assert ph["cohort_without_row"] == 50 and ph["rows_not_in_cohort_dropped"] == 40
    assert ph["source"].endswith("pheno.tsv") and "plink_fam" not in ph  # no PLINK export in the CSV engine
    assert man["inputs"]["phenotypes"] == {"name": "pheno.tsv"}  # path and SHA-256: in the owner's ledger
    assert ph["source"] == "pheno.tsv"
    assert "do-not-release" not in (out / PHENOTYPES_FILE).read_text() + (out / "manifest.json").read_text()
    text = man["privacy"]["phenotypes"]
    assert "pheno.tsv" in text and "50 cohort individual(s)" in text and "40 row(s)" in text
    assert "'age' in the clear" in text


def test_manifest_total_is_xor_plus_af_plus_phenotype(csv_release):
    _, man = csv_release
    p = man["privacy"]
    assert p["phenotype"]["epsilon"] == pytest.approx(1.5, abs=1e-9) and p["phenotype"]["epsilon"] <= 1.5
    assert p["af"]["epsilon"] == pytest.approx(1.0)
    assert p["total"]["epsilon"] == pytest.approx(
        p["xor"]["epsilon"] + p["af"]["epsilon"] + p["phenotype"]["epsilon"], rel=1e-12
    )
    assert p["phenotype"]["in_clear"] == ["age"] and "not protected" in p["phenotype"]["statement"]
    assert any(nc["stage"] == "phenotype" for nc in p["total"]["not_covered"])


def test_ledger_row_and_check_release(csv_release):
    from genoshare.privacy.ledger import Ledger

    out, man = csv_release
    assert check_release(out).ok
    rows = Ledger.open(out.parent / "priv").releases()
    row = next(r for r in rows if r.output_dir == str(out.absolute()))
    assert row.stages["phenotype"]["epsilon"] == pytest.approx(man["privacy"]["phenotype"]["epsilon"])
    assert row.stages["phenotype"].get("dp") is False  # 'age' is in the clear: not (fully) covered


def test_same_seed_same_phenotypes_other_seed_other_flips(big, csv_release, tmp_path):
    out, _ = csv_release
    again = tmp_path / "again"
    _release_csv(big, again, ["case:rr=1", "smoker:rr=0.5", "age"], af_source="dp:1")
    assert (again / PHENOTYPES_FILE).read_bytes() == (out / PHENOTYPES_FILE).read_bytes()
    other = tmp_path / "other"
    _release_csv(big, other, ["case:rr=1", "smoker:rr=0.5", "age"], seed=6, af_source="dp:1")
    a, b = read_tsv(out / PHENOTYPES_FILE)[1], read_tsv(other / PHENOTYPES_FILE)[1]
    assert [r[1] for r in a] != [r[1] for r in b] and [r[3] for r in a] == [r[3] for r in b]


def test_budget_refusal_counts_the_phenotype_epsilon(big, tmp_path, monkeypatch):
    notes = []
    plain = _release_csv(big, tmp_path / "plain", [], private_dir=tmp_path / "p1", notify=notes.append)
    assert not (tmp_path / "plain" / PHENOTYPES_FILE).exists() and "phenotypes" not in plain
    assert any("nothing from" in n for n in notes)  # --phenotypes alone releases nothing
    assert plain["privacy"]["phenotypes"] == "no phenotypes or covariates are released"
    t0 = plain["privacy"]["total"]["epsilon"]
    # a fresh ledger: the XOR stage alone fits the budget, with the phenotype's 2 it does not
    with pytest.raises(GenoshareError, match="budget"):
        _release_csv(big, tmp_path / "refused", ["case:rr=2"], private_dir=tmp_path / "p2", budget=t0 + 1.0)
    assert not (tmp_path / "refused").exists()
    man = _release_csv(big, tmp_path / "fits", ["case:rr=2"], private_dir=tmp_path / "p2", budget=t0 + 2.0)
    assert man["privacy"]["total"]["epsilon"] == pytest.approx(t0 + 2.0, abs=1e-9)


# ------------------------------------------------------------------------------------------------------------------
# the command line: real lactose cohort (all 60 are cases: data/opensnp-lactose/README.md), and errors


@pytest.fixture(scope="module")
def lactose_pheno(tmp_path_factory):
    import gzip

    d = tmp_path_factory.mktemp("lac")
    with gzip.open(LACTOSE / "data.csv.gz", "rt") as fh:
        ids = [ln.split(",", 1)[0] for ln in fh.read().splitlines()[1:]]
    (d / "lactose.tsv").write_text("IID\tlactose_intolerant\n" + "".join(f"{s}\t2\n" for s in ids))
    (d / "dup.tsv").write_text("IID\tlactose_intolerant\n" + "".join(f"{s}\t2\n" for s in ids + ids[:1]))
    return d


def test_cli_release_on_the_real_cohort(lactose_pheno, tmp_path):
    out = tmp_path / "rel"
    p = run(
        "release",
        LACTOSE / "data.csv.gz",
        "--reference",
        LACTOSE / "reference.csv.gz",
        "--epsilon",
        9091,
        "--out",
        out,
        "--seed",
        1,
        "--phenotypes",
        lactose_pheno / "lactose.tsv",
        "--release-phenotype",
        "lactose_intolerant:rr=2",
        "--private-dir",
        tmp_path / "priv",
    )
    assert p.returncode == 0, p.stderr
    assert "phenotypes: lactose_intolerant (randomized response) -> phenotypes.tsv" in p.stdout
    header, rows = read_tsv(out / PHENOTYPES_FILE)
    assert header == ["sample_id", "lactose_intolerant"] and len(rows) == 60
    released = [r[1] for r in rows]
    assert set(released) <= {"1", "2"}  # PLINK coding kept; every case shown as control is a flip
    assert stats.binomtest(released.count("1"), 60, 1 / (1 + np.exp(2))).pvalue > ALARM
    chk = run("check-release", out)
    assert chk.returncode == 0 and "PASS" in chk.stdout


def _one_line_error(p, *words):
    assert p.returncode == 2, (p.returncode, p.stderr)
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("genoshare: error:")]
    assert len(errors) == 1 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--release-phenotype", "lactose_intolerant"],
            ["--release-phenotype 'lactose_intolerant' needs --phenotypes"],
        ),
        (["--phenotypes", "{d}/lactose.tsv", "--release-phenotype", "age"], ["lactose.tsv", "no column 'age'"]),
        (
            ["--phenotypes", "{d}/dup.tsv", "--release-phenotype", "lactose_intolerant"],
            ["dup.tsv", "duplicate sample id"],
        ),
        (["--phenotypes", "{d}/lactose.tsv", "--release-phenotype", "IID:rr=1"], ["lactose.tsv", "sample id"]),
        (
            [
                "--phenotypes",
                "{d}/lactose.tsv",
                "--release-phenotype",
                "lactose_intolerant",
                "--release-phenotype",
                "lactose_intolerant:rr=1",
            ],
            ["lactose.tsv", "twice"],
        ),
        (
            ["--phenotypes", "{d}/lactose.tsv", "--release-phenotype", "lactose_intolerant:rr=x"],
            ["rr= takes an epsilon"],
        ),
        (
            ["--phenotypes", "{d}/missing.tsv", "--release-phenotype", "lactose_intolerant"],
            ["missing.tsv: no such file"],
        ),
    ],
)
def test_cli_errors_are_one_line_and_leave_nothing(lactose_pheno, tmp_path, args, words):
    out = tmp_path / "rel"
    args = [a.replace("{d}", str(lactose_pheno)) for a in args]
    p = run(
        "release",
        LACTOSE / "data.csv.gz",
        "--reference",
        LACTOSE / "reference.csv.gz",
        "--epsilon",
        9091,
        "--out",
        out,
        "--private-dir",
        tmp_path / "priv",
        *args,
    )
    _one_line_error(p, *words)
    assert not out.exists() and sorted(f.name for f in tmp_path.iterdir()) in ([], ["priv"])


def test_cli_non_binary_rr_on_the_store_engine(tmp_path):
    from genoshare.simulate import simulate_cohort

    sim = tmp_path / "sim"
    simulate_cohort(sim, cases=5, controls=5, panel=10, variants=50, seed=1, holdout=0, formats=("plink",))
    (tmp_path / "covariates.csv").write_text("IID,bmi\n" + "".join(f"ind{i:05d},2{i}.5\n" for i in range(1, 11)))
    out = tmp_path / "rel"
    p = run(
        "release",
        sim / "cohort.bed",
        "--reference",
        sim / "panel.bed",
        "--epsilon",
        50,
        "--out",
        out,
        "--phenotypes",
        tmp_path / "covariates.csv",
        "--release-phenotype",
        "bmi:rr=1",
    )
    _one_line_error(p, "covariates.csv", "column 'bmi' is not binary (line 2 has '21.5')")
    assert not out.exists() and not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


# ------------------------------------------------------------------------------------------------------------------
# store engine: same flips as the CSV engine, independent of chunking, the PLINK .fam


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    from genoshare.api import release_csv, release_store
    from genoshare.simulate import simulate_cohort

    base = tmp_path_factory.mktemp("engines")
    sim = base / "sim"
    simulate_cohort(sim, cases=40, controls=40, panel=60, variants=300, seed=9, holdout=0, formats=("csv", "plink"))
    header, rows = read_tsv(sim / "phenotype.tsv")
    (base / "pheno.tsv").write_text(
        "\t".join([*header, "age"]) + "\n" + "".join(f"{r[0]}\t{r[1]}\t{20 + i % 50}\n" for i, r in enumerate(rows))
    )
    opts = dict(
        seed=7,
        relatives="skip",
        private_dir=base / "priv",
        phenotypes=base / "pheno.tsv",
        release_phenotype=["phenotype:rr=1", "age"],
    )
    out = {}
    for name, samples in (("s16", 16), ("s32", 32)):
        out[name] = base / name
        release_store(
            sim / "cohort.bed",
            sim / "panel.bed",
            300.0,
            out[name],
            chunk_samples=samples,
            workers=1,
            exports=("plink",),
            **opts,
        )
    out["csv"] = base / "csv"
    release_csv(sim / "cohort.csv.gz", sim / "panel.csv.gz", 300.0, out["csv"], **opts)
    return out


def test_engines_and_chunkings_give_identical_phenotypes(engines):
    ref = (engines["csv"] / PHENOTYPES_FILE).read_bytes()
    assert (engines["s16"] / PHENOTYPES_FILE).read_bytes() == ref
    assert (engines["s32"] / PHENOTYPES_FILE).read_bytes() == ref
    assert json.loads((engines["s16"] / "manifest.json").read_text())["sample_block"] == 16


def test_fam_carries_the_released_phenotype_and_check_release_passes(engines, tmp_path):
    d = engines["s16"]
    _, rows = read_tsv(d / PHENOTYPES_FILE)
    fam = [ln.split() for ln in (d / "release.fam").read_text().splitlines()]
    assert [f[1] for f in fam] == [r[0] for r in rows]
    assert [f[5] for f in fam] == [r[1] for r in rows]  # PLINK coding in both
    man = json.loads((d / "manifest.json").read_text())
    assert man["phenotypes"]["plink_fam"]["column"] == "phenotype"
    assert check_release(d).ok
    plink = require_tool("plink1.9", "plink")
    res = subprocess.run(
        [plink, "--bfile", str(d / "release"), "--assoc", "--allow-no-sex", "--out", str(tmp_path / "assoc")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    cases = sum(r[1] == "2" for r in rows)
    assert f"{cases} are cases and {len(rows) - cases} are controls" in res.stdout
    assert len((tmp_path / "assoc.assoc").read_text().splitlines()) == 1 + man["n_variants"]
