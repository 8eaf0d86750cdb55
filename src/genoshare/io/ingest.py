"""Ingest a cohort or a reference panel into a VCF Zarr store (see :mod:`genoshare.io.vcz`).

Inputs (detected from the path)
-------------------------------
- PLINK 1 binary fileset: ``X.bed`` / ``X.bim`` / ``X.fam`` or the prefix ``X`` -> ``bio2zarr.plink.convert``
  (A1 = ALT, A2 = REF). Validated first (:func:`genoshare.io.validate.check_plink`: magic bytes, exact .bed size
  for the .bim/.fam counts, field counts, duplicate IIDs).
- VCF/BCF: ``.vcf.gz``, ``.vcf.bgz``, ``.bcf``, plain ``.vcf`` -> ``bio2zarr.vcf.convert`` (no index needed).
  Validated first (:func:`genoshare.io.validate.check_vcf`: BGZF end-of-file block, header, samples); any error
  of the conversion itself is reported as one line naming the file.
- An existing VCF Zarr store (a directory with ``.zgroup``/``zarr.json``, or a bio2zarr ``.zip``): validated with
  :func:`genoshare.io.vcz.open_vcz`. If it needs no change (same chunking as requested, every site usable) it is
  COPIED as is (a copy, not a link: the output is independent of the input and the rename stays atomic);
  otherwise it is rewritten (see below).
- A pattern holding ``{chrom}`` (:mod:`genoshare.io.parts`): per-chromosome parts of ONE cohort, all VCF/BCF,
  all PLINK or all VCF Zarr, with the same sample ids. VCF parts are converted together by one
  ``bio2zarr.vcf.convert`` call; PLINK / VCF Zarr parts are ingested one by one into a scratch directory and
  concatenated along variants, one block at a time. ``genoshare_ingest`` then records the pattern's base name
  and ``parts`` (their number).
- CSV matrix (``.csv`` / ``.csv.gz``, :mod:`genoshare.io.csvmatrix`): contig "1", positions 1..m in column order,
  variant ids from the header, alleles REF "N" / ALT "<ALT>" (the CSV holds ALT-allele counts but no alleles;
  "N" and the symbolic "<ALT>" are valid VCF and are read by PLINK 1.9, plink2, vcztools and bio2zarr, and they
  can never be mistaken for a real nucleotide match when aligning with a panel that has alleles).

Sites kept
----------
Only bi-allelic diploid sites are kept. Every other site is dropped and counted under one reason (first match):
``multiallelic`` (more than one ALT allele), ``missing_allele`` (REF or ALT absent: VCF '.', PLINK '0', i.e.
monomorphic records) and ``non_diploid`` (ploidy other than 2 for some call: haploid calls in a diploid VCF
(stored as -2 fill), a haploid-only or polyploid file). An input with no site left is an InputError.

Output
------
The store holds only kept sites. When nothing is dropped and the chunking is right, the bio2zarr output (or the
copied store) is the result, with all of its fields; otherwise it is rewritten with :func:`genoshare.io.vcz.init_vcz`
(genotypes only: call_genotype / _mask / _phased plus the variant and sample metadata; missing variant ids become
``contig:pos:ref:alt``), one source block at a time (memory ~ (source chunk + output chunk) variants x samples x 2
bytes). The root attribute ``genoshare_ingest`` records the input format and file name, the counts and the dropped
sites by reason. Everything is built in a hidden temporary sibling of ``out_path`` and renamed into place: on any
error there is no ``out_path`` (and no temporary left behind).

Chunk sizes default to bio2zarr's: 1000 variants x 10,000 samples (clipped to the data).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path

import numpy as np
import zarr

from genoshare.errors import GenoshareError, InputError
from genoshare.io import vcz
from genoshare.io.parts import check_same_samples, is_pattern, resolve_parts
from genoshare.io.validate import check_plink, check_vcf, plink_paths

__all__ = ["ingest", "detect_format", "classify_sites", "dropped_at_ingest", "DROP_REASONS", "CSV_REF", "CSV_ALT"]

DEFAULT_CHUNK_VARIANTS = vcz.DEFAULT_CHUNK_VARIANTS
DEFAULT_CHUNK_SAMPLES = vcz.DEFAULT_CHUNK_SAMPLES
DROP_REASONS = ("multiallelic", "missing_allele", "non_diploid")
CSV_REF, CSV_ALT = "N", "<ALT>"
_SCAN_BYTES = 256 << 20  # at most this many genotype bytes per block when scanning or rewriting

_VCF_SUFFIXES = (".vcf.gz", ".vcf.bgz", ".bcf", ".vcf")
_CSV_SUFFIXES = (".csv", ".csv.gz")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def detect_format(input_path) -> str:
    """'plink', 'vcf', 'vcz' or 'csv' from the path (and, for directories, their content); raise InputError."""
    p = Path(input_path)
    name = p.name.lower()
    if is_pattern(p):
        return resolve_parts(p).fmt
    if p.is_dir():
        if (p / ".zgroup").exists() or (p / "zarr.json").exists():
            return "vcz"
        raise InputError(p, "is a directory but not a Zarr store (no .zgroup or zarr.json)")
    if name.endswith(".zip"):
        return "vcz"
    if name.endswith((".bed", ".bim", ".fam")):
        return "plink"
    if name.endswith(_VCF_SUFFIXES):
        return "vcf"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if plink_paths(p).bed.exists():
        return "plink"
    if not p.exists():
        raise InputError(p, "no such file, directory or PLINK prefix")
    raise InputError(
        p,
        "unrecognised input format: expected a PLINK .bed/.bim/.fam (or prefix), .vcf.gz/.vcf.bgz/.bcf/.vcf, "
        "a VCF Zarr directory, or .csv/.csv.gz",
    )


def _check_chunk(value, option: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GenoshareError(f"{option} must be a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------------------------
# site classification and rewriting
# --------------------------------------------------------------------------------------------------------------


def _blocks(n_variants: int, chunk: int, bytes_per_variant: int):
    step = max(1, min(chunk, _SCAN_BYTES // max(1, bytes_per_variant)))
    for a in range(0, n_variants, step):
        yield a, min(n_variants, a + step)


def classify_sites(
    info: vcz.VczInfo, root: zarr.Group | None = None, *, scan_ploidy: bool = True, invalid: np.ndarray | None = None
):
    """(keep mask (m,), dropped {reason: count}) for :data:`DROP_REASONS`; each site counts under its first reason.

    With ``scan_ploidy`` call_genotype is read block by block to find calls that are not diploid (-2 fill in the
    first two slots or a non-fill value beyond them); without it only the ploidy dimension is checked.
    ``invalid`` (optional (m,) int64 buffer, filled during that scan): per bi-allelic site, the number of calls
    holding an allele index above 1 (e.g. VCF GT 0/3 where ALT has one allele), which is no valid genotype there.
    """
    m = info.n_variants
    a = np.asarray(info.variant_allele, dtype=object)
    present = ~np.isin(a, list(vcz.MISSING_ALLELES))
    n_present = present.sum(axis=1)
    multi = n_present > 2
    two = present[:, 0] & (present[:, 1] if a.shape[1] > 1 else False) & (n_present == 2)
    missing = ~multi & ~two
    bad_ploidy = np.zeros(m, dtype=bool)
    if info.ploidy < 2:
        bad_ploidy[:] = True
    elif scan_ploidy:
        gt = (root if root is not None else info.open())["call_genotype"]
        todo = ~(multi | missing)
        for lo, hi in _blocks(m, gt.chunks[0], info.n_samples * info.ploidy):
            if not todo[lo:hi].any():
                continue
            g = gt[lo:hi]
            bad = (g[:, :, :2] == -2).any(axis=(1, 2))
            if info.ploidy > 2:
                bad |= (g[:, :, 2:] != -2).any(axis=(1, 2))
            bad_ploidy[lo:hi] = bad
            if invalid is not None:
                invalid[lo:hi] = np.where(todo[lo:hi], (g[:, :, :2] > 1).sum(axis=(1, 2)), 0)
    non_diploid = bad_ploidy & ~multi & ~missing
    keep = ~(multi | missing | non_diploid)
    dropped = {
        "multiallelic": int(multi.sum()),
        "missing_allele": int(missing.sum()),
        "non_diploid": int(non_diploid.sum()),
    }
    return keep, dropped


def dropped_at_ingest(info: vcz.VczInfo, key: str) -> dict:
    """{key: {reason: count}} of the sites :func:`ingest` dropped from this store's input (multi-allelic,
    missing allele, non-diploid e.g. haploid calls), from its ``genoshare_ingest`` attribute; {} when the store was
    not made by ingest. Counts of sites, nothing about individuals: the release manifest carries them."""
    meta = (info.attrs or {}).get("genoshare_ingest")
    dropped = meta.get("dropped") if isinstance(meta, dict) else None
    if not isinstance(dropped, dict):
        return {}
    return {key: {str(k): int(v) for k, v in dropped.items()}}


def _rewrite(info: vcz.VczInfo, src: zarr.Group, keep: np.ndarray, out: Path, chunks, root_attrs: dict) -> None:
    """Write the kept sites of ``src`` into a new store ``out`` with ``chunks``, diploid, bounded memory."""
    idx = np.flatnonzero(keep)
    root = vcz.init_vcz(
        out,
        sample_ids=info.sample_ids,
        contig_ids=info.contig_ids,
        variant_contig=info.variant_contig[idx],
        variant_position=info.variant_position[idx],
        variant_allele=info.variant_allele[idx][:, :2],
        variant_id=info.variant_id[idx],
        chunks=chunks,
        root_attrs=root_attrs,
        contig_lengths=info.contig_lengths,
    )
    gt_src = src["call_genotype"]
    ph_src = src["call_genotype_phased"] if "call_genotype_phased" in src else None

    def blocks():
        for lo, hi in _blocks(info.n_variants, gt_src.chunks[0], info.n_samples * info.ploidy):
            sel = keep[lo:hi]
            if not sel.any():
                continue
            g = np.asarray(gt_src[lo:hi])[sel][:, :, :2].astype(np.int8, copy=False)
            ph = np.asarray(ph_src[lo:hi])[sel] if ph_src is not None else np.zeros(g.shape[:2], dtype=bool)
            yield g, ph

    assert _write_blocks(root, blocks()) == idx.size


def _write_blocks(root: zarr.Group, blocks) -> int:
    """Write (calls, phased) blocks of any size one after another, whole output chunks at a time; the count."""
    cv = root["call_genotype"].chunks[0]
    buf_gt: list[np.ndarray] = []
    buf_ph: list[np.ndarray] = []
    n_buf = 0
    v_out = 0

    def flush(count: int) -> None:
        nonlocal buf_gt, buf_ph, n_buf, v_out
        g = np.concatenate(buf_gt) if len(buf_gt) > 1 else buf_gt[0]
        ph = np.concatenate(buf_ph) if len(buf_ph) > 1 else buf_ph[0]
        vcz.write_calls(root, v_out, np.ascontiguousarray(g[:count]), ph[:count])
        v_out += count
        buf_gt, buf_ph = ([g[count:]], [ph[count:]]) if count < g.shape[0] else ([], [])
        n_buf -= count

    for g, ph in blocks:
        buf_gt.append(g)
        buf_ph.append(ph)
        n_buf += g.shape[0]
        while n_buf >= cv:
            flush(cv)
    if n_buf:
        flush(n_buf)
    return v_out


def _scratch(out: Path, tag: str) -> Path:
    return out.parent / f".{out.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


# --------------------------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------------------------


def ingest(
    input_path,
    out_path,
    chunk_variants: int | None = None,
    chunk_samples: int | None = None,
    *,
    worker_processes: int = 0,
    overwrite: bool = False,
) -> dict:
    """Convert ``input_path`` (PLINK, VCF/BCF, VCF Zarr or CSV; see the module docstring) into the VCF Zarr store
    ``out_path`` holding its bi-allelic diploid sites.

    ``chunk_variants`` / ``chunk_samples`` default (None) to 1000 / 10000 (bio2zarr's defaults, clipped to the data).
    ``worker_processes`` is passed to bio2zarr (0: in this process). ``out_path`` must not exist unless
    ``overwrite``. Returns a summary dict: format, input, output, n_variants (kept), n_samples, n_variants_input,
    dropped {multiallelic, missing_allele, non_diploid}, chunks [variants, samples], rewritten (bool), seconds
    (and parts, their number, for a ``{chrom}`` pattern: :mod:`genoshare.io.parts`).
    Raises InputError (one line naming the file) for bad inputs or an unusable output path, GenoshareError for
    bad chunk sizes; leaves no partial output.
    """
    t0 = time.perf_counter()
    cv_req = _check_chunk(chunk_variants, "chunk_variants (--chunk-variants)")
    cs_req = _check_chunk(chunk_samples, "chunk_samples (--chunk-samples)")
    if worker_processes is None or int(worker_processes) < 0:
        raise GenoshareError(f"worker_processes must be >= 0, got {worker_processes!r}")
    input_path = Path(input_path)
    out_path = Path(out_path)
    parts = resolve_parts(input_path) if is_pattern(input_path) else None
    fmt = parts.fmt if parts is not None else detect_format(input_path)
    if parts is not None and fmt != "vcf":
        return _ingest_parts(parts, out_path, cv_req, cs_req, worker_processes, overwrite, t0)

    # ---- validate the input before writing anything ----------------------------------------------------------
    blame = input_path
    src_info = None
    if fmt == "plink":
        fileset = check_plink(input_path)
        blame = fileset.bed
    elif fmt == "vcf":
        for f in parts.files if parts is not None else [input_path]:
            check_vcf(f)
        if parts is not None:
            check_same_samples(parts)
    elif fmt == "vcz":
        src_info = vcz.open_vcz(input_path)
    else:
        from genoshare.io.csvmatrix import read_matrix

        matrix = read_matrix(input_path)
    if out_path.resolve() == input_path.resolve() and not overwrite:
        raise InputError(out_path, "output is the input; choose another output path")

    meta = {"format": fmt, "input": input_path.name}
    if parts is not None:
        meta["parts"] = len(parts)
    with vcz.atomic_store(out_path, overwrite=overwrite) as tmp:
        rewritten = False
        if fmt == "csv":
            m, n = matrix.n_variants, matrix.n_samples
            chunks = vcz.normalise_chunks((cv_req, cs_req), m, n)
            dropped = {r: 0 for r in DROP_REASONS}
            meta.update(n_variants_input=m, dropped=dropped)
            root = vcz.init_vcz(
                tmp,
                sample_ids=matrix.sample_ids,
                contig_ids=["1"],
                variant_contig=np.zeros(m, dtype=np.int64),
                variant_position=np.arange(1, m + 1, dtype=np.int64),
                variant_allele=np.tile(np.array([[CSV_REF, CSV_ALT]], dtype=object), (m, 1)),
                variant_id=matrix.variant_ids,
                chunks=chunks,
                root_attrs={"genoshare_ingest": meta},
            )
            for v0 in range(0, m, chunks[0]):
                vcz.write_calls(root, v0, vcz.dosage_to_calls(matrix.genotypes[v0 : v0 + chunks[0]]))
            del matrix
            rewritten = True
            info = vcz.open_vcz(tmp)
        else:
            if fmt == "vcz":
                info, src_path, src_attrs = src_info, input_path, dict(src_info.attrs)
            else:
                # convert with bio2zarr straight into tmp; the ICF scratch (VCF) sits next to the output
                chunk_args = dict(variants_chunk_size=cv_req, samples_chunk_size=cs_req)
                if fmt == "plink":
                    chunk_args = dict(
                        zip(
                            ("variants_chunk_size", "samples_chunk_size"),
                            vcz.normalise_chunks((cv_req, cs_req), fileset.n_variants, fileset.n_samples),
                        )
                    )
                _convert(
                    fmt,
                    list(parts.files) if parts is not None else [input_path],
                    blame,
                    tmp,
                    chunk_args,
                    worker_processes,
                    out_path,
                )
                try:
                    info = vcz.open_vcz(tmp)
                except InputError as e:
                    raise InputError(blame, f"bio2zarr produced an invalid store: {e.problem}") from None
                src_path, src_attrs = tmp, dict(info.attrs)
                if info.n_variants == 0:
                    raise InputError(blame, "has no variants")
            src_root = vcz.open_group(src_path)
            invalid = np.zeros(info.n_variants, dtype=np.int64)
            keep, dropped = classify_sites(info, src_root, scan_ploidy=fmt in ("vcf", "vcz"), invalid=invalid)
            invalid[~keep] = 0
            if invalid.any():
                first = int(np.flatnonzero(invalid)[0])
                raise InputError(
                    blame,
                    f"allele index above 1 at bi-allelic site {info.variant_id[first]} (e.g. GT "
                    f"0/3 with one ALT allele; {int((invalid > 0).sum())} site(s), "
                    f"{int(invalid.sum())} allele(s)): not a valid genotype there; fix or drop "
                    "those sites",
                )
            n_keep = int(keep.sum())
            if n_keep == 0:
                detail = ", ".join(f"{k} {v}" for k, v in dropped.items() if v)
                raise InputError(
                    blame,
                    f"no bi-allelic diploid site: all {info.n_variants} sites would be dropped ({detail})",
                )
            chunks = vcz.normalise_chunks((cv_req, cs_req), n_keep, info.n_samples)
            have = (max(1, min(info.chunks[0], n_keep)), max(1, min(info.chunks[1], info.n_samples)))
            meta.update(n_variants_input=info.n_variants, dropped=dropped)
            needs_rewrite = n_keep < info.n_variants or have != chunks or info.ploidy != 2
            needs_rewrite |= fmt == "vcz" and not input_path.is_dir()  # a .zip store becomes a directory store
            attrs = {k: v for k, v in src_attrs.items() if k not in ("genoshare_ingest",)}
            if needs_rewrite:
                attrs.pop("source", None)
                attrs["genoshare_ingest"] = dict(meta, input_source=src_attrs.get("source"))
                if fmt == "vcz":
                    _rewrite(info, src_root, keep, tmp, chunks, attrs)
                else:
                    scratch = _scratch(out_path, "convert")
                    os.rename(tmp, scratch)
                    try:
                        _rewrite(info, vcz.open_group(scratch), keep, tmp, chunks, attrs)
                    finally:
                        shutil.rmtree(scratch, ignore_errors=True)
                rewritten = True
            else:
                if fmt == "vcz":
                    try:
                        shutil.copytree(input_path, tmp, symlinks=False)
                    except OSError as e:
                        raise InputError(out_path, f"cannot copy the store: {e.strerror or _one_line(e)}") from None
                root = zarr.open_group(store=str(tmp), mode="r+")
                root.attrs["genoshare_ingest"] = meta
            info = vcz.open_vcz(tmp)

    summary = {
        "format": fmt,
        "input": str(input_path),
        "output": str(out_path),
        "n_variants": info.n_variants,
        "n_samples": info.n_samples,
        "n_variants_input": meta["n_variants_input"],
        "dropped": meta["dropped"],
        "chunks": [min(info.chunks[0], info.n_variants), min(info.chunks[1], info.n_samples)],
        "rewritten": rewritten,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if parts is not None:
        summary["parts"] = len(parts)
    return summary


def _on_input_side(path: Path, inputs) -> bool:
    """Whether a file-system error's file is one of the inputs (a PLINK fileset's .bed/.bim/.fam by prefix)."""
    r = path.resolve()
    for q in (Path(i).resolve() for i in inputs):
        if r == q or r.is_relative_to(q) or r.with_suffix("") == q.with_suffix(""):
            return True
    return False


def _convert(fmt: str, inputs: list[Path], blame: Path, tmp: Path, chunk_args: dict, workers: int, out: Path) -> None:
    """bio2zarr conversion into ``tmp``; any failure becomes one InputError line naming the input.

    bio2zarr's warnings (e.g. "Total records unknown, cannot show progress; reindex VCFs with bcftools index")
    are silenced for the duration: they concern progress bars, which genoshare does not show.
    """
    b2z_logger = logging.getLogger("bio2zarr")
    level = b2z_logger.level
    b2z_logger.setLevel(logging.ERROR)
    try:
        if fmt == "plink":
            from bio2zarr import plink

            plink.convert(str(blame.with_suffix("")), str(tmp), worker_processes=workers, **chunk_args)
        else:
            from bio2zarr import vcf

            icf = _scratch(out, "icf")
            try:
                vcf.convert(
                    [str(p) for p in inputs], str(tmp), worker_processes=workers, icf_path=str(icf), **chunk_args
                )
            finally:
                shutil.rmtree(icf, ignore_errors=True)
    except GenoshareError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # bio2zarr / cyvcf2 / htslib raise Exception, OSError, ValueError, ...
        from genoshare.io.atomic import filesystem_error, write_failure

        err = filesystem_error(e)
        if err is not None and not _on_input_side(Path(err.filename or out), [*inputs, blame]):
            raise write_failure(out, err) from e  # the output side: disk full, read-only, ...
        raise InputError(blame, f"cannot convert ({type(e).__name__}: {_one_line(e)})") from None
    finally:
        b2z_logger.setLevel(level)


def _ingest_parts(parts, out_path: Path, cv_req, cs_req, workers: int, overwrite: bool, t0: float) -> dict:
    """PLINK / VCF Zarr parts: each ingested into a scratch store, then concatenated along variants into
    ``out_path`` (contigs in order of first appearance), one block at a time; memory ~ one block + one chunk."""
    for f in parts.files:
        check_plink(f) if parts.fmt == "plink" else vcz.open_vcz(f)
    samples = check_same_samples(parts)
    if out_path.resolve() == parts.pattern.resolve() and not overwrite:
        raise InputError(out_path, "output is the input; choose another output path")
    scratch = _scratch(out_path, "parts")
    try:
        scratch.mkdir(parents=False)
    except OSError as e:
        raise InputError(
            out_path, f"cannot create a scratch directory beside it ({e.strerror or _one_line(e)})"
        ) from None
    try:
        infos, summaries = [], []
        for i, f in enumerate(parts.files):
            summaries.append(ingest(f, scratch / f"part{i}.vcz", cv_req, cs_req, worker_processes=workers))
            infos.append(vcz.open_vcz(scratch / f"part{i}.vcz"))
        if any(list(info.sample_ids) != list(samples) for info in infos):  # e.g. PLINK FID/IID handling
            bad = next(f for f, info in zip(parts.files, infos) if list(info.sample_ids) != list(infos[0].sample_ids))
            raise InputError(bad, f"sample ids differ from the other parts of {parts.pattern.name}")
        contigs: list[str] = []
        lengths: dict[str, int] = {}
        for info in infos:
            for j, c in enumerate(info.contig_ids):
                if c not in contigs:
                    contigs.append(c)
                if info.contig_lengths is not None and info.contig_lengths[j] is not None:
                    lengths.setdefault(c, int(info.contig_lengths[j]))
        cindex = {c: j for j, c in enumerate(contigs)}
        v_contig = np.concatenate(
            [np.array([cindex[c] for c in info.contig_ids], dtype=np.int64)[info.variant_contig] for info in infos]
        )
        m, n = int(v_contig.size), infos[0].n_samples
        chunks = vcz.normalise_chunks((cv_req, cs_req), m, n)
        dropped = {r: sum(s["dropped"].get(r, 0) for s in summaries) for r in DROP_REASONS}
        meta = {
            "format": parts.fmt,
            "input": parts.pattern.name,
            "parts": len(parts),
            "n_variants_input": sum(s["n_variants_input"] for s in summaries),
            "dropped": dropped,
        }
        with vcz.atomic_store(out_path, overwrite=overwrite) as tmp:
            root = vcz.init_vcz(
                tmp,
                sample_ids=infos[0].sample_ids,
                contig_ids=contigs,
                variant_contig=v_contig,
                variant_position=np.concatenate([info.variant_position for info in infos]),
                variant_allele=np.concatenate([np.asarray(info.variant_allele)[:, :2] for info in infos]),
                variant_id=np.concatenate([info.variant_id for info in infos]),
                chunks=chunks,
                root_attrs={"genoshare_ingest": meta},
                contig_lengths=[lengths[c] for c in contigs] if len(lengths) == len(contigs) else None,
            )

            def blocks():
                for info in infos:
                    src = vcz.open_group(info.path)
                    gt, ph = src["call_genotype"], src["call_genotype_phased"]
                    for lo, hi in _blocks(info.n_variants, gt.chunks[0], info.n_samples * 2):
                        yield np.asarray(gt[lo:hi]), np.asarray(ph[lo:hi])

            assert _write_blocks(root, blocks()) == m
            info = vcz.open_vcz(tmp)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "format": parts.fmt,
        "input": str(parts.pattern),
        "parts": len(parts),
        "output": str(out_path),
        "n_variants": info.n_variants,
        "n_samples": info.n_samples,
        "n_variants_input": meta["n_variants_input"],
        "dropped": dropped,
        "chunks": [min(info.chunks[0], info.n_variants), min(info.chunks[1], info.n_samples)],
        "rewritten": True,
        "seconds": round(time.perf_counter() - t0, 3),
    }
