"""Membership-inference attacks on a trained model, from the signals of a target and its reference models.

Inputs are the signal matrices of the game (``game.py``): S[j, i] is model j's signal on audit-pool individual i
(logit margin of the true label, or minus the absolute residual; ``models.py``), IN[j, i] whether i was in model
j's training half, and P[j, z] model j's signal on individual z of the population set, which no model trained on.
Every attack returns a score, higher = "member". Anything an attack estimates (per-example means and variances,
the reference probability Pr(x), the residual scale) comes from the reference models only: the rows ``excl``
(the target itself, and for calibration also the reference playing the target) are left out.

- ``loss``: the signal itself (for a logistic model the logit margin is a monotone function of minus the loss).
- ``lira_offline`` (Carlini et al. 2022, offline, fixed variance): (s - mu_out(x)) / sigma_out, mu_out(x) the mean
  signal of x over the references that did not train on x, sigma_out one pooled standard deviation.
- ``lira_online`` (per-example Gaussians): log N(s; mu_in(x), sd_in(x)) - log N(s; mu_out(x), sd_out(x)); only
  with at least ``ONLINE_MIN_REFERENCES`` references (fewer IN/OUT models per example make the variances noise).
- ``rmia`` (Zarifzadeh et al. 2024): ratio(x) = Pr(x | target) / Pr(x), Pr(x) the mean over all references (they
  are trained on random halves, so this is the paper's online Pr(x) without the offline 'a' correction); the score
  is the fraction of population individuals z with ratio(x) / ratio(z) > gamma (gamma = 1, fixed a priori).
  Pr(x | model) is sigmoid(margin) for a classifier and exp(-r^2 / (2 s^2)) for a regression, s^2 the references'
  mean squared residual on the population set.
"""

from __future__ import annotations

import numpy as np

ATTACKS = ("loss", "lira_offline", "lira_online", "rmia")
ONLINE_MIN_REFERENCES = 64
RMIA_GAMMA = 1.0
_VAR_FLOOR = 1e-8


def _loo(M: np.ndarray, V: np.ndarray, excl: np.ndarray):
    """Sums over models of M*V, M*V^2 and M, leaving out the rows excl[r] for each r -> three (R, N) arrays."""
    MV = M * V
    MVV = MV * V
    s = MV.sum(0)[None] - MV[excl].sum(1)
    q = MVV.sum(0)[None] - MVV[excl].sum(1)
    n = M.sum(0)[None] - M[excl].sum(1)
    return s, q, n


def _mean_var(s, q, n):
    n_safe = np.maximum(n, 1.0)
    mu = s / n_safe
    var = np.maximum(q / n_safe - mu * mu, 0.0) * n_safe / np.maximum(n_safe - 1.0, 1.0)
    return mu, var


def _log_normal(x, mu, var):
    var = np.maximum(var, _VAR_FLOOR)
    return -0.5 * (np.log(2 * np.pi * var) + (x - mu) ** 2 / var)


def _probability(sig: np.ndarray, binary: bool, scale2: float) -> np.ndarray:
    if binary:
        return 1.0 / (1.0 + np.exp(-np.clip(sig, -500, 500)))
    return np.exp(-np.minimum(sig * sig / (2.0 * scale2), 700.0))


def scores(
    S: np.ndarray, IN: np.ndarray, P: np.ndarray, t: int, cal_refs: np.ndarray, binary: bool, attacks=ATTACKS
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For target t: {attack: (target scores (N,), calibration scores (len(cal_refs), N))}.

    The calibration scores are those of reference r attacked as if it were the target, with the target t and r
    itself left out of r's references: thresholds fitted on them never see the target model."""
    K, N = S.shape
    cal_refs = np.asarray(cal_refs, dtype=np.int64)
    # row 0: the target (references = all but t); rows 1..: each calibration reference (all but t and r)
    who = np.concatenate([[t], cal_refs])
    excl = np.stack([np.array([t, t])] + [np.array([t, r]) for r in cal_refs])
    # the target row uses excl[:1, :1] = [[t]] (a single exclusion; [t, t] would subtract t twice)
    INf = IN.astype(np.float64)
    OUTf = 1.0 - INf
    own = S[who]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    if "loss" in attacks:
        out["loss"] = (own[0].copy(), own[1:].copy())

    need_out = {"lira_offline", "lira_online"} & set(attacks)
    if need_out:
        mu_out = [_mean_var(*_loo(OUTf, S, excl[:1, :1]))]
        if cal_refs.size:
            mu_out.append(_mean_var(*_loo(OUTf, S, excl[1:])))
        mu_o = np.concatenate([m[0] for m in mu_out])
        var_o = np.concatenate([m[1] for m in mu_out])
    if "lira_offline" in attacks:
        # one pooled OUT standard deviation from the references (all models but t) on every example
        ref = np.ones(K, bool)
        ref[t] = False
        resid = (S[ref] - mu_o[0][None]) * OUTf[ref]
        sd = float(np.sqrt(max((resid**2).sum() / max(OUTf[ref].sum() - N, 1.0), _VAR_FLOOR)))
        z = (own - mu_o) / sd
        out["lira_offline"] = (z[0], z[1:])
    if "lira_online" in attacks and K - 1 >= ONLINE_MIN_REFERENCES:
        mu_in = [_mean_var(*_loo(INf, S, excl[:1, :1]))]
        if cal_refs.size:
            mu_in.append(_mean_var(*_loo(INf, S, excl[1:])))
        mu_i = np.concatenate([m[0] for m in mu_in])
        var_i = np.concatenate([m[1] for m in mu_in])
        lr = _log_normal(own, mu_i, var_i) - _log_normal(own, mu_o, var_o)
        out["lira_online"] = (lr[0], lr[1:])
    if "rmia" in attacks:
        ref = np.ones(K, bool)
        ref[t] = False
        scale2 = float(max(np.mean(P[ref] ** 2), _VAR_FLOOR))
        pr_x_all = _probability(S, binary, scale2)
        pr_z_all = _probability(P, binary, scale2)
        rows = []
        for k, e in enumerate([excl[0, :1]] + [excl[j] for j in range(1, len(excl))]):
            ex = np.asarray(e)
            keep = np.ones(K, bool)
            keep[ex] = False
            px = pr_x_all[keep].mean(0)
            pz = pr_z_all[keep].mean(0)
            j = who[k]
            ratio_x = pr_x_all[j] / np.maximum(px, 1e-300)
            ratio_z = np.sort(pr_z_all[j] / np.maximum(pz, 1e-300))
            # fraction of z with ratio_x / ratio_z > gamma  <=>  ratio_z < ratio_x / gamma
            # (a relative tolerance of 1e-9 so that rounding in the means does not turn exact ties into scores)
            rows.append(np.searchsorted(ratio_z, ratio_x / RMIA_GAMMA * (1 - 1e-9), side="left") / ratio_z.size)
        r = np.stack(rows)
        out["rmia"] = (r[0], r[1:])
    return out
