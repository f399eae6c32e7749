"""Fuzzing ``read_bundle`` with mutated valid bundles.

The property: a mutated bundle gives a ``BundleError`` or, when the mutation only touched
bytes that carry no content (zip timestamps, attributes, trailing bytes), exactly the
original content. Never another exception, a hang, or a huge allocation. Mutations that
rewrite the manifest consistently (valid checksums) must give a BundleError or a result
that matches what the manifest declares.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _bundle_helpers import make_zip, member_entry, npy_bytes
from forgeline import BundleError
from forgeline.bundle import read_bundle, write_bundle

FUZZ = settings(max_examples=int(os.environ.get("FORGELINE_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Small caps so that any accidental "trust the header" bug would show up as a failure to
# refuse rather than as a slow test.
LIMITS = {"max_member_bytes": 1 << 20, "max_total_bytes": 4 << 20, "max_members": 64}


def _array_strategy():
    return hnp.arrays(
        st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes()),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
              st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10)


@st.composite
def valid_bundles(draw, tmp_dir):
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_.\-]{0,6}", fullmatch=True)
                          .filter(lambda n: ".." not in n), max_size=3, unique=True))
    arrays = {n: draw(_array_strategy()) for n in names}
    body = draw(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
    path = os.path.join(tmp_dir, "fuzz.forge")
    write_bundle(path, body, arrays, created="2026-01-01T00:00:00Z")
    with open(path, "rb") as f:
        data = f.read()
    return data, read_bundle(data)


def _same(result, expected) -> None:
    body, arrays = result
    exp_body, exp_arrays = expected
    assert body == exp_body
    assert arrays.keys() == exp_arrays.keys()
    for k, a in exp_arrays.items():
        b = arrays[k]
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in ops:
        if not buf:
            break
        i = pos % len(buf)
        if op == "flip":
            buf[i] ^= (arg % 255) + 1
        elif op == "set":
            buf[i] = arg % 256
        elif op == "insert":
            buf[i:i] = bytes([arg % 256]) * (1 + arg % 7)
        elif op == "delete":
            del buf[i:i + 1 + arg % 16]
        elif op == "truncate":
            del buf[i:]
        elif op == "append":
            buf += bytes([arg % 256]) * (1 + arg % 40)
        elif op == "int32":  # overwrite 4 bytes with an extreme value (sizes, offsets)
            buf[i:i + 4] = (0xFFFFFFFF if arg % 2 else 0x7FFFFFFF).to_bytes(4, "little")
    return bytes(buf)


mutations = st.lists(st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append", "int32"]),
    st.integers(0, 1 << 20), st.integers(0, 1 << 16)), min_size=1, max_size=4)


@FUZZ
@given(data=st.data(), ops=mutations)
def test_fuzz_byte_mutations(tmp_path, data, ops):
    raw, expected = data.draw(valid_bundles(str(tmp_path)))
    bad = _mutate(raw, ops)
    try:
        result = read_bundle(bad, **LIMITS)
    except BundleError:
        return
    _same(result, expected)


HOSTILE_NAMES = ["/abs.npy", "../x.npy", "arrays/../x.npy", "arrays\\x.npy", "arrays/x.npy/",
                 "manifest.json", "arrays/.npy", "arrays/x.pkl", "x.npy", "arrays//x.npy",
                 "C:/x.npy", "arrays/x\x00.npy", "arrays/é.npy", "arrays/" + "a" * 300 + ".npy"]


@FUZZ
@given(data=st.data(), new_name=st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=12)),
       which=st.integers(0, 10), rename_in_manifest=st.booleans())
def test_fuzz_member_renames(tmp_path, data, new_name, which, rename_in_manifest):
    raw, expected = data.draw(valid_bundles(str(tmp_path)))
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        members = [(i.filename, zf.read(i.filename)) for i in zf.infolist()]
        doc = json.loads(zf.read("manifest.json"))
    idx = which % len(members)
    old = members[idx][0]
    members[idx] = (new_name, members[idx][1])
    if old == "manifest.json":
        doc = False  # the manifest itself was renamed: write the zip without one
    elif rename_in_manifest:
        for m in doc["members"]:
            if m["name"] == old:
                m["name"] = new_name
    entries = [(n, d) for i, (n, d) in enumerate(members) if i == idx or n != "manifest.json"]
    try:
        bad = make_zip(entries, manifest=doc)
    except (ValueError, UnicodeEncodeError):
        return  # zipfile itself cannot write that name
    try:
        result = read_bundle(bad, **LIMITS)
    except BundleError:
        return
    # Only a harmless rename can load: same name, or a safe array name consistently renamed.
    body, arrays = result
    assert body == expected[0]
    if new_name == old:
        _same(result, expected)
    else:
        assert rename_in_manifest and new_name.startswith("arrays/") and new_name.endswith(".npy")
        stem = new_name[len("arrays/"):-len(".npy")]
        assert "/" not in stem and ".." not in stem and "\\" not in stem
        assert stem in arrays


@FUZZ
@given(data=st.data(), field=st.sampled_from(["format", "format_version", "members", "body",
                                              "size", "sha256", "name", "extra_member"]),
       value=json_values)
def test_fuzz_manifest_values(tmp_path, data, field, value):
    """Rewrite one manifest field with an arbitrary JSON value; the zip stays consistent."""
    raw, expected = data.draw(valid_bundles(str(tmp_path)))
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        doc = json.loads(zf.read("manifest.json"))
        entries = [(i.filename, zf.read(i.filename)) for i in zf.infolist()
                   if i.filename != "manifest.json"]
    if field in ("size", "sha256", "name"):
        if not doc["members"]:
            return
        doc["members"][0][field] = value
    elif field == "extra_member":
        extra = npy_bytes(np.arange(3))
        entries.append(("arrays/zz_extra.npy", extra))
        doc["members"].append(member_entry("arrays/zz_extra.npy", extra) | {"size": value})
    else:
        doc[field] = value
    try:
        result = read_bundle(make_zip(entries, manifest=doc), **LIMITS)
    except BundleError:
        return
    body, arrays = result
    assert isinstance(body, dict)
    for a in arrays.values():
        assert isinstance(a, np.ndarray) and not a.dtype.hasobject


@FUZZ
@given(arr=_array_strategy(), data=st.data())
def test_fuzz_npy_header_mutations(arr, data):
    """Valid checksums over a mutated .npy: the header parser itself is under attack."""
    npy = bytearray(npy_bytes(arr))
    header_end = npy.index(b"\n") + 1
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, header_end - 1))
        npy[i] = data.draw(st.sampled_from(list(b"0123456789(),' {}:FTrue<>|fibuOVSU-\n\x00\xff")))
    try:
        _, arrays = read_bundle(make_zip([("arrays/a.npy", bytes(npy))]), **LIMITS)
    except BundleError:
        return
    out = arrays["a"]
    assert not out.dtype.hasobject and out.dtype.kind in "biufc"
    assert out.nbytes <= len(npy)
