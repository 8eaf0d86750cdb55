"""HTML of a report dict (:func:`genoshare.report.build.collect`): jinja2 template, inline SVG figures."""

from __future__ import annotations

import math

from genoshare.report.build import LEVELS, posterior_bound, tpr_ceiling
from genoshare.report.svg import CEILING, DASHES, PALETTE, Chart, icon_array

MARKERS = ("circle", "square", "triangle", "diamond")


def _ceiling_curve(regions, fprs):
    return [tpr_ceiling(f, regions) for f in fprs]


def _regions(rel_or_model) -> list[tuple[float, float]]:
    g = rel_or_model.get("guarantee")
    if g:
        return [(x["epsilon"], x["delta"]) for x in g["regions"]]
    eps = rel_or_model.get("epsilon")
    return [(eps, 0.0)] if eps is not None else []


def roc_figures(fig_id: str, attacks: list[dict], regions) -> tuple[str, str]:
    lin = Chart(
        f"{fig_id}-roc-linear",
        "ROC (linear axes)",
        (0, 1, False),
        (0, 1, False),
        "false-positive rate",
        "true-positive rate",
    )
    log = Chart(
        f"{fig_id}-roc-log",
        "ROC (log-log axes)",
        (1e-3, 1, True),
        (1e-3, 1, True),
        "false-positive rate",
        "true-positive rate",
    )
    grid_lin = [i / 200 for i in range(201)]
    grid_log = [10 ** (-3 + 3 * i / 200) for i in range(201)]
    for ch, grid in ((lin, grid_lin), (log, grid_log)):
        ch.line(grid, grid, "chance", "#9a9a9a", "2 4", 1)
        if regions:
            ch.line(
                grid, _ceiling_curve(regions, grid), "DP ceiling of the accountant's guarantee", CEILING, "8 3", 2.5
            )
    for i, a in enumerate(attacks):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        fpr, tpr = a["roc"]["fpr"], a["roc"]["tpr"]
        lin.line(fpr, tpr, f"{a['attack']} (AUC {a['auc']:.3f})", colour, dash, step=False)
        pts = [(f, t) for f, t in zip(fpr, tpr) if f > 0 and t > 0]
        log.line([p[0] for p in pts], [p[1] for p in pts], f"{a['attack']} (AUC {a['auc']:.3f})", colour, dash)
        levels = [float(k) for k in LEVELS]
        log.points(
            levels,
            [a["tpr_at_fpr"][k]["tpr"] or None for k in LEVELS],
            None,
            colour,
            MARKERS[i % 4],
            lo=[max(a["tpr_at_fpr"][k]["ci_low"], 1e-3) for k in LEVELS],
            hi=[a["tpr_at_fpr"][k]["ci_high"] for k in LEVELS],
        )
    return lin.render(), log.render()


def histogram_figure(fig_id: str, a: dict) -> str | None:
    """Member and non-member score histograms of one attack, each as a share of its group (step lines)."""
    h = a.get("score_histogram")
    if not h:
        return None
    edges, mem, non = h["edges"], h["members"], h["nonmembers"]
    shares = [[c / max(1, sum(g)) for c in g] for g in (mem, non)]
    top = max(max(s) for s in shares) or 1.0
    ch = Chart(
        f"{fig_id}-hist-{a['attack']}",
        f"Attack scores: {a['attack']}",
        (edges[0], edges[-1], False),
        (0, top * 1.1, False),
        "attack score (higher: more likely a member)",
        "share of the group",
    )
    for share, label, colour, dash in zip(shares, ("members", "non-members"), PALETTE[:2], DASHES[:2]):
        ch.line(
            edges, [*share, share[-1]], f"{label} ({sum(mem if label == 'members' else non)})", colour, dash, step=True
        )
    return ch.render()


