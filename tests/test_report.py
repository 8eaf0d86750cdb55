"""`genoshare report`: the committee's HTML page and report.json, from real releases, attacks and retention tables.

Numbers are checked against independent computation (the posterior formula, scipy's beta quantiles for the
Clopper-Pearson intervals) and against the inputs (attack JSON, manifests, retention tables, the ledger); the page
is loaded in the system chromium (offline, every request recorded) and checked with axe-core.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import beta

from genoshare.cli import main

ROOT = Path(__file__).resolve().parents[1]
LACTOSE = ROOT / "data" / "opensnp-lactose"
DATA, REF = LACTOSE / "data.csv.gz", LACTOSE / "reference.csv.gz"
EPSILONS = (1.0, 20.0)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two lactose releases (epsilon 1 and 20, seed 1), each with a k=2 retention table and a split-panel attack
    (nn, lrt), recorded in a fresh private ledger; then the report of both with --ledger --budget 100."""
    d = tmp_path_factory.mktemp("report")
    old = os.environ.get("GENOSHARE_PRIVATE_DIR")
    os.environ["GENOSHARE_PRIVATE_DIR"] = str(d / "private")
    try:
        rels, attacks = [], []
        for eps in EPSILONS:
            rel = d / f"lactose-e{eps:g}"
            res = invoke("release", DATA, "--reference", REF, "--epsilon", eps, "--out", rel, "--seed", 1)
            assert res.exit_code == 0, res.output
            res = invoke(
                "retention-table",
                "--original",
                DATA,
                "--reference",
                REF,
                "--release",
                rel,
                "--controls",
                REF,
                "-k",
                2,
                "--seed",
                5,
            )
            assert res.exit_code == 0, res.output
            res = invoke(
                "attack",
                "--original",
                DATA,
                "--release",
                rel,
                "--nonmembers",
                REF,
                "--split-panel",
                "--attacks",
                "nn,lrt",
                "--json",
            )
            assert res.exit_code == 0, res.output
            att = d / f"attack-e{eps:g}.json"
            att.write_text(res.output)
            res = invoke("evaluate", "--original", DATA, "--release", rel)
            assert res.exit_code == 0, res.output
            (d / "evaluation").mkdir(exist_ok=True)
            (d / "evaluation" / f"{rel.name}.json").write_text(res.output)
            rels.append(rel)
            attacks.append(att)
        out = d / "out" / "report.html"
        args = [a for r in rels for a in ("--release", r)] + [a for t in attacks for a in ("--attacks", t)]
        args += [a for r in rels for a in ("--evaluation", d / "evaluation" / f"{r.name}.json")]
        res = invoke("report", *args, "--ledger", "--budget", 100, "--retention-target", 0.5, "--out", out)
        assert res.exit_code == 0, res.output
        yield {
            "dir": d,
            "rels": rels,
            "attacks": attacks,
            "out": out,
            "args": args,
            "report": json.loads((out.parent / "report.json").read_text()),
        }
    finally:
        if old is None:
            os.environ.pop("GENOSHARE_PRIVATE_DIR", None)
        else:
            os.environ["GENOSHARE_PRIVATE_DIR"] = old


def _release(report, name):
    return next(r for c in report["cohorts"] for r in c["releases"] if r["name"] == name)


def test_one_cohort_sweep_with_the_manifests_numbers(run):
    rep = run["report"]
    assert len(rep["cohorts"]) == 1
    c = rep["cohorts"][0]
    assert c["cohort"] == "data.csv.gz"  # the cohort's base name, as the manifest states it
    assert c["sweep"] and [r["name"] for r in c["releases"]] == [p.name for p in run["rels"]]
    for rel_dir in run["rels"]:
        m = json.loads((rel_dir / "manifest.json").read_text())
        r = _release(rep, rel_dir.name)
        assert r["epsilon_xor"] == m["epsilon_xor"]
        assert r["epsilon"] == m["privacy"]["total"]["epsilon_pure"]
        assert r["epsilon_at_delta"] == m["privacy"]["total"]["epsilon"]
        assert r["delta"] == m["privacy"]["total"]["delta"]
        assert (r["n_samples"], r["n_variants"]) == (m["n_samples"], m["n_variants"]) == (60, 9091)
        assert r["af_kind"] == "published" and r["af_own"] and r["test_release"]
        ev = json.loads((run["dir"] / "evaluation" / f"{rel_dir.name}.json").read_text())
        assert {k: r["evaluation"][k] for k in ev} == ev


