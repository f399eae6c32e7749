"""forgeline.bundle: round trips, atomic writes, and a BundleError for every hostile input."""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _bundle_helpers import (data_regions, make_zip, manifest_doc, member_entry, npy_bytes,
                             patch_declared_size, valid_bundle_bytes)
from forgeline import BundleError, bundle
from forgeline.bundle import read_bundle, read_manifest, write_bundle

FIXED = "2026-01-01T00:00:00Z"

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128", ">f8", ">i4", "<u2"]


def _roundtrip(tmp_path, body, arrays):
    path = tmp_path / "rt.forge"
    write_bundle(path, body, arrays, created=FIXED)
    return read_bundle(path)


def _assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    assert a.tobytes(order="A") == b.tobytes(order="A") or np.array_equal(a, b, equal_nan=True)
    # bit-exact, NaN payloads and signed zeros included
    assert np.ascontiguousarray(a).view(np.uint8).tobytes() == np.ascontiguousarray(b).view(np.uint8).tobytes()


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (7,), (3, 4), (2, 3, 4)])
def test_roundtrip_all_dtypes_and_shapes(tmp_path, dtype, shape):
    rng = np.random.default_rng(0)
    base = np.asarray(rng.normal(size=shape) * 1000)
    arr = np.asarray(base > 0) if dtype == "bool" else base.astype(dtype)
    _, out = _roundtrip(tmp_path, {}, {"a": arr})
    _assert_same(arr, out["a"])
    assert out["a"].flags.writeable and out["a"].flags.owndata


def test_roundtrip_keeps_fortran_order_and_special_floats(tmp_path):
    f = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    special = np.array([np.nan, -0.0, np.inf, -np.inf, np.finfo(np.float64).tiny, 5e-324])
    sliced = np.arange(20, dtype=np.int64)[::3]  # non-contiguous input
    _, out = _roundtrip(tmp_path, {}, {"f": f, "s": special, "sl": sliced})
    assert out["f"].flags.f_contiguous and not out["f"].flags.c_contiguous
    _assert_same(f, out["f"])
    _assert_same(special, out["s"])
    np.testing.assert_array_equal(sliced, out["sl"])


def test_roundtrip_body_and_numpy_scalars(tmp_path):
    body = {"name": "mödel ✓", "nested": {"list": [1, 2.5, None, True], "empty": {}},
            "np": np.float32(1.5), "i": np.int64(7), "nan": float("nan")}
    got, arrays = _roundtrip(tmp_path, body, {})
    assert arrays == {}
    assert got["name"] == body["name"] and got["nested"] == body["nested"]
    assert got["np"] == 1.5 and got["i"] == 7 and np.isnan(got["nan"])


@settings(max_examples=40, deadline=None)
@given(arr=hnp.arrays(dtype=st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
                                      hnp.floating_dtypes(), hnp.boolean_dtypes(),
                                      hnp.complex_number_dtypes()),
                      shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)),
       fortran=st.booleans())
def test_roundtrip_hypothesis(tmp_path_factory, arr, fortran):
    if fortran:
        arr = np.asfortranarray(arr)
    _, out = _roundtrip(tmp_path_factory.mktemp("h"), {}, {"x": arr})
    _assert_same(arr, out["x"])


def test_sources_path_bytes_and_file_objects(tmp_path):
    data = valid_bundle_bytes(tmp_path)
    expected = read_bundle(tmp_path / "valid.forge")
    for src in (str(tmp_path / "valid.forge"), data, bytearray(data), memoryview(data),
                io.BytesIO(data)):
        body, arrays = read_bundle(src)
        assert body == expected[0]
        assert arrays.keys() == expected[1].keys()

    class Stream(io.RawIOBase):  # readable but not seekable
        def __init__(self):
            self._b = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self._b.read(len(b))
            b[:len(chunk)] = chunk
            return len(chunk)

    body, _ = read_bundle(Stream())
    assert body == expected[0]
    with pytest.raises(BundleError, match="more than the limit"):
        read_bundle(Stream(), max_total_bytes=10)