def posterior_figure(fig_id: str, eps: float) -> str:
    ch = Chart(
        f"{fig_id}-posterior",
        "Largest posterior against prior",
        (0, 1, False),
        (0, 1, False),
        "prior probability of being in the cohort",
        "largest posterior after the release",
    )
    grid = [i / 200 for i in range(201)]
    ch.line(grid, grid, "no release (posterior = prior)", "#9a9a9a", "2 4", 1)
    ch.line(grid, [posterior_bound(p, eps) for p in grid], f"bound at epsilon {eps:.4g}", PALETTE[1], "", 2.5)
    pri = [0.01, 0.1, 0.5]
    ch.points(pri, [posterior_bound(p, eps) for p in pri], "priors 1%, 10%, 50%", PALETTE[1], "diamond")
    return ch.render()


def sweep_figures(c: dict):
    rels = c["releases"]
    eps = [r["epsilon"] for r in rels]
    lo, hi = min(eps), max(eps)
    lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi) + 1e-12)
    fid = f"sweep-{c['index']}"
    u = Chart(
        f"{fid}-utility",
        "Utility against epsilon",
        (lo, hi, True),
        (0, 1, False),
        "epsilon (log axis)",
        "GWAS retention (mean, 5-95%)",
    )
    tests = sorted({t for r in rels if r["retention"] for t in r["retention"]["tests"]})
    for i, t in enumerate(tests):
        xs, ys, los, his = [], [], [], []
        for r in rels:
            v = (r["retention"] or {}).get("tests", {}).get(t)
            if v and v["mean"] is not None:
                xs.append(r["epsilon"])
                ys.append(v["mean"])
                los.append(v["q05"])
                his.append(v["q95"])
        u.line(xs, ys, None, PALETTE[i % 7], DASHES[i % 7], 1.5)
        u.points(xs, ys, f"{t} test", PALETTE[i % 7], MARKERS[i % 4], lo=los, hi=his)
    u.hline(c["retention_target"], f"target {c['retention_target']:g}")
    ev = [r for r in rels if r.get("evaluation")]
    err = None
    if ev:
        top = (
            max(
                [
                    r["evaluation"].get(k) or 0
                    for r in ev
                    for k in ("point_error", "sample_error", "mean_error", "variance_error")
                ]
                + [0.05]
            )
            * 1.15
        )
        err = Chart(
            f"{fid}-errors",
            "Errors against epsilon",
            (lo, hi, True),
            (0, top, False),
            "epsilon (log axis)",
            "error (smaller is better)",
        )
        for i, k in enumerate(("point_error", "sample_error", "mean_error", "variance_error")):
            xs = [r["epsilon"] for r in ev if k in r["evaluation"]]
            ys = [r["evaluation"][k] for r in ev if k in r["evaluation"]]
            err.line(xs, ys, None, PALETTE[i], DASHES[i], 1.5)
            err.points(xs, ys, k.replace("_", " "), PALETTE[i], MARKERS[i % 4])
    rk = Chart(
        f"{fid}-risk", "Risk against epsilon", (lo, hi, True), (0, 1, False), "epsilon (log axis)", "TPR at 1% FPR"
    )
    grid = [10 ** (math.log10(lo) + (math.log10(hi) - math.log10(lo)) * i / 120) for i in range(121)]
    rk.line(eps, [r["guarantee"]["tpr_ceiling"]["0.01"] for r in rels], None, CEILING, "8 3", 2.5)
    rk.points(
        eps,
        [r["guarantee"]["tpr_ceiling"]["0.01"] for r in rels],
        "theoretical ceiling (accountant)",
        CEILING,
        "diamond",
    )
    lbs = [a["epsilon_lower_bound"] for r in rels for a in r["attacks"]]
    top = max([2.0] + [1.3 * x for x in lbs])
    lb = Chart(
        f"{fid}-bound",
        "Empirical epsilon lower bound against epsilon",
        (lo, hi, True),
        (0, top, False),
        "epsilon of the release (log axis)",
        "empirical epsilon lower bound",
    )
    lb.line(
        grid,
        [min(e, top) for e in grid],
        "accountant's epsilon (a bound above it = a bug or a leak)",
        CEILING,
        "8 3",
        2.5,
    )
    names = sorted({a["attack"] for r in rels for a in r["attacks"]})
    for i, n in enumerate(names):
        xs, ys, los, his = [], [], [], []
        for r in rels:
            for a in r["attacks"]:
                if a["attack"] == n:
                    t = a["tpr_at_fpr"]["0.01"]
                    xs.append(r["epsilon"])
                    ys.append(t["tpr"])
                    los.append(t["ci_low"])
                    his.append(t["ci_high"])
        rk.points(xs, ys, n, PALETTE[i % 7], MARKERS[i % 4], lo=los, hi=his)
        lb.points(
            [r["epsilon"] for r in rels for a in r["attacks"] if a["attack"] == n],
            [a["epsilon_lower_bound"] for r in rels for a in r["attacks"] if a["attack"] == n],
            n,
            PALETTE[i % 7],
            MARKERS[i % 4],
        )
    rec = c["recommendation"]["release"]
    if rec:
        e = next(r["epsilon"] for r in rels if r["name"] == rec)
        for ch in (u, rk, lb, err):
            if ch is not None:
                ch.vline(e, "recommended")
    return u.render(), rk.render(), lb.render(), None if err is None else err.render()