def test_posterior_bound_and_ceiling_against_the_formula(run):
    for rel_dir in run["rels"]:
        r = _release(run["report"], rel_dir.name)
        eps = r["epsilon"]
        for row in r["guarantee"]["posteriors"]:
            p = row["prior"]
            expected = p * math.exp(eps) / (p * math.exp(eps) + 1 - p)
            assert row["posterior"] == pytest.approx(expected, abs=1e-9)
        assert [row["prior"] for row in r["guarantee"]["posteriors"]] == [0.01, 0.1, 0.5]
        post50 = 0.5 * math.exp(eps) / (0.5 * math.exp(eps) + 0.5)
        assert r["guarantee"]["vacuous"] == (post50 > 0.99)
        assert r["guarantee"]["people_of_100_at_50"] == math.ceil(100 * post50 - 1e-9)
        e_d, d = r["epsilon_at_delta"], r["delta"]
        for k in ("0.001", "0.01", "0.05"):
            f = float(k)
            expected = min(1.0, math.exp(eps) * f, math.exp(e_d) * f + d, 1 - math.exp(-e_d) * (1 - d - f))
            assert r["guarantee"]["tpr_ceiling"][k] == pytest.approx(expected, abs=1e-9)
    # epsilon 1: a real bound (73.1 of 100 at a 50% prior); epsilon 20: vacuous, and the page says so
    assert not _release(run["report"], run["rels"][0].name)["guarantee"]["vacuous"]
    assert _release(run["report"], run["rels"][1].name)["guarantee"]["vacuous"]
    html = run["out"].read_text()
    assert f'data-vacuous="{run["rels"][1].name}"' in html and f'data-vacuous="{run["rels"][0].name}"' not in html
    assert "The formal guarantee is vacuous at this setting" in html


def test_attack_numbers_equal_the_attack_json_and_clopper_pearson(run):
    for rel_dir, att_path in zip(run["rels"], run["attacks"]):
        att = json.loads(att_path.read_text())
        r = _release(run["report"], rel_dir.name)
        assert sorted(a["attack"] for a in r["attacks"]) == ["likelihood_ratio", "nearest_neighbour"]
        n = att["split"]["members"]["evaluation"]
        for a in r["attacks"]:
            src = att[a["attack"]]
            assert a["auc"] == src["auc"] and a["epsilon_lower_bound"] == src["epsilon_lower_bound"]
            assert a["roc"] == src["roc"]
            h = a["score_histogram"]
            assert h == src["score_histogram"]
            assert sum(h["members"]) == n and sum(h["nonmembers"]) == att["split"]["nonmembers"]["evaluation"]
            assert a["members"] == att["split"]["members"] and a["releases_audited"] == 1
            for k in ("0.001", "0.01", "0.05"):
                t = a["tpr_at_fpr"][k]
                assert t["tpr"] == src["tpr_at_fpr"][k]["tpr"]
                # independent Clopper-Pearson at 95% from scipy's beta quantiles (one seed: exact counts)
                kk = round(t["tpr"] * n)
                lo = 0.0 if kk == 0 else beta.ppf(0.025, kk, n - kk + 1)
                hi = 1.0 if kk == n else beta.ppf(0.975, kk + 1, n - kk)
                assert (t["ci_low"], t["ci_high"]) == (pytest.approx(lo, abs=2e-6), pytest.approx(hi, abs=2e-6))
            fpr1 = src["fpr_at_threshold"]["0.01"]["fpr"]
            assert a["sentence"] == (
                f"At the threshold set for 1 in 100 false alarms, this attack caught "
                f"{round(100 * src['tpr_at_fpr']['0.01']['tpr'])} of 100 members while "
                f"wrongly flagging {round(100 * fpr1)} of 100 non-members."
            )
            assert a["within_guarantee"] == (src["epsilon_lower_bound"] <= r["epsilon_xor"])


