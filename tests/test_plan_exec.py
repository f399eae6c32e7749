"""The native plan executor's fast paths against numpy: the vectorised short-table
searchsorted, the per-tile batched log1p, and the perfect-hash string vocabulary. Every path
(dense executor, CSR builder, fused linear head) must give the same values for any thread
count and any row count (tails of tiles and blocks included)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeline._native import core
from forgeline.plan import FeaturePlan, Group, OpSpec, Sym, register_numpy_loops

SIZES = [1, 7, 63, 64, 65, 255, 256, 257, 700, 2049, 4500]


def _program(groups, n_inputs):
    inputs = [(f"x{i}", "numeric") for i in range(n_inputs)]
    fp = FeaturePlan(inputs, groups, [Sym(i) for i in range(len(groups))],
                     [f"f{i}" for i in range(len(groups))])
    return fp.program().native


def _all_paths(prog, cols, n, threads):
    """Dense, CSR (densified) and fused (unit weight per group, zero bias: the margin is
    accumulated by the head, so it is compared to a numpy sum in group order)."""
    kinds = np.zeros(len(cols), np.int32)
    dense = prog.run(cols, kinds, n, threads)
    data, indices, indptr, nnz = core._tf_run_csr(prog, cols, kinds, n, threads)
    csr = np.zeros_like(dense)
    for r in range(n):
        sl = slice(indptr[r], indptr[r + 1])
        csr[r, indices[sl]] = data[sl]
    assert indptr[-1] == nnz
    g = dense.shape[1]
    head = core.FusedLinear(prog, 1, np.arange(g, dtype=np.int64), np.ones(g), np.zeros(1), False)
    margin, bad = head.run(cols, kinds, n, threads)
    return dense, csr, margin[:, 0]


def _row_sum(dense):
    m = np.zeros(dense.shape[0])
    for j in range(dense.shape[1]):
        m = m + dense[:, j]
    return m


def _edges(rng, length):
    t = np.sort(rng.normal(0, 2, length))
    if length > 3:
        t[1] = t[2]  # a tie inside the table
        t[-1] = np.inf
    return t


@pytest.mark.parametrize("length", [1, 2, 15, 31, 32, 33, 64, 65])
@pytest.mark.parametrize("threads", [1, 2])
def test_searchsorted_short_tables_match_numpy(length, threads):
    rng = np.random.default_rng(length)
    table = _edges(rng, length)
    prog = _program([Group("x0", [OpSpec("searchsorted_right", table=tuple(table))])], 1)
    for n in SIZES:
        x = rng.normal(0, 2, n)
        special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, table[0], table[-1],
                            np.nextafter(table[0], -np.inf), 5e-324])
        k = min(n, special.size)
        x[rng.choice(n, k, replace=False)] = special[:k]
        want = np.searchsorted(table, x, side="right").astype(np.float64)
        want[np.isnan(x)] = length
        dense, csr, margin = _all_paths(prog, [x], n, threads)
        np.testing.assert_array_equal(dense[:, 0], want)
        np.testing.assert_array_equal(csr[:, 0], want)
        np.testing.assert_array_equal(margin, want)


def _log1p_groups():
    # batched: log1p last with nothing that can raise before it; not batched: log1p not
    # last, or a check op ahead of it
    return [
        (Group("x0", [OpSpec("impute", 0.5), OpSpec("log1p")]),
         lambda x: np.log1p(np.where(np.isnan(x), 0.5, x))),
        (Group("x1", [OpSpec("log1p")]), np.log1p),
        (Group("x0", [OpSpec("mul", 2.0), OpSpec("log1p"), OpSpec("mul", 3.0)]),
         lambda x: np.log1p(x * 2.0) * 3.0),
        (Group("x1", [OpSpec("impute", 1.0), OpSpec("add", 1.0), OpSpec("clip", -0.5, 7.0),
                      OpSpec("log1p")]),
         lambda x: np.log1p(np.clip(np.where(np.isnan(x), 1.0, x) + 1.0, -0.5, 7.0))),
        (Group("x2", [OpSpec("replace_inf"), OpSpec("impute", 3.0), OpSpec("log1p")]),
         lambda x: np.log1p(np.where(np.isnan(np.where(np.isinf(x), np.nan, x)), 3.0,
                                     np.where(np.isinf(x), np.nan, x)))),
    ]


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_log1p_bit_identical_to_numpy(threads):
    assert register_numpy_loops()
    rng = np.random.default_rng(5)
    specs = _log1p_groups()
    prog = _program([g for g, _ in specs], 3)
    special = np.array([np.nan, np.inf, -np.inf, -1.0, -2.0, -0.0, 0.0, 5e-324, -5e-324,
                        2.2250738585072014e-308, 1e-300, 1e300, 1.7976931348623157e308,
                        -0.9999999999999999, 1e-17, 0.5])
    for n in SIZES:
        cols = [rng.lognormal(0, 1, n) - 0.3 for _ in range(3)]
        for c in cols:
            c[rng.random(n) < 0.1] = np.nan
            k = min(n, special.size)
            c[rng.choice(n, k, replace=False)] = special[:k]
        with np.errstate(all="ignore"):
            want = np.column_stack([f(cols[int(g.source[1])]) for g, f in specs])
            dense, csr, margin = _all_paths(prog, cols, n, threads)
            np.testing.assert_array_equal(dense, want)
            np.testing.assert_array_equal(csr, want)
            np.testing.assert_array_equal(margin, _row_sum(want))


def test_check_op_before_log1p_still_raises():
    prog = _program([Group("x0", [OpSpec("impute", 0.0), OpSpec("log1p")]),
                     Group("x1", [OpSpec("check_finite"), OpSpec("log1p")])], 2)
    x = np.ones(300)
    y = np.ones(300)
    y[299] = np.inf
    for threads in (1, 2):
        with pytest.raises(ValueError, match="check failed in plan group 1: infinity"):
            prog.run([x, y], np.zeros(2, np.int32), 300, threads)


def test_results_do_not_depend_on_thread_count_or_row_offset():
    rng = np.random.default_rng(9)
    table = tuple(np.sort(rng.normal(size=15)))
    groups = [g for g, _ in _log1p_groups()] + [
        Group("x2", [OpSpec("impute", 0.1), OpSpec("searchsorted_right", table=table)])]
    prog = _program(groups, 3)
    n = 5000
    cols = [rng.lognormal(0, 1, n) for _ in range(3)]
    for c in cols:
        c[rng.random(n) < 0.05] = np.nan
    with np.errstate(all="ignore"):
        ref = _all_paths(prog, cols, n, 1)
        for threads in (2, 3, 8):
            for a, b in zip(ref, _all_paths(prog, cols, n, threads)):
                np.testing.assert_array_equal(a, b)
        # a row computed inside a later tile equals the same row computed first
        part = _all_paths(prog, [c[1234:] for c in cols], n - 1234, 2)
        for a, b in zip(ref, part):
            np.testing.assert_array_equal(a[1234:], b)


def _codes(voc, arr):
    validity, offsets, data = arr.buffers()
    wide = arr.type == pa.large_string()
    off = np.frombuffer(offsets, np.int64 if wide else np.int32)[arr.offset:arr.offset + len(arr) + 1]
    dat = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    valid = np.frombuffer(validity, np.uint8) if validity is not None else None
    return voc.codes(off, dat, valid, arr.offset, len(arr))


def _want(vocab, values):
    first = {}
    for i, v in enumerate(vocab):
        first.setdefault(v.encode("utf-8"), i)
    return [-1 if v is None else first.get(v.encode("utf-8"), -2) for v in values]


_text = st.text(alphabet=st.sampled_from(list("ab\x00\u00e9z")), max_size=11)


@settings(max_examples=60, deadline=None)
@given(vocab=st.lists(_text, max_size=40),
       extra=st.lists(st.one_of(st.none(), _text), max_size=30),
       start=st.integers(0, 3), wide=st.booleans())
def test_string_vocabulary_matches_first_position(vocab, extra, start, wide):
    voc = core.StringVocabulary(vocab)
    values = [None, "zzzzzzzzz", *vocab, *extra]
    arr = pa.array(values, type=pa.large_string() if wide else pa.string()).slice(start)
    np.testing.assert_array_equal(_codes(voc, arr), _want(vocab, values[start:]))


@pytest.mark.parametrize("size", [30, 1000, 5000])
def test_string_vocabulary_large_short_vocabularies(size):
    # 5000 short values need a table past the perfect-hash cap: the probing path answers
    vocab = [f"v{k}" for k in range(size)] + ["12345678", "123456789"]
    voc = core.StringVocabulary(vocab)
    rng = np.random.default_rng(size)
    values = [vocab[i] for i in rng.integers(0, len(vocab), 3000)] + ["v-1", "", "1234567", None]
    arr = pa.array(values, type=pa.large_string())
    np.testing.assert_array_equal(_codes(voc, arr), _want(vocab, values))


@pytest.mark.parametrize("bad_row", [0, 10, 1023, 1024, 3000, 8191])
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_csr_failure_in_any_chunk_raises_without_hanging(bad_row, threads):
    # later chunks may be waiting for the failing chunk's entry count: they must give up
    prog = _program([Group("x0", [OpSpec("impute", 0.0), OpSpec("log1p")]),
                     Group("x1", [OpSpec("check_finite")])], 2)
    n = 8192
    x = np.ones(n)
    y = np.ones(n)
    y[bad_row] = np.inf
    with pytest.raises(ValueError, match="check failed in plan group 1: infinity"):
        core._tf_run_csr(prog, [x, y], np.zeros(2, np.int32), n, threads)
    y[bad_row] = 0.0  # dropped as an explicit zero, as scipy does
    data, indices, indptr, nnz = core._tf_run_csr(prog, [x, y], np.zeros(2, np.int32), n, threads)
    assert nnz == 2 * n - 1 and indptr[-1] == nnz
    assert indptr[bad_row + 1] - indptr[bad_row] == 1


def _index_in(values, vocab):
    import pyarrow.compute as pc
    idx = pc.index_in(values, value_set=pa.array(list(vocab), type=pa.string()))
    codes = np.array(pc.fill_null(idx, -2).to_numpy(zero_copy_only=False), dtype=np.int32)
    codes[np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = -1
    return codes


@settings(max_examples=40, deadline=None)
@given(vocab=st.lists(_text, min_size=1, max_size=20),
       chunks=st.lists(st.lists(st.one_of(st.none(), _text), max_size=15), min_size=1, max_size=3),
       start=st.integers(0, 2), wide=st.booleans())
def test_arrow_string_codes_equal_arrow_index_in(vocab, chunks, start, wide):
    from forgeline._fastinput import arrow_string_codes

    typ = pa.large_string() if wide else pa.string()
    arrs = [pa.array(c, type=typ) for c in chunks]
    arrs[0] = arrs[0].slice(min(start, len(arrs[0])))
    values = pa.chunked_array(arrs, type=typ)
    vocab = tuple(vocab)
    np.testing.assert_array_equal(arrow_string_codes(values, vocab), _index_in(values, vocab))
    np.testing.assert_array_equal(arrow_string_codes(arrs[0], vocab), _index_in(arrs[0], vocab))


def test_arrow_string_codes_declines_other_inputs():
    from forgeline._fastinput import arrow_string_codes

    assert arrow_string_codes(pa.array(["a"]), (1, 2)) is None  # not a vocabulary of str
    assert arrow_string_codes(pa.array(["a"]), ()) is None
    assert arrow_string_codes(pa.array([1, 2]), ("a",)) is None  # not a string array
    assert arrow_string_codes(pa.array([], type=pa.string()), ("a",)).shape == (0,)


_short = st.text(alphabet=st.sampled_from(["a", "b", "v", "1", "é", "\x00"]), max_size=9)


@settings(max_examples=60, deadline=None)
@given(vocab=st.lists(_short, min_size=1, max_size=40, unique=True),
       values=st.lists(st.one_of(st.none(), _short), min_size=0, max_size=300),
       start=st.integers(0, 11), wide=st.booleans())
def test_string_codes_short_values_equal_index_in(vocab, values, start, wide):
    """Long columns of short values (the whole-word path), values over 8 bytes, words at the
    buffer's end, sliced offsets and nulls, with 32- and 64-bit offsets."""
    from forgeline._fastinput import arrow_string_codes

    typ = pa.large_string() if wide else pa.string()
    arr = pa.array(values, type=typ).slice(min(start, len(values)))
    np.testing.assert_array_equal(arrow_string_codes(arr, tuple(vocab)), _index_in(arr, tuple(vocab)))


