"""Issue 15, items 1-3: releases that would undo themselves are refused, check-release catches releases whose
genotypes were replaced by the original, and the manifest keeps the cohort's hash, path and kinship counts out
(they go to the owner's ledger).

Truth is independent of the code under test: the original cohort files themselves (byte copies), the original
genotypes written over the release with zarr, and the ledger read back through sqlite3.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from genoshare.errors import GenoshareError, InputError
from genoshare.io.csvmatrix import read_matrix
from genoshare.io.vcz import open_vcz, read_dosage, write_vcz
from genoshare.privacy.checkrelease import check_release
from genoshare.privacy.ledger import LEDGER_FILE, Ledger
from genoshare.privacy.release_safety import MIN_PUBLISHED_SAMPLES, manifest_problems, refuse_identical

ROOT = Path(__file__).resolve().parents[1]
LACTOSE = ROOT / "data" / "opensnp-lactose"
GENOSHARE = [sys.executable, "-m", "genoshare.cli"]


def run(*args):
    return subprocess.run([*GENOSHARE, *map(str, args)], capture_output=True, text=True, timeout=300)


def one_line_error(p, *words):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genoshare: error:"), p.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def late_error(p, *words):
    """An error after the release work started: the progress lines (ledger, relatives) came first, then exactly
    one error line, last, and no traceback."""
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("genoshare: error:")]
    assert errors == [lines[-1]] and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in lines[-1], (w, lines[-1])


def write_csv(path, ids, G):
    """Variant-major G (m, n) as a CSV matrix (one row per individual)."""
    header = ["PATIENT_ID"] + [f"rs{j}" for j in range(G.shape[0])]
    rows = [[ids[i], *G[:, i].tolist()] for i in range(G.shape[1])]
    Path(path).write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def ledger_rows(private: Path) -> list:
    path = private / LEDGER_FILE
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM releases").fetchall()


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from genoshare.simulate import simulate_cohort

    d = tmp_path_factory.mktemp("sim") / "s"
    simulate_cohort(d, cases=15, controls=15, panel=40, variants=300, seed=5, holdout=0, formats=("csv", "vcz"))
    return d


def _subset_vcz(src: Path, dst: Path, n: int) -> Path:
    info = open_vcz(src)
    G = read_dosage(info, 0, info.n_variants)[:, :n]
    write_vcz(
        dst,
        G,
        sample_ids=info.sample_ids[:n],
        contig_ids=info.contig_ids,
        variant_contig=info.variant_contig,
        variant_position=info.variant_position,
        variant_allele=info.variant_allele,
        variant_id=info.variant_id,
    )
    return dst


# ------------------------------------------------------------------------------------------------------------------
# 1. small cohorts restored to their own frequencies


@pytest.mark.parametrize("n", [1, 2])
def test_small_published_cohort_refused_csv(tmp_path, n):
    rng = np.random.default_rng(n)
    cohort = write_csv(tmp_path / "cohort.csv", [f"c{i}" for i in range(n)], rng.integers(0, 3, (40, n)))
    panel = write_csv(tmp_path / "panel.csv", [f"r{i}" for i in range(40)], rng.integers(0, 3, (40, 40)))
    private = Path(os.environ["GENOSHARE_PRIVATE_DIR"])
    out = tmp_path / "rel"
    p = run("release", cohort, "--reference", panel, "--epsilon", 5, "--out", out, "--seed", 1)
    one_line_error(p, "cohort.csv", f"{n} individual(s)", "--af-source published", str(MIN_PUBLISHED_SAMPLES))
    assert not out.exists() and ledger_rows(private) == []
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []
    # the same cohort restored to public (panel) frequencies is not refused
    p = run(
        "release", cohort, "--reference", panel, "--epsilon", 5, "--out", out, "--seed", 1, "--af-source", "reference"
    )
    assert p.returncode == 0, p.stderr
    assert len(ledger_rows(private)) == 1


@pytest.mark.parametrize("n", [1, 2])
def test_small_published_cohort_refused_store(sim, tmp_path, n):
    cohort = _subset_vcz(sim / "cohort.vcz", tmp_path / "small.vcz", n)
    private = Path(os.environ["GENOSHARE_PRIVATE_DIR"])
    out = tmp_path / "rel"
    p = run(
        "release", cohort, "--reference", sim / "panel.vcz", "--epsilon", 400, "--out", out, "--seed", 1, "--workers", 1
    )
    one_line_error(p, "small.vcz", f"{n} individual(s)", "--af-source published")
    assert not out.exists() and ledger_rows(private) == []
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []


def test_published_boundary_in_the_api(tmp_path):
    from genoshare.api import release_csv

    rng = np.random.default_rng(7)
    panel = write_csv(tmp_path / "panel.csv", [f"r{i}" for i in range(40)], rng.integers(0, 3, (30, 40)))
    G = rng.integers(0, 3, (30, MIN_PUBLISHED_SAMPLES))
    ok = write_csv(tmp_path / "ok.csv", [f"c{i}" for i in range(MIN_PUBLISHED_SAMPLES)], G)
    few = write_csv(tmp_path / "few.csv", [f"c{i}" for i in range(MIN_PUBLISHED_SAMPLES - 1)], G[:, :-1])
    with pytest.raises(InputError, match="few.csv"):
        release_csv(few, panel, 20.0, tmp_path / "a", seed=1)
    assert not (tmp_path / "a").exists()
    man = release_csv(ok, panel, 20.0, tmp_path / "b", seed=1)
    assert man["n_samples"] == MIN_PUBLISHED_SAMPLES


def test_check_release_fails_published_below_minimum(tmp_path):
    from genoshare.api import release_csv

    rel = tmp_path / "rel"
    release_csv(LACTOSE / "data.csv.gz", LACTOSE / "reference.csv.gz", 100.0, rel, seed=2)
    assert check_release(rel).ok
    m = json.loads((rel / "manifest.json").read_text())
    m["n_samples"] = MIN_PUBLISHED_SAMPLES - 1
    (rel / "manifest.json").write_text(json.dumps(m))
    rep = check_release(rel, verify_data=False)
    assert not rep.ok and any("restored to the cohort's own allele frequencies" in p for p in rep.problems)
    m["af_source"]["kind"] = "reference"
    assert not [p for p in manifest_problems(m) if "restored" in p]


# ------------------------------------------------------------------------------------------------------------------
# 2. releases replaced by the original


@pytest.fixture(scope="module")
def made(sim, tmp_path_factory):
    """A CSV release of the lactose cohort and a store release of the simulated cohort, each with its own ledger."""
    from genoshare.api import release_csv, release_store

    base = tmp_path_factory.mktemp("made")
    release_csv(
        LACTOSE / "data.csv.gz",
        LACTOSE / "reference.csv.gz",
        100.0,
        base / "csv",
        seed=1,
        private_dir=base / "private_csv",
    )
    release_store(
        sim / "cohort.vcz",
        sim / "panel.vcz",
        400.0,
        base / "store",
        seed=1,
        workers=1,
        private_dir=base / "private_store",
    )
    return base


def _copy(made, kind, tmp_path) -> Path:
    dst = tmp_path / kind
    shutil.copytree(made / kind, dst)
    return dst


def _problems(d, **kw) -> str:
    rep = check_release(d, **kw)
    assert not rep.ok, rep.lines()
    return "\n".join(rep.problems)


def test_clean_releases_pass_also_in_owner_mode(made):
    for kind in ("csv", "store"):
        rep = check_release(made / kind, ledger=made / f"private_{kind}")
        assert rep.ok, rep.problems
        assert not any("changed since" in w for w in rep.warnings)


def test_csv_replaced_by_original_cohort(made, tmp_path):
    d = _copy(made, "csv", tmp_path)
    shutil.copyfile(LACTOSE / "data.csv.gz", d / "release.csv.gz")
    assert "do not match the manifest's release_digest" in _problems(d, ledger=None)
    text = _problems(d, ledger=made / "private_csv")
    assert "identical to the cohort of ledger release" in text and "byte-identical to the cohort file" in text
    # a forger who also puts the original's digest into the manifest passes the public check; the owner's fails
    m = json.loads((d / "manifest.json").read_text())
    from genoshare.privacy.ledger import fingerprint_path

    m["release_digest"] = fingerprint_path(LACTOSE / "data.csv.gz")
    (d / "manifest.json").write_text(json.dumps(m))
    assert check_release(d, ledger=None).ok
    assert "identical to the cohort of ledger release" in _problems(d, ledger=made / "private_csv")


def test_cli_check_release_owner_mode(made, tmp_path):
    d = _copy(made, "csv", tmp_path)
    shutil.copyfile(LACTOSE / "data.csv.gz", d / "release.csv.gz")
    p = run("check-release", d, "--private-dir", made / "private_csv")
    assert p.returncode == 1 and p.stdout.startswith("FAIL"), p.stdout + p.stderr
    assert "identical to the cohort of ledger release" in p.stdout
    p = run("check-release", made / "csv", "--private-dir", made / "private_csv")
    assert p.returncode == 0 and p.stdout.startswith("PASS"), p.stdout + p.stderr
    one_line_error(run("check-release", made / "csv", "--private-dir", tmp_path / "nothing"), "no ledger there")


def test_csv_one_genotype_changed(made, tmp_path):
    d = _copy(made, "csv", tmp_path)
    rel = read_matrix(d / "release.csv.gz")
    from genoshare.io.csvmatrix import write_matrix

    G = rel.genotypes.copy()
    G[5, 7] = (G[5, 7] + 1) % 3
    (d / "release.csv.gz").unlink()
    write_matrix(d / "release.csv.gz", rel.sample_ids, rel.variant_ids, G, id_column=rel.id_column)
    assert "release_digest" in _problems(d, ledger=None)


def test_vcz_call_genotype_overwritten_with_original(made, sim, tmp_path):
    d = _copy(made, "store", tmp_path)
    rel, cohort = open_vcz(d / "release.vcz"), open_vcz(sim / "cohort.vcz")
    pos = {v: j for j, v in enumerate(cohort.variant_id)}
    rows = np.array([pos[v] for v in rel.variant_id])
    assert rows.size < cohort.n_variants, "sites were dropped: the ledger must match at the released sites"
    original = zarr.open_array(str(sim / "cohort.vcz" / "call_genotype"), mode="r")[:][rows]
    gt = zarr.open_array(str(d / "release.vcz" / "call_genotype"), mode="r+")
    assert not np.array_equal(gt[:], original)
    gt[:] = original
    assert "release.vcz: the released genotypes do not match the manifest's release_digest" in _problems(d, ledger=None)
    assert "identical to the cohort of ledger release" in _problems(d, ledger=made / "private_store")
    m = json.loads((d / "manifest.json").read_text())
    m["release_digest"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(m))
    text = _problems(d, ledger=made / "private_store")
    assert "identical to the cohort of ledger release" in text


def test_vcz_replaced_by_a_copy_of_the_cohort_store(made, sim, tmp_path):
    d = _copy(made, "store", tmp_path)
    shutil.rmtree(d / "release.vcz")
    shutil.copytree(sim / "cohort.vcz", d / "release.vcz")
    assert not check_release(d, ledger=None).ok
    assert "identical to the cohort of ledger release" in _problems(d, ledger=made / "private_store")


def test_owner_mode_detects_replaced_data_in_the_recorded_directory(made, tmp_path):
    """The ledger row of the directory keeps the release digest: replaced data with a matching forged digest
    fails, and an added file only warns that the directory changed."""
    d = made / "csv"
    backup = tmp_path / "backup"
    shutil.copytree(d, backup)
    try:
        (d / "README.md").write_text("notes\n")
        rep = check_release(d, ledger=made / "private_csv")
        assert rep.ok and any("changed since ledger release" in w for w in rep.warnings)
        rel = read_matrix(d / "release.csv.gz")
        from genoshare.io.csvmatrix import write_matrix
        from genoshare.privacy.ledger import fingerprint_matrix

        G = rel.genotypes.copy()
        G[0, 0] = (G[0, 0] + 1) % 3
        os.chmod(d / "release.csv.gz", 0o644)
        (d / "release.csv.gz").unlink()
        write_matrix(d / "release.csv.gz", rel.sample_ids, rel.variant_ids, G, id_column=rel.id_column)
        m = json.loads((d / "manifest.json").read_text())
        m["release_digest"] = fingerprint_matrix(read_matrix(d / "release.csv.gz"))
        (d / "manifest.json").write_text(json.dumps(m))
        assert check_release(d, ledger=None).ok
        assert "differ from what ledger release" in _problems(d, ledger=made / "private_csv")
    finally:
        shutil.rmtree(d)
        shutil.copytree(backup, d)


def test_release_refuses_to_finish_when_released_equals_cohort(tmp_path, monkeypatch):
    """The paranoid check: if the release engine returned the cohort unchanged, nothing is written or recorded."""
    import genoshare.api as api

    real = api.release_genotypes

    def undo(G, *a, **kw):
        res = real(G, *a, **kw)
        res.genotypes[...] = G
        return res

    monkeypatch.setattr(api, "release_genotypes", undo)
    private = tmp_path / "private"
    with pytest.raises(GenoshareError, match="identical to the cohort's"):
        api.release_csv(
            LACTOSE / "data.csv.gz", LACTOSE / "reference.csv.gz", 100.0, tmp_path / "rel", seed=1, private_dir=private
        )
    assert not (tmp_path / "rel").exists() and ledger_rows(private) == []
    with pytest.raises(GenoshareError):
        refuse_identical("ab" * 32, "ab" * 32)
    refuse_identical("ab" * 32, "cd" * 32)


def test_monomorphic_cohort_with_published_frequencies_is_refused_on_both_paths(sim, tmp_path):
    """A cohort whose every SNP is all 0, restored to its own frequencies (0): every flip is undone, the release
    would be the cohort itself. Both paths refuse to finish (no directory, no ledger row)."""
    private = Path(os.environ["GENOSHARE_PRIVATE_DIR"])
    rng = np.random.default_rng(3)
    cohort = write_csv(tmp_path / "mono.csv", [f"c{i}" for i in range(25)], np.zeros((30, 25), dtype=int))
    panel = write_csv(tmp_path / "panel.csv", [f"r{i}" for i in range(40)], rng.integers(0, 3, (30, 40)))
    p = run("release", cohort, "--reference", panel, "--epsilon", 20, "--out", tmp_path / "a")
    late_error(p, "identical to the cohort's")
    info = open_vcz(sim / "cohort.vcz")
    mono = tmp_path / "mono.vcz"
    write_vcz(
        mono,
        np.zeros((info.n_variants, info.n_samples), dtype=np.int8),
        sample_ids=info.sample_ids,
        contig_ids=info.contig_ids,
        variant_contig=info.variant_contig,
        variant_position=info.variant_position,
        variant_allele=info.variant_allele,
        variant_id=info.variant_id,
    )
    p = run(
        "release", mono, "--reference", sim / "panel.vcz", "--epsilon", 400, "--out", tmp_path / "b", "--workers", 1
    )
    late_error(p, "identical to the cohort's")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and ledger_rows(private) == []
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []


# ------------------------------------------------------------------------------------------------------------------
# 3. the cohort's hash, path and kinship counts: in the ledger, not in the release


def test_manifest_has_no_private_cohort_facts_and_the_ledger_has_them(made, sim):
    from genoshare.manifest import sha256_path

    for kind, cohort in (("csv", LACTOSE / "data.csv.gz"), ("store", sim / "cohort.vcz")):
        text = (made / kind / "manifest.json").read_text()
        m = json.loads(text)
        sha = sha256_path(cohort)
        assert sha not in text and str(cohort) not in text and str(cohort.absolute()) not in text
        assert m["inputs"]["cohort"] == {"name": cohort.name, "format": "csv" if kind == "csv" else "vcz"}
        assert m["relatives"]["checked"] is True
        for key in ("related_pairs", "groups", "largest_group"):
            assert key not in m["relatives"]
        assert len(m["release_digest"]) == 64
        (row,) = Ledger(made / f"private_{kind}" / LEDGER_FILE).releases()
        assert row.details["cohort"]["sha256"] == sha
        assert row.details["cohort"]["path"] == str(cohort.absolute()) == row.cohort_path
        assert set(row.details["relatives"]) >= {"related_pairs", "groups", "largest_group"}
        assert row.details["release_digest"] == m["release_digest"]
        if kind == "store":  # the whole store's fingerprint differs: sites were dropped
            assert row.details["cohort_sites_fingerprint"] != row.fingerprint


@pytest.mark.parametrize(
    "plant, fragment",
    [
        (
            {"inputs": {"cohort": {"path": "/home/owner/cohort.csv.gz", "format": "csv"}}},
            "inputs.cohort' publishes path",
        ),
        ({"inputs": {"cohort": {"name": "c.csv", "sha256": "ab" * 32}}}, "publishes sha256"),
        ({"inputs": {"phenotypes": {"path": "pheno/p.tsv"}}}, "inputs.phenotypes' publishes path"),
        ({"relatives": {"checked": True, "related_pairs": 3}}, "exact kinship counts"),
        ({"relatives": {"checked": True, "largest_group": 2, "groups": 1}}, "exact kinship counts"),
    ],
)
def test_check_release_fails_manifest_with_private_facts(made, tmp_path, plant, fragment):
    d = _copy(made, "csv", tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    for k, v in plant.items():
        m[k] = {**m[k], **v} if isinstance(m.get(k), dict) and k != "relatives" else v
    (d / "manifest.json").write_text(json.dumps(m))
    assert fragment in _problems(d, verify_data=False)


def test_store_attribute_manifest_is_checked_too(made, tmp_path):
    d = _copy(made, "store", tmp_path)
    g = zarr.open_group(str(d / "release.vcz"), mode="r+")
    gm = dict(g.attrs["genoshare_manifest"])
    gm["inputs"] = {**gm["inputs"], "cohort": {"path": "/secret/cohort.vcz", "sha256": "ab" * 32}}
    g.attrs["genoshare_manifest"] = gm
    assert "genoshare_manifest: 'inputs.cohort' publishes" in _problems(d, verify_data=False)


def test_ledger_schema_1_is_migrated_in_place(tmp_path):
    """A ledger written before the details column: its rows keep their checksums, new rows carry details."""
    from genoshare.privacy import ledger as L

    path = tmp_path / LEDGER_FILE
    old_schema = L._SCHEMA.replace(",\n    details         TEXT\n", "\n")
    assert "details" not in old_schema
    e = L.LedgerEntry(
        fingerprint="ab" * 32, stages={"xor": {"epsilon": 1.0, "delta": 0.0}}, cohort_path="/data/c.csv"
    ).normalised()
    values = L._row_values(e)
    with sqlite3.connect(path) as conn:
        conn.executescript(old_schema)
        conn.execute(
            f"INSERT INTO releases ({', '.join(L._COLUMNS)}, row_sha256) VALUES "
            f"({', '.join('?' * (len(L._COLUMNS) + 1))})",
            (*values, L._row_hash(values)),
        )
        conn.execute("PRAGMA user_version = 1")
    led = Ledger(path)
    (old,) = led.releases()
    assert old.cohort_path == "/data/c.csv" and old.details == {}
    led.record(L.LedgerEntry(fingerprint="ab" * 32, epsilon=2.0, details={"cohort": {"sha256": "cd" * 32}}))
    led.check_integrity()
    assert [r.details for r in led.releases()] == [{}, {"cohort": {"sha256": "cd" * 32}}]
    assert led.cumulative("ab" * 32)["epsilon"] == pytest.approx(3.0)
    led.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == L.SCHEMA_VERSION == 2
        # tampering with the details is detected like any other column
        conn.execute("UPDATE releases SET details = ? WHERE id = 2", (json.dumps({"cohort": {"sha256": "0"}}),))
    with pytest.raises(GenoshareError, match="damaged"):
        Ledger(path).releases()