def ledger_figure(c: dict) -> str | None:
    led = c.get("ledger") or {}
    steps = led.get("steps") or []
    if not steps:
        return None
    n = len(steps)
    top = max([s["cumulative_epsilon"] for s in steps] + [led.get("budget") or 0]) * 1.1 or 1.0
    ch = Chart(
        f"ledger-{c['index']}",
        "Cumulative epsilon of this cohort",
        (0, n, False),
        (0, top, False),
        "release number (ledger order)",
        "cumulative epsilon",
    )
    xs = [0] + [i + 1 for i in range(n)]
    ys = [0.0] + [s["cumulative_epsilon"] for s in steps]
    ch.line(xs, ys, "cumulative epsilon (basic composition)", PALETTE[0], "", 2.5, step=True)
    ch.points(xs[1:], ys[1:], None, PALETTE[0], "circle")
    if led.get("budget") is not None:
        ch.hline(led["budget"], f"budget {led['budget']:g}", PALETTE[1])
    return ch.render()


def figures(report: dict) -> dict:
    figs: dict = {"cohorts": [], "models": []}
    for ci, c in enumerate(report["cohorts"]):
        c["index"] = ci
        cf = {"releases": {}}
        for ri, r in enumerate(c["releases"]):
            fid = f"c{ci}-r{ri}"
            rf = {
                "posterior": posterior_figure(fid, r["guarantee"]["epsilon"]),
                "icons": icon_array(
                    f"{fid}-icons",
                    f"Of 100 people an attacker believes are members at a 50% "
                    f"prior, at most {r['guarantee']['people_of_100_at_50']} are",
                    r["guarantee"]["people_of_100_at_50"],
                ),
            }
            if r["attacks"]:
                rf["roc_linear"], rf["roc_log"] = roc_figures(fid, r["attacks"], _regions(r))
                rf["histograms"] = [h for h in (histogram_figure(fid, a) for a in r["attacks"]) if h]
            cf["releases"][r["name"]] = rf
        if c["sweep"]:
            cf["utility"], cf["risk"], cf["bound"], cf["errors"] = sweep_figures(c)
        cf["ledger"] = ledger_figure(c)
        figs["cohorts"].append(cf)
    for mi, m in enumerate(report["models"]):
        lin, log = roc_figures(f"m{mi}", m["attacks"], _regions(m))
        figs["models"].append({"roc_linear": lin, "roc_log": log})
    return figs


def _fmt(v, nd: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.{nd}g}"
        return f"{v:.{nd}f}" if abs(v) < 10 else f"{v:,.{max(nd - 1, 0)}f}".rstrip("0").rstrip(".")
    return str(v)


def _pct(v, nd: int = 1) -> str:
    return "n/a" if v is None else f"{100 * v:.{nd}f}%"


def _eps(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def render(report: dict) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("genoshare.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=_fmt, pct=_pct, eps=_eps)
    figs = figures(report)
    html = env.get_template("report.html.j2").render(r=report, figs=figs, levels=LEVELS, markup=jinja2.filters.Markup)
    for c in report["cohorts"]:
        c.pop("index", None)
    return html