def test_manifest_layout_and_read_manifest(tmp_path):
    data = valid_bundle_bytes(tmp_path)
    doc = read_manifest(data)
    assert doc["format"] == "forgeline-bundle"
    assert doc["format_version"] == [1, 0]
    assert doc["created"] == FIXED
    assert doc["body"] == {"model": "m", "n": 3}
    names = [m["name"] for m in doc["members"]]
    assert names == ["arrays/c.npy", "arrays/w.npy"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["arrays/c.npy", "arrays/w.npy", "manifest.json"]
        for m in doc["members"]:
            assert member_entry(m["name"], zf.read(m["name"])) == m


def test_deterministic_bytes(tmp_path, monkeypatch):
    arrays = {"b": np.ones(3), "a": np.arange(4)}
    write_bundle(tmp_path / "1.forge", {"x": 1, "y": [2]}, arrays, created=FIXED)
    write_bundle(tmp_path / "2.forge", {"y": [2], "x": 1}, dict(reversed(arrays.items())),
                 created=FIXED)
    assert (tmp_path / "1.forge").read_bytes() == (tmp_path / "2.forge").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    write_bundle(tmp_path / "3.forge", {}, {})
    assert read_manifest(tmp_path / "3.forge")["created"] == "2023-11-14T22:13:20Z"


def test_default_created_is_utc_now(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    write_bundle(tmp_path / "n.forge", {}, {})
    assert read_manifest(tmp_path / "n.forge")["created"].endswith("Z")


# --------------------------------------------------------------------------- writing errors

def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "m.forge"
    write_bundle(path, {"v": 1}, {"a": np.arange(3)}, created=FIXED)
    before = path.read_bytes()
    with pytest.raises(BundleError, match="JSON"):  # fails after the arrays were streamed
        write_bundle(path, {"v": object()}, {"a": np.arange(1000)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.forge"]  # no temp file left behind
    with pytest.raises(BundleError, match="limit"):
        write_bundle(path, {}, {"a": np.zeros(1000)}, max_member_bytes=100)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.forge"]


@pytest.mark.parametrize("arr, match", [
    (np.array([1, "a"], dtype=object), "object"),
    (np.zeros(2, dtype=[("a", "f8"), ("b", "O")]), "object"),
    (np.zeros(2, dtype=[("a", "f8")]), "dtype"),
    (np.array(["ab"]), "unsupported dtype"),
    (np.array([b"ab"]), "unsupported dtype"),
    (np.array(["2020-01-01"], dtype="datetime64[ns]"), "unsupported dtype"),
    ([1, 2, 3], "numpy array"),
])
def test_write_rejects_bad_arrays(tmp_path, arr, match):
    with pytest.raises(BundleError, match=match):
        write_bundle(tmp_path / "x.forge", {}, {"a": arr})
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "-x", "a..b", "a\\b", "x" * 201, 3])
def test_write_rejects_bad_names(tmp_path, name):
    with pytest.raises(BundleError, match="invalid bundle array name"):
        write_bundle(tmp_path / "x.forge", {}, {name: np.zeros(1)})


def test_write_rejects_bad_manifest_and_paths(tmp_path):
    with pytest.raises(BundleError, match="mapping"):
        write_bundle(tmp_path / "x.forge", [1], {})
    with pytest.raises(BundleError, match="mapping"):
        write_bundle(tmp_path / "x.forge", {}, [np.zeros(1)])
    with pytest.raises(BundleError, match="members"):
        write_bundle(tmp_path / "x.forge", {}, {"a": np.zeros(1), "b": np.zeros(1)}, max_members=2)
    with pytest.raises(BundleError, match="cannot write"):
        write_bundle(tmp_path / "no" / "such" / "dir.forge", {}, {})
    with pytest.raises(BundleError, match="limit"):
        write_bundle(tmp_path / "x.forge", {"big": "y" * 1000}, {}, max_total_bytes=500)


# --------------------------------------------------------------------------- reading errors

def test_missing_file_and_directory(tmp_path):
    with pytest.raises(BundleError, match="not found.*nope.forge"):
        read_bundle(tmp_path / "nope.forge")
    with pytest.raises(BundleError, match="cannot open"):
        read_bundle(tmp_path)
    with pytest.raises(BundleError, match="cannot read a bundle from int"):
        read_bundle(42)


@pytest.mark.parametrize("data", [b"", b"hello world", b"PK\x03\x04" + b"\0" * 100,
                                  b"\x93NUMPY" + b"\0" * 50, json.dumps({"format": 1}).encode()])
def test_not_a_zip(data):
    with pytest.raises(BundleError, match="not a forgeline bundle"):
        read_bundle(data)


def test_missing_or_bad_manifest():
    with pytest.raises(BundleError, match="manifest.json is missing"):
        read_bundle(make_zip([("arrays/a.npy", npy_bytes(np.zeros(2)))], manifest=False))
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(make_zip([], manifest=b"{not json"))
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(make_zip([], manifest=b"\xff\xfe"))
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(make_zip([], manifest=b"[" * 200_000 + b"]" * 200_000))
    with pytest.raises(BundleError, match="does not declare format"):
        read_bundle(make_zip([], manifest=b"[1, 2]"))
    with pytest.raises(BundleError, match="does not declare format"):
        read_bundle(make_zip([], manifest={"format": "something-else"}))
    with pytest.raises(BundleError, match="'body'"):
        read_bundle(make_zip([], manifest=manifest_doc([], body=None) | {"body": [1]}))
    with pytest.raises(BundleError, match="'members'"):
        read_bundle(make_zip([], manifest=manifest_doc([]) | {"members": {}}))


def test_newer_major_version_refused_newer_minor_loads():
    data = npy_bytes(np.arange(3))
    members = [("arrays/a.npy", data)]
    entries = [member_entry("arrays/a.npy", data)]
    with pytest.raises(BundleError, match=r"2\.0 is newer .*\(1\.0\).*upgrade forgeline"):
        read_bundle(make_zip(members, manifest_doc(entries, version=(2, 0))))
    body, arrays = read_bundle(make_zip(members, manifest_doc(entries, version=(1, 7),
                                                              future_field={"x": 1})))
    assert body == {"k": 1}
    np.testing.assert_array_equal(arrays["a"], np.arange(3))


@pytest.mark.parametrize("version", ["1.0", [1], [1, 0, 0], [True, 0], [1.0, 0], [-1, 0], [0, 9],
                                     None])
def test_malformed_version(version):
    doc = manifest_doc([])
    doc["format_version"] = version
    with pytest.raises(BundleError, match="format.version|format version"):
        read_bundle(make_zip([], doc))


@pytest.mark.parametrize("cut", [0, 1, 4, 30, 100, 200, 0.25, 0.5, 0.75, -100, -23, -22, -10, -1])
def test_truncated(tmp_path, cut):
    data = valid_bundle_bytes(tmp_path)
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    with pytest.raises(BundleError):
        read_bundle(data[:n])


def test_every_truncation_point(tmp_path):
    data = valid_bundle_bytes(tmp_path)
    for n in range(0, len(data), 7):
        with pytest.raises(BundleError):
            read_bundle(data[:n])


def test_every_single_byte_flip(tmp_path):
    """A flipped byte anywhere gives a BundleError or, where the byte is metadata zipfile
    ignores (timestamps, attributes), exactly the original content. Flips inside any member's
    data always raise."""
    data = valid_bundle_bytes(tmp_path)
    body, arrays = read_bundle(data)
    regions = data_regions(data)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        in_data = any(s <= i < e for s, e in regions)
        try:
            got_body, got_arrays = read_bundle(bytes(bad))
        except BundleError:
            continue
        assert not in_data, f"flip at {i} inside member data was accepted"
        assert got_body == body
        assert got_arrays.keys() == arrays.keys()
        for k in arrays:
            _assert_same(arrays[k], got_arrays[k])


def test_checksum_mismatch():
    good, evil = npy_bytes(np.arange(4.0)), npy_bytes(np.arange(4.0) + 1)
    doc = manifest_doc([member_entry("arrays/a.npy", good)])
    with pytest.raises(BundleError, match="SHA-256"):
        read_bundle(make_zip([("arrays/a.npy", evil)], doc))  # zip CRC is valid for `evil`


@pytest.mark.parametrize("name", ["/etc/passwd", "/arrays/a.npy", "../a.npy", "arrays/../../x.npy",
                                  "arrays/./a.npy", "arrays\\a.npy", "C:/x.npy", "arrays//a.npy",
                                  "arrays/a.npy/"])
def test_unsafe_member_names(name):
    data = npy_bytes(np.zeros(2))
    with pytest.raises(BundleError, match="unsafe member path"):
        read_bundle(make_zip([(name, data)], manifest_doc([])))
    # also when only the manifest names it
    with pytest.raises(BundleError, match="unsafe member path"):
        read_bundle(make_zip([], manifest_doc([member_entry(name, data)])))


@pytest.mark.parametrize("name", ["extra.txt", "arrays/a.pkl", "arrays/sub/a.npy", "arrays/.npy",
                                  "code.py", "arrays/a.npy.exe"])
def test_unexpected_members(name):
    with pytest.raises(BundleError, match="unexpected member"):
        read_bundle(make_zip([(name, b"data")], manifest_doc([])))


def test_duplicate_members():
    a, b = npy_bytes(np.zeros(2)), npy_bytes(np.ones(2))
    with pytest.raises(BundleError, match="duplicate member"):
        read_bundle(make_zip([("arrays/a.npy", a), ("arrays/a.npy", b)],
                             manifest_doc([member_entry("arrays/a.npy", b)])))
    with pytest.raises(BundleError, match="twice"):
        read_bundle(make_zip([("arrays/a.npy", a)],
                             manifest_doc([member_entry("arrays/a.npy", a)] * 2)))
    with pytest.raises(BundleError, match="duplicate member"):
        read_bundle(make_zip([("manifest.json", b"{}")]))


def test_manifest_and_zip_must_agree():
    a = npy_bytes(np.zeros(2))
    with pytest.raises(BundleError, match="missing from the file"):
        read_bundle(make_zip([], manifest_doc([member_entry("arrays/a.npy", a)])))
    with pytest.raises(BundleError, match="not listed in its manifest"):
        read_bundle(make_zip([("arrays/a.npy", a)], manifest_doc([])))
    entry = member_entry("arrays/a.npy", a) | {"size": len(a) + 1}
    with pytest.raises(BundleError, match="manifest says"):
        read_bundle(make_zip([("arrays/a.npy", a)], manifest_doc([entry])))


@pytest.mark.parametrize("entry", [
    {"name": "arrays/a.npy", "size": "10", "sha256": "0" * 64},
    {"name": "arrays/a.npy", "size": 10.0, "sha256": "0" * 64},
    {"name": "arrays/a.npy", "size": True, "sha256": "0" * 64},
    {"name": "arrays/a.npy", "size": 10, "sha256": "xyz"},
    {"name": "arrays/a.npy", "size": 10},
    {"name": 5, "size": 10, "sha256": "0" * 64},
    "arrays/a.npy",
])
def test_malformed_member_entries(entry):
    with pytest.raises(BundleError, match="malformed member entry"):
        read_bundle(make_zip([], manifest_doc([entry])))


def test_declared_size_over_cap():
    a = npy_bytes(np.zeros(100))
    zipped = make_zip([("arrays/a.npy", a)])
    with pytest.raises(BundleError, match="declares .* bytes; the limit is 500"):
        read_bundle(zipped, max_member_bytes=500)
    # the manifest alone claiming a huge size is refused before the zip is consulted
    entry = member_entry("arrays/a.npy", a) | {"size": 10**12}
    with pytest.raises(BundleError, match="declares 1000000000000 bytes"):
        read_bundle(make_zip([("arrays/a.npy", a)], manifest_doc([entry])))
    with pytest.raises(BundleError, match="total .* more than the limit"):
        read_bundle(zipped, max_total_bytes=600)
    with pytest.raises(BundleError, match="members, more than the limit"):
        read_bundle(zipped, max_members=1)


def test_zip_bomb_two_gigabytes_declared_is_rejected_before_decompressing():
    payload = zlib.compress(b"\0" * (1 << 20))  # what a 2 GB bomb's first MiB looks like
    data = make_zip([("arrays/a.npy", b"\0" * (1 << 20))], compression=zipfile.ZIP_DEFLATED)
    bomb = patch_declared_size(data, "arrays/a.npy", 2_000_000_000)
    assert len(bomb) < 10 * len(payload)
    with pytest.raises(BundleError, match="declares 2000000000 bytes; the limit"):
        read_bundle(bomb)
    # with the size cap lifted, the compression ratio still stops it
    with pytest.raises(BundleError, match="compression ratio"):
        read_bundle(bomb, max_member_bytes=4 << 30, max_total_bytes=8 << 30)


def test_real_zip_bomb_under_the_size_cap_is_rejected_by_ratio():
    zeros = np.zeros(8 << 20, dtype=np.uint8)  # 8 MiB of zeros deflates ~1000:1
    data = make_zip([("arrays/z.npy", npy_bytes(zeros))], compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(BundleError, match="compression ratio"):
        read_bundle(data)
    body, arrays = read_bundle(data, max_compression_ratio=5000)  # an explicit opt-in loads it
    assert arrays["z"].shape == zeros.shape


def test_deflated_members_from_foreign_tools_load():
    a = npy_bytes(np.arange(50.0))
    body, arrays = read_bundle(make_zip([("arrays/a.npy", a)], compression=zipfile.ZIP_DEFLATED))
    np.testing.assert_array_equal(arrays["a"], np.arange(50.0))


def test_unsupported_compression_refused():
    a = npy_bytes(np.arange(5.0))
    with pytest.raises(BundleError, match="compression method"):
        read_bundle(make_zip([("arrays/a.npy", a)], compression=zipfile.ZIP_BZIP2))


def test_member_lying_about_its_size():
    a = npy_bytes(np.arange(100.0))
    doc = manifest_doc([member_entry("arrays/a.npy", a[:200])])
    data = patch_declared_size(make_zip([("arrays/a.npy", a)], doc), "arrays/a.npy", 200)
    with pytest.raises(BundleError):
        read_bundle(data)


def _npy_with_header(header: str, payload: bytes = b"") -> bytes:
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + payload


@pytest.mark.parametrize("npy, match", [
    (npy_bytes(np.array([1, None], dtype=object), allow_pickle=True), "object"),
    (_npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"), "object"),
    (_npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (10**12,), }"),
     "not a valid .npy|bytes follow"),
    (_npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"),
     "bytes follow"),
    (_npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", b"\0" * 16),
     "bytes follow"),
    (_npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }"),
     "not a valid .npy|bytes follow"),
    (_npy_with_header("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }",
                      b"\0" * 8), "dtype"),
    (_npy_with_header("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", b"\0" * 12),
     "unsupported dtype"),
    (_npy_with_header("__import__('os').system('true')"), "not a valid .npy"),
    (b"\x93NUMPY\x09\x00" + b"\0" * 20, "not a valid .npy"),
    # header length cut short: numpy's tokenizer raises tokenize.TokenError (found by fuzzing)
    (b"\x93NUMPY\x01\x00\x30\x00{'descr': '|b1', 'fortran_order': False, 'shape'" + b" " * 40,
     "not a valid .npy"),
    (b"not an npy file at all", "not a valid .npy"),
    (b"", "not a valid .npy"),
])
def test_hostile_npy_members(npy, match):
    with pytest.raises(BundleError, match=match):
        read_bundle(make_zip([("arrays/a.npy", npy)]))


def test_bundle_imports_nothing_above_errors():
    import ast
    import pathlib
    src = pathlib.Path(bundle.__file__).read_text()
    mods = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and node.level:
            mods.add(node.module)
    assert mods == {"errors"}
