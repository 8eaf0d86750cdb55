"""Membership inference against a release (SPEC 6): who is in the cohort, given the released genotypes?

The attacker sees the released genotypes, public reference data, and a target individual's genotypes, and outputs a
score: higher means "member". Members are the cohort's individuals; non-members are individuals of the same
population that were used for nothing else (a simulated hold-out set; for the real cohort, half of the panel).
Both groups are split into calibration and evaluation halves (:func:`make_split`); every decision rule is fixed on
calibration and measured on evaluation (:mod:`genoshare.evaluate.auditstats`).

Attacks (``ATTACKS``: CLI name -> report key)
- ``nn`` / nearest_neighbour: how far the closest released row stands out among all released rows, in the target's
  own scale: (mean - min) / sd of the Hamming distances (fraction of non-missing SNPs whose genotypes differ) from
  the target to the released rows. The raw minimum distance mostly measures how typical the target is (a target
  with many rare alleles is far from everyone); standardising removes that (real cohort, e = 1 per SNP: AUC 0.67
  raw vs 0.998 standardised). Needs nothing but the release.
- ``lrt`` / likelihood_ratio: Sankararaman et al. (2009),
  ``sum_j x_j ln(p_rel_j / p_ref_j) + (2 - x_j) ln((1 - p_rel_j) / (1 - p_ref_j))`` over the target's non-missing
  SNPs, with the release's ALT frequencies p_rel and the reference's p_ref (both (count + 0.5) / (2 n + 1), which
  keeps them inside (0, 1)). When the release restores the cohort's own (published) frequencies, p_rel IS the
  cohort's frequencies: the LRT then attacks those published frequencies, which the XOR accountant explicitly
  does not cover.
- ``classifier``: logistic regression (scikit-learn, standardised features) trained on the calibration halves
  (members vs non-members) with features of target vs release: smallest, second-smallest, mean and spread of the
  Hamming distances to the released rows and the z-score of the smallest; the LRT statistic and a genotype-level
  (3-class) frequency log-ratio per SNP; the target's rarity under the reference; smallest and mean distance to the
  reference rows (how close the population is anyway). Calibration scores are out-of-fold (5-fold cross-fitting),
  so the thresholds are not set on the classifier's own training fit.
- ``row`` / row_likelihood_ratio (optional, not in the default set): an attacker who also knows the release's
  per-column flip probabilities (public: they follow from the reference panel and the settings in the manifest)
  and which released row would hold the target (the release keeps individual ids; a member's own row, a
  non-member a member's row assigned at random). Score: ``sum_j ln P(s_j | x_j) - ln Q(s_j)``, P the XOR channel
  genotype -> released genotype (code 10 decodes to 1), Q its average over reference genotype frequencies. Close
  to the Neyman-Pearson test of the replace-one game, so it is what keeps the accountant honest in the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genoshare.errors import GenoshareError, InputError
from genoshare.evaluate.auditstats import SeedScores, summarise_attack

ATTACKS = {
    "nn": "nearest_neighbour",
    "lrt": "likelihood_ratio",
    "classifier": "classifier",
    "row": "row_likelihood_ratio",
}
DEFAULT_ATTACKS = ("nn", "lrt", "classifier")
MIN_RELEASES = 5
ROW_FLOOR = 0.01  # the row attack mixes its channel with 1% uniform: restoration flips are not in its model
_HAMMING_CHUNK = 2048


# ----------------------------------------------------------------------------------------------------------------
# split


@dataclass(frozen=True)
class Split:
    """Indices into the member and non-member sets. Calibration: the first floor(n/2) of a seeded permutation;
    evaluation: the rest. ``row_of_nonmember`` assigns each non-member a member row for the row attack."""

    members_cal: np.ndarray
    members_eval: np.ndarray
    nonmembers_cal: np.ndarray
    nonmembers_eval: np.ndarray
    row_of_nonmember: np.ndarray
    seed: int

    def describe(self) -> dict:
        return {
            "seed_split": self.seed,
            "members": {"calibration": int(self.members_cal.size), "evaluation": int(self.members_eval.size)},
            "nonmembers": {"calibration": int(self.nonmembers_cal.size), "evaluation": int(self.nonmembers_eval.size)},
            "rule": "seeded permutation (numpy default_rng(SeedSequence([seed_split, k])), k = 1 members, "
            "2 non-members); first floor(n/2) calibration, rest evaluation; thresholds and the "
            "classifier use calibration only, every reported rate evaluation only",
        }


def _halves(n: int, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(np.random.SeedSequence([seed, stream])).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def make_split(n_members: int, n_nonmembers: int, seed: int = 0) -> Split:
    if n_members < 4 or n_nonmembers < 4:
        raise GenoshareError(
            f"a membership audit needs at least 4 members and 4 non-members (got {n_members} and {n_nonmembers})"
        )
    mc, me = _halves(n_members, seed, 1)
    nc, ne = _halves(n_nonmembers, seed, 2)
    rows = np.random.default_rng(np.random.SeedSequence([seed, 4])).permutation(n_members)
    return Split(mc, me, nc, ne, rows[np.arange(n_nonmembers) % n_members], int(seed))


# ----------------------------------------------------------------------------------------------------------------
# building blocks


def _onehot(G: np.ndarray) -> np.ndarray:
    """(m, n) int8 genotypes -> (n, 3m) float32 indicators of 0/1/2 (all zero where missing)."""
    m, n = G.shape
    out = np.zeros((n, 3 * m), dtype=np.float32)
    Gt = G.T
    for g in range(3):
        out[:, g::3] = Gt == g
    return out


def hamming(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Fraction of SNPs (non-missing in both) whose genotypes differ: A (m, na), B (m, nb) -> (na, nb)."""
    A = np.asarray(A, dtype=np.int8)
    B = np.asarray(B, dtype=np.int8)
    m = A.shape[0]
    if B.shape[0] != m:
        raise ValueError("different numbers of SNPs")
    match = np.zeros((A.shape[1], B.shape[1]), dtype=np.float32)
    anymiss = bool((A < 0).any() or (B < 0).any())
    valid = np.zeros_like(match) if anymiss else None
    for j0 in range(0, m, _HAMMING_CHUNK):
        a, b = A[j0 : j0 + _HAMMING_CHUNK], B[j0 : j0 + _HAMMING_CHUNK]
        match += _onehot(a) @ _onehot(b).T
        if anymiss:
            valid += (a >= 0).T.astype(np.float32) @ (b >= 0).astype(np.float32)
    valid = np.float32(m) if valid is None else np.maximum(valid, 1)
    return (1.0 - match.astype(np.float64) / valid).astype(np.float64)


