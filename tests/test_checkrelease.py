"""check-release: a clean release passes (with the test-release warning); every planted forbidden item fails it.

Two real releases are made once: the lactose CSV cohort (release_csv, seed 1) and a small simulated VCF Zarr cohort
through the store pipeline with every export (release_store, seed 1). Each test copies one and plants one item.
"""

import base64
import gzip
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genoshare.errors import InputError
from genoshare.privacy.checkrelease import TEST_RELEASE_WARNING, check_manifest, check_release

LACTOSE = Path(__file__).resolve().parent.parent / "data" / "opensnp-lactose"
KEY_HEX = "3f" * 32  # what a leaked 256-bit key looks like


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    from genoshare.api import release_csv, release_store
    from genoshare.simulate import simulate_cohort

    base = tmp_path_factory.mktemp("releases")
    release_csv(LACTOSE / "data.csv.gz", LACTOSE / "reference.csv.gz", 9091.0, base / "csv", seed=1)
    simulate_cohort(base / "sim", 30, 30, 40, 200, seed=3, holdout=0, formats=("vcz", "csv"))
    release_store(
        base / "sim" / "cohort.vcz",
        base / "sim" / "panel.vcz",
        200.0,
        base / "store",
        seed=1,
        exports=("plink", "vcf", "csv"),
        workers=1,
    )
    return {"csv": base / "csv", "store": base / "store", "sim": base / "sim"}


def _copy(releases, kind, tmp_path) -> Path:
    dst = tmp_path / kind
    shutil.copytree(releases[kind], dst, symlinks=True)
    return dst


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def _write_manifest(d: Path, m: dict) -> None:
    (d / "manifest.json").write_text(json.dumps(m, indent=2))


def _fails(d: Path, *fragments, **kw):
    rep = check_release(d, **kw)
    assert not rep.ok, rep.lines()
    text = "\n".join(rep.problems)
    for f in fragments:
        assert f in text, (f, rep.problems)
    return rep


# ------------------------------------------------------------------------------------------------------------------
# clean releases


@pytest.mark.parametrize("kind", ["csv", "store"])
def test_clean_release_passes_with_seed_warning(releases, kind):
    rep = check_release(releases[kind])
    assert rep.ok, rep.problems
    assert rep.problems == []
    assert rep.warnings == [TEST_RELEASE_WARNING]
    assert rep.lines()[0] == "PASS"