def test_retention_recommendation_and_ledger(run):
    rep = run["report"]
    c = rep["cohorts"][0]
    means = {}
    for rel_dir in run["rels"]:
        table = json.loads((rel_dir / "retention.json").read_text())
        r = _release(rep, rel_dir.name)
        assert r["retention"]["headline_test"] == "genotypic"
        assert r["retention"]["headline"] == pytest.approx(table["tests"]["genotypic"]["mean"], abs=1e-6)
        means[rel_dir.name] = table["tests"]["genotypic"]["mean"]
    meets = [p.name for p in run["rels"] if means[p.name] >= 0.5]  # run["rels"] is in increasing epsilon
    assert meets, means
    assert c["recommendation"]["release"] == meets[0]
    # the ledger: the two releases of this cohort, each counted with the total epsilon its manifest states
    spent = [json.loads((p / "manifest.json").read_text())["privacy"]["total"]["epsilon"] for p in run["rels"]]
    led = c["ledger"]
    assert led["found"] and led["n_releases"] == 2 and led["n_test_releases"] == 2
    assert led["cumulative_epsilon"] == pytest.approx(sum(spent), rel=1e-12)
    assert led["remaining"] == pytest.approx(100 - sum(spent), rel=1e-12)
    assert [s["release"] for s in led["steps"]] == [p.name for p in run["rels"]]
    assert {b["id"]: b["status"] for b in c["badges"]}["budget"] == "pass"
    assert {b["id"]: b["status"] for b in c["badges"]}["frequencies"] == "warn"


def test_no_recommendation_when_no_release_meets_the_target(run, tmp_path):
    out = tmp_path / "r.html"
    res = invoke("report", *run["args"], "--retention-target", 0.99, "--out", out)
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "report.json").read_text())
    rec = rep["cohorts"][0]["recommendation"]
    assert rec["release"] is None and rec["text"] == (
        "No release of this sweep reaches the retention target of 0.99 (genotypic test)."
    )
    assert rec["text"] in out.read_text()


def test_self_contained_no_paths_no_sample_ids(run):
    html = run["out"].read_text()
    text = html + (run["out"].parent / "report.json").read_text()
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", html)  # only in-page anchors
    assert not re.search(r"url\(", html)
    assert str(run["dir"]) not in text and str(ROOT) not in text and "/tmp/" not in text
    ids = [line.split(",")[0] for line in __import__("gzip").open(DATA, "rt").read().splitlines()[1:]]
    ids += [line.split(",")[0] for line in __import__("gzip").open(REF, "rt").read().splitlines()[1:]]
    leaked = [i for i in ids if re.search(rf"(?<![\w.]){re.escape(i)}(?![\w.])", text)]
    assert not leaked, leaked[:5]
    assert len(html.encode()) < 6_000_000


def test_model_audit_section(run, tmp_path):
    audit = json.loads(run["attacks"][0].read_text())
    audit = {"model": {"name": "toy-classifier", "epsilon": 2.0}, "nearest_neighbour": audit["nearest_neighbour"]}
    path = tmp_path / "model-audit.json"
    path.write_text(json.dumps(audit))
    out = tmp_path / "m.html"
    res = invoke("report", "--release", run["rels"][0], "--model-audit", path, "--out", out)
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["models"][0]["name"] == "toy-classifier" and rep["models"][0]["epsilon"] == 2.0
    assert rep["models"][0]["attacks"][0]["auc"] == audit["nearest_neighbour"]["auc"]
    assert 'data-fig="m0-roc-log"' in out.read_text()


# ---------------------------------------------------------------------------------------------------------------
# bad input: one line naming the file, exit 2, nothing written