def allele_freq(G: np.ndarray) -> np.ndarray:
    """ALT frequency (count + 0.5) / (2 n_j + 1) over non-missing genotypes: always inside (0, 1)."""
    ok = G >= 0
    count = np.where(ok, G, 0).sum(axis=1, dtype=np.float64)
    return (count + 0.5) / (2.0 * ok.sum(axis=1) + 1.0)


def genotype_freq(G: np.ndarray) -> np.ndarray:
    """(m, 3) frequencies of genotypes 0/1/2 per SNP with 0.5 added to each class."""
    f = np.stack([(G == g).sum(axis=1) for g in range(3)], axis=1).astype(np.float64) + 0.5
    return f / f.sum(axis=1, keepdims=True)


def _per_snp_table_sum(X: np.ndarray, table: np.ndarray) -> np.ndarray:
    """sum_j table[j, X[j, i]] over non-missing X; X (m, n), table (m, 3) -> (n,)."""
    m = X.shape[0]
    idx = np.where(X >= 0, X, 0).astype(np.int64)
    vals = table[np.arange(m)[:, None], idx]
    return np.where(X >= 0, vals, 0.0).sum(axis=0)


def lrt_scores(X: np.ndarray, p_rel: np.ndarray, p_ref: np.ndarray) -> np.ndarray:
    """Sankararaman et al. 2009 statistic of every column of X (m, n) (missing genotypes contribute 0)."""
    a = np.log(p_rel / p_ref)
    b = np.log((1 - p_rel) / (1 - p_ref))
    table = np.stack([2 * b, a + b, 2 * a], axis=1)
    return _per_snp_table_sum(X, table)


