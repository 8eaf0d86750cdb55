"""VCF Zarr (VCZ) stores: open and validate, create, write, read dosages.

The layout is the one bio2zarr writes (VCF Zarr specification 0.5, read by vcztools and sgkit):

====================== ============================== ======================= ======================================
array                  shape                          dtype                   notes
====================== ============================== ======================= ======================================
call_genotype          (variants, samples, ploidy)    int8                    allele index, -1 missing, -2 fill
call_genotype_mask     (variants, samples, ploidy)    bool                    call_genotype < 0
call_genotype_phased   (variants, samples)            bool
variant_position       (variants,)                    int32                   1-based
variant_contig         (variants,)                    smallest int            index into contig_id
variant_allele         (variants, alleles)            string                  REF, ALT...; '' where absent
variant_id             (variants,)                    string                  '.' where absent
variant_id_mask        (variants,)                    bool                    variant_id == '.'
variant_length         (variants,)                    smallest int            len(REF)
sample_id              (samples,)                     string
contig_id              (contigs,)                     string
contig_length          (contigs,)                     int64                   only when known
region_index           (chunks x contigs, 6)          int32                   what bio2zarr's finalise writes
====================== ============================== ======================= ======================================

Every array carries the xarray ``_ARRAY_DIMENSIONS`` attribute; the root carries ``vcf_zarr_version`` "0.5" and
``source``. Stores written here are Zarr format 2 (bio2zarr's default) with bio2zarr's codecs: Blosc zstd level 7,
BITSHUFFLE for call_* and boolean arrays, SHUFFLE for the others (plus VLenUTF8 for strings); a release's
call_genotype and call_genotype_mask use zstd levels 1 and 3 instead (``RELEASE_CALL_CLEVELS``: same size for
the noised genotypes, 3-4x faster to write).

``init_vcz`` creates the metadata and EMPTY call arrays with regular chunks ``(chunk_variants, chunk_samples[, 2])``
so that a Dask pipeline can fill them blockwise with ``dask.array.to_zarr(..., region=None)``: unwritten chunks read
back as the fill values (call_genotype -1 = missing, call_genotype_mask True, call_genotype_phased False).

Only metadata is loaded by ``open_vcz``; genotypes are read blockwise (``read_dosage``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numcodecs
import numpy as np
import zarr

from genoshare.errors import GenoshareError, InputError
from genoshare.io.atomic import atomic_file

__all__ = [
    "VczInfo",
    "open_vcz",
    "open_group",
    "init_vcz",
    "write_vcz",
    "read_dosage",
    "atomic_store",
    "export_vcf",
    "export_plink",
    "dosage_to_calls",
    "calls_to_dosage",
    "write_calls",
    "normalise_chunks",
    "biallelic_mask",
    "DEFAULT_CHUNK_VARIANTS",
    "DEFAULT_CHUNK_SAMPLES",
    "REQUIRED_ARRAYS",
]

#: bio2zarr's defaults (bio2zarr.vcz.DEFAULT_VARIANT_CHUNK_SIZE / DEFAULT_SAMPLE_CHUNK_SIZE): one call_genotype chunk
#: is 1000 x 10000 x 2 = 20 MB of int8 before compression.
DEFAULT_CHUNK_VARIANTS = 1_000
DEFAULT_CHUNK_SAMPLES = 10_000

REQUIRED_ARRAYS = ("call_genotype", "variant_position", "variant_contig", "variant_allele", "sample_id", "contig_id")

#: alleles that mean "no allele" (VCF '.', PLINK '0', the VCF spanning deletion '*' is a real allele and kept)
MISSING_ALLELES = frozenset({"", ".", "0"})

#: bgzip compression level for exported VCFs. Measured on a simulated 2000 x 20000 VCF (161 MB of text): level 1
#: 0.26 s / 15.6 MB, 3 0.36 s / 13.6 MB, 4 1.2 s / 12.5 MB, default (6) 4.3 s / 10.6 MB.
BGZIP_LEVEL = 3

_BLOSC = dict(cname="zstd", clevel=7, blocksize=0)
#: zstd levels of a release's call arrays (bitshuffle, 1,000 x 10,000 chunk, encode time single-threaded):
#: noised genotypes are near-incompressible beyond bitshuffle's 2-bit structure, levels 1 / 3 / 7 give
#: 1.55 / 1.59 / 1.58 MB in 17 / 23 / 64 ms; an all-called mask gives 16 / 5 / 2 kB in 10 / 6 / 18 ms.
#: Writing was the largest cost of a release (benchmarks/store.py).
RELEASE_CALL_CLEVELS = {"call_genotype": 1, "call_genotype_mask": 3}
_STRING = np.dtypes.StringDType()

# bio2zarr's descriptions (vcf.py / plink.py schemas), so that tools showing them see the same text
_DESCRIPTIONS = {
    "variant_position": "The reference position",
    "variant_contig": "An identifier from the reference genome or an angle-bracketed ID string pointing to a "
    "contig in the assembly file",
    "variant_allele": "List of the reference and alternate alleles",
    "variant_id": "List of unique identifiers where applicable",
    "variant_id_mask": "",
    "variant_length": "The length of the variant measured in bases",
    "call_genotype": "",
    "call_genotype_mask": "",
    "call_genotype_phased": "",
}


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------------------------
# opening / validating
# --------------------------------------------------------------------------------------------------------------


@dataclass
class VczInfo:
    """Metadata of a VCF Zarr store (everything but the genotypes).

    ``variant_allele`` is an object array of Python str, shape (n_variants, n_alleles), '' for absent alleles.
    ``variant_id`` is an object array of str; where the store has none (no array, '.', '' or masked) it is
    synthesised as ``"<contig>:<pos>:<ref>:<alt>"``. ``chunks`` is (variants, samples) of call_genotype.
    """

    path: Path
    n_variants: int
    n_samples: int
    sample_ids: list[str]
    contig_ids: list[str]
    variant_contig: np.ndarray
    variant_position: np.ndarray
    variant_allele: np.ndarray
    variant_id: np.ndarray
    ploidy: int
    chunks: tuple[int, int]
    zarr_format: int
    attrs: dict = field(default_factory=dict)
    contig_lengths: list[int] | None = None

    def open(self) -> zarr.Group:
        """The store's root group, read-only."""
        return open_group(self.path)

    @property
    def biallelic(self) -> np.ndarray:
        """Boolean (n_variants,): exactly two alleles, both present (see :func:`biallelic_mask`)."""
        return biallelic_mask(self.variant_allele)


