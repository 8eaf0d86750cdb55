"""`genoshare audit-model`: inputs, the relatives filter, the population set, one game per training setting, the
recommendation, the private per-individual record and the shared aggregate AUDIT.json (docs/model-audit.md)."""

from __future__ import annotations

import json
import math
import os
import secrets
from datetime import datetime, UTC
from pathlib import Path

import numpy as np

from genoshare.audit import dpsgd, game, models, onerun
from genoshare.audit.recommend import recommend
from genoshare.errors import GenoshareError, InputError

POPULATION_FRACTION = 0.2
MIN_POPULATION = 10
KINSHIP_MAX = 5000
KINSHIP_VARIANTS = 20_000


def _private_record(res) -> dict:
    """What stays in the owner's private directory for one audited setting: the game's IN/OUT matrix and the
    per-individual target scores (never in AUDIT.json)."""
    return {"S": res.S, "IN": res.IN, "P": res.P, **{f"score_{a}": v for a, v in res.target_scores.items()}}


def _finite(obj):
    """JSON-safe copy: non-finite floats (an infinite threshold) become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _phenotype(path, column: str | None, cohort_ids: list[str]) -> tuple[dict[str, float], bool, str]:
    """{id: value} (0/1 for a binary column, float otherwise; missing left out), binary?, column name."""
    from genoshare.io.phenotypes import read_phenotype_table

    table = read_phenotype_table(path)
    if column is None:
        named = [c for c in table.columns if c.lower() in ("phenotype", "pheno")]
        if named:
            column = named[0]
        elif len(table.columns) == 1:
            column = table.columns[0]
        else:
            raise InputError(
                path, f"several columns ({', '.join(table.columns[:6])}): name one with --phenotype-column"
            )
    if column not in table.columns:
        raise InputError(path, f"no column {column!r} (columns: {', '.join(table.columns[:8])})")
    coding = table.binary_coding(column)
    out: dict[str, float] = {}
    for sid, v, line in zip(table.ids, table.values[column], table.lines):
        if v is None:
            continue
        if coding == "plink":
            x = float(v)
            if x == 0.0:
                continue  # PLINK 0 = missing
            out[sid] = 1.0 if x == 2.0 else 0.0
        elif coding == "01":
            out[sid] = float(v)
        else:
            try:
                out[sid] = float(v)
            except ValueError:
                raise InputError(
                    path, f"line {line}: {column} value {v[:40]!r} is neither a case/control code nor a number"
                ) from None
            if not np.isfinite(out[sid]):
                raise InputError(path, f"line {line}: {column} value {v[:40]!r} is not finite")
    binary = coding is not None
    return out, binary, column


def _relatives_to_drop(G: np.ndarray, ids: list[str], notes: list[str]) -> set[str]:
    from genoshare.privacy.kinship import SECOND_DEGREE, GenotypeSource, find_related

    if len(ids) > KINSHIP_MAX:
        notes.append(
            f"relatives filter skipped: {len(ids)} individuals is above {KINSHIP_MAX}; filter with "
            "'genoshare kinship' first"
        )
        return set()
    pairs = find_related(GenotypeSource.from_matrix(G, ids, max_variants=KINSHIP_VARIANTS), SECOND_DEGREE)
    if G.shape[0] < 5000:
        notes.append(
            f"relatives filter on {G.shape[0]} SNPs: KING-robust estimates are noisy below a few thousand "
            "independent SNPs, so some unrelated pairs may have been removed (harmless for the audit)"
        )
    drop: set[str] = set()
    for a, b, _phi, _deg in pairs:
        if a not in drop and b not in drop:
            drop.add(b)
    return drop


def _labels(ids, pheno: dict[str, float]) -> np.ndarray:
    return np.array([pheno[s] for s in ids], dtype=np.float64)


def _check_sizes(y: np.ndarray, binary: bool, where: str, column: str, minimum: int) -> None:
    if binary:
        cases = int(y.sum())
        if cases == 0 or cases == y.size:
            raise GenoshareError(
                f"{where}: phenotype {column!r} has one class only ({cases} cases, "
                f"{y.size - cases} controls); a classifier audit needs both"
            )
        if min(cases, y.size - cases) < game.MIN_PER_CLASS and minimum > 0:
            raise GenoshareError(
                f"{where}: {min(cases, y.size - cases)} individuals in the smaller class; the "
                f"game needs at least {game.MIN_PER_CLASS}"
            )
    elif np.ptp(y) == 0:
        raise GenoshareError(f"{where}: phenotype {column!r} is constant")
    if y.size < minimum:
        raise GenoshareError(
            f"{where}: {y.size} individuals, too few for the game (at least {minimum} in the "
            "audit pool after the relatives filter and the population set)"
        )


def _read_ids(path, what: str) -> list[str]:
    from genoshare.io.validate import read_text

    ids = [ln.strip() for ln in read_text(Path(path), f"an id list ({what})").splitlines() if ln.strip()]
    if not ids:
        raise InputError(path, f"{what}: no ids (one sample id per line)")
    if len(set(ids)) != len(ids):
        raise InputError(path, f"{what}: duplicate ids")
    return ids


def _read_trained(path, kind: str, binary: bool, n_variants: int) -> models.Fitted:
    """A trained linear/logistic model as .npz with ``coef`` (one per cohort SNP, g - 1 coding) and ``intercept``.
    Never unpickled."""
    path = Path(path)
    bad = (
        "not a supported model file: expected an .npz with 'coef' (one float per cohort SNP, for the g - 1 "
        "coding) and 'intercept' (linear or logistic regression)"
    )
    try:
        with np.load(path, allow_pickle=False) as z:
            coef = np.asarray(z["coef"], dtype=np.float64).ravel()
            intercept = float(np.asarray(z["intercept"], dtype=np.float64).ravel()[0])
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise InputError(path, bad) from None
    if coef.size != n_variants:
        raise InputError(path, f"{bad}; it has {coef.size} coefficients, the cohort {n_variants} SNPs")
    if not (np.isfinite(coef).all() and np.isfinite(intercept)):
        raise InputError(path, "model coefficients are not all finite")
    return models.Fitted(kind, binary, coef=coef, intercept=intercept)


def _release_features(release_dir, cohort, pool_ids: list[str]) -> tuple[np.ndarray, float, float, dict]:
    from genoshare.evaluate.attacks import _align, load_release

    mat, manifest = load_release(release_dir)
    G = _align(mat, cohort.variant_ids, cohort.alleles, "release")
    pos = {s: i for i, s in enumerate(mat.sample_ids)}
    missing = [s for s in pool_ids if s not in pos]
    if missing:
        raise InputError(
            release_dir, f"the release has no row for cohort individual {missing[0]!r} ({len(missing)} missing)"
        )
    total = (manifest.get("privacy") or {}).get("total") or {}
    eps = total.get("epsilon", manifest.get("epsilon_xor"))
    delta = float(total.get("delta") or 0.0)
    af = manifest.get("af_source")
    info = {
        "release": Path(release_dir).name,
        "af_source": af.get("kind") if isinstance(af, dict) else af,
        "reproducible_test_release": bool(manifest.get("reproducible_test_release")),
    }
    return models.encode(G[:, [pos[s] for s in pool_ids]]), (None if eps is None else float(eps)), delta, info


def audit_model(
    cohort,
    phenotype,
    out,
    *,
    phenotype_column=None,
    model=None,
    references: int = 64,
    dp_sgd=None,
    releases=(),
    population=None,
    population_phenotype=None,
    max_epsilon=None,
    max_tpr_at_1pct=None,
    seed: int = 0,
    C: float = 1.0,
    dpsgd_epochs: float = 5.0,
    calibration_references: int = 8,
    private_dir=None,
    progress=None,
    relatives: str = "filter",
    trained_model=None,
    members=None,
    holdout=None,
    _actual_noise_multiplier=None,
) -> dict:
    """Run the audit and write ``out`` (aggregates only); per-individual scores go to the private directory."""
    from genoshare.evaluate.attacks import load_matrix

    out = Path(out)
    if not out.parent.is_dir():
        raise GenoshareError(f"--out {out}: directory {out.parent} does not exist")
    if references < 3:
        raise GenoshareError(f"--references must be at least 3, not {references}")
    if max_epsilon is not None and not max_epsilon > 0:
        raise GenoshareError("--max-epsilon must be positive")
    if max_tpr_at_1pct is not None and not 0 <= max_tpr_at_1pct <= 1:
        raise GenoshareError("--max-tpr-at-1pct must be in [0, 1]")
    noises = dpsgd.parse_noise_list(dp_sgd) if dp_sgd else []
    notes: list[str] = []
    trained = trained_model is not None
    if trained and (members is None or holdout is None):
        raise GenoshareError(
            "--trained-model needs --member-ids and --holdout-ids (its training set and the hold-out "
            "set aside before training); without a hold-out only the training recipe can be audited"
        )
    if not trained and (members is not None or holdout is not None):
        raise GenoshareError("--member-ids and --holdout-ids go with --trained-model")
    if trained and (noises or releases):
        raise GenoshareError(
            "--trained-model audits one model; --dp-sgd and --release audit training recipes: run them separately"
        )

    mat = load_matrix(cohort)
    if len(set(mat.sample_ids)) != len(mat.sample_ids):
        raise InputError(cohort, "duplicate sample ids")
    pheno, binary, column = _phenotype(phenotype, phenotype_column, mat.sample_ids)
    kind = models.check_model(model or models.default_model(binary), binary)
    if noises and kind == "mlp":
        raise GenoshareError("--dp-sgd trains logistic or linear regression; it does not apply to --model mlp")
    keep = [i for i, s in enumerate(mat.sample_ids) if s in pheno]
    if not keep:
        raise InputError(phenotype, f"no individual of the cohort {cohort} has a {column!r} value")
    ids = [mat.sample_ids[i] for i in keep]
    G = mat.genotypes[:, keep]
    _check_sizes(_labels(ids, pheno), binary, str(phenotype), column, 0)
    if trained:
        if kind == "mlp":
            raise GenoshareError("--trained-model reads linear or logistic coefficients; --model mlp is not supported")
        target = _read_trained(trained_model, kind, binary, len(mat.variant_ids))
        member_ids, holdout_ids = _read_ids(members, "--member-ids"), _read_ids(holdout, "--holdout-ids")
        both = sorted(set(member_ids) & set(holdout_ids))
        if both:
            raise InputError(
                holdout,
                f"{len(both)} individual(s) are both members and hold-out (e.g. {both[0]!r}); "
                "members and non-members must not overlap",
            )
        have = set(ids)
        for path, group in ((members, member_ids), (holdout, holdout_ids)):
            missing = [s for s in group if s not in have]
            if missing:
                raise InputError(
                    path, f"{len(missing)} id(s) are not cohort individuals with a phenotype (e.g. {missing[0]!r})"
                )
        union = set(member_ids) | set(holdout_ids)
        sel = [i for i, s in enumerate(ids) if s in union]
        ids, G = [ids[i] for i in sel], G[:, sel]

    pop_given = population is not None
    if pop_given:
        pmat = load_matrix(population)
        overlap = sorted(set(pmat.sample_ids) & set(mat.sample_ids))
        if overlap:
            raise InputError(
                population,
                f"{len(overlap)} population individual(s) are also in the cohort (e.g. "
                f"{overlap[0]!r}); members and non-members must not overlap",
            )
        from genoshare.evaluate.attacks import _align

        Gp_all = _align(pmat, mat.variant_ids, mat.alleles, "population")
        ppheno, pbinary, _ = _phenotype(population_phenotype or phenotype, column, pmat.sample_ids)
        if pbinary != binary and ppheno:
            raise InputError(population_phenotype or phenotype, f"{column!r} is binary for one set and not the other")
        pkeep = [i for i, s in enumerate(pmat.sample_ids) if s in ppheno]
        pop_ids = [pmat.sample_ids[i] for i in pkeep]
        Gpop = Gp_all[:, pkeep]
        if len(pop_ids) < MIN_POPULATION:
            raise InputError(
                population,
                f"{len(pop_ids)} population individuals with a phenotype; at least {MIN_POPULATION} are needed",
            )
        notes.append("--population: kinship between the population set and the cohort is not checked")

    if relatives not in ("filter", "skip"):
        raise GenoshareError(f"--relatives must be filter or skip, not {relatives!r}")
    if relatives == "filter":
        drop = _relatives_to_drop(G, ids, notes)
    else:
        drop = set()
        notes.append(
            "relatives filter skipped (--no-relatives-filter): related members and non-members inflate "
            "the measured leakage"
        )
    if drop:
        sel = [i for i, s in enumerate(ids) if s not in drop]
        ids, G = [ids[i] for i in sel], G[:, sel]
    if not pop_given:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 13, 0]))
        # a trained model's population set comes from its hold-out (never trained on by it or by a reference)
        eligible = (
            np.array([i for i, s in enumerate(ids) if s not in set(member_ids)]) if trained else np.arange(len(ids))
        )
        n_pop = max(MIN_POPULATION, int(round(POPULATION_FRACTION * eligible.size)))
        if trained and n_pop >= eligible.size:
            raise InputError(
                holdout,
                f"{eligible.size} hold-out individuals: too few to set a population set aside (give --population)",
            )
        pop_sel = np.sort(rng.permutation(eligible)[:n_pop])
        pool_sel = np.setdiff1d(np.arange(len(ids)), pop_sel)
        pop_ids = [ids[i] for i in pop_sel]
        Gpop = G[:, pop_sel]
        ids, G = [ids[i] for i in pool_sel], G[:, pool_sel]
    y = _labels(ids, pheno)
    ypop = _labels(pop_ids, ppheno if pop_given else pheno)
    _check_sizes(y, binary, str(cohort), column, game.MIN_POOL)
    X, Xpop = models.encode(G), models.encode(Gpop)
    n_models = references + 1
    n = len(ids)
    delta_dp = 0.1 / n

    if trained:
        member_set = set(member_ids)
        is_member = np.array([s in member_set for s in ids])
        if is_member.all() or not is_member.any():
            raise GenoshareError(
                "after the relatives filter and the population set, the audit needs both members "
                "and hold-out individuals"
            )
        res = game.play_trained(
            X,
            y,
            is_member,
            target,
            Xpop,
            ypop,
            binary,
            lambda a, b, s: models.fit(kind, a, b, binary, C=C, seed=s),
            n_references=references,
            seed=seed,
            calibration_references=calibration_references,
        )
        entries = [
            {
                "name": f"trained:{Path(trained_model).name}",
                "training": "trained",
                "epsilon": None,
                "delta": 0.0,
                "utility": game.utility(res, binary, seed),
                "attacks": res.attacks,
                "note": "references trained with --model on random halves of members + hold-out",
            }
        ]
        private = {"setting0": _private_record(res)}
        settings = [{"name": entries[0]["name"]}]
        game_info = res.describe
        return _finish(
            out,
            private_dir,
            ids,
            pop_ids,
            settings,
            private,
            entries,
            game_info,
            kind,
            column,
            binary,
            seed,
            drop,
            relatives,
            pop_given,
            notes,
            max_epsilon,
            max_tpr_at_1pct,
        )

    # --- the settings to audit (all validated before any training) ---------------------------------------------
    settings = [
        {
            "name": f"original:{kind}",
            "training": "original",
            "epsilon": None,
            "delta": 0.0,
            "trainer": lambda a, b, s: models.fit(kind, a, b, binary, C=C, seed=s),
        }
    ]
    half = max(1, n // 2)
    for sigma in noises:
        q = min(1.0, 64.0 / half)
        cfg = dpsgd.DPSGDConfig(
            noise_multiplier=sigma,
            sampling_rate=q,
            epochs=dpsgd_epochs,
            steps=max(1, int(round(dpsgd_epochs / q))),
            delta=delta_dp,
        )
        eps = dpsgd.dp_epsilon(cfg.sampling_rate, sigma, cfg.steps, delta_dp)

        def trainer(a, b, s, cfg=cfg):
            return dpsgd.train(a, b, binary, cfg, np.random.default_rng(s), _actual_noise_multiplier)

        settings.append(
            {
                "name": f"dp-sgd:{sigma:g}",
                "training": "dp-sgd",
                "epsilon": eps,
                "delta": delta_dp,
                "trainer": trainer,
                "dp_sgd": {
                    "noise_multiplier": sigma,
                    "clip": cfg.clip,
                    "sampling_rate": q,
                    "steps": cfg.steps,
                    "epochs": dpsgd_epochs,
                    "learning_rate": cfg.learning_rate,
                    "accountant": "dp_accounting PLD, Poisson-sampled Gaussian, add/remove-one",
                    "model": "logistic regression" if binary else "linear regression (squared loss)",
                },
            }
        )
    for rdir in releases:
        Xr, eps, rdelta, info = _release_features(rdir, mat, ids)
        settings.append(
            {
                "name": f"release:{Path(rdir).name}",
                "training": "release",
                "epsilon": eps,
                "delta": rdelta,
                "release_features": Xr,
                "release": info,
                "trainer": lambda a, b, s: models.fit(kind, a, b, binary, C=C, seed=s),
            }
        )

    # --- play ------------------------------------------------------------------------------------------------
    entries, private = [], {}
    game_info = None
    for k, st in enumerate(settings):
        if "release_features" in st:
            # trained on the release rows of the training half; attacked with the true genotypes
            Xr = st["release_features"]
            res = game.play(
                Xr,
                y,
                Xpop,
                ypop,
                binary,
                st["trainer"],
                n_models=n_models,
                seed=seed,
                delta=st["delta"],
                calibration_references=calibration_references,
                features_attack=(X, Xpop),
                progress=progress,
            )
        else:
            res = game.play(
                X,
                y,
                Xpop,
                ypop,
                binary,
                st["trainer"],
                n_models=n_models,
                seed=seed,
                delta=st["delta"],
                calibration_references=calibration_references,
                progress=progress,
            )
        game_info = game_info or res.describe
        entry = {
            "name": st["name"],
            "training": st["training"],
            "epsilon": st["epsilon"],
            "delta": st["delta"],
            "utility": game.utility(res, binary, seed),
            "attacks": res.attacks,
            "leakage_by_class": res.by_class,
        }
        if st["training"] == "release" and st["epsilon"] is not None:
            entry["epsilon_covers_model"] = False
            # informational: the release epsilon does not cover the labels the model was fitted to
            entry["exceeds_release_epsilon"] = sorted(
                a for a, r in res.attacks.items() if r["epsilon_lower_bound"] > st["epsilon"]
            )
        if st["training"] == "dp-sgd":
            # "the accounting is contradicted" is one claim tested by every attack and the one-run audit:
            # Bonferroni over them, so the claim holds at 95% (the per-attack bounds above are at 95% each)
            n_tests = len(res.attacks) + 1
            bounds = game.corrected_bounds(res, n_tests, st["delta"])
            one = onerun.audit(X, y, st["trainer"], delta=st["delta"], seed=seed, confidence=1 - 0.05 / n_tests)
            entry["one_run_audit"] = one
            bounds["one_run_audit"] = one["epsilon_lower_bound"]
            entry["exceeds_accounted"] = sorted(a for a, b in bounds.items() if b > st["epsilon"])
            entry["exceeds_accounted_rule"] = (
                f"bounds at confidence {1 - 0.05 / n_tests:.4g} (Bonferroni over "
                f"{n_tests} tests: the attacks and the one-run audit)"
            )
            entry["corrected_bounds"] = {a: round(b, 6) for a, b in bounds.items()}
        for key in ("dp_sgd", "release"):
            if key in st:
                entry[key] = st[key]
        if st["training"] == "release":
            entry["note"] = (
                "the release's epsilon (replace-one) covers the released genotypes only: the model is "
                "also trained on the true phenotype from --phenotype, which it does not protect, so it "
                "is not an epsilon of the model and no limit on epsilon is met by it"
            )
        entries.append(entry)
        private[f"setting{k}"] = _private_record(res)

    return _finish(
        out,
        private_dir,
        ids,
        pop_ids,
        settings,
        private,
        entries,
        game_info,
        kind,
        column,
        binary,
        seed,
        drop,
        relatives,
        pop_given,
        notes,
        max_epsilon,
        max_tpr_at_1pct,
    )


def _finish(
    out,
    private_dir,
    ids,
    pop_ids,
    settings,
    private,
    entries,
    game_info,
    kind,
    column,
    binary,
    seed,
    drop,
    relatives,
    pop_given,
    notes,
    max_epsilon,
    max_tpr_at_1pct,
) -> dict:
    from genoshare.io.atomic import atomic_file
    from genoshare.privacy.ledger import private_dir as _private_dir

    # --- private record, then the shared aggregate -------------------------------------------------------------
    pdir_root = _private_dir(private_dir)
    if pdir_root.resolve() == out.parent.resolve() or out.resolve().is_relative_to(pdir_root.resolve()):
        raise GenoshareError(f"--out {out} is inside the private directory {pdir_root}; AUDIT.json is for sharing")
    pdir = pdir_root / "model-audit"
    pdir.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = pdir / f"audit-{stamp}-{secrets.token_hex(4)}.npz"
    arrays = {
        "pool_ids": np.array(ids),
        "population_ids": np.array(pop_ids),
        "setting_names": np.array([s["name"] for s in settings]),
    }
    for k, d in private.items():
        arrays.update({f"{k}_{name}": v for name, v in d.items()})

    report = {
        "models": entries,
        "game": {
            **game_info,
            "model": kind,
            "phenotype": {"column": column, "type": "binary" if binary else "quantitative"},
            "seed": seed,
            "relatives_removed": len(drop),
            "relatives_filter": (
                "KING-robust phi > 0.0884 (second degree): one of each pair removed"
                if relatives == "filter"
                else "skipped"
            ),
            "population": "given (--population)"
            if pop_given
            else f"a seeded {POPULATION_FRACTION:.0%} of the cohort, never trained on",
            "genotype_coding": "g - 1 (missing 0), fixed a priori, never standardised",
            "audited": "the training recipe (2k models on random halves); an already-trained model can only "
            "be audited with a hold-out set aside before training, which this command does not take",
            "private_record": record.name,
            "notes": notes,
        },
        "recommendation": recommend(entries, max_epsilon, max_tpr_at_1pct),
    }
    text = json.dumps(_finite(report), indent=1, allow_nan=False) + "\n"
    with atomic_file(record) as tmp:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            np.savez_compressed(fh, **arrays)
    with atomic_file(out) as tmp:
        tmp.write_text(text)
    return report
