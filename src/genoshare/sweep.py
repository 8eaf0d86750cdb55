"""An epsilon sweep: `genoshare release ... --epsilon 1000,5000,20000 --out DIR` (issue 14, item 3).

DIR/epsilon-1000/, DIR/epsilon-5000/, ... are each made by the single-epsilon release (api.release) with the keys a
single release would use: with --seed N every member derives its keys from N, exactly as `--seed N --epsilon E`
does, so each member is byte-identical to that release; without a seed every member draws its own fresh 256-bit
master key from OS entropy (never one key shared by the members). Each member has its own manifest, ledger row
and check-release.

What is shared, what is not (honest): the budget check of the whole sweep (sum of the k epsilons) runs once, before
any genotype work; the LD statistics (epsilon-free) are computed by the first member and reused by the others
(api._SWEEP_SHARED), each member calibrates its own epsilon. CSV inputs are read once and kept in memory. For a
VCF Zarr cohort the members run in threads on one Dask client and their two-pass graphs are computed together
(Rendezvous): the graphs share the tasks that read the cohort's chunks, so each chunk is read once for all k
members (pass 2 takes pass 1's codes and reads nothing). PLINK/VCF cohorts are ingested by each member into its
own work store, so those are read k times (ingest first with 'genoshare ingest' for one read). With --budget each
member also computes the cohort's fingerprint before its passes (a digest read of the store per member).

Atomic: DIR is created by the sweep; if any member fails, DIR is removed entirely (an existing DIR replaced with
--overwrite is restored) and the ledger rows the sweep recorded are marked cancelled.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np

from genoshare.errors import GenoshareError


def member_name(epsilon: float) -> str:
    """``epsilon-1000``, ``epsilon-0.5``: positional notation, no trailing zeros."""
    return "epsilon-" + np.format_float_positional(float(epsilon), trim="-")


def parse_epsilons(text: str) -> tuple[float, ...]:
    """'1000,5000' -> (1000.0, 5000.0); a one-line GenoshareError naming the bad item otherwise."""
    items = str(text).split(",")
    values = []
    for item in items:
        s = item.strip()
        if not s:
            raise GenoshareError(f"{text!r}: empty item in the comma list")
        try:
            v = float(s)
        except ValueError:
            raise GenoshareError(f"{text!r}: {s!r} is not a number") from None
        if not (v > 0 and np.isfinite(v)):
            raise GenoshareError(f"{text!r}: {s} is not a positive finite number")
        values.append(v)
    names = [member_name(v) for v in values]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise GenoshareError(
            f"{text!r}: {dup.split('-', 1)[1]} is listed twice (each member is one "
            f"directory DIR/{dup}; sweep distinct values)"
        )
    return tuple(values)


def _extra_epsilon_per_member(af_source: str, n_samples: int) -> float:
    """The epsilon a member spends besides the XOR stage that is known before calibration (dp allele frequencies)."""
    if af_source.startswith("dp:"):
        from genoshare.api import parse_dp

        return parse_dp(af_source, max(n_samples, 2))[0]
    return 0.0


def _precheck_budget(cohort, epsilons, budget, private_dir, out, af_source) -> str:
    """Refuse the whole sweep before any genotype work if the k members together would exceed --budget.

    The cohort is identified as each member's ledger reservation identifies it (ledger.cohort_ids_key: sample and
    variant ids only, no genotype read); every row sharing that key counts. Each member then reserves its own row
    atomically against the budget (api._Bookkeeping.reserve), so the sweep's rows are also checked together."""
    from genoshare.api import is_csv
    from genoshare.io.ingest import detect_format
    from genoshare.privacy.ledger import Ledger, cohort_ids_key, format_cumulative

    if is_csv(cohort):
        from genoshare.io.csvmatrix import read_matrix

        m = read_matrix(cohort)
        key, n = cohort_ids_key(m.sample_ids, m.variant_ids), m.n_samples
    elif detect_format(cohort) == "vcz":
        from genoshare.io.vcz import open_vcz

        info = open_vcz(cohort)
        key, n = cohort_ids_key(info.sample_ids, info.variant_id), info.n_samples
    else:
        raise GenoshareError(
            f"{cohort}: a sweep with --budget needs a CSV matrix or a VCF Zarr store (run "
            "'genoshare ingest' first, so the whole sweep is checked against the budget up front)"
        )
    total = float(sum(epsilons)) + len(epsilons) * _extra_epsilon_per_member(af_source, n)
    with Ledger.open(private_dir, release_dir=out) as ledger:
        cum = ledger._retry(lambda: ledger.cumulative(key, cohort_ids=key))
        if ledger._over(cum, total, budget):
            raise ledger._budget_error(cum, total, budget)
    return format_cumulative(cum)


