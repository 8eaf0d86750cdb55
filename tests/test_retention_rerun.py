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
    monkeypatch.setattr(checkrelease, "check_release", lambda *a, **k: calls.append("check-release"))
    monkeypatch.setattr(kinship, "check_relatives", lambda *a, **k: calls.append("kinship"))
    table = retention_table(
        sim / "cohort.vcz", sim / "panel.vcz", rel, phenotype=sim / "phenotype.tsv", k=3, seed=3, workers=1
    )
    assert table["engine"] == "pipeline"
    af = man["af_source"]
    assert table["settings"]["af_source"] == f"dp:{af['epsilon_af']!r}:{af['delta_af']!r}"
    assert len(table["tests"]["genotypic"]["values"]) == 3
    assert calls == []  # no kinship check, no check-release in the reruns
    after = _ledger_rows()
    assert [e.id for e in after] == [e.id for e in rows]  # the one row of the real release
    with Ledger(ledger_path()) as led:
        cum = led.cumulative(rows[0].fingerprint)
        assert cum["n_releases"] == 1 and cum["epsilon"] == pytest.approx(eps)
        led.check_budget(rows[0].fingerprint, 0.0, budget=eps)  # --budget equal to the release's epsilon
    # the replicate outputs are gone
    assert sorted(p.name for p in rel.iterdir()) == sorted(
        ["manifest.json", "release.vcz", "frequencies.tsv", "retention.json"]
    )