def biallelic_mask(variant_allele: np.ndarray) -> np.ndarray:
    """True where a site has exactly two alleles (REF and one ALT), neither missing ('', '.', PLINK '0')."""
    a = np.asarray(variant_allele, dtype=object)
    if a.ndim != 2 or a.shape[1] < 2:
        return np.zeros(a.shape[0] if a.ndim else 0, dtype=bool)
    present = ~np.isin(a, list(MISSING_ALLELES))
    return present[:, 0] & present[:, 1] & ~present[:, 2:].any(axis=1)


def open_group(path) -> zarr.Group:
    """Open a Zarr group read-only (a directory store, or a ``.zip`` archive as written by bio2zarr)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".zip":
        store = zarr.storage.ZipStore(path, mode="r")
        return zarr.open_group(store=store, mode="r")
    return zarr.open_group(store=str(path), mode="r")


def _as_str_array(values, path: Path, name: str) -> np.ndarray:
    """Any zarr string array (StringDType, U, S, object) -> object array of Python str."""
    a = np.asarray(values)
    if a.dtype.kind == "S":
        try:
            return np.char.decode(a, "utf-8").astype(object)
        except UnicodeDecodeError:
            raise InputError(path, f"array {name} holds text that is not UTF-8") from None
    if a.dtype.kind in "UT" or isinstance(a.dtype, np.dtypes.StringDType):
        return a.astype(object)
    if a.dtype.kind == "O":
        out = a.copy()
        flat = out.reshape(-1)
        for i, x in enumerate(flat):
            if isinstance(x, bytes):
                flat[i] = x.decode("utf-8", "replace")
            elif x is None:
                flat[i] = ""
            elif not isinstance(x, str):
                flat[i] = str(x)
        return out
    raise InputError(path, f"array {name} has dtype {a.dtype}, expected strings")


def open_vcz(path) -> VczInfo:
    """Open and validate a VCF Zarr store; raise InputError(path, one line) if it is not one.

    Checks: the path exists and is a Zarr group; the arrays of ``REQUIRED_ARRAYS`` exist; call_genotype is an
    integer array (variants, samples, ploidy); every variant_* array has n_variants rows; sample_id has
    n_samples entries, without duplicates or empty ids; variant_contig indexes contig_id. call_genotype is not read.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or directory")
    if path.is_file() and path.suffix != ".zip":
        raise InputError(path, "is a file, not a VCF Zarr store (expected a directory or a .zip archive)")
    try:
        root = open_group(path)
    except Exception as e:  # zarr raises several types for "not a group"
        raise InputError(path, f"is not a Zarr store ({type(e).__name__}: {_one_line(e)})") from None

    arrays = {}
    missing = []
    for name in REQUIRED_ARRAYS + ("variant_id", "variant_id_mask", "contig_length"):
        try:
            obj = root.get(name) if name in root else None
        except Exception as e:
            raise InputError(path, f"cannot read array {name} ({_one_line(e)})") from None
        if obj is not None and not isinstance(obj, zarr.Array):
            raise InputError(path, f"{name} is a group, expected an array")
        if obj is None and name in REQUIRED_ARRAYS:
            missing.append(name)
        arrays[name] = obj
    if missing:
        raise InputError(path, f"is not a VCF Zarr store: missing array(s) {', '.join(missing)}")

    gt = arrays["call_genotype"]
    if gt.ndim != 3:
        raise InputError(path, f"call_genotype has {gt.ndim} dimensions, expected 3 (variants, samples, ploidy)")
    if gt.dtype.kind not in "iu":
        raise InputError(path, f"call_genotype has dtype {gt.dtype}, expected integers")
    m, n, ploidy = (int(x) for x in gt.shape)
    if ploidy < 1:
        raise InputError(path, "call_genotype has a ploidy dimension of size 0")

    def check_rows(name: str, ndim: int) -> None:
        a = arrays[name]
        if a is None:
            return
        if a.ndim != ndim:
            raise InputError(path, f"{name} has {a.ndim} dimensions, expected {ndim}")
        if a.shape[0] != m:
            raise InputError(path, f"{name} has {a.shape[0]} entries but call_genotype has {m} variants")

    check_rows("variant_position", 1)
    check_rows("variant_contig", 1)
    check_rows("variant_allele", 2)
    check_rows("variant_id", 1)
    check_rows("variant_id_mask", 1)
    if arrays["sample_id"].ndim != 1 or arrays["sample_id"].shape[0] != n:
        raise InputError(path, f"sample_id has shape {arrays['sample_id'].shape} but call_genotype has {n} samples")
    if arrays["variant_allele"].shape[1] < 1:
        raise InputError(path, "variant_allele has no allele column")

    try:
        sample_ids = [str(s) for s in _as_str_array(arrays["sample_id"][:], path, "sample_id").tolist()]
        contig_ids = [str(s) for s in _as_str_array(arrays["contig_id"][:], path, "contig_id").tolist()]
        position = np.asarray(arrays["variant_position"][:]).astype(np.int64)
        contig = np.asarray(arrays["variant_contig"][:]).astype(np.int64)
        alleles = _as_str_array(arrays["variant_allele"][:], path, "variant_allele")
        vid = None
        if arrays["variant_id"] is not None:
            vid = _as_str_array(arrays["variant_id"][:], path, "variant_id")
        vid_mask = None
        if arrays["variant_id_mask"] is not None:
            vid_mask = np.asarray(arrays["variant_id_mask"][:], dtype=bool)
        contig_lengths = None
        if arrays["contig_length"] is not None and arrays["contig_length"].shape == (len(contig_ids),):
            contig_lengths = [int(x) for x in np.asarray(arrays["contig_length"][:]).tolist()]
    except InputError:
        raise
    except Exception as e:
        raise InputError(path, f"cannot read the variant or sample metadata ({_one_line(e)})") from None

    seen: dict[str, int] = {}
    for i, s in enumerate(sample_ids):
        if not s:
            raise InputError(path, f"sample {i + 1} has an empty id")
        if s in seen:
            raise InputError(path, f"duplicate sample id {s[:40]!r} (samples {seen[s] + 1} and {i + 1})")
        seen[s] = i
    del seen
    if m and (contig.min() < 0 or contig.max() >= len(contig_ids)):
        raise InputError(path, f"variant_contig has values outside 0..{len(contig_ids) - 1} (contig_id)")
    if m and position.min() < 0:
        raise InputError(path, "variant_position has negative values")

    # variant ids: the store's where present, otherwise contig:pos:ref:alt
    absent = np.ones(m, dtype=bool) if vid is None else np.isin(vid, ["", "."])
    if vid_mask is not None:
        absent |= vid_mask
    if vid is None:
        vid = np.empty(m, dtype=object)
    if absent.any():
        alt = alleles[:, 1] if alleles.shape[1] > 1 else np.full(m, "", dtype=object)
        for i in np.flatnonzero(absent).tolist():
            vid[i] = f"{contig_ids[contig[i]]}:{position[i]}:{alleles[i, 0]}:{alt[i]}"

    return VczInfo(
        path=path,
        n_variants=m,
        n_samples=n,
        sample_ids=sample_ids,
        contig_ids=contig_ids,
        variant_contig=contig,
        variant_position=position,
        variant_allele=alleles,
        variant_id=vid,
        ploidy=ploidy,
        chunks=(int(gt.chunks[0]), int(gt.chunks[1])),
        zarr_format=int(root.metadata.zarr_format),
        attrs=dict(root.attrs),
        contig_lengths=contig_lengths,
    )


