"""The models an owner trains on a cohort, as the audit trains them (scikit-learn, CPU).

Genotype coding is fixed a priori: x = g - 1 (so -1/0/1 for 0/1/2 ALT copies), a missing call is 0. Features are
never centred or scaled with the cohort's own allele frequencies: a standardisation fitted on the training set is
itself a function of every member and would be a second channel the audit does not see.

Every fitted model exposes ``signal(X, y)``: the per-example statistic the attacks use, higher = "fits this example
better" (more member-like). For a classifier it is the logit margin log p(y|x) - log(1 - p(y|x)) (Carlini et al.
2022's rescaled confidence); for a regression it is minus the absolute residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoshare.errors import GenoshareError

BINARY_MODELS = ("logistic-l2", "logistic-l1", "elastic-net", "mlp")
QUANTITATIVE_MODELS = ("ridge", "elastic-net")
MODELS = ("logistic-l2", "logistic-l1", "elastic-net", "ridge", "mlp")
_EPS = 1e-12


def encode(genotypes: np.ndarray) -> np.ndarray:
    """Variant-major int8 dosages (m, n), -1 missing -> sample-major float64 features (n, m) = g - 1, missing 0."""
    G = np.asarray(genotypes)
    X = G.T.astype(np.float64) - 1.0
    X[G.T < 0] = 0.0
    return np.ascontiguousarray(X)


def default_model(binary: bool) -> str:
    return "logistic-l2" if binary else "ridge"


def check_model(name: str, binary: bool) -> str:
    if name not in MODELS:
        raise GenoshareError(f"--model must be one of {', '.join(MODELS)}, not {name!r}")
    allowed = BINARY_MODELS if binary else QUANTITATIVE_MODELS
    if name not in allowed:
        kind = "binary" if binary else "quantitative"
        raise GenoshareError(f"--model {name} does not fit a {kind} phenotype (use one of {', '.join(allowed)})")
    return name


@dataclass
class Fitted:
    """A trained model: ``decision(X)`` is the logit (classifier) or the prediction (regression)."""

    kind: str
    binary: bool
    coef: np.ndarray | None = None
    intercept: float = 0.0
    estimator: object = None

    def decision(self, X: np.ndarray) -> np.ndarray:
        if self.coef is not None:
            return X @ self.coef + self.intercept
        est = self.estimator
        if self.binary:
            p = np.clip(est.predict_proba(X)[:, 1], _EPS, 1 - _EPS)
            return np.log(p) - np.log1p(-p)
        return est.predict(X)

    def signal(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return signal_from_decision(self.decision(X), y, self.binary)


def signal_from_decision(d: np.ndarray, y: np.ndarray, binary: bool) -> np.ndarray:
    if binary:
        return np.where(np.asarray(y) > 0.5, d, -d)  # logit margin of the true label
    return -np.abs(np.asarray(y, dtype=np.float64) - d)


def fit(kind: str, X: np.ndarray, y: np.ndarray, binary: bool, *, C: float = 1.0, seed: int = 0) -> Fitted:
    """Train one model of ``kind`` (see MODELS) on (X, y); y is 0/1 for a binary phenotype."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if kind == "logistic-l2":
            from sklearn.linear_model import LogisticRegression

            est = LogisticRegression(C=C, max_iter=500)
        elif kind == "logistic-l1":
            from sklearn.linear_model import LogisticRegression

            est = LogisticRegression(penalty="l1", C=C, solver="liblinear", max_iter=500)
        elif kind == "elastic-net" and binary:
            from sklearn.linear_model import LogisticRegression

            est = LogisticRegression(penalty="elasticnet", l1_ratio=0.5, C=C, solver="saga", max_iter=300)
        elif kind == "elastic-net":
            from sklearn.linear_model import ElasticNet

            est = ElasticNet(alpha=0.1 / C, l1_ratio=0.5, max_iter=2000)
        elif kind == "ridge":
            from sklearn.linear_model import Ridge

            est = Ridge(alpha=1.0 / C)
        elif kind == "mlp":
            from sklearn.neural_network import MLPClassifier

            est = MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-3, max_iter=200, random_state=seed)
        else:
            raise GenoshareError(f"unsupported model {kind!r}")
        est.fit(X, y)
    if kind == "mlp":
        return Fitted(kind, True, estimator=est)
    coef = np.ravel(est.coef_).astype(np.float64)
    intercept = float(np.ravel(est.intercept_)[0]) if np.ndim(est.intercept_) else float(est.intercept_)
    return Fitted(kind, binary, coef=coef, intercept=intercept)


class ConstantModel:
    """A model that ignores its training data (the audit's negative control): fixed random weights."""

    def __init__(self, n_features: int, binary: bool, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.fitted = Fitted("constant", binary, coef=rng.normal(0, 0.05, n_features), intercept=0.0)
