"""The owner's retention table reruns the release with the release's own settings, without owner bookkeeping.

Issue 10: a `dp:` release's table reran with `public:` and no file; a store release's table ran k full owner
releases (k ledger rows under the real cohort, k kinship checks, k check-release runs)."""

import json

import pytest

from genoshare import api
from genoshare.evaluate.verify import retention_table
from genoshare.privacy.ledger import Ledger, ledger_path
from genoshare.simulate import simulate_cohort


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("retention-rerun")
    simulate_cohort(d / "sim", cases=60, controls=60, panel=60, variants=150, seed=7, holdout=0, formats=("csv", "vcz"))
    return d / "sim"


def _ledger_rows():
    with Ledger(ledger_path()) as led:
        return [e for e in led.releases() if e.status != "cancelled"]


def test_csv_dp_release_table_reruns_with_dp_frequencies(sim, tmp_path):
    """The allelic test sees only the allele counts: the published frequencies are restored exactly (retention
    1.0 in every rerun); dp frequencies add noise to them, so a dp rerun cannot keep all reported SNPs."""
    api.release_csv(sim / "cohort.csv.gz", sim / "panel.csv.gz", 1500.0, tmp_path / "rel", af_source="dp:0.5", seed=2)
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert manifest["af_source"]["kind"] == "dp"
    table = retention_table(
        sim / "cohort.csv.gz",
        sim / "panel.csv.gz",
        tmp_path / "rel",
        phenotype=sim / "phenotype.tsv",
        k=3,
        seed=4,
        tests=("allelic",),
    )
    af = manifest["af_source"]
    assert table["settings"]["af_source"] == f"dp:{af['epsilon_af']!r}:{af['delta_af']!r}"
    assert table["engine"] == "in-memory"
    assert table["tests"]["allelic"]["n_reported"] > 0
    assert table["tests"]["allelic"]["mean"] < 1.0


def test_store_dp_release_table_reruns_without_the_owner_bookkeeping(sim, tmp_path, monkeypatch):
    rel = tmp_path / "rel"
    man = api.release_store(sim / "cohort.vcz", sim / "panel.vcz", 1500.0, rel, af_source="dp:0.5", seed=1, workers=1)
    eps = man["privacy"]["total"]["epsilon"]
    rows = _ledger_rows()
    assert len(rows) == 1
    import genoshare.privacy.checkrelease as checkrelease
    import genoshare.privacy.kinship as kinship

    calls = []

    def counted(name, fn):
        def wrapper(*a, **k):
            calls.append(name)
            return fn(*a, **k)

        return wrapper

    monkeypatch.setattr(checkrelease, "check_release", counted("check-release", checkrelease.check_release))
    monkeypatch.setattr(kinship, "check_relatives", counted("kinship", kinship.check_relatives))
    table = retention_table(
        sim / "cohort.vcz", sim / "panel.vcz", rel, phenotype=sim / "phenotype.tsv", k=3, seed=3, workers=1
    )
    assert table["engine"] == "pipeline"
    af = man["af_source"]
    assert table["settings"]["af_source"] == f"dp:{af['epsilon_af']!r}:{af['delta_af']!r}"
    assert len(table["tests"]["genotypic"]["values"]) == 3
    after = _ledger_rows()
    assert [e.id for e in after] == [e.id for e in rows]  # the one row of the real release
    with Ledger(ledger_path()) as led:
        cum = led.cumulative(rows[0].fingerprint)
        assert cum["n_releases"] == 1 and cum["epsilon"] == pytest.approx(eps)
        led.check_budget(rows[0].fingerprint, 0.0, budget=eps)  # --budget equal to the release's epsilon
    assert calls == []  # no kinship check, no check-release in the reruns
    # the replicate outputs are gone
    assert sorted(p.name for p in rel.iterdir()) == sorted(
        ["manifest.json", "release.vcz", "frequencies.tsv", "retention.json"]
    )


def test_csv_public_release_table_uses_the_release_file_or_af_file(sim, tmp_path):
    """public:FILE reruns with that file; moved, the owner passes --af-file; another file is refused."""
    from click.testing import CliRunner

    from genoshare.cli.verify import retention_table as cmd
    from genoshare.io.csvmatrix import read_matrix

    ids = read_matrix(sim / "cohort.csv.gz").variant_ids
    af = tmp_path / "af.tsv"
    af.write_text("id\taf\n" + "".join(f"{v}\t{0.1 + 0.8 * (i % 7) / 6:.3f}\n" for i, v in enumerate(ids)))
    rel = tmp_path / "rel"
    api.release_csv(sim / "cohort.csv.gz", sim / "panel.csv.gz", 1500.0, rel, af_source=f"public:{af}", seed=2)
    base = ["--original", sim / "cohort.csv.gz", "--reference", sim / "panel.csv.gz", "--release", rel]
    base += ["--phenotype", sim / "phenotype.tsv", "-k", 2, "--seed", 1, "--tests", "allelic", "--overwrite"]

    def run(*extra):
        return CliRunner().invoke(cmd, [str(a) for a in (*base, *extra)])

    res = run()
    assert res.exit_code == 0, res.output
    assert json.loads((rel / "retention.json").read_text())["settings"]["af_source"] == f"public:{af}"
    moved = tmp_path / "moved.tsv"
    af.rename(moved)
    res = run()
    assert res.exit_code != 0 and "--af-file" in res.output
    res = run("--af-file", moved)
    assert res.exit_code == 0, res.output
    assert json.loads((rel / "retention.json").read_text())["settings"]["af_source"] == f"public:{moved}"
    other = tmp_path / "other.tsv"
    other.write_text(moved.read_text().replace("\t0.1", "\t0.2"))
    res = run("--af-file", other)
    assert res.exit_code != 0 and "SHA-256" in res.output and "other.tsv" in res.output