# --------------------------------------------------------------------------------------------------------------
# creating / writing
# --------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_store(out, *, overwrite: bool = False):
    """Yield a temporary sibling path of ``out`` (not yet created); rename it to ``out`` when the block succeeds.

    Raises InputError(out, ...) up front if ``out`` exists (unless ``overwrite``) or its directory is not
    writable. On any exception the temporary path is removed, so ``out`` is either complete or untouched.
    """
    from genoshare.io.atomic import check_output, filesystem_error, write_failure
    from genoshare.io.workdir import hidden_name

    out = Path(out)
    parent = check_output(out, overwrite)
    tmp = parent / hidden_name(out, "tmp")
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to {tmp}")
        if out.exists():
            old = parent / hidden_name(out, "old")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        err = None if isinstance(exc, GenoshareError) else filesystem_error(exc)
        if err is not None:  # disk full, read-only, quota...: one line naming the output, nothing left behind
            raise write_failure(out, err, inside=tmp) from exc
        raise


def _check_chunk(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GenoshareError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def normalise_chunks(chunks, n_variants: int, n_samples: int) -> tuple[int, int]:
    """(chunk_variants, chunk_samples) with None -> bio2zarr's defaults, clipped to the array size (min 1)."""
    cv, cs = (None, None) if chunks is None else chunks
    cv = DEFAULT_CHUNK_VARIANTS if cv is None else _check_chunk(cv, "chunk_variants")
    cs = DEFAULT_CHUNK_SAMPLES if cs is None else _check_chunk(cs, "chunk_samples")
    return max(1, min(cv, n_variants)), max(1, min(cs, n_samples))


def _compressor(shuffle: int, clevel: int | None = None) -> numcodecs.Blosc:
    opts = dict(_BLOSC) if clevel is None else {**_BLOSC, "clevel": int(clevel)}
    return numcodecs.Blosc(shuffle=shuffle, **opts)


def _create(
    group,
    name,
    *,
    shape,
    dtype,
    chunks,
    dims,
    fill_value,
    description=None,
    data=None,
    clevel=None,
    defer: list | None = None,
):
    dtype = _STRING if dtype == "T" else np.dtype(dtype)
    is_string = dtype is _STRING
    shuffle = numcodecs.Blosc.BITSHUFFLE if (name.startswith("call_") or dtype == np.bool_) else numcodecs.Blosc.SHUFFLE
    a = group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        compressors=[_compressor(shuffle, clevel)],
        filters=[numcodecs.VLenUTF8()] if is_string else None,
        fill_value=fill_value,
    )
    attrs = {"_ARRAY_DIMENSIONS": list(dims)}
    if description is not None:
        attrs["description"] = description
    a.attrs.update(attrs)
    if data is not None:
        data = np.asarray(data, dtype=dtype) if not is_string else np.asarray(data, dtype=_STRING)
        if defer is None:
            a[...] = data
        else:
            defer.append((a, data))
    return a


