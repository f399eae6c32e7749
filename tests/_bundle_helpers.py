"""Helpers shared by the bundle tests and fuzzers: build valid and hostile ``.forge`` zips."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import warnings
import zipfile

import numpy as np

from forgeline import bundle


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def member_entry(name: str, data: bytes) -> dict:
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def manifest_doc(entries: list[dict], body: dict | None = None, version=(1, 0), **extra) -> dict:
    doc = {"format": bundle.FORMAT, "format_version": list(version), "created": "2026-01-01T00:00:00Z",
           "members": entries, "body": {"k": 1} if body is None else body}
    doc.update(extra)
    return doc


def make_zip(members: list[tuple], manifest: dict | bytes | None = None,
             compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip with ``members`` = [(name, data)] written verbatim (names unchecked, duplicates
    allowed) plus a manifest. ``manifest=None`` builds a matching one for array members."""
    if manifest is None:
        manifest = manifest_doc([member_entry(n, d) for n, d in members
                                 if n.startswith("arrays/")])
    if isinstance(manifest, dict):
        manifest = json.dumps(manifest).encode()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates we write on purpose
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, data in members:
                zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                zi.compress_type = compression
                zf.writestr(zi, data)
            if manifest is not False:
                zi = zipfile.ZipInfo("manifest.json", date_time=(1980, 1, 1, 0, 0, 0))
                zi.compress_type = compression
                zf.writestr(zi, manifest)
    return buf.getvalue()


def valid_bundle_bytes(tmp_path, arrays=None, body=None) -> bytes:
    arrays = {"w": np.arange(6, dtype=np.float64).reshape(2, 3), "c": np.array([1, -2, 3], np.int32)} \
        if arrays is None else arrays
    path = tmp_path / "valid.forge"
    bundle.write_bundle(path, {"model": "m", "n": 3} if body is None else body, arrays,
                        created="2026-01-01T00:00:00Z")
    return path.read_bytes()


def patch_declared_size(data: bytes, name: str, new_size: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in its local header and central directory."""
    out = bytearray(data)
    raw = name.encode()
    pos = 0
    while (pos := out.find(b"PK\x03\x04", pos)) != -1:
        n = struct.unpack_from("<H", out, pos + 26)[0]
        if bytes(out[pos + 30:pos + 30 + n]) == raw:
            struct.pack_into("<I", out, pos + 22, new_size)
        pos += 4
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) != -1:
        n = struct.unpack_from("<H", out, pos + 28)[0]
        if bytes(out[pos + 46:pos + 46 + n]) == raw:
            struct.pack_into("<I", out, pos + 24, new_size)
        pos += 4
    return bytes(out)


def data_regions(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of each member's stored data inside the zip."""
    regions = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            off = info.header_offset
            n, m = struct.unpack_from("<HH", data, off + 26)
            start = off + 30 + n + m
            regions.append((start, start + info.compress_size))
    return regions
