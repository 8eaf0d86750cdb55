"""DP-SGD for logistic and linear regression in numpy, accounted with dp-accounting's PLD accountant.

One step (Abadi et al. 2016): every training example joins the batch independently with probability q (Poisson
sampling); each one's gradient of the loss, INCLUDING the intercept's coordinate, is clipped to L2 norm ``clip``;
the clipped gradients are summed, N(0, (noise_multiplier * clip)^2 I) is added, and the sum is divided by the
expected batch size q n (a constant, so the noise is not data-dependent). Weights are updated by gradient descent.

Accounting: T self-composed Poisson-sampled Gaussian mechanisms (sampling rate q, noise multiplier sigma) under the
add/remove-one relation, which is the relation of the membership game (an individual is in or out of the training
set, everyone else fixed). ``epsilon`` is dp-accounting's PLD accountant at ``delta`` (default 0.1 / n, below 1/n).

The only thing the accountant knows is (q, sigma, T). ``actual_noise_multiplier`` lets the tests train with a
different noise than the one accounted (the "mis-accounted" training the audit must catch); never use it otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoshare.audit.models import Fitted
from genoshare.errors import GenoshareError


@dataclass(frozen=True)
class DPSGDConfig:
    noise_multiplier: float
    clip: float = 1.0
    sampling_rate: float | None = None  # default: min(1, 64 / n)
    epochs: float = 5.0
    learning_rate: float = 0.5
    delta: float | None = None  # default 0.1 / n
    steps: int | None = None  # default round(epochs / q)

    def resolved(self, n: int) -> tuple[float, int, float]:
        q = self.sampling_rate if self.sampling_rate is not None else min(1.0, 64.0 / max(n, 1))
        steps = self.steps if self.steps is not None else max(1, int(round(self.epochs / q)))
        delta = self.delta if self.delta is not None else 0.1 / max(n, 1)
        return q, steps, delta


def dp_epsilon(sampling_rate: float, noise_multiplier: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` Poisson-sampled Gaussian mechanisms (add/remove-one), PLD accountant."""
    import dp_accounting
    from dp_accounting.pld import PLDAccountant

    if noise_multiplier <= 0:
        return float("inf")
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier)), steps
    )
    acc = PLDAccountant(neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def parse_noise_list(text: str) -> list[float]:
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            v = float(part)
        except ValueError:
            raise GenoshareError(f"--dp-sgd: {part!r} is not a noise multiplier (a positive number)") from None
        if not (v > 0 and np.isfinite(v)):
            raise GenoshareError(f"--dp-sgd: noise multiplier must be a positive number, not {part!r}")
        out.append(v)
    if not out:
        raise GenoshareError("--dp-sgd needs at least one noise multiplier")
    return out


def train(
    X: np.ndarray,
    y: np.ndarray,
    binary: bool,
    config: DPSGDConfig,
    rng: np.random.Generator,
    actual_noise_multiplier: float | None = None,
) -> Fitted:
    """One DP-SGD run on (X, y); returns a linear Fitted (coef, intercept)."""
    n, p = X.shape
    q, steps, _ = config.resolved(n)  # fix sampling_rate and steps in the config to account for every run alike
    sigma = config.noise_multiplier if actual_noise_multiplier is None else actual_noise_multiplier
    C = float(config.clip)
    w = np.zeros(p)
    b = 0.0
    y = np.asarray(y, dtype=np.float64)
    denom = q * n
    for _ in range(steps):
        idx = np.flatnonzero(rng.random(n) < q)
        g_w = np.zeros(p)
        g_b = 0.0
        if idx.size:
            Xb = X[idx]
            z = Xb @ w + b
            if binary:
                r = 1.0 / (1.0 + np.exp(-z)) - y[idx]  # d/dz of the log loss
            else:
                r = z - y[idx]  # d/dz of half the squared error
            # per-example gradient (r_i x_i, r_i): norm |r_i| sqrt(|x_i|^2 + 1)
            norms = np.abs(r) * np.sqrt(np.einsum("ij,ij->i", Xb, Xb) + 1.0)
            scale = r / np.maximum(1.0, norms / C)
            g_w = scale @ Xb
            g_b = float(scale.sum())
        if sigma > 0:
            g_w = g_w + rng.normal(0.0, sigma * C, p)
            g_b = g_b + float(rng.normal(0.0, sigma * C))
        w -= config.learning_rate * g_w / denom
        b -= config.learning_rate * g_b / denom
    return Fitted("dp-sgd", binary, coef=w, intercept=b)