def write_deferred(writes: list) -> None:
    """Fill the arrays whose data ``init_vcz(..., deferred_writes=writes)`` left for later."""
    for array, data in writes:
        array[...] = data


def _region_index(contig: np.ndarray, position: np.ndarray, length: np.ndarray, chunk: int) -> np.ndarray:
    """bio2zarr's region_index: one row per (variant chunk, contig run): chunk, contig, start, end, max end, n."""
    rows = []
    end = position + length - 1
    for k, lo in enumerate(range(0, contig.size, chunk)):
        c = contig[lo : lo + chunk]
        p = position[lo : lo + chunk]
        e = end[lo : lo + chunk]
        breaks = np.flatnonzero(np.diff(c, append=-1))
        start = 0
        for stop in breaks.tolist():
            rows.append((k, c[start], p[start], p[stop], e[start : stop + 1].max(), stop - start + 1))
            start = stop + 1
    return np.array(rows, dtype=np.int32).reshape(-1, 6)


def _min_int(lo: int, hi: int) -> str:
    for dt in ("i1", "i2", "i4", "i8"):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt
    raise OverflowError(hi)


def init_vcz(
    path,
    *,
    sample_ids,
    contig_ids,
    variant_contig,
    variant_position,
    variant_allele,
    variant_id,
    chunks=None,
    root_attrs: dict | None = None,
    contig_lengths=None,
    call_clevels: dict[str, int] | None = None,
    deferred_writes: list | None = None,
) -> zarr.Group:
    """Create a new VCF Zarr store (Zarr format 2) at ``path`` with metadata arrays filled and EMPTY call arrays.

    ``chunks`` is (chunk_variants, chunk_samples); None entries take bio2zarr's defaults (1000, 10000); both are
    clipped to the array size. call_genotype (int8, (m, n, 2), fill -1), call_genotype_mask (bool, fill True) and
    call_genotype_phased (bool (m, n), fill False) have chunks (cv, cs[, 2]). ``variant_allele`` is (m, A) (A >= 2
    for VCF output; '' for absent alleles); ``variant_id`` (m,) with '.' for none. ``path`` must not exist.
    ``call_clevels`` overrides the zstd level of call arrays by name (see RELEASE_CALL_CLEVELS).
    ``deferred_writes``: a list that receives the per-variant arrays' (array, data) instead of writing them, for
    :func:`write_deferred` to fill later (the release writes them while its passes run; ~0.7 s per 10^5 SNPs).
    Returns the root group opened read-write. Raises ValueError for inconsistent arguments.
    """
    path = Path(path)
    sample_ids = [str(s) for s in sample_ids]
    contig_ids = [str(c) for c in contig_ids]
    variant_contig = np.asarray(variant_contig, dtype=np.int64)
    variant_position = np.asarray(variant_position, dtype=np.int64)
    variant_allele = np.asarray(variant_allele, dtype=object)
    variant_id = np.asarray(variant_id, dtype=object)
    m, n = variant_position.shape[0], len(sample_ids)
    if variant_position.ndim != 1:
        raise ValueError("variant_position must be one-dimensional")
    if variant_contig.shape != (m,) or variant_id.shape != (m,):
        raise ValueError(
            f"variant_contig {variant_contig.shape} and variant_id {variant_id.shape} must have shape ({m},)"
        )
    if variant_allele.ndim != 2 or variant_allele.shape[0] != m or variant_allele.shape[1] < 1:
        raise ValueError(f"variant_allele must have shape ({m}, n_alleles), got {variant_allele.shape}")
    if m == 0 or n == 0:
        raise ValueError(f"a VCF Zarr store needs at least one variant and one sample (got {m} x {n})")
    if len(set(sample_ids)) != n:
        raise ValueError("duplicate sample ids")
    if not contig_ids or variant_contig.min() < 0 or variant_contig.max() >= len(contig_ids):
        raise ValueError("variant_contig must index contig_ids")
    if variant_position.min() < 0 or variant_position.max() > np.iinfo(np.int32).max:
        raise ValueError("variant_position must fit in int32 and be non-negative")
    if contig_lengths is not None and len(contig_lengths) != len(contig_ids):
        raise ValueError("contig_lengths must have one entry per contig")
    cv, cs = normalise_chunks(chunks, m, n)

    import genoshare

    root = zarr.open_group(store=str(path), mode="w-", zarr_format=2)
    attrs = {"vcf_zarr_version": "0.5", "source": f"genoshare-{genoshare.__version__}"}
    attrs.update(root_attrs or {})
    root.attrs.update(attrs)

    _create(root, "sample_id", shape=(n,), dtype="T", chunks=(cs,), dims=["samples"], fill_value="", data=sample_ids)
    _create(
        root,
        "contig_id",
        shape=(len(contig_ids),),
        dtype="T",
        chunks=(len(contig_ids),),
        dims=["contigs"],
        fill_value="",
        data=contig_ids,
    )
    if contig_lengths is not None:
        _create(
            root,
            "contig_length",
            shape=(len(contig_ids),),
            dtype="i8",
            chunks=(len(contig_ids),),
            dims=["contigs"],
            fill_value=0,
            data=np.asarray(contig_lengths, dtype=np.int64),
        )

    ref_len = np.fromiter((len(a) for a in variant_allele[:, 0].tolist()), dtype=np.int64, count=m)
    ids = np.array(["." if (v is None or str(v) == "") else str(v) for v in variant_id.tolist()], dtype=object)
    alleles = np.where(variant_allele == None, "", variant_allele).astype(str).astype(object)  # noqa: E711
    d = _DESCRIPTIONS
    _create(
        root,
        "variant_position",
        shape=(m,),
        dtype="i4",
        chunks=(cv,),
        dims=["variants"],
        fill_value=None,
        description=d["variant_position"],
        data=variant_position,
        defer=deferred_writes,
    )
    _create(
        root,
        "variant_contig",
        shape=(m,),
        dtype=_min_int(0, len(contig_ids)),
        chunks=(cv,),
        dims=["variants"],
        fill_value=None,
        description=d["variant_contig"],
        data=variant_contig,
        defer=deferred_writes,
    )
    _create(
        root,
        "variant_allele",
        shape=alleles.shape,
        dtype="T",
        chunks=(cv, alleles.shape[1]),
        dims=["variants", "alleles"],
        fill_value="",
        description=d["variant_allele"],
        data=alleles,
        defer=deferred_writes,
    )
    _create(
        root,
        "variant_id",
        shape=(m,),
        dtype="T",
        chunks=(cv,),
        dims=["variants"],
        fill_value="",
        description=d["variant_id"],
        data=ids,
        defer=deferred_writes,
    )
    _create(
        root,
        "variant_id_mask",
        shape=(m,),
        dtype="bool",
        chunks=(cv,),
        dims=["variants"],
        fill_value=None,
        description=d["variant_id_mask"],
        data=ids == ".",
        defer=deferred_writes,
    )
    _create(
        root,
        "variant_length",
        shape=(m,),
        dtype=_min_int(0, int(ref_len.max())),
        chunks=(cv,),
        dims=["variants"],
        fill_value=None,
        description=d["variant_length"],
        data=ref_len,
        defer=deferred_writes,
    )
    index = _region_index(variant_contig, variant_position, ref_len, cv)
    a = root.create_array(
        "region_index",
        shape=index.shape,
        dtype=index.dtype,
        chunks=index.shape,
        compressors=[numcodecs.Blosc(cname="zstd", clevel=9, shuffle=numcodecs.Blosc.NOSHUFFLE)],
        fill_value=None,
    )
    a[...] = index
    a.attrs["_ARRAY_DIMENSIONS"] = ["region_index_values", "region_index_fields"]

    _create(
        root,
        "call_genotype",
        shape=(m, n, 2),
        dtype="i1",
        chunks=(cv, cs, 2),
        dims=["variants", "samples", "ploidy"],
        fill_value=-1,
        description=d["call_genotype"],
        clevel=(call_clevels or {}).get("call_genotype"),
    )
    _create(
        root,
        "call_genotype_mask",
        shape=(m, n, 2),
        dtype="bool",
        chunks=(cv, cs, 2),
        dims=["variants", "samples", "ploidy"],
        fill_value=True,
        description=d["call_genotype_mask"],
        clevel=(call_clevels or {}).get("call_genotype_mask"),
    )
    _create(
        root,
        "call_genotype_phased",
        shape=(m, n),
        dtype="bool",
        chunks=(cv, cs),
        dims=["variants", "samples"],
        fill_value=False,
        description=d["call_genotype_phased"],
    )
    return root


