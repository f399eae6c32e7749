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
from pathlib import Path

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


# --------------------------------------------------------------------------- hostile content
# The container is valid (checksums recomputed) but the content is hostile: what an attacker
# who can recompute SHA-256 can do. Loading must raise a ForgelineError or give a Scorer
# whose predictions succeed or raise a ForgelineError. Runs in a subprocess so that a crash
# in the native code fails this test instead of killing the test run.

_SYSTEMATIC = r'''
import sys, copy, numpy as np, pandas as pd
import forgeline as fl
from forgeline.errors import ForgelineError
from forgeline.scorer import Scorer

scorer = fl.load(sys.argv[1])
sample = pd.read_pickle(sys.argv[2]) if sys.argv[2].endswith(".pkl") else None
body, arrays = scorer.to_parts()
problems = []

def attempt(label, b, a):
    print("TRY", label, flush=True)
    try:
        s = Scorer.from_parts(b, a)
    except ForgelineError:
        return
    except BaseException as exc:
        problems.append(f"{label}: load raised {type(exc).__name__}: {str(exc)[:120]}")
        return
    for X in (sample, sample.iloc[:1]):
        try:
            s.predict_raw(X, n_threads=2)
        except ForgelineError:
            pass
        except BaseException as exc:
            problems.append(f"{label}: predict raised {type(exc).__name__}: {str(exc)[:120]}")

def leaves(node, path=()):
    if isinstance(node, dict):
        for k in sorted(node):
            yield from leaves(node[k], path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            yield from leaves(v, path + (i,))
    else:
        yield path

def set_path(root, path, value):
    for p in path[:-1]:
        root = root[p]
    root[path[-1]] = value

for path in list(leaves(body)):
    if path[0] in ("metadata", "profile"):
        continue
    for value in (-1, 2**31, 10**12, 1e300, None, "x", [], {"a": 1}):
        b = copy.deepcopy(body)
        set_path(b, path, value)
        attempt(f"body{list(path)}={value!r}", b, arrays)
for top in ("metadata", "schema", "features", "model"):
    for value in (5, [1], "x"):
        b = copy.deepcopy(body)
        b[top] = value
        attempt(f"body[{top!r}]={value!r}", b, arrays)
for name in sorted(arrays):
    a0 = arrays[name]
    variants = [("empty", a0[:0]), ("dtype-f4", a0.astype(np.float32)),
                ("dtype-i8", a0.astype(np.int64) if a0.dtype.kind in "iub" else a0.astype(np.float64))]
    if a0.size:
        variants.append(("shorter", a0.reshape(-1)[:-1]))
        for v in (-1, 2**31 - 1, 10**12):
            a = a0.copy().reshape(-1)
            if a.dtype.kind in "iu":
                info = np.iinfo(a.dtype)
                v = min(max(v, info.min), info.max)
            a[a.size // 2] = v
            variants.append((f"mid={v}", a.reshape(a0.shape)))
        if a0.dtype.kind in "iu":  # index 0 is the first tree's root: a split node
            for v in (-1, 2**31 - 1):
                a = a0.copy().reshape(-1)
                info = np.iinfo(a.dtype)
                a[0] = min(max(v, info.min), info.max)
                variants.append((f"first={a[0]}", a.reshape(a0.shape)))
            # every bit set (e.g. node flags: bits the format does not define)
            variants.append(("all-bits", np.full(a0.shape, np.iinfo(a0.dtype).max, a0.dtype)))
        if a0.dtype.kind == "f":
            a = a0.copy().reshape(-1); a[0] = np.nan
            variants.append(("nan", a.reshape(a0.shape)))
    for label, a in variants:
        arr = dict(arrays)
        arr[name] = a
        attempt(f"{name}:{label}", body, arr)
print("PROBLEMS", len(problems))
for p in problems:
    print(p)
'''


def test_load_rejects_hostile_content(tmp_path, churn_scorer, churn_data):
    import subprocess
    import sys

    import forgeline

    from forgeline import _demo

    path = tmp_path / "m.forge"
    churn_scorer.save(path)
    _, current = churn_data
    current.drop(columns=[_demo.TARGET, _demo.ID]).iloc[:50].to_pickle(tmp_path / "x.pkl")
    env = dict(os.environ, PYTHONPATH=str(Path(forgeline.__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", _SYSTEMATIC, str(path), str(tmp_path / "x.pkl")],
                          capture_output=True, text=True, timeout=600, env=env)
    tried = [ln for ln in proc.stdout.splitlines() if ln.startswith("TRY ")]
    assert proc.returncode == 0, (f"crashed (exit {proc.returncode}) on {tried[-1:]}\n"
                                  f"{proc.stderr[-2000:]}")
    report = proc.stdout[proc.stdout.index("PROBLEMS"):]
    assert report.startswith("PROBLEMS 0"), report


_FLAGS_CRASH = r'''
import numpy as np, pandas as pd, lightgbm as lgb
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
import forgeline as fl
from forgeline.errors import ForgelineError
from forgeline.scorer import Scorer

rng = np.random.default_rng(0)
n = 400
X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                  "c": rng.choice(["x", "y", "z"], size=n)})
X.loc[::17, "a"] = np.nan
y = (X["b"] + (X["c"] == "y") > 0.3).astype(int)
pre = ColumnTransformer([("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]),
                          ["a", "b"]),
                         ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"])])
pipe = Pipeline([("pre", pre), ("m", lgb.LGBMClassifier(n_estimators=5, num_leaves=7, verbose=-1,
                                                       n_jobs=1, random_state=0))]).fit(X, y)
body, arrays = fl.compile(pipe, X.iloc[:200]).to_parts()
flags = arrays["model.flags"].copy()
flags[0] = 0x7FFFFFFF  # bits the node format does not define, on the first root
arrays["model.flags"] = flags
try:
    Scorer.from_parts(body, arrays).predict_raw(X.iloc[:40], n_threads=2)
except ForgelineError:
    pass
print("OK")
'''


def test_regression_undefined_node_flag_bits_do_not_crash():
    """Found by fuzz/fuzz_load.py: a node with undefined flag bits made predict read out of
    bounds (SIGSEGV). Loading must refuse it, or scoring must be safe."""
    import subprocess
    import sys

    import forgeline

    env = dict(os.environ, PYTHONPATH=str(Path(forgeline.__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", _FLAGS_CRASH], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), \
        f"exit {proc.returncode}\n{proc.stderr[-1500:]}"