def _bad(run, tmp_path, *args):
    out = tmp_path / "bad" / "report.html"
    res = CliRunner().invoke(main, ["report", *[str(a) for a in args], "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genoshare: error: "), res.output
    assert not out.exists() and not (out.parent / "report.json").exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())
    return lines[0]


def test_release_dir_without_manifest(run, tmp_path):
    empty = tmp_path / "not-a-release"
    empty.mkdir()
    msg = _bad(run, tmp_path, "--release", run["rels"][0], "--release", empty)
    assert str(empty) in msg and "manifest" in msg


def test_attack_of_another_release(run, tmp_path):
    msg = _bad(run, tmp_path, "--release", run["rels"][0], "--attacks", run["attacks"][1])
    assert str(run["attacks"][1]) in msg and "another release" in msg


def test_attack_of_another_cohort(run, tmp_path):
    att = json.loads(run["attacks"][0].read_text())
    att["split"]["members"] = {"calibration": 500, "evaluation": 500}
    path = tmp_path / "other-cohort.json"
    path.write_text(json.dumps(att))
    msg = _bad(run, tmp_path, "--release", run["rels"][0], "--attacks", path)
    assert str(path) in msg and "another cohort" in msg


def test_retention_of_another_release(run, tmp_path):
    msg = _bad(run, tmp_path, "--release", run["rels"][0], "--retention", run["rels"][1] / "retention.json")
    assert "retention.json" in msg and "another release" in msg


def test_other_settings_form_their_own_sweep(run, tmp_path):
    """A release of the same cohort with another setting is not put on the same epsilon axis: it gets a section
    of its own, labelled with its settings (a workflow comparing calibrations must still get its report)."""
    other = tmp_path / "lactose-e5-other"
    shutil.copytree(run["rels"][1], other)
    m = json.loads((other / "manifest.json").read_text())
    m["zero_cell"], m["epsilon_xor"] = "other-rule", 5.0
    (other / "manifest.json").write_text(json.dumps(m))
    (other / "retention.json").unlink()
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        main, ["report", "--release", str(run["rels"][0]), "--release", str(other), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "report.json").read_text())
    assert [[r["name"] for r in c["releases"]] for c in rep["cohorts"]] == [[run["rels"][0].name], [other.name]]
    assert [c["settings"]["zero_cell"] for c in rep["cohorts"]] == ["haldane", "other-rule"]
    assert all("zero cell" in c["label"] for c in rep["cohorts"])
    assert not any(c["sweep"] for c in rep["cohorts"])
    assert "other-rule" in out.read_text()


def test_evaluation_named_for_no_release(run, tmp_path):
    path = tmp_path / "someone-else.json"
    shutil.copy(run["dir"] / "evaluation" / f"{run['rels'][0].name}.json", path)
    msg = _bad(run, tmp_path, "--release", run["rels"][0], "--evaluation", path)
    assert str(path) in msg and "no --release" in msg


def test_ledger_missing_and_report_inside_a_release(run, tmp_path, monkeypatch):
    monkeypatch.setenv("GENOSHARE_PRIVATE_DIR", str(tmp_path / "no-private-dir"))
    msg = _bad(run, tmp_path, "--release", run["rels"][0], "--ledger")
    assert "no-private-dir" in msg and "no ledger" in msg
    assert not (tmp_path / "no-private-dir").exists()  # reading the ledger never creates the private directory
    inside = run["rels"][0] / "report.html"
    res = CliRunner().invoke(main, ["report", "--release", str(run["rels"][0]), "--out", str(inside)])
    assert res.exit_code == 2 and "inside the release directory" in res.output, res.output
    assert not inside.exists() and not (run["rels"][0] / "report.json").exists()


def test_empty_list_and_unreadable_attack(run, tmp_path):
    assert "--release" in _bad(run, tmp_path)  # click's one-line usage error: the option is required
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    msg = _bad(run, tmp_path, "--release", run["rels"][0], "--attacks", broken)
    assert str(broken) in msg and "not valid JSON" in msg