def dosage_to_calls(dosage: np.ndarray) -> np.ndarray:
    """(v, n) dosage (0/1/2, -1 missing) -> (v, n, 2) int8 unphased calls: 0->[0,0], 1->[0,1], 2->[1,1], -1->[-1,-1]."""
    d = np.asarray(dosage)
    gt = np.empty(d.shape + (2,), dtype=np.int8)
    miss = d < 0
    gt[..., 0] = d == 2
    gt[..., 1] = d >= 1
    gt[miss] = -1
    return gt


def calls_to_dosage(gt: np.ndarray) -> np.ndarray:
    """(v, n, ploidy) calls -> (v, n) int8 ALT dosage (count of non-zero alleles); -1 where any allele < 0."""
    gt = np.asarray(gt)
    if gt.ndim == 3 and gt.shape[-1] == 2:
        from genoshare.kernels.noise import dosage_from_calls

        # bi-allelic diploid: the numba kernel is ~40x faster than the numpy reduction
        return dosage_from_calls(np.ascontiguousarray(gt, dtype=np.int8).clip(-1, 1))
    d = (gt > 0).sum(axis=-1, dtype=np.int8)
    d[(gt < 0).any(axis=-1)] = -1
    return d


def write_calls(root: zarr.Group, v0: int, gt: np.ndarray, phased: np.ndarray | None = None) -> None:
    """Write calls (v, n, 2) for variants v0..v0+v (all samples) into call_genotype / _mask / _phased."""
    v1 = v0 + gt.shape[0]
    root["call_genotype"][v0:v1] = gt
    root["call_genotype_mask"][v0:v1] = gt < 0
    if phased is None:
        phased = np.zeros(gt.shape[:2], dtype=bool)
    root["call_genotype_phased"][v0:v1] = phased


