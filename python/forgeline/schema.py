"""Schema: the column names, order, kinds and vocabularies a model was fitted on.

It is captured at fit/compile time with :meth:`Schema.infer` and enforced at every scoring
call with :meth:`Schema.validate`. Extra columns are ignored and column order does not
matter; a missing column, a kind that cannot be coerced, or a column of the wrong length
raises :class:`~forgeline.SchemaError`, which names every offending column at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import _frame
from ._frame import CATEGORICAL, KINDS, NUMERIC, Frame
from .errors import InputError, LimitError, SchemaError

SCHEMA_VERSION = 1
#: Largest vocabulary a schema accepts; guards against hostile bundles and id-like columns.
MAX_VOCABULARY = 1_000_000


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a schema.

    Attributes
    ----------
    name : str
    kind : {"numeric", "categorical", "boolean", "datetime"}
    dtype : str
        Float dtype the column was seen with (``"float32"`` or ``"float64"``); empty for
        non-numeric kinds.
    vocabulary : tuple or None
        Sorted categories (str or int) for categorical columns.
    """

    name: str
    kind: str
    dtype: str = ""
    vocabulary: tuple | None = None

    def to_dict(self) -> dict:
        d: dict = {"name": self.name, "kind": self.kind}
        if self.dtype:
            d["dtype"] = self.dtype
        if self.vocabulary is not None:
            d["vocabulary"] = [v.item() if isinstance(v, np.generic) else v for v in self.vocabulary]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> ColumnSpec:
        try:
            name, kind = d["name"], d["kind"]
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"malformed schema column entry: {d!r}") from exc
        if not isinstance(name, str) or kind not in KINDS:
            raise SchemaError(f"malformed schema column entry: {d!r}")
        vocab = d.get("vocabulary")
        if vocab is not None:
            if not isinstance(vocab, list) or not all(
                    isinstance(v, (str, int)) and not isinstance(v, bool) for v in vocab):
                raise SchemaError(f"column {name!r}: vocabulary must be a list of str or int",
                                  column=name)
            if any(isinstance(v, int) and not -2**63 <= v < 2**63 for v in vocab):
                raise SchemaError(f"column {name!r}: vocabulary holds integers outside the int64 "
                                  "range", column=name)
            if len(vocab) > MAX_VOCABULARY:
                raise LimitError(f"column {name!r}: vocabulary of {len(vocab)} entries exceeds "
                                 f"the limit of {MAX_VOCABULARY}")
            vocab = tuple(vocab)
        dtype = d.get("dtype", "")
        if dtype not in ("", "float32", "float64"):
            raise SchemaError(f"column {name!r}: unsupported dtype {dtype!r}", column=name)
        return cls(name, kind, dtype, vocab)