def test_without_seed_no_warning_and_text_files_allowed(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    m = _manifest(d)
    m["reproducible_test_release"] = False
    m.pop("warning", None)
    _write_manifest(d, m)
    (d / "README.md").write_text("Released with genoshare; see manifest.json.\n")
    (d / "LICENSE").write_text("CC-BY 4.0\n")
    (d / "retention.json").write_text(json.dumps({"epsilon": [1, 2, 3], "expected_retention": [0.5, 0.7, 0.8]}))
    rep = check_release(d)
    assert rep.ok and rep.warnings == [], rep.lines()


def test_not_a_directory(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        check_release(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        check_release(tmp_path / "f")


# ------------------------------------------------------------------------------------------------------------------
# the manifest


@pytest.mark.parametrize(
    "plant, fragment",
    [
        ({"seed": 1}, "'seed' holds secret material"),
        ({"noise": {"seed": 12345}}, "'noise.seed' holds secret material"),
        ({"master_key": KEY_HEX}, "'master_key' holds secret material"),
        ({"keys": {"noise": KEY_HEX}}, "'keys' holds secret material"),
        ({"randomness_state": KEY_HEX}, "looks like key material"),
        ({"nonce_b64": "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0VniQ"}, "holds secret material"),
        ({"extra": {"token": 2**200 + 12345}}, "looks like key material"),
        ({"noise_bits": [0, 1] * 100}, "holds noise values"),
        ({"noise": {"mean_flip_probability": 0.3, "matrix": [[1, 0]] * 50}}, "'noise.matrix' holds noise values"),
        ({"noise": {"packed": base64.b64encode(bytes(range(256))).decode()}}, "'noise.packed' holds noise values"),
        ({"original_genotypes": [[0, 1, 2]] * 10}, "data or statistics of the original cohort"),
        ({"original_point_error": 0.31}, "data or statistics of the original cohort"),
        ({"genotypes": [[0, 1, 2]] * 30}, "holds genotype data"),
        ({"per_snp": {"values": list(range(500))}}, "lists 500 values"),
        ({"relatives": {"pairs": [{"id1": "a", "id2": "b", "phi": 0.25}]}}, "lists related individuals"),
        ({"relatives": {"checked": True, "largest_group": 3}}, "exact kinship counts"),
        ({"inputs": {"cohort": {"path": "/data/cohort.csv.gz", "sha256": "ab" * 32}}}, "'inputs.cohort' publishes"),
    ],
)
def test_planted_manifest_items(releases, tmp_path, plant, fragment):
    d = _copy(releases, "csv", tmp_path)
    _write_manifest(d, {**_manifest(d), **plant})
    _fails(d, fragment)


def test_seed_given_flag_is_fine_and_thresholds_only_warn(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    m = _manifest(d)
    m["seed_given"] = True  # a fact, not the seed
    m["relatives"] = {"checked": True, "threshold": 0.0884}  # no counts (those are in the owner's ledger)
    m["noise"]["thresholds"] = list(range(2 * m["n_variants"]))  # public: panel + epsilon
    _write_manifest(d, m)
    rep = check_release(d)
    assert rep.ok, rep.problems
    assert any("flip probabilities: public" in w for w in rep.warnings)


def test_per_snp_frequencies_allowed_only_when_published(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    m = _manifest(d)
    assert m["af_source"]["kind"] == "published"
    m["cohort_allele_frequencies"] = [0.1] * m["n_variants"]
    _write_manifest(d, m)
    assert check_release(d).ok  # the release restores exactly these: asked for and stated in the manifest
    m["af_source"] = {"kind": "reference", "privacy": "public reference-panel frequencies"}
    m["allele_counts"] = [3] * m["n_variants"]
    _write_manifest(d, m)
    _fails(d, "'allele_counts' lists per-SNP allele frequencies/counts", "af_source is reference")


def test_checksums_are_not_key_material():
    problems, _ = check_manifest(
        {
            "inputs": {"reference": {"path": "/x", "sha256": "ab" * 32}},
            "fingerprint": "cd" * 32,
            "release": "release.csv.gz",
            "release_digest": "ef" * 32,
        }
    )
    assert problems == []
    problems, _ = check_manifest({"inputs": {"reference": {"path": "/x", "digest_value": "ab" * 32}}})
    assert problems and "key material" in problems[0]


def test_missing_or_broken_manifest(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    (d / "manifest.json").write_text("{not json")
    _fails(d, "manifest.json: not readable JSON")
    (d / "manifest.json").unlink()
    _fails(d, "no manifest.json")


def test_retention_and_readme_are_checked(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    (d / "retention.json").write_text(json.dumps({"table": [[1, 0.5]] * 100, "seed": 7}))
    _fails(d, "retention.json: 'seed' holds secret material")
    (d / "retention.json").unlink()
    (d / "README.txt").write_text(f"key for the noise: {KEY_HEX}\n")
    _fails(d, "README.txt: holds a long hex string")


# ------------------------------------------------------------------------------------------------------------------
# files and the file system


@pytest.mark.parametrize("name", ["noise.npy", "seed.txt", ".key", "cohort.csv.gz", "release.csv", "notes.json"])
def test_planted_unknown_files(releases, tmp_path, name):
    d = _copy(releases, "csv", tmp_path)
    (d / name).write_bytes(b"\x00\x01")
    os.chmod(d / name, 0o644)
    _fails(d, f"{name}: unexpected file")


def test_planted_directory(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    (d / "work").mkdir(mode=0o755)
    (d / "work" / "cohort.vcz").mkdir(mode=0o755)
    _fails(d, "work/: unexpected directory")


@pytest.mark.parametrize(
    "target, mode, fragment",
    [
        ("manifest.json", 0o664, "group-writable"),
        ("release.csv.gz", 0o666, "world-writable"),
        (".", 0o775, "group-writable"),
    ],
)
def test_writable_files(releases, tmp_path, target, mode, fragment):
    d = _copy(releases, "csv", tmp_path)
    os.chmod(d / target, mode)
    rep = _fails(d, fragment)
    assert any(f"({mode:04o})" in p for p in rep.problems)


def test_writable_inside_store_is_summarised(releases, tmp_path):
    d = _copy(releases, "store", tmp_path)
    for p in (d / "release.vcz").rglob("*"):
        p.chmod(0o775 if p.is_dir() else 0o664)
    rep = _fails(d, "group-writable", "more")
    assert len(rep.problems) == 1  # one line for all of them, not one per chunk


def test_symlinks(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    (d / "README").symlink_to(LACTOSE / "data.csv.gz")
    _fails(d, "README: symlink pointing outside the release")
    (d / "README").unlink()
    (d / "README").symlink_to(tmp_path / "gone")
    _fails(d, "README: dangling symlink")


# ------------------------------------------------------------------------------------------------------------------
# release.vcz


def test_planted_store_arrays(releases, tmp_path):
    d = _copy(releases, "store", tmp_path)
    store = d / "release.vcz"
    shutil.copytree(store / "call_genotype", store / "call_genotype_original")
    _fails(d, "unexpected array 'call_genotype_original' (per-genotype data other than the released calls)")
    shutil.rmtree(store / "call_genotype_original")
    shutil.copytree(store / "variant_position", store / "variant_AF")
    _fails(d, "unexpected array 'variant_AF' (per-site data of the original")
    shutil.rmtree(store / "variant_AF")
    shutil.copytree(store / "call_genotype_phased", store / "noise")
    _fails(d, "unexpected array 'noise'")
    shutil.rmtree(store / "noise")
    (store / "seed").write_text("1")
    _fails(d, "unexpected file 'seed'")
    (store / "seed").unlink()
    assert check_release(d).ok


def test_planted_store_attributes_and_chunks(releases, tmp_path):
    d = _copy(releases, "store", tmp_path)
    store = d / "release.vcz"
    attrs = json.loads((store / ".zattrs").read_text())
    (store / ".zattrs").write_text(json.dumps({**attrs, "noise_seed": 3}))
    _fails(d, "release.vcz: unexpected attribute 'noise_seed'")
    attrs["genoshare_manifest"]["master_key"] = KEY_HEX
    (store / ".zattrs").write_text(json.dumps(attrs))
    _fails(d, "genoshare_manifest: 'master_key' holds secret material")
    del attrs["genoshare_manifest"]["master_key"]
    (store / ".zattrs").write_text(json.dumps(attrs))
    a = json.loads((store / "call_genotype" / ".zattrs").read_text())
    (store / "call_genotype" / ".zattrs").write_text(json.dumps({**a, "key": KEY_HEX}))
    _fails(d, "release.vcz/call_genotype: unexpected attribute 'key'")
    (store / "call_genotype" / ".zattrs").write_text(json.dumps(a))
    assert check_release(d).ok
    # data hidden as a chunk outside the array's grid, or as a stray file inside an array
    (store / "call_genotype" / "9.0.0").write_bytes(b"original genotypes")
    _fails(d, "not a chunk of its array", "release.vcz/call_genotype/9.0.0")
    (store / "call_genotype" / "9.0.0").unlink()
    (store / "call_genotype" / ".noise").write_bytes(b"\x01")
    _fails(d, "release.vcz/call_genotype/.noise")


# ------------------------------------------------------------------------------------------------------------------
# exports and frequencies hold what they claim


def _original_dosage(releases, variant_ids):
    from genoshare.io.vcz import open_vcz, read_dosage

    info = open_vcz(releases["sim"] / "cohort.vcz")
    pos = {v: j for j, v in enumerate(info.variant_id)}
    return read_dosage(info, 0, info.n_variants)[[pos[v] for v in variant_ids]], info.sample_ids


def test_original_genotypes_as_csv_export(releases, tmp_path):
    from genoshare.io.csvmatrix import read_matrix, write_matrix

    d = _copy(releases, "store", tmp_path)
    rel = read_matrix(d / "release.csv.gz")
    G, ids = _original_dosage(releases, rel.variant_ids)
    write_matrix(d / "release.csv.gz", ids, rel.variant_ids, G)
    os.chmod(d / "release.csv.gz", 0o644)
    _fails(d, "release.csv.gz: genotypes differ from release.vcz")
    assert check_release(d, verify_data=False).ok  # --quick cannot see it: names and headers only


def test_tampered_plink_and_vcf_exports(releases, tmp_path):
    d = _copy(releases, "store", tmp_path)
    bed = bytearray((d / "release.bed").read_bytes())
    bed[10] ^= 0b11
    (d / "release.bed").write_bytes(bytes(bed))
    _fails(d, "release.bed: genotypes differ")
    shutil.copy2(releases["store"] / "release.bed", d / "release.bed")
    fam = (d / "release.fam").read_text().splitlines()
    (d / "release.fam").write_text("\n".join(ln.rsplit("\t", 1)[0] + "\t2" for ln in fam) + "\n")
    _fails(d, "release.fam carries phenotypes")
    shutil.copy2(releases["store"] / "release.fam", d / "release.fam")
    lines = gzip.decompress((d / "release.vcf.gz").read_bytes()).decode().splitlines()
    rec = lines[-1].split("\t")
    rec[9] = "1/1" if rec[9] != "1/1" else "0/0"
    lines[-1] = "\t".join(rec)
    (d / "release.vcf.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    _fails(d, "release.vcf.gz: genotypes differ")
    lines.insert(2, '##INFO=<ID=AF,Number=A,Type=Float,Description="original AF">')
    (d / "release.vcf.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    _fails(d, "release.vcf.gz: INFO field in the header")
    (d / "release.vcf.gz.tbi").unlink()
    _fails(d, "release.vcf.gz and release.vcf.gz.tbi come together")
    (d / "release.bim").unlink()
    _fails(d, "incomplete PLINK export")


def test_frequencies_must_be_the_release_own(releases, tmp_path):
    """With af_source published the restored counts equal the original ones exactly, so "original counts" can
    only be told apart when they differ: plant counts of a slightly different cohort (one individual more)."""
    import pandas as pd

    d = _copy(releases, "store", tmp_path)
    f = pd.read_csv(d / "frequencies.tsv", sep="\t", dtype={"id": str, "contig": str})
    other = f.copy()
    other["alt_count"] = f["alt_count"] + (np.arange(len(f)) % 3 == 0)
    other["n_called"] = f["n_called"] + 1
    other["af"] = other["alt_count"] / (2.0 * other["n_called"])
    other.to_csv(d / "frequencies.tsv", sep="\t", index=False)
    _fails(d, "frequencies.tsv: column alt_count differs from the released genotypes")
    g = f.copy()
    g["original_af"] = f["af"]
    g.to_csv(d / "frequencies.tsv", sep="\t", index=False)
    _fails(d, "frequencies.tsv: unexpected column(s) original_af")
    f.assign(af=f["af"] + 0.01).to_csv(d / "frequencies.tsv", sep="\t", index=False)
    _fails(d, "frequencies.tsv: column af differs")


# ------------------------------------------------------------------------------------------------------------------
# phenotypes.tsv and the .fam phenotype


def _sample_ids(d: Path) -> list[str]:
    if (d / "release.fam").exists():
        return [ln.split()[1] for ln in (d / "release.fam").read_text().splitlines()]
    from genoshare.io.csvmatrix import read_matrix

    return read_matrix(d / "release.csv.gz").sample_ids


def _with_phenotypes(releases, tmp_path, kind="csv", fam_column=None) -> Path:
    """A copy declaring a randomized 'case' (PLINK 1/2) and a clear 'age', with a phenotypes.tsv that fits."""
    from genoshare.privacy.phenotype import phenotype_entry

    d = _copy(releases, kind, tmp_path)
    m = _manifest(d)
    m["privacy"]["phenotype"] = phenotype_entry({"case": 1.0}, clear=["age"])
    m["phenotypes"] = {
        "file": "phenotypes.tsv",
        "columns": [
            {"name": "case", "release": "randomized response", "coding": "PLINK 1/2 (1 control, 2 case; 0 missing)"},
            {"name": "age", "release": "in the clear (not protected)", "coding": "not binary"},
        ],
        "plink_fam": {"column": fam_column, "note": "..."},
    }
    _write_manifest(d, m)
    ids = _sample_ids(d)
    _write_pheno(
        d,
        ["sample_id", "case", "age"],
        [[s, "NA" if i == 3 else str(1 + i % 2), str(20 + i)] for i, s in enumerate(ids)],
    )
    return d


def _write_pheno(d: Path, header, rows) -> None:
    (d / "phenotypes.tsv").write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    os.chmod(d / "phenotypes.tsv", 0o644)


def _read_pheno(d: Path):
    rows = [ln.split("\t") for ln in (d / "phenotypes.tsv").read_text().splitlines()]
    return rows[0], rows[1:]


def test_phenotypes_file_needs_a_declaring_manifest(releases, tmp_path):
    d = _copy(releases, "csv", tmp_path)
    _write_pheno(d, ["sample_id", "case"], [[s, "1"] for s in _sample_ids(d)])
    _fails(d, "phenotypes.tsv: phenotypes the manifest does not declare")


def test_declared_phenotypes_pass(releases, tmp_path):
    for kind in ("csv", "store"):
        rep = check_release(_with_phenotypes(releases, tmp_path / kind, kind))
        assert rep.ok, rep.problems


@pytest.mark.parametrize(
    "plant, fragment",
    [
        ("extra_column", "column(s) 'secret_note' not listed by the manifest"),
        ("drop_column", "listed column(s) 'age' missing"),
        ("shuffle_ids", "phenotypes.tsv: sample ids differ from the release"),
        ("missing_row", "phenotypes.tsv: sample ids differ from the release"),
        ("non_binary", "column 'case' is released by randomized response but is not binary (value '3')"),
        ("three_codes", "column 'case' is released by randomized response but is not binary"),
        ("id_header", "the first column must be sample_id"),
        ("no_file", "lists phenotype columns but phenotypes.tsv is missing"),
    ],
)
def test_planted_phenotype_items(releases, tmp_path, plant, fragment):
    d = _with_phenotypes(releases, tmp_path)
    header, rows = _read_pheno(d)
    if plant == "extra_column":
        _write_pheno(d, header + ["secret_note"], [r + ["x"] for r in rows])
    elif plant == "drop_column":
        _write_pheno(d, header[:2], [r[:2] for r in rows])
    elif plant == "shuffle_ids":
        _write_pheno(d, header, rows[1:] + rows[:1])
    elif plant == "missing_row":
        _write_pheno(d, header, rows[:-1])
    elif plant == "non_binary":
        rows[0][1] = "3"
        _write_pheno(d, header, rows)
    elif plant == "three_codes":
        rows[0][1], rows[1][1], rows[2][1] = "0", "1", "2"
        _write_pheno(d, header, rows)
    elif plant == "id_header":
        _write_pheno(d, ["IID"] + header[1:], rows)
    elif plant == "no_file":
        (d / "phenotypes.tsv").unlink()
    _fails(d, fragment)
    _fails(d, fragment, verify_data=False)  # also --quick: the release skips the data check when nothing is exported


def test_fam_phenotype_must_be_what_the_manifest_assigns(releases, tmp_path):
    def set_fam(d, values):
        fam = [ln.split("\t") for ln in (d / "release.fam").read_text().splitlines()]
        (d / "release.fam").write_text("".join("\t".join(r[:5] + [v]) + "\n" for r, v in zip(fam, values)))

    d = _with_phenotypes(releases, tmp_path / "none", "store", fam_column=None)
    _, rows = _read_pheno(d)
    set_fam(d, [r[1] if r[1] != "NA" else "-9" for r in rows])  # declared phenotypes, but not for the .fam
    _fails(d, "release.fam: column 6 differs from what the manifest assigns it")

    d = _with_phenotypes(releases, tmp_path / "case", "store", fam_column="case")
    _, rows = _read_pheno(d)
    fam = [r[1] if r[1] != "NA" else "-9" for r in rows]
    set_fam(d, fam)
    rep = check_release(d)
    assert rep.ok, rep.problems
    fam[0] = "1" if fam[0] == "2" else "2"  # one individual's true status instead of the released one
    set_fam(d, fam)
    _fails(d, "release.fam: column 6 differs")

    d = _with_phenotypes(releases, tmp_path / "age", "store", fam_column="age")
    _fails(d, "phenotypes.plink_fam names 'age', which is not a released binary column")


# ------------------------------------------------------------------------------------------------------------------
# CLI


def test_cli_check_release(releases, tmp_path):
    from genoshare.cli.privacy import check_release_cmd

    runner = CliRunner()
    res = runner.invoke(check_release_cmd, [str(releases["csv"])])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "PASS" and lines[1] == f"warning: {TEST_RELEASE_WARNING}"
    d = _copy(releases, "csv", tmp_path)
    os.chmod(d / "manifest.json", 0o664)
    (d / "noise.npy").write_bytes(b"x")
    os.chmod(d / "noise.npy", 0o644)
    res = runner.invoke(check_release_cmd, [str(d)])
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert lines[0] == "FAIL"
    assert sum(ln.startswith("problem: ") for ln in lines) == 2
    assert any(ln.startswith("warning: ") for ln in lines)
    res = runner.invoke(check_release_cmd, [str(d), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["ok"] is False
    res = runner.invoke(check_release_cmd, [str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such directory" in res.output
    assert stat.S_IMODE((releases["csv"] / "manifest.json").stat().st_mode) == 0o644


def test_accounting_tables_and_af_source_lists_are_allowed():
    m = {
        "af_source": {"kind": "dp", "epsilon": 1.0, "frequencies": [0.1] * 500},
        "privacy": {"epsilon_delta_curve": [[e, 1e-6] for e in range(100)]},
    }
    problems, warnings = check_manifest(m)
    assert problems == [] and warnings == []
    problems, _ = check_manifest({"af_source": {"kind": "dp"}, "cohort_af": [0.1] * 500})
    assert problems and "af_source is dp" in problems[0]