def write_vcz(
    path,
    genotypes,
    *,
    sample_ids,
    contig_ids,
    variant_contig,
    variant_position,
    variant_allele,
    variant_id,
    chunks=None,
    root_attrs: dict | None = None,
    contig_lengths=None,
    overwrite: bool = False,
) -> Path:
    """Write a VCF Zarr store from a variant-major dosage matrix (m, n) (0/1/2 ALT counts, -1 missing).

    Metadata arguments as for :func:`init_vcz`. Genotypes are written unphased, one variant chunk at a time
    (memory ~ 5 x chunk_variants x n bytes); ``genotypes`` may be any array-like supporting row slicing (numpy,
    memmap, zarr). The store is built in a temporary sibling directory and renamed into place, so ``path`` is
    never left partial. Raises InputError(path, ...) if ``path`` exists (unless ``overwrite``) or cannot be created.
    """
    path = Path(path)
    m, n = len(variant_position), len(sample_ids)
    shape = tuple(getattr(genotypes, "shape", np.shape(genotypes)))
    if shape != (m, n):
        raise ValueError(f"genotypes must have shape (n_variants, n_samples) = {(m, n)}, got {shape}")
    normalise_chunks(chunks, max(m, 1), max(n, 1))  # validate before touching the file system
    with atomic_store(path, overwrite=overwrite) as tmp:
        root = init_vcz(
            tmp,
            sample_ids=sample_ids,
            contig_ids=contig_ids,
            variant_contig=variant_contig,
            variant_position=variant_position,
            variant_allele=variant_allele,
            variant_id=variant_id,
            chunks=chunks,
            root_attrs=root_attrs,
            contig_lengths=contig_lengths,
        )
        cv = root["call_genotype"].chunks[0]
        for v0 in range(0, m, cv):
            block = np.asarray(genotypes[v0 : v0 + cv])
            if block.dtype.kind not in "iu":
                raise ValueError(f"genotypes must be integers, got dtype {block.dtype}")
            if block.size and (block.min() < -1 or block.max() > 2):
                raise ValueError("genotypes must be 0, 1, 2 or -1 (missing)")
            write_calls(root, v0, dosage_to_calls(block))
    return path