def channel(
    flip_p: np.ndarray, floor: float = ROW_FLOOR, restore: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """(m, 3, 3) P(released genotype s | original g): the XOR stage with per-column flip probabilities
    (2m,) = (high, low) per SNP, then (if ``restore`` = (down, up) rates per SNP is given) the restoration's
    1 -> 0 or 0 -> 1 flips, modelled as independent per bit; mixed with ``floor`` of the uniform distribution."""
    ph, pl = flip_p[0::2][:, None], flip_p[1::2][:, None]
    bits = np.array([[0, 0], [0, 1], [1, 1]])  # g -> (high, low)
    h, lo = bits[:, 0][None, :], bits[:, 1][None, :]
    ph1 = np.where(h == 1, 1 - ph, ph)  # P(noisy high bit = 1 | g), (m, 3)
    pl1 = np.where(lo == 1, 1 - pl, pl)
    if restore is not None:
        down, up = (np.asarray(r, dtype=np.float64)[:, None] for r in restore)
        ph1 = ph1 * (1 - down) + (1 - ph1) * up
        pl1 = pl1 * (1 - down) + (1 - pl1) * up
    p0 = (1 - ph1) * (1 - pl1)
    p2 = ph1 * pl1
    p1 = ph1 * (1 - pl1) + (1 - ph1) * pl1
    P = np.stack([p0, p1, p2], axis=2)
    return (1 - floor) * P + floor / 3.0


def restoration_rates(release: np.ndarray, flip_p: np.ndarray, fref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The attacker's estimate of the restoration's per-bit flip rates (down: 1 -> 0, up: 0 -> 1) per SNP: the
    expected number of 1-bits after the XOR noise (from reference genotype frequencies) against the number the
    release shows (the sum of released genotypes is its number of 1-bits)."""
    ok = release >= 0
    n_j = ok.sum(axis=1).astype(np.float64)
    ones = np.where(ok, release, 0).sum(axis=1, dtype=np.float64)
    q_hi, q_lo = fref[:, 2], fref[:, 1] + fref[:, 2]
    ph, pl = flip_p[0::2], flip_p[1::2]
    noisy = n_j * (q_hi * (1 - ph) + (1 - q_hi) * ph + q_lo * (1 - pl) + (1 - q_lo) * pl)
    with np.errstate(invalid="ignore", divide="ignore"):
        down = np.where(noisy > ones, (noisy - ones) / np.maximum(noisy, 1e-12), 0.0)
        up = np.where(noisy < ones, (ones - noisy) / np.maximum(2 * n_j - noisy, 1e-12), 0.0)
    return np.clip(down, 0, 1), np.clip(up, 0, 1)


def row_scores(X: np.ndarray, S_rows: np.ndarray, P: np.ndarray, fref: np.ndarray) -> np.ndarray:
    """sum_j ln P(s_j | x_j) - ln Q(s_j) for target columns X (m, n) against released rows S_rows (m, n);
    P (m, 3, 3) from :func:`channel`, Q its average over the reference genotype frequencies."""
    Q = np.einsum("jg,jgs->js", fref, P)
    m = X.shape[0]
    ok = (X >= 0) & (S_rows >= 0)
    x = np.where(ok, X, 0).astype(np.int64)
    s = np.where(ok, S_rows, 0).astype(np.int64)
    j = np.arange(m)[:, None]
    v = np.log(P[j, x, s]) - np.log(Q[j, s])
    return np.where(ok, v, 0.0).sum(axis=0)


def _release_features(D: np.ndarray) -> np.ndarray:
    """Distance summaries of targets (rows of D) against the released rows."""
    part = np.partition(D, 1, axis=1) if D.shape[1] > 1 else np.repeat(D, 2, axis=1)
    d1, d2 = part[:, 0], part[:, 1]
    mean, sd = D.mean(axis=1), D.std(axis=1)
    return np.stack([d1, d2, mean, sd, (mean - d1) / np.maximum(sd, 1e-9)], axis=1)


# ----------------------------------------------------------------------------------------------------------------
# scoring one release


@dataclass
class Population:
    """What the attacker holds besides the release: the targets (members then non-members, all (m, .) int8),
    the public reference and, for the row attack, the release's flip probabilities."""

    members: np.ndarray
    nonmembers: np.ndarray
    reference: np.ndarray | None = None
    flip_p: np.ndarray | None = None

    def __post_init__(self):
        m = self.members.shape[0]
        for name in ("nonmembers", "reference"):
            a = getattr(self, name)
            if a is not None and a.shape[0] != m:
                raise ValueError(f"{name} has {a.shape[0]} SNPs, members {m}")
        self._cache: dict = {}

    @property
    def targets(self) -> np.ndarray:
        if "targets" not in self._cache:
            self._cache["targets"] = np.ascontiguousarray(np.concatenate([self.members, self.nonmembers], axis=1))
        return self._cache["targets"]

    def ref_features(self) -> np.ndarray:
        """Release-independent features of every target (computed once for all seeds)."""
        if "ref" not in self._cache:
            X, R = self.targets, self.reference
            fref = genotype_freq(R)
            rarity = -_per_snp_table_sum(X, np.log(fref)) / np.maximum((X >= 0).sum(axis=0), 1)
            Dr = hamming(X, R)
            self._cache["ref"] = np.stack([Dr.min(axis=1), Dr.mean(axis=1), rarity], axis=1)
        return self._cache["ref"]


def _need_reference(pop: Population, what: str) -> None:
    if pop.reference is None:
        raise GenoshareError(f"the {what} attack needs reference genotypes (--reference or --split-panel)")


def score_release(
    pop: Population, release: np.ndarray, split: Split, attacks=DEFAULT_ATTACKS, classifier_seed: int = 0
) -> dict[str, SeedScores]:
    """Scores of every requested attack for one release (m, n_members) whose column i is member i's row."""
    release = np.asarray(release, dtype=np.int8)
    n = pop.members.shape[1]
    if release.shape != pop.members.shape:
        raise ValueError(f"release has shape {release.shape}, members {pop.members.shape}")
    X = pop.targets
    nsnp = np.maximum((X >= 0).sum(axis=0), 1)
    out: dict[str, np.ndarray] = {}
    D = None
    if "nn" in attacks or "classifier" in attacks:
        D = hamming(X, release)
        rel_feats = _release_features(D)
        out["nn"] = rel_feats[:, 4]
    if "lrt" in attacks or "classifier" in attacks:
        _need_reference(pop, "likelihood-ratio" if "lrt" in attacks else "classifier")
        out["lrt"] = lrt_scores(X, allele_freq(release), allele_freq(pop.reference))
    if "row" in attacks:
        _need_reference(pop, "row likelihood-ratio")
        if pop.flip_p is None:
            raise GenoshareError("the row attack needs the release's flip probabilities")
        rows = np.concatenate([np.arange(n), split.row_of_nonmember])
        fref = genotype_freq(pop.reference)
        P = channel(pop.flip_p, restore=restoration_rates(release, pop.flip_p, fref))
        out["row"] = row_scores(X, release[:, rows], P, fref)
    if "classifier" in attacks:
        glr = _per_snp_table_sum(X, np.log(genotype_freq(release)) - np.log(genotype_freq(pop.reference)))
        feats = np.column_stack([rel_feats, out["lrt"] / nsnp, glr / nsnp, pop.ref_features()])
        out["classifier"] = classifier_scores(feats, n, split, classifier_seed)
    res = {}
    for a in attacks:
        s = out[a]
        sm, sn = s[:n], s[n:]
        res[a] = SeedScores(
            sm[split.members_cal], sn[split.nonmembers_cal], sm[split.members_eval], sn[split.nonmembers_eval]
        )
    return res


def classifier_scores(features: np.ndarray, n_members: int, split: Split, seed: int = 0) -> np.ndarray:
    """Member probability of every target: a model fit on the calibration halves; calibration targets get
    out-of-fold scores (cross-fitting), evaluation targets the model fit on all of calibration."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    F = np.nan_to_num(np.asarray(features, dtype=np.float64))
    cal = np.concatenate([split.members_cal, n_members + split.nonmembers_cal])
    y = np.concatenate([np.ones(split.members_cal.size), np.zeros(split.nonmembers_cal.size)])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200))
    folds = int(min(5, split.members_cal.size, split.nonmembers_cal.size))
    if folds < 2:
        raise GenoshareError("the classifier attack needs at least 2 calibration members and non-members")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = np.empty(F.shape[0])
    # decision_function is monotone in the probability but does not saturate at 0/1 (no ties from rounding)
    scores[cal] = cross_val_predict(model, F[cal], y, cv=cv, method="decision_function")
    model.fit(F[cal], y)
    rest = np.setdiff1d(np.arange(F.shape[0]), cal)
    scores[rest] = model.decision_function(F[rest])
    return scores


def run_attacks(
    members: np.ndarray,
    nonmembers: np.ndarray,
    releases: list[np.ndarray],
    reference: np.ndarray | None = None,
    attacks=DEFAULT_ATTACKS,
    seed_split: int = 0,
    delta: float = 0.0,
    confidence: float = 0.95,
    flip_p: np.ndarray | None = None,
) -> dict:
    """Audit S releases (seeds) of ONE cohort: {report key: summary} plus "split".

    members (m, n) and every release (m, n) are variant-major with release column i = member i; nonmembers
    (m, n_z), reference (m, n_r). Aggregation over seeds is "fixed" (same individuals in every seed; see
    :mod:`genoshare.evaluate.auditstats`).
    """
    attacks = parse_attacks(attacks)
    pop = Population(
        np.asarray(members, np.int8),
        np.asarray(nonmembers, np.int8),
        None if reference is None else np.asarray(reference, np.int8),
        flip_p,
    )
    split = make_split(pop.members.shape[1], pop.nonmembers.shape[1], seed_split)
    per_seed = [score_release(pop, S, split, attacks, classifier_seed=seed_split) for S in releases]
    report = {}
    for a in attacks:
        report[ATTACKS[a]] = summarise_attack(
            [p[a] for p in per_seed], confidence=confidence, delta=delta, aggregation="fixed"
        )
    report["split"] = split.describe()
    return report


def parse_attacks(attacks) -> tuple[str, ...]:
    if isinstance(attacks, str):
        attacks = [a.strip() for a in attacks.split(",") if a.strip()]
    rev = {v: k for k, v in ATTACKS.items()}
    names = []
    for a in attacks:
        a = rev.get(a, a)
        if a not in ATTACKS:
            raise GenoshareError(f"--attacks: unknown attack {a!r} (choose from {', '.join(ATTACKS)})")
        names.append(a)
    if not names:
        raise GenoshareError("--attacks: name at least one attack")
    return tuple(dict.fromkeys(names))


# ----------------------------------------------------------------------------------------------------------------
# files


@dataclass
class Matrix:
    path: Path
    sample_ids: list[str]
    variant_ids: list[str]
    genotypes: np.ndarray  # (m, n) int8, -1 missing
    alleles: np.ndarray | None = None  # (m, 2) REF/ALT for VCF Zarr inputs


def _is_csv(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def load_matrix(path) -> Matrix:
    """A CSV genotype matrix or a VCF Zarr store, variant-major."""
    from genoshare.io.csvmatrix import read_matrix

    path = Path(path)
    if _is_csv(path):
        mat = read_matrix(path)
        return Matrix(path, mat.sample_ids, mat.variant_ids, mat.genotypes)
    if path.is_dir() or path.suffix == ".zip":
        from genoshare.io.vcz import open_vcz, read_dosage

        info = open_vcz(path)
        return Matrix(
            path,
            info.sample_ids,
            [str(v) for v in info.variant_id],
            read_dosage(info, 0, info.n_variants),
            np.asarray(info.variant_allele[:, :2], dtype=object),
        )
    if not path.exists():
        raise InputError(path, "no such file")
    raise InputError(
        path,
        "attack reads CSV matrices (.csv, .csv.gz) or VCF Zarr stores; convert other formats with 'genoshare ingest'",
    )


def _align(mat: Matrix, variant_ids: list[str], alleles, what: str) -> np.ndarray:
    """mat's genotypes on the release's SNPs (by id), recoded where REF/ALT are swapped."""
    if list(mat.variant_ids) == list(variant_ids):
        G = mat.genotypes
        idx = np.arange(len(variant_ids))
    else:
        pos = {v: j for j, v in enumerate(mat.variant_ids)}
        missing = [v for v in variant_ids if v not in pos]
        if missing:
            raise InputError(
                mat.path,
                f"{what}: SNP {missing[0]!r} of the release is missing ({len(missing)} of {len(variant_ids)} missing)",
            )
        idx = np.array([pos[v] for v in variant_ids], dtype=np.int64)
        G = mat.genotypes[idx]
    if alleles is not None and mat.alleles is not None:
        a = mat.alleles[idx]
        same = (a[:, 0] == alleles[:, 0]) & (a[:, 1] == alleles[:, 1])
        swap = (a[:, 0] == alleles[:, 1]) & (a[:, 1] == alleles[:, 0])
        bad = ~(same | swap)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise InputError(
                mat.path,
                f"{what}: SNP {variant_ids[j]!r} has alleles {a[j, 0]}/{a[j, 1]}, the "
                f"release {alleles[j, 0]}/{alleles[j, 1]}",
            )
        if swap.any():
            G = G.copy()
            G[swap] = np.where(G[swap] >= 0, 2 - G[swap], -1)
    return np.ascontiguousarray(G, dtype=np.int8)


def _sha256(path: Path) -> str:
    from genoshare.manifest import sha256_path

    return sha256_path(path)


def load_release(release_dir) -> tuple[Matrix, dict]:
    d = Path(release_dir)
    if not d.is_dir():
        raise InputError(d, "not a release directory")
    manifest = {}
    if (d / "manifest.json").exists():
        try:
            manifest = json.loads((d / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            raise InputError(d / "manifest.json", f"unreadable manifest ({' '.join(str(e).split())})") from None
    for name in ("release.csv.gz", "release.vcz"):
        if (d / name).exists():
            return load_matrix(d / name), manifest
    raise InputError(d, "not a release directory (no release.csv.gz or release.vcz)")


def _flip_probabilities(manifest: dict, rel_path: Path, reference_matrix: Matrix | None) -> np.ndarray:
    """Recompute the release's per-column flip probabilities from its manifest and reference file (CSV releases):
    they are public (reference panel + settings), so an attacker can do the same."""
    from genoshare.io.csvmatrix import read_matrix
    from genoshare.mechanism.calibrate import calibrate
    from genoshare.mechanism.ldstats import compute_ldstats

    try:
        ref = manifest["inputs"]["reference"]
        eps, method = float(manifest["epsilon_requested"]), manifest["calibration"]
        zero_cell, window = manifest["zero_cell"], manifest["window"]
    except (KeyError, TypeError, ValueError):
        raise InputError(rel_path, "the row attack needs the release's manifest.json with its settings") from None
    if manifest.get("release_file") != "release.csv.gz":
        raise InputError(rel_path, "the row attack recomputes flip probabilities for CSV-matrix releases only")
    rpath = Path(ref["path"])
    if not rpath.exists() or _sha256(rpath) != ref.get("sha256"):
        raise InputError(rpath, "the release's reference panel is not available unchanged (needed by the row attack)")
    panel = read_matrix(rpath)
    stats = compute_ldstats(panel.genotypes, zero_cell=zero_cell, window=None if window == "all" else int(window))
    cal = calibrate(stats, eps, method)
    if not np.isclose(cal.epsilon_xor, float(manifest["epsilon_xor"]), rtol=1e-9, atol=0):
        raise InputError(rel_path, "cannot reproduce the release's flip probabilities from its manifest")
    return cal.p


def attack_files(
    original,
    releases,
    nonmembers,
    reference=None,
    attacks=DEFAULT_ATTACKS,
    seed_split: int = 0,
    delta: float = 0.0,
    confidence: float = 0.95,
    split_panel: bool = False,
) -> dict:
    """The ``genoshare attack`` command: audit one or more releases (seeds) of ORIGINAL.

    ``nonmembers``: individuals of the same population used for nothing else. With ``split_panel`` it is a panel
    instead: a seeded half becomes the non-members, the other half the reference for the LRT and the classifier
    (``reference`` must then be omitted).
    """
    attacks = parse_attacks(attacks)
    if not (0 < confidence < 1):
        raise GenoshareError("--confidence must be between 0 and 1")
    if not (0 <= delta < 1):
        raise GenoshareError("--delta must be in [0, 1)")
    if isinstance(releases, (str, Path)):
        releases = [releases]
    releases = [Path(r) for r in releases]
    if not releases:
        raise GenoshareError("give at least one --release directory")
    if split_panel and reference is not None:
        raise GenoshareError("--split-panel takes the reference half from --nonmembers; omit --reference")

    rel_mats, manifests = zip(*(load_release(r) for r in releases))
    first = rel_mats[0]
    for r, mat in zip(releases[1:], rel_mats[1:]):
        if mat.variant_ids != first.variant_ids or mat.sample_ids != first.sample_ids:
            raise InputError(r, f"has other SNPs or individuals than {releases[0]}")
    vids, alleles = first.variant_ids, first.alleles
    orig = load_matrix(original)
    pos = {s: i for i, s in enumerate(orig.sample_ids)}
    absent = [s for s in first.sample_ids if s not in pos]
    if absent:
        raise InputError(first.path, f"individual {absent[0]!r} of the release is not in the original {original}")
    G = _align(orig, vids, alleles, "original")[:, [pos[s] for s in first.sample_ids]]
    nm = load_matrix(nonmembers)
    shared = set(nm.sample_ids) & set(first.sample_ids)
    if shared:
        raise InputError(
            nm.path,
            f"shares {len(shared)} individual(s) with the cohort (e.g. {sorted(shared)[0]!r}); "
            "non-members must not be members",
        )
    Z = _align(nm, vids, alleles, "non-members")
    notes = []
    ref_desc: dict = {}
    if split_panel:
        if Z.shape[1] < 8:
            raise InputError(nm.path, "--split-panel needs at least 8 panel individuals")
        perm = np.random.default_rng(np.random.SeedSequence([seed_split, 3])).permutation(Z.shape[1])
        half = Z.shape[1] // 2
        nm_idx, ref_idx = np.sort(perm[:half]), np.sort(perm[half:])
        R = Z[:, ref_idx]
        Z = Z[:, nm_idx]
        ref_desc = {
            "source": "--split-panel: the other half of the panel",
            "path": str(nm.path),
            "individuals": int(R.shape[1]),
        }
        notes.append(
            f"--split-panel: {nm.path} split by a seeded permutation (stream 3) into {half} non-members "
            f"(then calibration/evaluation halves) and {R.shape[1]} reference "
            "individuals for the LRT and the classifier"
        )
    elif reference is not None:
        rm = load_matrix(reference)
        both = set(rm.sample_ids) & (set(first.sample_ids) | set(nm.sample_ids))
        if both:
            raise InputError(rm.path, f"shares individual {sorted(both)[0]!r} with the cohort or the non-members")
        R = _align(rm, vids, alleles, "reference")
        ref_desc = {"source": "--reference", "path": str(rm.path), "individuals": int(R.shape[1])}
    else:
        R = None
    nm_sha = _sha256(nm.path)
    used = [m for m in manifests if m.get("inputs", {}).get("reference", {}).get("sha256") == nm_sha]
    if used:
        notes.append(
            "the non-members file is the reference panel the release's noise model was computed from: "
            "non-members were not 'used for nothing else' (unavoidable for a cohort without a hold-out)"
        )
        if any(m.get("af_source", {}).get("kind") == "reference" for m in used):
            notes.append(
                "the release restored that panel's allele frequencies, non-members included: the "
                "likelihood-ratio attack sees the non-members in them (expect AUC below 0.5)"
            )
    n_cal = Z.shape[1] // 2
    if n_cal * 0.001 < 1:
        coarse = [k for k, lv in (("0.001", 0.001), ("0.01", 0.01), ("0.05", 0.05)) if n_cal * lv < 1]
        notes.append(
            f"{n_cal} calibration non-members cannot resolve FPR {', '.join(coarse)}: those thresholds "
            "are the largest calibration non-member score (evaluation FPR is in fpr_at_threshold)"
        )
    if len(releases) < MIN_RELEASES:
        notes.append(f"{len(releases)} release(s): an audit should cover at least {MIN_RELEASES} release seeds")

    flip_p = None
    if "row" in attacks:
        if len(set(json.dumps(m.get("epsilon_xor")) for m in manifests)) != 1:
            raise GenoshareError("the row attack needs releases made with the same settings")
        if R is None:
            raise GenoshareError("the row attack needs reference genotypes (--reference or --split-panel)")
        flip_p = _flip_probabilities(manifests[0], first.path, None)

    report = run_attacks(G, Z, [m.genotypes for m in rel_mats], R, attacks, seed_split, delta, confidence, flip_p)
    split = report.pop("split")
    split.update(
        {
            "releases": len(releases),
            "snps": len(vids),
            "reference": ref_desc or None,
            "nonmembers_file": str(nm.path),
            "split_panel": bool(split_panel),
            "notes": notes,
        }
    )
    eps_xor = [m.get("epsilon_xor") for m in manifests]
    af = [m.get("af_source", {}).get("kind") for m in manifests]
    audit = {
        "confidence": confidence,
        "delta": delta,
        "neighbours": "replace-one (see docs/attacks.md)",
        "releases": [{"path": str(r), "epsilon_xor": e, "af_source": a} for r, e, a in zip(releases, eps_xor, af)],
    }
    known = [e for e in eps_xor if isinstance(e, (int, float))]
    if known:
        cap = min(known)
        audit["epsilon_xor"] = cap
        audit["exceeds_accountant"] = sorted(k for k, v in report.items() if v["epsilon_lower_bound"] > cap)
        if "published" in af:
            audit["note"] = (
                "allele frequencies restored to the cohort's own (published): the accountant's "
                "epsilon_xor does not cover them, so the likelihood-ratio attack on them may exceed it"
            )
    report["split"] = split
    report["audit"] = audit
    return report
