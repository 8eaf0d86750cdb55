"""`genoshare report`: one self-contained HTML page (plus report.json) for a data-access committee.

Inputs are the files genoshare already writes: release directories (manifest.json, optionally retention.json),
`genoshare attack --json` outputs, `genoshare retention-table` outputs, model-audit JSON and the owner's ledger.
:func:`collect` turns them into one JSON-able dict holding every number the page shows (``report.json``);
:func:`render` turns that dict into HTML (jinja2 template, inline SVG figures); :func:`build` does both and writes
the two files atomically. Nothing per individual and no absolute path goes into either file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from datetime import datetime, UTC
from pathlib import Path

from genoshare import __version__
from genoshare.errors import GenoshareError, InputError

PRIORS = (0.01, 0.10, 0.50)
VACUOUS_POSTERIOR = 0.99
LEVELS = ("0.001", "0.01", "0.05")
DEFAULT_RETENTION_TARGET = 0.8
RETENTION_TESTS = ("genotypic", "dominant", "allelic")  # the first one present is the headline test
SWEEP_SETTINGS = ("calibration", "zero_cell", "window", "af_kind", "release_file")
OWN_FREQUENCIES = ("published",)


# ------------------------------------------------------------------------------------------------------------------
# the numbers


def posterior_bound(prior: float, epsilon: float) -> float:
    """Largest posterior probability of membership an attacker can reach from ``prior`` under pure epsilon-DP:
    p e^eps / (p e^eps + 1 - p), computed as 1 / (1 + (1 - p) / p e^-eps) (no overflow at large epsilon)."""
    if prior <= 0:
        return 0.0
    if prior >= 1:
        return 1.0
    return 1.0 / (1.0 + (1.0 - prior) / prior * math.exp(-min(epsilon, 700.0)))


def tpr_ceiling(fpr: float, regions) -> float:
    """Largest TPR of any test at ``fpr`` under every (epsilon, delta) guarantee in ``regions`` (each one holds,
    so the smallest ceiling holds): min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR))."""
    best = 1.0
    for eps, delta in regions:
        e = min(eps, 700.0)
        best = min(best, math.exp(e) * fpr + delta, 1.0 - math.exp(-e) * (1.0 - delta - fpr))
    return max(0.0, min(1.0, best))


def _r(x, nd: int = 6):
    return None if x is None else float(round(float(x), nd))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, f"no such {what}") from None
    except IsADirectoryError:
        raise InputError(path, f"is a directory, not a {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"{what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"{what} is not a JSON object")
    return data


def _num(value, path, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(float(value)):
        raise InputError(path, f"{what} is missing or not a finite number")
    return float(value)


def _same_eps(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# ------------------------------------------------------------------------------------------------------------------
# releases


def read_release(release_dir) -> dict:
    d = Path(release_dir)
    if not d.is_dir():
        raise InputError(d, "not a release directory")
    mpath = d / "manifest.json"
    if not mpath.is_file():
        raise InputError(d, "release directory without manifest.json")
    m = _read_json(mpath, "release manifest")
    path = mpath
    inputs = m.get("inputs") if isinstance(m.get("inputs"), dict) else {}
    cohort = inputs.get("cohort") if isinstance(inputs.get("cohort"), dict) else {}
    reference = inputs.get("reference") if isinstance(inputs.get("reference"), dict) else {}
    priv = m.get("privacy") if isinstance(m.get("privacy"), dict) else {}
    total = priv.get("total") if isinstance(priv.get("total"), dict) else {}
    xor = priv.get("xor") if isinstance(priv.get("xor"), dict) else {}
    af = m.get("af_source") if isinstance(m.get("af_source"), dict) else {}
    eps_xor = _num(m.get("epsilon_xor", priv.get("epsilon_xor")), path, "epsilon_xor")
    eps_pure = total.get("epsilon_pure", eps_xor)
    eps_pure = eps_xor if not isinstance(eps_pure, (int, float)) else float(eps_pure)
    eps_delta, delta = total.get("epsilon"), total.get("delta")
    regions = [(eps_pure, 0.0)]
    if isinstance(eps_delta, (int, float)) and isinstance(delta, (int, float)) and delta > 0:
        regions.append((float(eps_delta), float(delta)))
    else:
        eps_delta, delta = None, None
    not_covered = [nc.get("statement") for nc in total.get("not_covered", []) if isinstance(nc, dict)]
    name = d.name
    n_samples = m.get("n_samples")
    n_variants = m.get("n_variants")
    if not isinstance(n_samples, int) or not isinstance(n_variants, int):
        raise InputError(mpath, "manifest has no n_samples / n_variants")
    posteriors = [{"prior": p, "posterior": _r(posterior_bound(p, eps_pure), 9)} for p in PRIORS]
    post50 = posterior_bound(0.5, eps_pure)
    ceiling = {k: _r(tpr_ceiling(float(k), regions), 9) for k in LEVELS}
    noise = m.get("noise") if isinstance(m.get("noise"), dict) else {}
    timings = m.get("timings") if isinstance(m.get("timings"), dict) else {}
    return {
        "name": name,
        "_dir": str(d.resolve()),
        "_manifest_sha256": _sha256_file(mpath),
        "cohort": Path(str(cohort.get("name") or cohort.get("path") or "unknown")).name,  # base name only
        "reference": Path(str(reference.get("path"))).name if reference.get("path") else None,
        "reference_sha256": reference.get("sha256"),
        "n_samples": n_samples,
        "n_variants": n_variants,
        "n_reference": m.get("n_reference"),
        "mechanism": xor.get("mechanism") or "XOR with Bernoulli noise (randomized response on genotype bits)",
        "epsilon_requested": m.get("epsilon_requested"),
        "epsilon_xor": eps_xor,
        "epsilon": eps_pure,
        "epsilon_at_delta": None if eps_delta is None else float(eps_delta),
        "delta": None if delta is None else float(delta),
        "epsilon_nominal": m.get("epsilon_nominal"),
        "calibration": m.get("calibration"),
        "zero_cell": m.get("zero_cell"),
        "window": m.get("window"),
        "af_kind": af.get("kind"),
        "af_statement": af.get("privacy"),
        "af_own": af.get("kind") in OWN_FREQUENCIES,
        "release_file": m.get("release_file"),
        "test_release": bool(m.get("reproducible_test_release", False)),
        "warning": m.get("warning"),
        "mean_flip_probability": noise.get("mean_flip_probability"),
        "missingness": priv.get("missingness"),
        "phenotypes": priv.get("phenotypes"),
        "reference_panel": priv.get("reference_panel"),
        "relatives": m.get("relatives") if isinstance(m.get("relatives"), dict) else None,
        "not_covered": not_covered,
        "tool_version": m.get("version"),
        "created": m.get("created"),
        "timings": {k: v for k, v in timings.items() if isinstance(v, (int, float))},
        "guarantee": {
            "epsilon": eps_pure,
            "posteriors": posteriors,
            "posterior_at_50": _r(post50, 9),
            "people_of_100_at_50": min(100, math.ceil(100 * post50 - 1e-9)),
            "vacuous": post50 > VACUOUS_POSTERIOR,
            "tpr_ceiling": ceiling,
            "regions": [{"epsilon": e, "delta": dl} for e, dl in regions],
        },
        "_regions": regions,
        "attacks": [],
        "retention": None,
        "evaluation": None,
    }


# ------------------------------------------------------------------------------------------------------------------
# attacks, retention, model audits


def _attack_entries(data: dict, path: Path) -> dict:
    out = {}
    for key, v in data.items():
        if key in ("split", "audit") or not isinstance(v, dict):
            continue
        if "roc" in v and "tpr_at_fpr" in v:
            out[key] = v
    if not out:
        raise InputError(path, "holds no attack results (expected the JSON of `genoshare attack --json`)")
    return out


def _leakage(name: str, v: dict, path: Path, regions, accountant_eps: float | None) -> dict:
    roc = v.get("roc") or {}
    fpr, tpr = roc.get("fpr"), roc.get("tpr")
    if not isinstance(fpr, list) or not isinstance(tpr, list) or len(fpr) != len(tpr) or len(fpr) < 2:
        raise InputError(path, f"attack {name!r} has no usable ROC")
    at = {}
    for k in LEVELS:
        t = (v.get("tpr_at_fpr") or {}).get(k)
        f = (v.get("fpr_at_threshold") or {}).get(k) or {}
        if not isinstance(t, dict):
            raise InputError(path, f"attack {name!r} has no TPR at FPR {k}")
        at[k] = {
            "tpr": _num(t.get("tpr"), path, f"{name} TPR at {k}"),
            "ci_low": _num(t.get("ci_low"), path, f"{name} TPR interval at {k}"),
            "ci_high": _num(t.get("ci_high"), path, f"{name} TPR interval at {k}"),
            "fpr": f.get("fpr"),
            "fpr_ci_high": f.get("ci_high"),
            "ceiling": _r(tpr_ceiling(float(k), regions), 9) if regions else None,
        }
    lb = _num(v.get("epsilon_lower_bound"), path, f"{name} epsilon_lower_bound")
    detail = v.get("epsilon_lower_bound_detail") if isinstance(v.get("epsilon_lower_bound_detail"), dict) else {}
    one = at["0.01"]
    caught = round(100 * one["tpr"])
    wrongly = None if one["fpr"] is None else round(100 * float(one["fpr"]))
    sentence = (
        f"At the threshold set for 1 in 100 false alarms, this attack caught {caught} of 100 members"
        + ("" if wrongly is None else f" while wrongly flagging {wrongly} of 100 non-members")
        + "."
    )
    within = None if accountant_eps is None else lb <= accountant_eps * (1 + 1e-9)
    hist = v.get("score_histogram")
    ok_hist = (
        isinstance(hist, dict)
        and isinstance(hist.get("edges"), list)
        and all(
            isinstance(hist.get(k), list) and len(hist[k]) == len(hist["edges"]) - 1 for k in ("members", "nonmembers")
        )
        and len(hist["edges"]) >= 2
    )
    return {
        "score_histogram": (
            {k: [float(x) if k == "edges" else int(x) for x in hist[k]] for k in ("edges", "members", "nonmembers")}
            if ok_hist
            else None
        ),
        "attack": name,
        "auc": _num(v.get("auc"), path, f"{name} AUC"),
        "roc": {"fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr]},
        "tpr_at_fpr": at,
        "epsilon_lower_bound": lb,
        "confidence": detail.get("confidence"),
        "lower_bound_method": detail.get("method"),
        "seeds": len(v.get("per_seed") or []) or None,
        "sentence": sentence,
        "within_guarantee": within,
    }


def attach_attack(path: Path, releases: list[dict]) -> None:
    data = _read_json(path, "attack JSON")
    entries = _attack_entries(data, path)
    audit = data.get("audit") if isinstance(data.get("audit"), dict) else {}
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    audited = [r for r in audit.get("releases", []) if isinstance(r, dict)]
    if not audited:
        raise InputError(path, "names no audited release (audit.releases is empty)")
    names = {Path(str(r.get("path", ""))).name: r for r in audited}
    target = None
    for rel in releases:
        a = names.get(rel["name"])
        if a is None:
            continue
        eps = a.get("epsilon_xor")
        if not isinstance(eps, (int, float)) or not _same_eps(float(eps), rel["epsilon_xor"]):
            raise InputError(
                path,
                f"audits a release named {rel['name']!r} at epsilon_xor {eps}, but that "
                f"release's manifest says {rel['epsilon_xor']:.6g}: an attack of another release",
            )
        target = rel
        break
    if target is None:
        raise InputError(
            path,
            f"audits release(s) {', '.join(sorted(names))}, none of the --release directories "
            f"({', '.join(r['name'] for r in releases)}): an attack of another release",
        )
    members = split.get("members") if isinstance(split.get("members"), dict) else {}
    n_members = sum(v for v in members.values() if isinstance(v, int))
    if members and n_members != target["n_samples"]:
        raise InputError(
            path,
            f"has {n_members} members but release {target['name']!r} has "
            f"{target['n_samples']} individuals: an attack of another cohort",
        )
    snps = split.get("snps")
    if isinstance(snps, int) and snps > target["n_variants"]:
        raise InputError(
            path,
            f"used {snps} SNPs but release {target['name']!r} has {target['n_variants']}: an attack of another cohort",
        )
    nonmembers = split.get("nonmembers") if isinstance(split.get("nonmembers"), dict) else {}
    common = {
        "file": path.name,
        "sha256": _sha256_file(path),
        "releases_audited": len(audited),
        "snps": snps,
        "members": members,
        "nonmembers": nonmembers,
        "split_panel": split.get("split_panel"),
        "notes": [_strip_paths(n) for n in split.get("notes", []) if isinstance(n, str)],
        "confidence": audit.get("confidence"),
        "delta": audit.get("delta"),
    }
    for name, v in entries.items():
        item = _leakage(name, v, path, target["_regions"], target["epsilon_xor"])
        item.update(common)
        target["attacks"].append(item)


def attach_retention(path: Path, by_sha: dict, releases: list[dict]) -> None:
    if path.is_dir():
        path = path / "retention.json"
    data = _read_json(path, "retention table")
    tests = data.get("tests")
    if not isinstance(tests, dict) or not tests:
        raise InputError(
            path, "holds no retention per test (expected the retention.json of `genoshare retention-table`)"
        )
    sha = ((data.get("release") or {}).get("manifest") or {}).get("sha256")
    rel = by_sha.get(sha)
    if rel is None:
        raise InputError(
            path,
            "is the retention table of another release (its manifest SHA-256 matches none of "
            f"the --release directories: {', '.join(r['name'] for r in releases)})",
        )
    out = {}
    for test, t in tests.items():
        if not isinstance(t, dict):
            continue
        out[test] = {k: _r(t.get(k), 6) for k in ("mean", "sd", "min", "q05", "median", "q95", "max")}
        out[test]["n_reported"] = t.get("n_reported")
    if not out:
        raise InputError(path, "holds no retention per test")
    headline = next((t for t in RETENTION_TESTS if t in out), sorted(out)[0])
    rel["retention"] = {
        "file": path.name,
        "sha256": _sha256_file(path),
        "k": data.get("k"),
        "alpha": data.get("alpha"),
        "tau": data.get("tau"),
        "design": data.get("design"),
        "tests": out,
        "headline_test": headline,
        "headline": out[headline]["mean"],
    }


EVALUATION_METRICS = ("point_error", "sample_error", "mean_error", "variance_error")


def attach_evaluation(path: Path, releases: list[dict]) -> None:
    """The JSON of `genoshare evaluate` for one release, named <release directory name>.json (the workflow's
    evaluation/<release>.json)."""
    data = _read_json(path, "evaluation JSON")
    rel = next((r for r in releases if r["name"] == path.stem), None)
    if rel is None:
        raise InputError(
            path,
            f"is named for no --release directory (an evaluation must be named "
            f"<release>.json; releases: {', '.join(r['name'] for r in releases)})",
        )
    metrics = {k: _num(data[k], path, k) for k in EVALUATION_METRICS if k in data}
    if not metrics:
        raise InputError(
            path, "holds none of " + ", ".join(EVALUATION_METRICS) + " (expected the JSON of `genoshare evaluate`)"
        )
    rel["evaluation"] = {"file": path.name, "sha256": _sha256_file(path), **metrics}


def read_model_audit(path: Path) -> dict:
    data = _read_json(path, "model-audit JSON")
    entries = _attack_entries(data, path)
    eps = None
    for holder in (data.get("audit"), data.get("model"), data):
        if isinstance(holder, dict) and isinstance(holder.get("epsilon"), (int, float)):
            eps = float(holder["epsilon"])
            break
    regions = [(eps, 0.0)] if eps is not None else []
    model = data.get("model")
    name = model.get("name") if isinstance(model, dict) else (model if isinstance(model, str) else None)
    return {
        "file": path.name,
        "sha256": _sha256_file(path),
        "name": name or path.stem,
        "epsilon": eps,
        "attacks": [_leakage(n, v, path, regions, eps) for n, v in entries.items()],
    }


def _strip_paths(text: str) -> str:
    """Replace every path-like word with its base name (notes copied from other tools name input files)."""
    words = []
    for w in text.split(" "):
        core = w.rstrip(",.;:)")
        if "/" in core:
            w = w.replace(core, Path(core).name)
        words.append(w)
    return " ".join(words)


# ------------------------------------------------------------------------------------------------------------------
# ledger


def ledger_view(cohorts: list[dict], budget: float | None, private=None) -> None:
    from genoshare.privacy.ledger import LEDGER_FILE, Ledger, private_dir

    path = private_dir(private, create=False) / LEDGER_FILE  # reading: never create the private directory
    if not Path(path).is_file():
        raise InputError(path, "no ledger here (--ledger reads the owner's ledger; set GENOSHARE_PRIVATE_DIR)")
    with Ledger(path) as led:
        entries = led.releases()
        for c in cohorts:
            dirs = {r["_dir"] for r in c["releases"]}
            fps = {e.fingerprint for e in entries if e.output_dir and str(Path(e.output_dir).resolve()) in dirs}
            if not fps:
                c["ledger"] = {"found": False, "budget": budget}
                continue
            steps, total = [], 0.0
            for e in entries:
                if e.fingerprint not in fps:
                    continue
                counted = e.status in ("recorded", "reserved")
                total += e.epsilon if counted else 0.0
                steps.append(
                    {
                        "id": e.id,
                        "created": e.created,
                        "release": Path(e.output_dir).name if e.output_dir else None,
                        "epsilon": e.epsilon,
                        "delta": e.delta,
                        "status": e.status,
                        "test_release": e.test_release,
                        "cumulative_epsilon": total,
                    }
                )
            cum = [led.cumulative(fp) for fp in sorted(fps)]
            eps = math.fsum(x["epsilon"] for x in cum)
            c["ledger"] = {
                "found": True,
                "steps": steps,
                "cumulative_epsilon": eps,
                "cumulative_delta": min(1.0, math.fsum(x["delta"] for x in cum)),
                "n_releases": sum(x["n_releases"] for x in cum),
                "n_test_releases": sum(x["n_test_releases"] for x in cum),
                "composition": cum[0]["composition"],
                "budget": budget,
                "remaining": None if budget is None else budget - eps,
                "within_budget": None if budget is None else eps <= budget * (1 + 1e-12),
            }


# ------------------------------------------------------------------------------------------------------------------
# cohorts, sweeps, recommendation


def _cohort_key(r: dict) -> tuple:
    return (r["cohort"], r["n_samples"], r["n_variants"])


def group_cohorts(releases: list[dict], target: float) -> list[dict]:
    """One section per sweep: releases of one cohort with the same settings but epsilon. Releases of one cohort
    that differ in another setting (a workflow comparing calibrations, say) form sweeps of their own, each
    labelled with the settings that set it apart, because an epsilon axis across them would mix two things."""
    groups: dict[tuple, list[dict]] = {}
    for r in releases:
        groups.setdefault((*_cohort_key(r), tuple(repr(r.get(s)) for s in SWEEP_SETTINGS)), []).append(r)
    per_cohort: dict[tuple, int] = {}
    for key in groups:
        per_cohort[key[:3]] = per_cohort.get(key[:3], 0) + 1
    cohorts = []
    for key, rels in groups.items():
        first = rels[0]
        settings = {s: first.get(s) for s in SWEEP_SETTINGS}
        label = f"Cohort {key[0]}"
        if per_cohort[key[:3]] > 1:
            label += (
                " ("
                + ", ".join(f"{s.replace('_', ' ')} {settings[s]}" for s in SWEEP_SETTINGS if s != "release_file")
                + ")"
            )
        rels = sorted(rels, key=lambda r: (r["epsilon"], r["name"]))
        for r in rels:
            r["risk"] = _risk(r)
        meets = [
            r
            for r in rels
            if r["retention"] is not None
            and r["retention"]["headline"] is not None
            and r["retention"]["headline"] >= target
        ]
        have_retention = any(r["retention"] is not None for r in rels)
        if meets:
            rec = meets[0]
            risk = _risk(rec)
            text = (
                f"The smallest epsilon of this sweep whose GWAS retention ({rec['retention']['headline_test']} "
                f"test) meets the target of {target:g} is {rec['epsilon']:.4g} (release {rec['name']}): mean "
                f"retention {rec['retention']['headline']:.3f}."
            )
            recommendation = {
                "release": rec["name"],
                "epsilon": rec["epsilon"],
                "retention": rec["retention"]["headline"],
                "risk": risk,
                "text": text,
            }
        else:
            tests = sorted({r["retention"]["headline_test"] for r in rels if r["retention"] is not None})
            text = (
                f"No release of this sweep reaches the retention target of {target:g} ({', '.join(tests)} test)."
                if have_retention
                else "No retention table was given, so no release can be recommended on utility."
            )
            recommendation = {"release": None, "epsilon": None, "retention": None, "risk": None, "text": text}
        focus = next((r for r in rels if r["name"] == recommendation["release"]), rels[0])
        cohorts.append(
            {
                "cohort": key[0],
                "label": label,
                "settings": settings,
                "n_samples": key[1],
                "n_variants": key[2],
                "releases": rels,
                "sweep": len(rels) > 1,
                "focus": focus["name"],
                "recommendation": recommendation,
                "retention_target": target,
                "ledger": None,
            }
        )
    return cohorts


def _risk(r: dict) -> dict | None:
    if not r["attacks"]:
        return None
    best = max(r["attacks"], key=lambda a: a["tpr_at_fpr"]["0.01"]["tpr"])
    return {
        "attack": best["attack"],
        "tpr_at_1pct": best["tpr_at_fpr"]["0.01"]["tpr"],
        "epsilon_lower_bound": max(a["epsilon_lower_bound"] for a in r["attacks"]),
    }


def badges(c: dict) -> list[dict]:
    focus = next(r for r in c["releases"] if r["name"] == c["focus"])
    out = []
    attacks = [a for r in c["releases"] for a in r["attacks"]]
    if attacks:
        over = [
            f"{a['attack']} ({r['name']})"
            for r in c["releases"]
            for a in r["attacks"]
            if a["within_guarantee"] is False
        ]
        out.append(
            {
                "id": "attacks",
                "status": "warn" if over else "pass",
                "text": ("Measured attacks exceed the accountant's epsilon: " + ", ".join(over))
                if over
                else "No measured attack exceeds the guarantee",
            }
        )
    else:
        out.append({"id": "attacks", "status": "warn", "text": "No attack was measured"})
    ret = focus["retention"]
    if ret is None:
        out.append({"id": "retention", "status": "warn", "text": "No GWAS retention measured"})
    else:
        ok = ret["headline"] is not None and ret["headline"] >= c["retention_target"]
        out.append(
            {
                "id": "retention",
                "status": "pass" if ok else "warn",
                "text": f"GWAS retention {ret['headline']:.3f} {'at or above' if ok else 'below'} the target "
                f"{c['retention_target']:g}",
            }
        )
    own = any(r["af_own"] for r in c["releases"])
    out.append(
        {
            "id": "frequencies",
            "status": "warn" if own else "pass",
            "text": "Allele frequencies are the cohort's own (not protected)"
            if own
            else f"Allele frequencies: {focus['af_kind']} (covered)",
        }
    )
    if focus["guarantee"]["vacuous"]:
        out.append({"id": "guarantee", "status": "warn", "text": "Formal guarantee vacuous at this epsilon"})
    if c.get("ledger") and c["ledger"].get("within_budget") is not None:
        ok = c["ledger"]["within_budget"]
        out.append(
            {
                "id": "budget",
                "status": "pass" if ok else "warn",
                "text": f"Cumulative epsilon {c['ledger']['cumulative_epsilon']:.4g} "
                f"{'within' if ok else 'over'} budget {c['ledger']['budget']:.4g}",
            }
        )
    if any(r["test_release"] for r in c["releases"]):
        out.append({"id": "test", "status": "warn", "text": "Contains test releases (--seed): not for sharing"})
    return out


# ------------------------------------------------------------------------------------------------------------------
# the whole report


def _safe_argv(argv) -> list[str]:
    out = []
    for a in argv:
        a = str(a)
        if "=" in a and a.startswith("--"):
            k, v = a.split("=", 1)
            out.append(f"{k}={Path(v).name if '/' in v else v}")
        else:
            out.append(Path(a).name if "/" in a else a)
    return out


def _command(releases, attacks, retention, model_audits, ledger, budget, retention_target, evaluations=()) -> list[str]:
    """The command line that makes this report (file arguments as given; _safe_argv keeps base names)."""
    cmd = ["genoshare", "report"]
    for flag, values in (
        ("--release", releases),
        ("--attacks", attacks),
        ("--retention", retention),
        ("--model-audit", model_audits),
        ("--evaluation", evaluations or ()),
    ):
        for v in values:
            cmd += [flag, str(v)]
    if ledger:
        cmd.append("--ledger")
    if budget is not None:
        cmd += ["--budget", f"{budget:g}"]
    return cmd + ["--retention-target", f"{retention_target:g}"]


def collect(
    releases,
    attacks=(),
    retention=(),
    model_audits=(),
    ledger: bool = False,
    budget: float | None = None,
    retention_target: float = DEFAULT_RETENTION_TARGET,
    argv=None,
    evaluations=(),
    private=None,
) -> dict:
    t0 = time.perf_counter()
    releases, attacks, retention, model_audits = (list(x or ()) for x in (releases, attacks, retention, model_audits))
    if not releases:
        raise GenoshareError("report: give at least one --release DIR")
    if not 0 < retention_target <= 1:
        raise GenoshareError(f"report: --retention-target must be in (0, 1], not {retention_target}")
    if budget is not None and not (budget > 0 and math.isfinite(budget)):
        raise GenoshareError(f"report: --budget must be a positive number, not {budget}")
    rels = [read_release(d) for d in releases]
    seen: dict[str, str] = {}
    for d, r in zip(releases, rels):
        if r["name"] in seen:
            raise InputError(d, f"has the same name as {seen[r['name']]}: release directory names must be unique")
        seen[r["name"]] = str(d)
    t_read = time.perf_counter()
    for a in attacks:
        attach_attack(Path(a), rels)
    by_sha = {r["_manifest_sha256"]: r for r in rels}
    given = [Path(p) for p in retention]
    for p in given:
        attach_retention(p, by_sha, rels)
    for r in rels:  # a release directory's own retention.json, unless given explicitly
        own = Path(r["_dir"]) / "retention.json"
        if r["retention"] is None and own.is_file():
            attach_retention(own, by_sha, rels)
    for p in evaluations or ():
        attach_evaluation(Path(p), rels)
    models = [read_model_audit(Path(p)) for p in model_audits]
    cohorts = group_cohorts(rels, retention_target)
    if ledger:
        ledger_view(cohorts, budget, private)
    for c in cohorts:
        if c["ledger"] is None and budget is not None:
            c["ledger"] = {"found": False, "budget": budget}
        c["badges"] = badges(c)
    t_end = time.perf_counter()
    for r in rels:
        for k in [k for k in r if k.startswith("_")]:
            del r[k]
    return {
        "tool": "genoshare",
        "version": __version__,
        "report_format": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "retention_target": retention_target,
        "budget": budget,
        "priors": list(PRIORS),
        "vacuous_posterior": VACUOUS_POSTERIOR,
        "cohorts": cohorts,
        "models": models,
        "provenance": {
            "version": __version__,
            "python": sys.version.split()[0],
            "command": _safe_argv(
                argv
                if argv is not None
                else _command(releases, attacks, retention, model_audits, ledger, budget, retention_target, evaluations)
            ),
            "inputs": (
                [
                    {"kind": "reference panel (public)", "file": f, "sha256": h}
                    for f, h in dict.fromkeys(
                        (r["reference"], r["reference_sha256"])
                        for r in rels
                        if r["reference"] and r["reference_sha256"]
                    )
                ]
                + [
                    {"kind": "release manifest", "file": f"{r['name']}/manifest.json", "sha256": by_sha_rev}
                    for by_sha_rev, r in by_sha.items()
                ]
                + [{"kind": "attack", "file": a["file"], "sha256": a["sha256"]} for r in rels for a in r["attacks"][:1]]
                + [
                    {
                        "kind": "retention",
                        "file": f"{r['name']}/{r['retention']['file']}",
                        "sha256": r["retention"]["sha256"],
                    }
                    for r in rels
                    if r["retention"]
                ]
                + [
                    {"kind": "evaluation", "file": r["evaluation"]["file"], "sha256": r["evaluation"]["sha256"]}
                    for r in rels
                    if r["evaluation"]
                ]
                + [{"kind": "model audit", "file": m["file"], "sha256": m["sha256"]} for m in models]
            ),
            "timings": {"read_releases": round(t_read - t0, 4), "collect": round(t_end - t0, 4)},
        },
    }


def build(
    releases,
    out,
    attacks=(),
    retention=(),
    model_audits=(),
    ledger: bool = False,
    budget: float | None = None,
    retention_target: float = DEFAULT_RETENTION_TARGET,
    argv=None,
    evaluations=(),
    private=None,
) -> dict:
    """Write ``out`` (HTML) and ``report.json`` beside it; returns the report dict. Nothing is written on error."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(out, "the report must be an .html file")
    if out.is_dir():
        raise InputError(out, "is a directory")
    where = out.parent.resolve()
    for d in releases or ():
        if where == Path(d).resolve() or Path(d).resolve() in where.parents:
            raise InputError(
                out,
                f"is inside the release directory {d}: a release directory holds only what is "
                "shared; write the report elsewhere",
            )
    t0 = time.perf_counter()
    report = collect(
        releases, attacks, retention, model_audits, ledger, budget, retention_target, argv, evaluations, private
    )
    from genoshare.report.render import render

    t1 = time.perf_counter()
    html = render(report)
    report["provenance"]["timings"]["render"] = round(time.perf_counter() - t1, 4)
    report["provenance"]["timings"]["total"] = round(time.perf_counter() - t0, 4)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_name("report.json")
    tmp_html = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp_json = json_path.with_name(f".{json_path.name}.{os.getpid()}.tmp")
    try:
        tmp_json.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
        tmp_html.write_text(html, encoding="utf-8")
        tmp_json.replace(json_path)
        tmp_html.replace(out)
    finally:
        for t in (tmp_html, tmp_json):
            t.unlink(missing_ok=True)
    return report