# --------------------------------------------------------------------------------------------------------------
# export with vcztools (VCF.gz + tabix index, PLINK 1)
# --------------------------------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise GenoshareError(f"{name} not found on PATH: install htslib's tools (Debian/Ubuntu: apt install tabix)")
    return exe


def _vcztools(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "vcztools", *args]


def _run(cmd: list[str], what: str) -> None:
    import subprocess

    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode:
        err = " ".join(r.stderr.decode("utf-8", "replace").split())[-300:]
        raise GenoshareError(f"{what} failed (exit {r.returncode}): {err}")


def export_vcf(vcz_path, out_path, *, index: bool = True, threads: int | None = None) -> Path:
    """``vcztools view --no-version`` piped into ``bgzip`` -> ``out_path`` (.vcf.gz), then ``tabix -p vcf``.

    Deterministic: equal stores give byte-identical files (no version/command line in the header; BGZF blocks
    carry no time stamp, whatever the thread count). Written to a temporary name and renamed.
    """
    import subprocess

    out_path = Path(out_path)
    bgzip = _tool("bgzip")
    threads = threads or min(4, os.cpu_count() or 1)
    with atomic_file(out_path) as tmp:
        with open(tmp, "wb") as f, tempfile.TemporaryFile() as view_err, tempfile.TemporaryFile() as bg_err:
            view = subprocess.Popen(
                _vcztools("view", "--no-version", str(vcz_path)), stdout=subprocess.PIPE, stderr=view_err
            )
            bg = subprocess.Popen(
                [bgzip, "-c", "-l", str(BGZIP_LEVEL), "-@", str(threads)], stdin=view.stdout, stdout=f, stderr=bg_err
            )
            view.stdout.close()
            bg.wait()
            view.wait()
            for proc, err_file, what in ((view, view_err, f"vcztools view {vcz_path}"), (bg, bg_err, "bgzip")):
                if proc.returncode:
                    err_file.seek(0)
                    err = " ".join(err_file.read().decode("utf-8", "replace").split())[-300:]
                    raise GenoshareError(f"{what} failed (exit {proc.returncode}): {err}")
    if index:
        tbi = out_path.with_name(out_path.name + ".tbi")
        try:
            _run([_tool("tabix"), "-f", "-p", "vcf", str(out_path)], f"tabix -p vcf {out_path}")
        except BaseException:
            tbi.unlink(missing_ok=True)
            raise
    return out_path


