"""The release ledger: private directory, cohort fingerprints, SQLite rows under concurrency, budgets."""

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genoshare.errors import GenoshareError
from genoshare.io.csvmatrix import GenotypeMatrix, write_matrix
from genoshare.io.vcz import write_vcz
from genoshare.privacy.ledger import (
    COMPOSITION,
    ENV_PRIVATE_DIR,
    Ledger,
    SCHEMA_VERSION,
    LedgerEntry,
    cohort_fingerprint,
    fingerprint_matrix,
    fingerprint_path,
    fingerprint_vcz,
    format_cumulative,
    ledger_entry_from_manifest,
    private_dir,
    release_checksum,
)

from genoshare.privacy.release_safety import private_input_details

LACTOSE = Path(__file__).resolve().parent.parent / "data" / "opensnp-lactose"
FP_A = "a" * 64
FP_B = "b" * 64


def _cohort(m=300, n=40, seed=0, missing=0.05):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, size=(m, n)).astype(np.int8)
    g[rng.random((m, n)) < missing] = -1
    return GenotypeMatrix([f"s{i}" for i in range(n)], [f"1:{100 + 10 * j}" for j in range(m)], g)


# ------------------------------------------------------------------------------------------------------------------
# private directory


def test_private_dir_precedence_and_mode(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_PRIVATE_DIR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    d = private_dir()
    assert d == tmp_path / "home" / ".local" / "share" / "genoshare"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert private_dir() == tmp_path / "xdg" / "genoshare"
    monkeypatch.setenv(ENV_PRIVATE_DIR, str(tmp_path / "env"))
    assert private_dir() == tmp_path / "env"
    assert private_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert stat.S_IMODE((tmp_path / "explicit").stat().st_mode) == 0o700


def test_private_dir_tightens_existing_and_refuses_release_dir(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o775)
    assert stat.S_IMODE(private_dir(loose).stat().st_mode) == 0o700
    rel = tmp_path / "release"
    rel.mkdir()
    with pytest.raises(GenoshareError, match="inside the release directory"):
        private_dir(rel / "private", release_dir=rel)
    with pytest.raises(GenoshareError, match="inside the release directory"):
        private_dir(rel, release_dir=rel)
    assert private_dir(tmp_path / "elsewhere", release_dir=rel) == tmp_path / "elsewhere"
    assert not (rel / "private").exists()


# ------------------------------------------------------------------------------------------------------------------
# fingerprints


def test_fingerprint_stable_across_chunkings_and_formats(tmp_path):
    c = _cohort()
    ref = fingerprint_matrix(c)
    assert len(ref) == 64
    for step in (1, 7, 64, 299, 300, 1000):
        chunks = (c.genotypes[v : v + step] for v in range(0, c.n_variants, step))
        assert cohort_fingerprint(c.sample_ids, c.variant_ids, chunks) == ref
    # other negative codes for missing are the same missing
    g2 = np.where(c.genotypes < 0, -2, c.genotypes)
    assert cohort_fingerprint(c.sample_ids, c.variant_ids, [g2]) == ref
    # the same cohort as CSV and as VCF Zarr (two chunkings of the store)
    write_matrix(tmp_path / "c.csv.gz", c.sample_ids, c.variant_ids, c.genotypes)
    assert fingerprint_path(tmp_path / "c.csv.gz") == ref
    sites = dict(
        sample_ids=c.sample_ids,
        contig_ids=["1"],
        variant_contig=np.zeros(c.n_variants, np.int64),
        variant_position=np.array([100 + 10 * j for j in range(c.n_variants)]),
        variant_allele=np.array([["A", "G"]] * c.n_variants, dtype=object),
        variant_id=c.variant_ids,
    )
    write_vcz(tmp_path / "a.vcz", c.genotypes, chunks=(64, 16), **sites)
    write_vcz(tmp_path / "b.vcz", c.genotypes, chunks=(1000, 1000), **sites)
    assert fingerprint_vcz(tmp_path / "a.vcz") == ref
    assert fingerprint_vcz(tmp_path / "b.vcz", chunk_variants=13) == ref
    assert fingerprint_path(tmp_path / "a.vcz") == ref


def _naive_digest(g, lanes=2):
    """SPEC of the per-variant digest, written out in plain Python integers (genoshare.kernels.fingerprint)."""
    mask = (1 << 64) - 1

    def splitmix64(x):
        z = (x + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    out = np.zeros((g.shape[0], lanes), dtype=np.uint64)
    for j in range(g.shape[0]):
        for lane in range(lanes):
            h = 0
            for i in range(g.shape[1]):
                c = int(g[j, i]) + 1 if g[j, i] >= 0 else 0
                h = (h + c * (splitmix64(lanes * i + lane) | 1)) & mask
            out[j, lane] = h
    return out


def test_fingerprint_digests_follow_their_definition_and_any_chunking(tmp_path):
    import dask

    from genoshare.kernels.fingerprint import row_digests
    from genoshare.pipeline import cohort_digests
    from genoshare.privacy.ledger import fingerprint_from_digests

    c = _cohort(m=37, n=23, missing=0.1)
    truth = _naive_digest(c.genotypes)
    assert np.array_equal(row_digests(c.genotypes), truth)
    # split over samples at any point: the parts add up (mod 2^64)
    for cut in (1, 10, 22):
        parts = row_digests(c.genotypes[:, :cut]) + row_digests(c.genotypes[:, cut:], s0=cut)
        assert np.array_equal(parts, truth)
    ref = fingerprint_matrix(c)
    assert fingerprint_from_digests(c.sample_ids, c.variant_ids, truth) == ref
    sites = dict(
        sample_ids=c.sample_ids,
        contig_ids=["1"],
        variant_contig=np.zeros(c.n_variants, np.int64),
        variant_position=np.array([100 + 10 * j for j in range(c.n_variants)]),
        variant_allele=np.array([["A", "G"]] * c.n_variants, dtype=object),
        variant_id=c.variant_ids,
    )
    for k, chunks in enumerate([(5, 4), (37, 23), (8, 7)]):
        write_vcz(tmp_path / f"{k}.vcz", c.genotypes, chunks=chunks, **sites)
        with dask.config.set(scheduler="threads"):
            got = cohort_digests(str(tmp_path / f"{k}.vcz")).compute()
        assert got.dtype == np.uint64 and np.array_equal(got, truth)


def test_fingerprint_changes_with_any_change():
    c = _cohort(m=50, n=12, missing=0.1)
    ref = fingerprint_matrix(c)
    seen = {ref}
    rng = np.random.default_rng(1)
    for _ in range(40):  # every single-genotype change, including to and from missing
        j, i = rng.integers(50), rng.integers(12)
        for v in (-1, 0, 1, 2):
            if v == c.genotypes[j, i]:
                continue
            g = c.genotypes.copy()
            g[j, i] = v
            fp = cohort_fingerprint(c.sample_ids, c.variant_ids, [g])
            assert fp != ref
            seen.add(fp)
    ids = list(c.sample_ids)
    ids[3] = "other"
    assert cohort_fingerprint(ids, c.variant_ids, [c.genotypes]) != ref
    vids = list(c.variant_ids)
    vids[0] = "1:1"
    assert cohort_fingerprint(c.sample_ids, vids, [c.genotypes]) != ref
    # order of individuals matters (a different matrix), and id boundaries are unambiguous
    assert cohort_fingerprint(c.sample_ids[::-1], c.variant_ids, [c.genotypes[:, ::-1]]) != ref
    assert cohort_fingerprint(["ab", "c"], ["x"], [np.zeros((1, 2), np.int8)]) != cohort_fingerprint(
        ["a", "bc"], ["x"], [np.zeros((1, 2), np.int8)]
    )


def test_fingerprint_rejects_inconsistent_blocks():
    c = _cohort(m=10, n=4)
    with pytest.raises(GenoshareError, match="hold 9 variants"):
        cohort_fingerprint(c.sample_ids, c.variant_ids, [c.genotypes[:9]])
    with pytest.raises(GenoshareError, match="shape"):
        cohort_fingerprint(c.sample_ids, c.variant_ids, [c.genotypes[:, :3]])
    with pytest.raises(GenoshareError, match="above 2"):
        cohort_fingerprint(c.sample_ids, c.variant_ids, [c.genotypes + 3])


# ------------------------------------------------------------------------------------------------------------------
# ledger rows, cumulative loss, budgets


def test_record_cumulative_and_budget(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as led:
        assert led.cumulative(FP_A)["n_releases"] == 0
        i1 = led.record(
            LedgerEntry(
                FP_A,
                stages={"xor": {"epsilon": 3.0, "delta": 0}},
                af_source="published",
                cohort_path="/data/c.csv",
                output_dir="/out/r1",
                output_checksum="c" * 64,
            )
        )
        i2 = led.record(
            LedgerEntry(
                FP_A,
                stages=[{"stage": "xor", "epsilon": 2.0}, {"stage": "af", "epsilon": 0.5, "delta": 1e-6}],
                test_release=True,
            )
        )
        led.record(LedgerEntry(FP_B, epsilon=100.0))
        assert i2 > i1
        rows = led.releases(FP_A)
        assert [r.id for r in rows] == [i1, i2]
        assert rows[1].epsilon == pytest.approx(2.5) and rows[1].delta == pytest.approx(1e-6)
        assert rows[0].cohort_path == "/data/c.csv" and rows[0].output_checksum == "c" * 64
        assert rows[0].created.endswith("+00:00")
        cum = led.cumulative(FP_A)
        assert cum["epsilon"] == pytest.approx(5.5) and cum["delta"] == pytest.approx(1e-6)
        assert cum["n_releases"] == 2 and cum["n_test_releases"] == 1 and cum["composition"] == COMPOSITION
        assert cum["stages"]["xor"]["epsilon"] == pytest.approx(5.0)
        assert "2 earlier release(s)" in format_cumulative(cum) and "5.5" in format_cumulative(cum)
        assert len(led.releases()) == 3
        # budget: 5.5 + 4 = 9.5 <= 10 passes, + 5 = 10.5 does not
        led.check_budget(FP_A, 4.0, 10.0)
        with pytest.raises(GenoshareError) as err:
            led.check_budget(FP_A, 5.0, 10.0)
        msg = str(err.value)
        assert "\n" not in msg
        for part in ("5.5", "adds 5", "10.5", "budget 10", "2 earlier release(s)", FP_A[:12]):
            assert part in msg
        # the atomic form refuses without writing
        with pytest.raises(GenoshareError, match="budget"):
            led.record(LedgerEntry(FP_A, epsilon=5.0), budget=10.0)
        assert led.cumulative(FP_A)["n_releases"] == 2
        assert led.record(LedgerEntry(FP_A, epsilon=4.5), budget=10.0)  # exactly at the budget is allowed
        assert led.cumulative(FP_A)["epsilon"] == pytest.approx(10.0)


def test_reserve_finalize_cancel(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    rid = led.reserve(LedgerEntry(FP_A, epsilon=2.0), budget=3.0)
    assert led.cumulative(FP_A)["n_reserved"] == 1
    with pytest.raises(GenoshareError, match="budget"):  # the reservation counts
        led.reserve(LedgerEntry(FP_A, epsilon=2.0), budget=3.0)
    e = led.finalize(rid, output_dir=tmp_path / "out", output_checksum="d" * 64)
    assert e.status == "recorded" and e.output_dir == str(tmp_path / "out")
    with pytest.raises(GenoshareError, match="is recorded"):
        led.cancel(rid)
    r2 = led.reserve(LedgerEntry(FP_A, epsilon=1.0), budget=3.0)
    led.cancel(r2)
    cum = led.cumulative(FP_A)
    assert cum["epsilon"] == pytest.approx(2.0) and cum["n_releases"] == 1
    assert [r.status for r in led.releases(FP_A)] == ["recorded", "cancelled"]
    led.close()


def test_entry_validation(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    with pytest.raises(GenoshareError, match="64 hex"):
        led.record(LedgerEntry("xyz", epsilon=1.0))
    with pytest.raises(GenoshareError, match="finite"):
        led.record(LedgerEntry(FP_A, epsilon=float("nan")))
    with pytest.raises(GenoshareError, match="below 1"):
        led.record(LedgerEntry(FP_A, epsilon=1.0, delta=1.0))
    assert led.releases() == []


def test_file_modes_schema_and_damage(tmp_path):
    path = tmp_path / "l.sqlite"
    led = Ledger(path)
    rid = led.record(LedgerEntry(FP_A, epsilon=1.0))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0
    led.check_integrity()
    led.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    con.execute("UPDATE releases SET epsilon = 0.001 WHERE id = ?", (rid,))  # someone edits the row
    con.commit()
    con.close()
    with pytest.raises(GenoshareError, match=f"row {rid} is damaged"):
        Ledger(path).cumulative(FP_A)
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(GenoshareError, match="schema version 99"):
        Ledger(path).releases()
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(GenoshareError, match="junk.sqlite"):
        Ledger(tmp_path / "junk.sqlite").releases()


# ------------------------------------------------------------------------------------------------------------------
# concurrency: several processes at once, as Snakemake runs releases


# Workers are separate Python processes (subprocess) importing only the ledger module; they start together when
# the go file appears, so their transactions really overlap.
_WORKER = r"""
import os, sys, time
from genoshare.errors import GenoshareError
from genoshare.privacy.ledger import Ledger, LedgerEntry
path, go, worker, n_rows, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
open(f"{go}.ready{worker}", "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
led = Ledger(path)
if mode == "rows":
    for k in range(n_rows):
        led.record(LedgerEntry(f"{worker:064x}", stages={"xor": {"epsilon": worker + k / 1000, "delta": 0.0}},
                               cohort_path=f"/w{worker}/r{k}", output_dir=f"/out/{worker}/{k}",
                               output_checksum=f"{worker * 100000 + k:064x}"))
else:
    try:
        led.record(LedgerEntry("a" * 64, epsilon=1.0, output_dir=f"/out/{worker}"), budget=5.0)
        print("ok")
    except GenoshareError as e:
        print(e)
"""


def _run_workers(path, tmp_path, n_workers, n_rows, mode):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), str(go), str(w), str(n_rows), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(n_workers)
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.ready{w}").exists() for w in range(n_workers)):  # every interpreter is up
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * n_workers, [o[1][-500:] for o in outs]
    return [o[0].strip() for o in outs]


def test_concurrent_processes_lose_no_rows(tmp_path):
    path = tmp_path / "private" / "ledger.sqlite"
    os.makedirs(path.parent, mode=0o700)
    n_workers, n_rows = 10, 60
    _run_workers(path, tmp_path, n_workers, n_rows, "rows")
    led = Ledger(path)
    led.check_integrity()
    rows = led.releases()
    assert len(rows) == n_workers * n_rows
    assert len({r.id for r in rows}) == len(rows)
    got = {(r.fingerprint, r.cohort_path, r.output_dir, r.output_checksum, r.epsilon) for r in rows}
    want = {
        (f"{w:064x}", f"/w{w}/r{k}", f"/out/{w}/{k}", f"{w * 100000 + k:064x}", w + k / 1000)
        for w in range(n_workers)
        for k in range(n_rows)
    }
    assert got == want
    for w in range(n_workers):
        cum = led.cumulative(f"{w:064x}")
        assert cum["n_releases"] == n_rows
        assert cum["epsilon"] == pytest.approx(sum(w + k / 1000 for k in range(n_rows)))


def test_concurrent_budget_is_atomic(tmp_path):
    path = tmp_path / "ledger.sqlite"
    outcomes = _run_workers(path, tmp_path, 8, 1, "budget")
    ok = [r for r in outcomes if r == "ok"]
    refused = [r for r in outcomes if r != "ok"]
    assert len(ok) == 5 and len(refused) == 3, outcomes  # budget 5, epsilon 1 each: exactly five fit
    assert all("budget" in r for r in refused)
    assert Ledger(path).cumulative(FP_A)["epsilon"] == pytest.approx(5.0)


# ------------------------------------------------------------------------------------------------------------------
# a real release, and the CLI


@pytest.fixture(scope="module")
def csv_release(tmp_path_factory):
    from genoshare.api import release_csv

    out = tmp_path_factory.mktemp("rel") / "r1"
    manifest = release_csv(LACTOSE / "data.csv.gz", LACTOSE / "reference.csv.gz", 9091.0, out, seed=1)
    return out, manifest


def test_entry_from_manifest(csv_release, tmp_path):
    out, manifest = csv_release
    fp = fingerprint_path(LACTOSE / "data.csv.gz")
    assert "path" not in manifest["inputs"]["cohort"]  # the cohort's path is private: the ledger gets it as details
    details = {"cohort": private_input_details(LACTOSE / "data.csv.gz", "csv")}
    e = ledger_entry_from_manifest(manifest, fp, out, details=details)
    assert e.fingerprint == fp and e.details == details
    xor = manifest["privacy"]["xor"]
    assert e.stages["xor"] == {"epsilon": xor["epsilon"], "delta": xor["delta"]}
    assert e.stages["af"]["epsilon"] == 0.0 and e.stages["af"]["dp"] is False  # published: not a DP stage
    total = manifest["privacy"]["total"]
    assert e.epsilon == pytest.approx(total["epsilon"]) and e.delta == pytest.approx(total["delta"])
    assert e.test_release is True and e.af_source == "published"
    assert e.output_checksum == release_checksum(out) and e.output_dir == str(out.absolute())
    assert e.cohort_path == str((LACTOSE / "data.csv.gz").absolute())
    # the checksum covers manifest and release files
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy)
    assert release_checksum(copy) == release_checksum(out)
    m = json.loads((copy / "manifest.json").read_text())
    m["n_samples"] += 1
    (copy / "manifest.json").write_text(json.dumps(m))
    assert release_checksum(copy) != release_checksum(out)
    # an accountant's stage list wins over the fallback
    m2 = dict(
        manifest,
        privacy={"stages": [{"stage": "xor", "epsilon": 10.0}, {"stage": "af", "epsilon": 1.0, "delta": 1e-7}]},
    )
    e2 = ledger_entry_from_manifest(m2, fp, None)
    assert e2.epsilon == pytest.approx(11.0) and e2.delta == pytest.approx(1e-7) and e2.output_checksum is None
    # the accountant's privacy object (privacy/accountant.py: privacy_object): one entry per stage and a total
    m3 = dict(
        manifest,
        privacy={
            "neighbours": "replace one individual",
            "xor": {"mechanism": "xor", "epsilon": 8000.0, "delta": 1e-8, "epsilon_pure": 9091.0},
            "af": {"source": "published", "epsilon": None, "delta": None, "conditional": True},
            "phenotype": {"mechanism": "randomized response", "epsilon": 1.0, "delta": 0.0},
            "total": {"epsilon": 8001.0, "delta": 1e-8, "composition": "basic"},
        },
    )
    e3 = ledger_entry_from_manifest(m3, fp, None)
    assert e3.stages == {
        "xor": {"epsilon": 8000.0, "delta": 1e-8},
        "af": {"epsilon": 0.0, "delta": 0.0, "dp": False},
        "phenotype": {"epsilon": 1.0, "delta": 0.0},
    }
    assert e3.epsilon == pytest.approx(8001.0) and e3.delta == pytest.approx(1e-8)
    m3["privacy"]["xor"]["epsilon"] = None
    with pytest.raises(GenoshareError, match="no finite epsilon"):
        ledger_entry_from_manifest(m3, fp, None)
    led = Ledger(tmp_path / "l.sqlite")
    rid = led.record(e)
    assert led.get(rid).output_checksum == e.output_checksum
    led.record(e3)
    assert led.cumulative(fp)["stages"]["af"] == {"epsilon": 0.0, "delta": 0.0}


def test_cli_ledger(tmp_path, monkeypatch):
    from genoshare.cli.privacy import ledger

    monkeypatch.delenv(ENV_PRIVATE_DIR, raising=False)
    priv = tmp_path / "priv"
    runner = CliRunner()
    res = runner.invoke(ledger, ["list", "--private-dir", str(priv)])
    assert res.exit_code == 0 and "no releases recorded" in res.output
    led = Ledger(private_dir(priv) / "ledger.sqlite")
    r1 = led.record(LedgerEntry(FP_A, epsilon=1.5, af_source="published", output_dir="/out/1"))
    led.record(LedgerEntry(FP_A, epsilon=2.0, test_release=True))
    led.record(LedgerEntry(FP_B, epsilon=7.0))
    res = runner.invoke(ledger, ["list", "--private-dir", str(priv)])
    assert res.exit_code == 0, res.output
    assert FP_A[:12] in res.output and "cumulative epsilon 3.5" in res.output and "test" in res.output
    res = runner.invoke(ledger, ["list", "--private-dir", str(priv), "--json"])
    data = json.loads(res.output)
    assert len(data["releases"]) == 3 and {c["epsilon"] for c in data["cohorts"]} == {3.5, 7.0}
    res = runner.invoke(ledger, ["show", str(r1), "--private-dir", str(priv)])
    assert res.exit_code == 0 and "/out/1" in res.output and "epsilon 3.5" in res.output
    monkeypatch.setenv(ENV_PRIVATE_DIR, str(priv))  # the environment variable works as well
    res = runner.invoke(ledger, ["show", FP_A[:10]])
    assert res.exit_code == 0 and "cumulative: epsilon 3.5" in res.output
    res = runner.invoke(ledger, ["show", FP_B, "--json"])
    assert json.loads(res.output)["cohort"]["epsilon"] == 7.0
    res = runner.invoke(ledger, ["show", "999"])
    assert res.exit_code == 2 and "no release with id 999" in res.output
    res = runner.invoke(ledger, ["show", "cafe"])
    assert res.exit_code == 2 and "error" in res.output
    rid = led.reserve(LedgerEntry(FP_B, epsilon=1.0))
    res = runner.invoke(ledger, ["cancel", str(rid)])
    assert res.exit_code == 0 and "cancelled" in res.output
    assert led.cumulative(FP_B)["epsilon"] == 7.0


def test_schema_1_ledger_is_migrated_and_its_rows_still_verify(tmp_path):
    """A ledger written by schema version 1: opened, it becomes version 2 once, its rows keep their checksums,
    and new rows carry the reservation's ids key (in their details)."""
    import hashlib

    from genoshare.privacy.ledger import _row_hash

    path = tmp_path / "ledger.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE releases (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
            fingerprint TEXT NOT NULL, cohort_path TEXT, stages TEXT NOT NULL, epsilon REAL NOT NULL,
            delta REAL NOT NULL, af_source TEXT, output_dir TEXT, output_checksum TEXT, tool_version TEXT NOT NULL,
            test_release INTEGER NOT NULL, status TEXT NOT NULL, row_sha256 TEXT NOT NULL);
        PRAGMA user_version = 1;
    """)
    values = (
        "2026-01-01T00:00:00+00:00",
        FP_A,
        None,
        json.dumps({"xor": {"delta": 0.0, "epsilon": 2.0}}),
        2.0,
        0.0,
        None,
        None,
        None,
        "0.1",
        0,
        "recorded",
    )
    # the checksum as version 1 computed it: over these twelve values
    old_hash = hashlib.sha256(json.dumps(list(values), sort_keys=True).encode()).hexdigest()
    assert _row_hash(values) == old_hash
    con.execute(
        "INSERT INTO releases (created, fingerprint, cohort_path, stages, epsilon, delta, af_source, "
        "output_dir, output_checksum, tool_version, test_release, status, row_sha256) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (*values, old_hash),
    )
    con.commit()
    con.close()
    for _ in range(2):  # migrated once; the second open finds version 2
        with Ledger(path) as led:
            assert led.cumulative(FP_A)["epsilon"] == 2.0
            led.check_integrity()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()
    key = "c" * 64
    with Ledger(path) as led:
        rid = led.reserve(LedgerEntry(key, epsilon=1.0, cohort_ids=key), budget=3.0)
        with pytest.raises(GenoshareError, match="budget"):  # the reservation counts under its ids key
            led.reserve(LedgerEntry(key, epsilon=2.5, cohort_ids=key), budget=3.0)
        e = led.finalize(rid, entry=LedgerEntry(FP_A, epsilon=1.0))  # now the genotype fingerprint: 2 + 1
        assert e.fingerprint == FP_A and e.cohort_ids == key and e.status == "recorded"
        assert led.cumulative(FP_A)["epsilon"] == 3.0
        # a reservation under the ids key sees the finalized row through its key, and the old row through neither:
        # the finalize check (the genotype fingerprint) catches what the ids key cannot
        rid2 = led.reserve(LedgerEntry(key, epsilon=0.5, cohort_ids=key), budget=3.0)
        with pytest.raises(GenoshareError, match="budget"):
            led.finalize(rid2, entry=LedgerEntry(FP_A, epsilon=0.5), budget=3.0)
        assert led.get(rid2).status == "reserved"  # left for the caller to discard
        led.discard(rid2)
        assert [r.id for r in led.releases()] == [1, rid]