# ---------------------------------------------------------------------------------------------------------------
# the page in a real browser


def test_page_in_chromium(run, tmp_path):
    from tools import require_tool

    require_tool("chromium")
    pw = pytest.importorskip("playwright.sync_api")
    from axe_playwright_python.sync_playwright import Axe

    rep = run["report"]
    c = rep["cohorts"][0]
    console, errors, requests = [], [], []
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(offline=True, viewport={"width": 1100, "height": 1400}, bypass_csp=True)
            page = ctx.new_page()
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(run["out"].as_uri())
            page.wait_for_load_state("load")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            # every expected figure is an SVG with marks
            expected = []
            for ri in range(len(c["releases"])):
                expected += [f"c0-r{ri}-posterior", f"c0-r{ri}-icons", f"c0-r{ri}-roc-linear", f"c0-r{ri}-roc-log"]
                expected += [f"c0-r{ri}-hist-{a['attack']}" for a in c["releases"][ri]["attacks"]]
            expected += ["sweep-0-utility", "sweep-0-risk", "sweep-0-bound", "sweep-0-errors", "ledger-0"]
            found = page.eval_on_selector_all(
                "svg[data-fig]",
                "els => els.map(e => [e.dataset.fig, e.querySelectorAll('.mark').length, e.getBBox().width])",
            )
            marks = {f: (n, w) for f, n, w in found}
            for fig in expected:
                assert fig in marks, (fig, sorted(marks))
                assert marks[fig][0] > 0 and marks[fig][1] > 0, (fig, marks[fig])
            for ri, r in enumerate(c["releases"]):
                filled = page.locator(f'svg[data-fig="c0-r{ri}-icons"] .person.member').count()
                assert filled == r["guarantee"]["people_of_100_at_50"]

            # key numbers and sentences on the page equal report.json
            def key(k):
                return page.locator(f'[data-key="{k}"]').inner_text().strip()

            assert key("c0.n_samples") == f"{c['n_samples']:,}" and key("c0.n_variants") == f"{c['n_variants']:,}"
            for r in c["releases"]:
                n = r["name"]
                for row in r["guarantee"]["posteriors"]:
                    assert key(f"c0.{n}.posterior.{row['prior']}") == f"{round(100 * row['posterior'], 1)} in 100"
                assert key(f"c0.{n}.retention") == f"{r['retention']['headline']:.3f}"
                assert key(f"c0.{n}.point_error") == f"{r['evaluation']['point_error']:.4f}"
                for a in r["attacks"]:
                    assert key(f"c0.{n}.{a['attack']}.auc") == f"{a['auc']:.3f}"
                    assert key(f"c0.{n}.{a['attack']}.tpr.0.01") == f"{a['tpr_at_fpr']['0.01']['tpr']:.3f}"
                    assert key(f"c0.{n}.{a['attack']}.lb") == f"{a['epsilon_lower_bound']:.3f}"
                    sentence = page.locator(f'[data-sentence="c0.{n}.{a["attack"]}"]').inner_text()
                    assert a["sentence"] in sentence
            assert key("c0.recommendation") == c["recommendation"]["text"]
            assert key("c0.ledger.cumulative") == f"{c['ledger']['cumulative_epsilon']:.4g}"
            assert page.locator('[data-warning="own-frequencies"]').is_visible()
            # details open on click and show the formula
            page.locator("summary", has_text="Formulas: the guarantee").first.click()
            assert page.get_by_text("ln 99").first.is_visible()
            # accessibility: no serious or critical violation
            result = Axe().run(page)
            bad = [
                (v["id"], v["impact"], len(v["nodes"]))
                for v in result.response["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert not bad, bad
        finally:
            browser.close()
    assert not errors, errors
    assert not [m for m in console if m[0] == "error"], console
    assert requests and all(u.split(":", 1)[0] in ("file", "data", "blob") for u in requests), requests
    assert np.all([u.startswith("file:") for u in requests[:1]])