class Schema:
    """Ordered column specifications; see the module docstring."""

    def __init__(self, columns: Sequence[ColumnSpec]):
        self._columns = list(columns)
        self._by_name = {c.name: c for c in self._columns}
        if len(self._by_name) != len(self._columns):
            raise SchemaError("schema has duplicate column names")

    # ------------------------------------------------------------------ construction
    @classmethod
    def infer(cls, data, *, max_categories: int = MAX_VOCABULARY) -> Schema:
        """Capture names, order, kinds and vocabularies from a frame.

        Parameters
        ----------
        data
            Any input :func:`forgeline._frame.to_frame` accepts, or a converted Frame.
        max_categories : int
            A categorical column with more distinct values raises
            :class:`~forgeline.LimitError` (it is probably an id column).
        """
        frame = data if isinstance(data, Frame) else _frame.to_frame(data)
        specs = []
        for col in frame.columns:
            vocab = col.vocabulary
            if vocab is not None and len(vocab) > max_categories:
                raise LimitError(f"column {col.name!r} has {len(vocab)} categories, more than "
                                 f"max_categories={max_categories}")
            dtype = str(col.values.dtype) if col.kind == NUMERIC else ""
            specs.append(ColumnSpec(col.name, col.kind, dtype, vocab))
        return cls(specs)

    @classmethod
    def from_dict(cls, d: Mapping) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output."""
        if not isinstance(d, Mapping) or not isinstance(d.get("columns"), list):
            raise SchemaError("malformed schema: expected a mapping with a 'columns' list")
        version = d.get("version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise SchemaError(f"schema version {version!r} is newer than this forgeline "
                              f"supports ({SCHEMA_VERSION}); upgrade forgeline")
        return cls([ColumnSpec.from_dict(c) for c in d["columns"]])

    def to_dict(self) -> dict:
        """A JSON-safe dict; :meth:`from_dict` inverts it."""
        return {"version": SCHEMA_VERSION, "columns": [c.to_dict() for c in self._columns]}

    # ------------------------------------------------------------------ access
    @property
    def names(self) -> list[str]:
        return [c.name for c in self._columns]

    @property
    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self._columns}

    @property
    def vocabularies(self) -> dict[str, tuple]:
        return {c.name: c.vocabulary for c in self._columns if c.vocabulary is not None}

    def __len__(self) -> int:
        return len(self._columns)

    def __iter__(self) -> Iterator[ColumnSpec]:
        return iter(self._columns)

    def __getitem__(self, name: str) -> ColumnSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(f"schema has no column {name!r}", column=name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self._columns == other._columns

    def __repr__(self) -> str:
        parts = ", ".join(f"{c.name}:{c.kind}" for c in self._columns[:8])
        more = "" if len(self._columns) <= 8 else f", ... (+{len(self._columns) - 8})"
        return f"Schema({parts}{more})"

    # ------------------------------------------------------------------ enforcement
    def validate(self, data, *, float_dtype=None) -> Frame:
        """Check ``data`` against the schema and convert it.

        Returns a :class:`Frame` with exactly the schema's columns, in schema order, encoded
        with the schema's vocabularies (unseen categories get ``UNSEEN_CODE``).

        Raises
        ------
        SchemaError
            Listing every missing column, every column whose kind cannot be coerced, and
            every column whose length differs from the others.
        """
        float_dtype = _frame.check_float_dtype(float_dtype)
        raw, _ = _frame._raw_columns(data)
        by_name = dict(raw)
        problems: dict[str, str] = {}
        for spec in self._columns:
            if spec.name not in by_name:
                problems[spec.name] = "missing"
        converted: list[_frame.Column] = []
        for spec in self._columns:
            if spec.name not in by_name:
                continue
            try:
                converted.append(_frame._convert(spec.name, by_name[spec.name], float_dtype,
                                                 spec.kind, spec.vocabulary))
            except SchemaError as exc:
                problems[spec.name] = exc.problems.get(spec.name, str(exc))
            except InputError as exc:
                problems[spec.name] = str(exc)
        if converted:
            lengths = [len(c) for c in converted]
            n_rows = max(set(lengths), key=lengths.count)
            for c in converted:
                if len(c) != n_rows:
                    problems[c.name] = f"has {len(c)} rows, expected {n_rows}"
        else:
            n_rows = int(data.shape[0]) if isinstance(data, np.ndarray) else 0
        if problems:
            missing = [n for n, p in problems.items() if p == "missing"]
            others = [f"{n!r}: {p}" for n, p in problems.items() if p != "missing"]
            parts = []
            if missing:
                parts.append(_frame._missing_message(missing))
            parts.extend(others)
            raise SchemaError("input does not match the schema: " + "; ".join(parts),
                              column=next(iter(problems)), problems=problems)
        for c in converted:
            if c.kind == CATEGORICAL and c.vocabulary is None:  # pragma: no cover - defensive
                raise SchemaError(f"column {c.name!r} lost its vocabulary", column=c.name)
        return Frame(converted, n_rows)
