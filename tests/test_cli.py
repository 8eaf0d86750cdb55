"""The command line as a user meets it: real subprocesses, real files."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LACTOSE = ROOT / "data" / "opensnp-lactose"
GENOSHARE = [sys.executable, "-m", "genoshare.cli"]


def run(*args, check=False):
    proc = subprocess.run([*GENOSHARE, *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def write_csv(path, rows, header=None):
    header = header or ["PATIENT_ID"] + [f"rs{j}" for j in range(len(rows[0]) - 1)]
    text = "\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n"
    Path(path).write_text(text)
    return path


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(0)
    cohort = [[f"c{i}", *rng.integers(0, 3, 30)] for i in range(25)]
    panel = [[f"r{i}", *rng.integers(0, 3, 30)] for i in range(40)]
    return write_csv(tmp_path / "cohort.csv", cohort), write_csv(tmp_path / "panel.csv", panel)


def test_release_and_evaluate_end_to_end(tmp_path, small):
    cohort, panel = small
    out = tmp_path / "rel"
    p = run("release", cohort, "--reference", panel, "--epsilon", 40, "--out", out, "--seed", 1, check=True)
    assert "true (XOR stage)" in p.stdout
    assert sorted(os.listdir(out)) == ["manifest.json", "release.csv.gz"]
    man = json.loads((out / "manifest.json").read_text())
    for key in [
        "version",
        "inputs",
        "n_samples",
        "n_variants",
        "epsilon_requested",
        "epsilon_xor",
        "epsilon_nominal",
        "calibration",
        "zero_cell",
        "window",
        "af_source",
        "flips",
        "timings",
    ]:
        assert key in man
    assert man["n_samples"] == 25 and man["n_variants"] == 30
    assert abs(man["epsilon_xor"] - 40) <= 40e-6
    assert man["inputs"]["cohort"] == {"name": "cohort.csv", "format": "csv"}  # path and hash: in the ledger
    assert len(man["inputs"]["reference"]["sha256"]) == 64 and len(man["release_digest"]) == 64
    text = (out / "manifest.json").read_text()
    assert "seed" not in json.dumps({k: v for k, v in man.items() if k != "warning"}).lower()
    with gzip.open(out / "release.csv.gz", "rt") as f:
        lines = f.read().splitlines()
    assert lines[0] == Path(cohort).read_text().splitlines()[0]
    assert [ln.split(",")[0] for ln in lines[1:]] == [f"c{i}" for i in range(25)]
    ev = run("evaluate", "--original", cohort, "--release", out, check=True)
    metrics = json.loads(ev.stdout)
    assert set(metrics) == {"point_error", "sample_error", "mean_error", "variance_error"}
    assert 0 < metrics["point_error"] < 1
    assert "warning" in man and "not for sharing" in man["warning"]
    assert "not for sharing" in p.stderr
    del text


def test_same_seed_same_bytes_and_no_seed_is_random(tmp_path, small):
    cohort, panel = small
    outs = []
    for name, extra in [("a", ["--seed", 9]), ("b", ["--seed", 9]), ("c", []), ("d", [])]:
        run("release", cohort, "--reference", panel, "--epsilon", 30, "--out", tmp_path / name, *extra, check=True)
        outs.append((tmp_path / name / "release.csv.gz").read_bytes())
    assert outs[0] == outs[1]
    assert outs[2] != outs[3]
    man = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert man["reproducible_test_release"] is False and "warning" not in man


def test_public_af_source(tmp_path, small):
    cohort, panel = small
    af = tmp_path / "af.tsv"
    af.write_text("id\taf\n" + "".join(f"rs{j}\t{0.1 + 0.02 * j:.3f}\n" for j in range(30)))
    out = tmp_path / "rel"
    run(
        "release",
        cohort,
        "--reference",
        panel,
        "--epsilon",
        30,
        "--out",
        out,
        "--seed",
        2,
        "--af-source",
        f"public:{af}",
        check=True,
    )
    man = json.loads((out / "manifest.json").read_text())
    assert man["af_source"]["kind"] == "public" and "af_file" in man["inputs"]


def _bad_cases(tmp_path, cohort, panel):
    rows = Path(cohort).read_text().splitlines()

    def variant(name, edit):
        p = tmp_path / name
        lines = list(rows)
        edit(lines)
        p.write_text("\n".join(lines) + "\n")
        return p

    three = variant("three.csv", lambda ls: ls.__setitem__(3, ls[3].rsplit(",", 1)[0] + ",3"))
    word = variant("word.csv", lambda ls: ls.__setitem__(4, ls[4].rsplit(",", 1)[0] + ",AG"))
    dup = variant("dup.csv", lambda ls: ls.__setitem__(5, ls[2].split(",", 1)[0] + "," + ls[5].split(",", 1)[1]))
    short_panel = tmp_path / "short_panel.csv"
    short_panel.write_text("\n".join(",".join(r.split(",")[:-2]) for r in Path(panel).read_text().splitlines()) + "\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(gzip.compress(Path(cohort).read_bytes())[:60])
    return [
        ("value 3", [three, "--reference", panel], three, "3"),
        ("non-numeric", [word, "--reference", panel], word, "AG"),
        ("duplicate ids", [dup, "--reference", panel], dup, "duplicate"),
        ("snp count", [cohort, "--reference", short_panel], short_panel, "28"),
        ("empty", [empty, "--reference", panel], empty, "empty"),
        ("missing path", [tmp_path / "nope.csv", "--reference", panel], tmp_path / "nope.csv", ""),
        ("directory", [tmp_path, "--reference", panel], tmp_path, "directory"),
        ("truncated gzip", [truncated, "--reference", panel], truncated, "gzip"),
        ("empty panel", [cohort, "--reference", empty], empty, "empty"),
    ]


def test_bad_input_gives_one_line_error_and_no_output(tmp_path, small):
    cohort, panel = small
    for label, args, culprit, word in _bad_cases(tmp_path, cohort, panel):
        out = tmp_path / f"out-{label.replace(' ', '_')}"
        p = run("release", *args, "--epsilon", 10, "--out", out)
        assert p.returncode != 0, label
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, (label, p.stderr)
        assert str(culprit) in lines[0] and word in lines[0], (label, lines[0])
        assert "Traceback" not in p.stderr
        assert not out.exists(), label
    leftovers = [f for f in os.listdir(tmp_path) if f.startswith(".out")]
    assert leftovers == []


def test_bad_options(tmp_path, small):
    cohort, panel = small
    for extra, word in [
        (["--epsilon", -1], "epsilon"),
        (["--epsilon", 5, "--window", "x"], "window"),
        (["--epsilon", 5, "--af-source", "bogus"], "af-source"),
    ]:
        out = tmp_path / "o"
        p = run("release", cohort, "--reference", panel, "--out", out, *extra)
        assert p.returncode != 0 and word in p.stderr and len(p.stderr.strip().splitlines()) == 1
        assert not out.exists()


def test_existing_output_is_refused_unless_overwrite(tmp_path, small):
    cohort, panel = small
    out = tmp_path / "rel"
    run("release", cohort, "--reference", panel, "--epsilon", 10, "--out", out, check=True)
    p = run("release", cohort, "--reference", panel, "--epsilon", 10, "--out", out)
    assert p.returncode != 0 and "exists" in p.stderr
    run("release", cohort, "--reference", panel, "--epsilon", 10, "--out", out, "--overwrite", check=True)


def test_panel_sharing_individuals_is_refused(tmp_path, small):
    cohort, _ = small
    p = run("release", cohort, "--reference", cohort, "--epsilon", 10, "--out", tmp_path / "o")
    assert p.returncode != 0 and "shares" in p.stderr and not (tmp_path / "o").exists()


def test_release_of_real_cohort_has_no_secrets(tmp_path):
    out = tmp_path / "rel"
    run(
        "release",
        LACTOSE / "data.csv.gz",
        "--reference",
        LACTOSE / "reference.csv.gz",
        "--epsilon",
        9091,
        "--out",
        out,
        check=True,
    )
    assert sorted(os.listdir(out)) == ["manifest.json", "release.csv.gz"]
    for f in out.iterdir():
        assert f.stat().st_mode & 0o022 == 0
    man = (out / "manifest.json").read_text().lower()
    for word in ["seed", "key", "noise_bits"]:
        assert f'"{word}' not in man