def export_plink(vcz_path, prefix, *, phenotype=None) -> Path:
    """``vcztools view-plink`` -> ``prefix``.bed/.bim/.fam (A1 = ALT, A2 = REF; byte-identical to plink2's .bed).

    ``phenotype`` (sequence of PLINK codes, 1 control / 2 case / -9 missing, in sample order) replaces the .fam's
    last column (vcztools writes -9).
    """
    prefix = Path(prefix)
    _run(_vcztools("view-plink", str(vcz_path), "-o", str(prefix)), f"vcztools view-plink {vcz_path}")
    if phenotype is not None:
        fam = prefix.with_name(prefix.name + ".fam")
        rows = [ln.split() for ln in fam.read_text(encoding="utf-8").splitlines() if ln.strip()]
        phenotype = [int(p) for p in phenotype]
        if len(rows) != len(phenotype):
            raise ValueError(f"{len(phenotype)} phenotypes for {len(rows)} samples in {fam}")
        text = "".join("\t".join(r[:5] + [str(p)]) + "\n" for r, p in zip(rows, phenotype))
        with atomic_file(fam) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return prefix


def read_dosage(info_or_path, v0: int, v1: int, s0: int = 0, s1: int | None = None) -> np.ndarray:
    """ALT dosage int8 (v1 - v0, s1 - s0) of variants [v0, v1) and samples [s0, s1); -1 where any allele < 0."""
    path = info_or_path.path if isinstance(info_or_path, VczInfo) else info_or_path
    gt = open_group(path)["call_genotype"]
    return calls_to_dosage(gt[v0:v1, s0:s1])