def release_sweep(cohort, reference, epsilons, out, **options) -> list[dict]:
    """Run one release per epsilon into OUT/epsilon-E/; returns the k manifests (in the order given)."""
    from genoshare import api
    from genoshare.privacy.ledger import Ledger

    epsilons = tuple(float(e) for e in epsilons)
    if len(epsilons) < 2:
        raise GenoshareError("a sweep needs at least two epsilons (one value: an ordinary release)")
    out = Path(out)
    overwrite = bool(options.pop("overwrite", False))
    notify = options.get("notify") or (lambda line: None)
    budget, private_dir = options.get("budget"), options.get("private_dir")
    if out.exists() and not overwrite:
        raise GenoshareError(f"{out} exists (use --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise GenoshareError(f"{out} exists and is not a directory")
    if budget is not None:
        line = _precheck_budget(cohort, epsilons, budget, private_dir, out, options.get("af_source", "published"))
        notify(f"sweep of {len(epsilons)} releases, epsilon {sum(epsilons):g} together: {line}")
    with Ledger.open(private_dir, release_dir=out) as ledger:
        first_id = max((e.id for e in ledger.releases()), default=0)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.sweep-old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    out.mkdir(parents=True, mode=0o755)
    manifests = []
    # the inputs as read (CSV) and the LD statistics: computed once, reused by every member
    api._SWEEP_SHARED = {"lock": threading.Lock()}
    try:
        if api.is_csv(cohort) and api.is_csv(reference):
            for eps in epsilons:
                member = out / member_name(eps)
                notify(f"sweep: {member}")
                manifests.append(api.release(cohort, reference, eps, member, **options))
        else:
            manifests = _store_members(api, cohort, reference, epsilons, out, options)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if old is not None:
            old.rename(out)
        _cancel_rows(private_dir, out, first_id, notify)
        raise
    finally:
        api._SWEEP_SHARED = None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return manifests


def _store_members(api, cohort, reference, epsilons, out: Path, options: dict) -> list[dict]:
    """The members of a store sweep, each in its own thread on one shared Dask client; their two-pass graphs meet
    in :class:`Rendezvous` and are computed together, so every cohort chunk is read once for all k members."""
    from concurrent.futures import ThreadPoolExecutor

    from genoshare import pipeline
    from genoshare.cluster import dask_client

    rendezvous = Rendezvous(len(epsilons), options.get("progress"))
    with dask_client(
        options.get("scheduler", "local"), config=options.get("cluster_config"), n_workers=options.get("workers")
    ) as client:
        api._SWEEP_SHARED["client"] = client
        pipeline.RENDEZVOUS = rendezvous

        def member(eps):
            try:
                return api.release(cohort, reference, eps, out / member_name(eps), **options)
            except BaseException as exc:
                rendezvous.abort(exc)
                raise

        try:
            with ThreadPoolExecutor(max_workers=len(epsilons), thread_name_prefix="genoshare-sweep") as pool:
                futures = [pool.submit(member, eps) for eps in epsilons]
                errors = [f.exception() for f in futures]
        finally:
            pipeline.RENDEZVOUS = None
    # the first member's own error, not the "another member failed" of the members it stopped
    first = next((e for e in errors if e is not None and not isinstance(e, _Aborted)), None) or next(
        (e for e in errors if e is not None), None
    )
    if first is not None:
        raise first
    return [f.result() for f in futures]


class _Aborted(GenoshareError):
    pass


class Rendezvous:
    """Where the k members of a store sweep hand in their pass graphs (pipeline._compute): the last to arrive
    computes all k together (one dask.compute: the graphs share the cohort's chunk-read tasks, so each chunk is
    read once), and every member gets its own results back. A member that fails aborts the others."""

    def __init__(self, k: int, progress=None):
        self.k, self.progress = k, progress
        self.cond = threading.Condition()
        self.parts: list = []
        self.results = None
        self.error: BaseException | None = None

    def abort(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.cond.notify_all()

    def compute(self, collections, progress=None):
        import dask

        with self.cond:
            if self.error is not None:
                raise _Aborted(f"sweep stopped: another member failed ({self.error})")
            me = len(self.parts)
            self.parts.append(tuple(collections))
            if len(self.parts) == self.k:
                flat = [c for part in self.parts for c in part]
                try:
                    if self.progress is not None:
                        flat = dask.persist(*flat)
                        self.progress(flat)
                    computed = dask.compute(*flat)
                except BaseException as exc:
                    self.error = exc
                    self.cond.notify_all()
                    raise
                self.results, i = [], 0
                for part in self.parts:
                    self.results.append(computed[i : i + len(part)])
                    i += len(part)
                self.cond.notify_all()
            while self.results is None and self.error is None:
                self.cond.wait()
            if self.results is None:
                raise _Aborted(f"sweep stopped: another member failed ({self.error})")
            return self.results[me]


def _cancel_rows(private_dir, out: Path, first_id: int, notify) -> None:
    """Mark the ledger rows of a failed sweep's members (their directories were removed) as cancelled."""
    from genoshare.privacy.ledger import Ledger

    prefix = str(out.absolute()) + "/"
    try:
        with Ledger.open(private_dir, release_dir=out) as ledger:
            for e in ledger.releases():
                if e.id > first_id and e.status == "recorded" and (e.output_dir or "").startswith(prefix):
                    ledger._update(e.id, ("recorded",), status="cancelled")
                    notify(f"ledger: cancelled release {e.id} (its sweep failed; {e.output_dir} removed)")
    except GenoshareError as exc:  # the original error matters more; say what could not be undone
        notify(f"ledger: could not cancel the failed sweep's rows: {exc}")