def test_string_codes_large_column():
    from forgeline._fastinput import arrow_string_codes

    rng = np.random.default_rng(5)
    vocab = tuple(f"v{k}" for k in range(30)) + ("a-long-category-name",)
    pool = np.array(list(vocab) + ["v30", "", "zz"], dtype=object)
    vals = pool[rng.integers(0, len(pool), 50_000)].tolist()
    for i in rng.integers(0, len(vals), 500):
        vals[i] = None
    for typ in (pa.string(), pa.large_string()):
        arr = pa.array(vals, type=typ)
        np.testing.assert_array_equal(arrow_string_codes(arr, vocab), _index_in(arr, vocab))


@pytest.mark.parametrize("offsets", [[0, 1_000_000, 5], [0, 3, 2, 5], [0, 2, 9]])
def test_string_codes_refuse_offsets_outside_the_buffer(offsets):
    """Only the first and last offsets are checked up front; a bad one in the middle must be
    refused before any read goes past the data buffer."""
    voc = core.StringVocabulary(["ab", "a-long-value-here"])
    data = np.frombuffer(b"abcde", dtype=np.uint8)
    off = np.array(offsets, dtype=np.int64)
    with pytest.raises(ValueError, match="offsets"):
        voc.codes(off, data, None, 0, len(offsets) - 1)
