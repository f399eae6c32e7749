"""The ``.forge`` bundle: one zip file of plain data, read and written from plain parts.

Layout::

    manifest.json          {"format": "forgeline-bundle", "format_version": [1, 0],
                            "created": "...", "members": [{"name", "size", "sha256"}, ...],
                            "body": {...the caller's content...}}
    arrays/<name>.npy      one numpy ``.npy`` file per array (numeric and bool dtypes only)

A bundle is data, never code: arrays are read with ``allow_pickle=False`` after their
header has been checked, JSON is parsed with the standard library, and nothing in a bundle
names a Python object to import. Every member is covered by a SHA-256 in the manifest.

Reading is defensive because a bundle may come from anywhere. Before a single byte is
decompressed the reader checks member names (no absolute paths, ``..``, backslashes,
duplicates or unexpected entries), the sizes declared in the zip directory and in the
manifest against caps, and the compression ratio; each read is then bounded by the declared
size. Every failure is a :class:`~forgeline.BundleError` that says what is wrong; no
``zipfile``, ``OSError`` or ``ValueError`` leaks out.

This module imports nothing from forgeline except :mod:`forgeline.errors`, so the scorer
can depend on it without cycles.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import re
import secrets
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping

import numpy as np

from .errors import BundleError

FORMAT = "forgeline-bundle"
#: (major, minor). A reader loads any minor of a major it knows; a newer major is refused.
FORMAT_VERSION = (1, 0)
MANIFEST = "manifest.json"
ARRAY_PREFIX = "arrays/"
ARRAY_SUFFIX = ".npy"

#: Largest single member (array or manifest), in uncompressed bytes.
MAX_MEMBER_BYTES = 1 << 30
#: Largest sum of all members, in uncompressed bytes.
MAX_TOTAL_BYTES = 4 << 30
#: Most members (arrays + manifest) a bundle may have.
MAX_MEMBERS = 10_000
#: Highest uncompressed/compressed ratio accepted for a member larger than
#: ``RATIO_CHECK_MIN_BYTES``. forgeline writes members uncompressed (ratio 1), so only a
#: foreign tool (or an attacker) produces anything near this.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_MIN_BYTES = 4 << 20

# Array names become file names inside the zip; keep them boring so they can never escape.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_ALLOWED_KINDS = frozenset("biufc")
_ALLOWED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# Fixed timestamp (the zip epoch) so the same input always gives the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_NPY_MAX_HEADER = 10_000


# --------------------------------------------------------------------------- writing

def write_bundle(path, manifest: Mapping, arrays: Mapping[str, np.ndarray], *,
                 created: str | None = None,
                 max_member_bytes: int = MAX_MEMBER_BYTES,
                 max_total_bytes: int = MAX_TOTAL_BYTES,
                 max_members: int = MAX_MEMBERS) -> None:
    """Write a ``.forge`` bundle atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. It is written to a temporary file in the same directory and moved
        into place with :func:`os.replace`, so a crash never leaves a half-written bundle
        at ``path`` (an existing file there is either kept whole or replaced whole).
    manifest : mapping
        JSON-serialisable content, stored under ``body`` and returned by
        :func:`read_bundle`. numpy scalars are converted to Python numbers. Large numeric
        data belongs in ``arrays``.
    arrays : mapping of str to numpy.ndarray
        Named arrays of bool, integer, float or complex dtype (any shape and memory order).
        Names use letters, digits, ``_``, ``.`` and ``-`` (1-200 characters, not starting
        with ``.`` or ``-``).
    created : str, optional
        Creation time stored in the manifest. Default: ``SOURCE_DATE_EPOCH`` when that
        environment variable is set (reproducible builds), else the current UTC time. With
        a fixed value the output bytes are identical for identical input.
    max_member_bytes, max_total_bytes, max_members : int
        The writer refuses what the reader would refuse with the same limits, so a bundle
        that saves with the defaults also loads with the defaults.

    Raises
    ------
    BundleError
        Bad array names or dtypes, a body that is not JSON-serialisable, a limit exceeded,
        or the file cannot be written.
    """
    if not isinstance(manifest, Mapping):
        raise BundleError(f"bundle manifest must be a mapping, got {type(manifest).__name__}")
    if not isinstance(arrays, Mapping):
        raise BundleError(f"bundle arrays must be a mapping, got {type(arrays).__name__}")
    if len(arrays) + 1 > max_members:
        raise BundleError(f"bundle would have {len(arrays) + 1} members, more than the limit "
                          f"of {max_members}")
    prepared = []
    for name in sorted(arrays, key=lambda n: str(n)):
        arr = arrays[name]
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
            raise BundleError(f"invalid bundle array name {name!r}: use 1-200 letters, digits, "
                              "'_', '.' or '-', not starting with '.' or '-', without '..'")
        if not isinstance(arr, np.ndarray):
            raise BundleError(f"bundle array {name!r} must be a numpy array, got "
                              f"{type(arr).__name__}")
        _check_dtype(arr.dtype, f"bundle array {name!r}")
        prepared.append((ARRAY_PREFIX + name + ARRAY_SUFFIX, arr))
    if created is None:
        created = _default_created()
    # Members are hashed while they stream into the zip, so nothing is held twice in memory.
    tmp = _temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
                members = []
                total = 0
                for member, arr in prepared:
                    size, digest = _write_array(zf, member, arr)
                    if size > max_member_bytes:
                        raise BundleError(f"bundle member {member!r} is {size} bytes, more than "
                                          f"the limit of {max_member_bytes}")
                    total += size
                    members.append({"name": member, "size": size, "sha256": digest})
                doc = {"format": FORMAT, "format_version": list(FORMAT_VERSION),
                       "created": created, "members": members, "body": dict(manifest)}
                try:
                    text = json.dumps(doc, sort_keys=True, indent=1, default=_json_default)
                except (TypeError, ValueError, RecursionError) as exc:
                    raise BundleError(f"bundle manifest is not JSON-serialisable: {exc}") from exc
                data = text.encode("utf-8")
                total += len(data)
                if len(data) > max_member_bytes:
                    raise BundleError(f"bundle manifest is {len(data)} bytes, more than the limit "
                                      f"of {max_member_bytes}")
                if total > max_total_bytes:
                    raise BundleError(f"bundle would hold {total} bytes, more than the limit of "
                                      f"{max_total_bytes}")
                zf.writestr(_zinfo(MANIFEST), data)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise BundleError(f"cannot write bundle {os.fspath(path)!r}: {exc}") from exc
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(os.fspath(path))))


def _default_created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        when = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
    else:
        when = _dt.datetime.now(tz=_dt.timezone.utc)
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _temp_path(path) -> str:
    path = os.fspath(path)
    head, tail = os.path.split(os.path.abspath(path))
    return os.path.join(head, f".{tail}.{secrets.token_hex(6)}.tmp")


def _fsync_dir(directory: str) -> None:
    # Makes the rename durable on POSIX; not possible (and not needed) everywhere.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _zinfo(name: str, size: int = 0) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    zi.compress_type = zipfile.ZIP_STORED
    zi.create_system = 3  # unix, whatever platform wrote it: same bytes everywhere
    zi.external_attr = 0o644 << 16
    zi.file_size = size
    return zi


class _HashingWriter(io.RawIOBase):
    """Forwards writes to a zip member stream while hashing and counting them."""

    def __init__(self, sink):
        self._sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        view = memoryview(b).cast("B")
        self._sink.write(view)
        self.sha.update(view)
        self.size += view.nbytes
        return view.nbytes


def _write_array(zf: zipfile.ZipFile, member: str, arr: np.ndarray) -> tuple[int, str]:
    expected = arr.nbytes + 256  # the header is at most a few hundred bytes
    with zf.open(_zinfo(member, expected), "w", force_zip64=expected >= (1 << 31)) as sink:
        w = _HashingWriter(sink)
        np.save(w, arr, allow_pickle=False)
    return w.size, w.sha.hexdigest()


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def _check_dtype(dtype: np.dtype, what: str) -> None:
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise BundleError(f"{what} has dtype {dtype}; only plain bool, integer, float and "
                          "complex dtypes can be stored (object dtypes could carry code)")
    if dtype.kind not in _ALLOWED_KINDS:
        raise BundleError(f"{what} has unsupported dtype {dtype}; only bool, integer, float "
                          "and complex dtypes can be stored")


# --------------------------------------------------------------------------- reading

def read_bundle(source, *, max_member_bytes: int = MAX_MEMBER_BYTES,
                max_total_bytes: int = MAX_TOTAL_BYTES,
                max_members: int = MAX_MEMBERS,
                max_compression_ratio: float = MAX_COMPRESSION_RATIO) -> tuple[dict, dict]:
    """Read and verify a ``.forge`` bundle.

    Parameters
    ----------
    source : str, os.PathLike, bytes-like or binary file object
        The bundle. A file object must be readable; if it is not seekable it is read into
        memory, at most ``max_total_bytes`` plus room for the zip directory.
    max_member_bytes : int
        Cap on any member's uncompressed size (as declared and as read).
    max_total_bytes : int
        Cap on the sum of all members' uncompressed sizes.
    max_members : int
        Cap on the number of zip entries.
    max_compression_ratio : float
        Cap on uncompressed/compressed size for members over 4 MiB (zip-bomb guard).

    Returns
    -------
    body : dict
        The ``manifest`` passed to :func:`write_bundle`.
    arrays : dict of str to numpy.ndarray
        The arrays, bit-exact, with their dtypes, shapes and memory order.

    Raises
    ------
    BundleError
        The file is missing or unreadable, not a zip, not a forgeline bundle, from a newer
        major format version, corrupted, truncated, tampered with (checksum mismatch),
        contains unsafe or unexpected member names, or exceeds a limit. A bundle with a
        newer *minor* version of a known major loads.
    """
    with _open_zip(source, max_total_bytes) as zf:
        doc, infos = _read_manifest(zf, max_member_bytes, max_total_bytes, max_members,
                                    max_compression_ratio)
        arrays = {}
        for entry in doc["members"]:
            name = entry["name"]
            data = _read_member(zf, infos[name], entry["size"])
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise BundleError(f"bundle member {name!r} fails its SHA-256 check: the file is "
                                  "corrupted or was modified")
            arrays[name[len(ARRAY_PREFIX):-len(ARRAY_SUFFIX)]] = _load_npy(name, data)
    return doc["body"], arrays


def read_manifest(source, *, max_member_bytes: int = MAX_MEMBER_BYTES,
                  max_total_bytes: int = MAX_TOTAL_BYTES, max_members: int = MAX_MEMBERS,
                  max_compression_ratio: float = MAX_COMPRESSION_RATIO) -> dict:
    """Read and check only the manifest of a bundle (for ``inspect``); arrays are not read.

    Returns the whole manifest document: ``format``, ``format_version``, ``created``,
    ``members`` and ``body``. The same structural checks and limits as
    :func:`read_bundle` apply, but member checksums are not verified.

    Raises
    ------
    BundleError
        As for :func:`read_bundle`.
    """
    with _open_zip(source, max_total_bytes) as zf:
        doc, _ = _read_manifest(zf, max_member_bytes, max_total_bytes, max_members,
                                max_compression_ratio)
    return doc


# Exceptions a damaged zip can raise from the standard library; all become BundleError.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
               struct.error, zlib.error, NotImplementedError, KeyError, UnicodeDecodeError,
               OverflowError, IndexError)


@contextlib.contextmanager
def _open_zip(source, max_total_bytes: int) -> Iterator[zipfile.ZipFile]:
    label = "bundle"
    if isinstance(source, (bytes, bytearray, memoryview)):
        fileobj = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        label = f"bundle {os.fspath(source)!r}"
        try:
            fileobj = open(source, "rb")
        except FileNotFoundError as exc:
            raise BundleError(f"bundle file not found: {os.fspath(source)!r}") from exc
        except OSError as exc:
            raise BundleError(f"cannot open {label}: {exc}") from exc
    elif hasattr(source, "read"):
        fileobj = source
        try:
            seekable = source.seekable()
        except (AttributeError, OSError, ValueError):
            seekable = False
        if not seekable:
            # The zip directory sits at the end, so a stream has to be buffered; bound it.
            limit = max_total_bytes + (64 << 20)
            try:
                data = source.read(limit + 1)
            except _ZIP_ERRORS as exc:
                raise BundleError(f"cannot read bundle stream: {exc}") from exc
            if len(data) > limit:
                raise BundleError(f"bundle stream is larger than the limit of {limit} bytes")
            fileobj = io.BytesIO(data)
    else:
        raise BundleError(f"cannot read a bundle from {type(source).__name__}; pass a path, "
                          "bytes or a binary file object")
    try:
        try:
            zf = zipfile.ZipFile(fileobj, "r")
        except _ZIP_ERRORS as exc:
            raise BundleError(f"{label} is not a forgeline bundle (not a readable zip "
                              f"archive: {exc})") from exc
        with zf:
            yield zf
    finally:
        if fileobj is not source:
            fileobj.close()


def _read_manifest(zf: zipfile.ZipFile, max_member_bytes: int, max_total_bytes: int,
                   max_members: int, max_ratio: float) -> tuple[dict, dict]:
    infos = zf.infolist()
    if len(infos) > max_members:
        raise BundleError(f"bundle has {len(infos)} members, more than the limit of "
                          f"{max_members}")
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        _check_member_name(info.filename)
        if info.filename in by_name:
            raise BundleError(f"bundle has a duplicate member {info.filename!r}")
        _check_info(info, max_member_bytes, max_ratio)
        by_name[info.filename] = info
    total = sum(i.file_size for i in infos)
    if total > max_total_bytes:
        raise BundleError(f"bundle members total {total} bytes, more than the limit of "
                          f"{max_total_bytes}")
    if MANIFEST not in by_name:
        raise BundleError("not a forgeline bundle: manifest.json is missing")
    raw = _read_member(zf, by_name[MANIFEST], by_name[MANIFEST].file_size)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(f"bundle manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError("not a forgeline bundle: manifest.json does not declare "
                          f"format {FORMAT!r}")
    _check_version(doc.get("format_version"))
    body = doc.get("body")
    if not isinstance(body, dict):
        raise BundleError("bundle manifest.json has no 'body' object")
    members = doc.get("members")
    if not isinstance(members, list):
        raise BundleError("bundle manifest.json has no 'members' list")
    declared: dict[str, dict] = {}
    for entry in members:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and type(entry.get("size")) is int and isinstance(entry.get("sha256"), str)
                and _SHA_RE.fullmatch(entry["sha256"])):
            raise BundleError(f"bundle manifest.json has a malformed member entry: "
                              f"{_short(entry)}")
        name, size = entry["name"], entry["size"]
        _check_member_name(name)
        if not _is_array_member(name):
            raise BundleError(f"bundle manifest.json lists an unexpected member {name!r}")
        if name in declared:
            raise BundleError(f"bundle manifest.json lists member {name!r} twice")
        if size < 0 or size > max_member_bytes:
            raise BundleError(f"bundle member {name!r} declares {size} bytes; the limit is "
                              f"{max_member_bytes}")
        if name not in by_name:
            raise BundleError(f"bundle member {name!r} is listed in the manifest but missing "
                              "from the file")
        if by_name[name].file_size != size:
            raise BundleError(f"bundle member {name!r} is {by_name[name].file_size} bytes in "
                              f"the zip but the manifest says {size}")
        declared[name] = entry
    extra = sorted(set(by_name) - set(declared) - {MANIFEST})
    if extra:
        raise BundleError(f"bundle contains unexpected members not listed in its manifest: "
                          f"{extra[:5]!r}")
    return doc, by_name


def _check_version(version) -> None:
    if not (isinstance(version, list) and len(version) == 2
            and all(type(v) is int and v >= 0 for v in version)):
        raise BundleError(f"bundle has a malformed format_version {_short(version)}")
    major, minor = version
    if major > FORMAT_VERSION[0]:
        raise BundleError(
            f"bundle format version {major}.{minor} is newer than this forgeline supports "
            f"({FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}); upgrade forgeline to load it")
    if major < 1:
        raise BundleError(f"bundle has an unknown format version {major}.{minor}")


def _check_member_name(name: str) -> None:
    bad = (not name or "\\" in name or name.startswith("/") or "\x00" in name
           or re.match(r"[A-Za-z]:", name) is not None
           or any(part in ("", ".", "..") for part in name.split("/")))
    if bad:
        raise BundleError(f"bundle contains an unsafe member path {name!r} (absolute, '..', "
                          "backslash or empty component)")
    if name != MANIFEST and not _is_array_member(name):
        raise BundleError(f"bundle contains an unexpected member {name!r}")


def _is_array_member(name: str) -> bool:
    if not (name.startswith(ARRAY_PREFIX) and name.endswith(ARRAY_SUFFIX)):
        return False
    stem = name[len(ARRAY_PREFIX):-len(ARRAY_SUFFIX)]
    return _NAME_RE.fullmatch(stem) is not None and ".." not in stem


def _check_info(info: zipfile.ZipInfo, max_member_bytes: int, max_ratio: float) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise BundleError(f"bundle member {name!r} is encrypted")
    if info.compress_type not in _ALLOWED_METHODS:
        raise BundleError(f"bundle member {name!r} uses unsupported compression method "
                          f"{info.compress_type}")
    if info.file_size > max_member_bytes:
        raise BundleError(f"bundle member {name!r} declares {info.file_size} bytes; the limit "
                          f"is {max_member_bytes}")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise BundleError(f"bundle member {name!r} has inconsistent sizes")
    if info.file_size >= RATIO_CHECK_MIN_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > max_ratio:
            raise BundleError(f"bundle member {name!r} has a compression ratio of {ratio:.0f}, "
                              f"more than the limit of {max_ratio} (zip bomb?)")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> bytes:
    try:
        with zf.open(info) as f:
            # zipfile stops at the declared size and checks the CRC at the end; the explicit
            # bound keeps that guarantee even if that ever changes.
            data = f.read(size + 1)
    except _ZIP_ERRORS as exc:
        raise BundleError(f"bundle member {info.filename!r} is corrupted or truncated: "
                          f"{exc}") from exc
    if len(data) != size:
        raise BundleError(f"bundle member {info.filename!r} has {len(data)} bytes, expected "
                          f"{size} (corrupted or truncated)")
    return data


def _load_npy(name: str, data: bytes) -> np.ndarray:
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                buf, max_header_size=_NPY_MAX_HEADER)
        elif version == (2, 0):  # 3.0 only exists for structured dtypes, refused anyway
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                buf, max_header_size=_NPY_MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    # numpy's header parser can raise almost anything on hostile bytes (ValueError,
    # SyntaxError, tokenize.TokenError, ...); it only parses literals, so all of it is data.
    except Exception as exc:
        raise BundleError(f"bundle member {name!r} is not a valid .npy array: {exc}") from exc
    _check_dtype(dtype, f"bundle member {name!r}")
    count = 1
    for d in shape:
        count *= d
    offset = buf.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise BundleError(f"bundle member {name!r}: header says shape {shape} of {dtype} "
                          f"({count * dtype.itemsize} bytes) but {len(data) - offset} bytes "
                          "follow")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    # A writable copy that owns its memory: callers may keep or modify it freely.
    return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


def _short(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_MEMBER_BYTES", "MAX_TOTAL_BYTES", "MAX_MEMBERS",
           "MAX_COMPRESSION_RATIO", "write_bundle", "read_bundle", "read_manifest"]
