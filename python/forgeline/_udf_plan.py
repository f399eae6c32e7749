"""udfs in plans and bundles: what a bundle stores for them and when it may load them.

A bundle is data, never code, with one exception: ``forgeline.udf`` functions. Their
normalised source, signature and checksum travel in the manifest (``features.udfs``), and
:func:`load_udfs` refuses them unless the caller passes ``allow_code=True``, naming every
udf, before any other part of the plan is read. :func:`inspect_bundle` shows them without
compiling or running anything.
"""

from __future__ import annotations

from .errors import BundleError

#: Most udfs one plan may carry.
MAX_UDFS = 1_000


def udf_specs(plan) -> dict:
    """``{key: spec}`` for the udfs a plan's groups use (see :meth:`forgeline.jit.UDF.to_spec`)."""
    arity: dict[str, int] = {}
    for g in plan.groups:
        if g.udf is not None:
            if arity.setdefault(g.udf, len(g.args)) != len(g.args):
                raise BundleError(f"udf {g.udf!r} is used with different argument counts")
    return {key: plan.udfs[key].to_spec(n) for key, n in arity.items()}


def udf_summary(meta) -> list[dict]:
    """Name, key, signature, argument names, source and checksum of each udf in a plan's
    manifest entry (no checks, nothing compiled): what ``inspect`` shows."""
    specs = meta.get("udfs") if isinstance(meta, dict) else None
    if not isinstance(specs, dict):
        return []
    out = []
    for key, spec in specs.items():
        spec = spec if isinstance(spec, dict) else {}
        out.append({"key": str(key), "name": spec.get("name"), "signature": spec.get("signature"),
                    "args": spec.get("args"), "source": spec.get("source"),
                    "imports": spec.get("imports"), "constants": spec.get("constants"),
                    "sha256": spec.get("sha256")})
    return out


def load_udfs(meta, allow_code) -> dict:
    """The udfs of a stored feature plan, compiled; ``{}`` when it has none.

    Raises
    ------
    BundleError
        If the plan has udfs and ``allow_code`` is not True (the message names them), or a
        udf entry is malformed, was modified (checksum) or does not compile.
    """
    specs = meta.get("udfs") if isinstance(meta, dict) else None
    if specs is None:
        return {}
    if not isinstance(specs, dict) or len(specs) > MAX_UDFS:
        raise BundleError("feature plan udf table is malformed")
    if not specs:
        return {}
    names = ", ".join(sorted(repr(s.get("name", k)) if isinstance(s, dict) else repr(k)
                             for k, s in specs.items()))
    if allow_code is False or allow_code is None:
        raise BundleError(
            f"this bundle contains code: user-defined functions (udf) {names}. Loading it "
            "compiles and runs them. Check them with `forgeline inspect MODEL`, then load with "
            "forgeline.load(path, allow_code=True) (CLI: --allow-code) only if you trust the "
            "bundle's source")
    from .jit import UDF, check_spec

    if allow_code == "describe":
        for spec in specs.values():
            check_spec(spec)
        return {str(k): _DescribedUDF(spec["name"]) for k, spec in specs.items()}
    if allow_code is not True:
        raise BundleError(f"allow_code must be True or False, not {allow_code!r}")
    try:
        return {str(k): UDF.from_spec(spec) for k, spec in specs.items()}
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - numba/compile failures of foreign source
        raise BundleError(f"a udf in the bundle does not compile: {exc}") from exc


def check_udf_groups(groups, udfs: dict) -> None:
    """udf groups name a known udf with its arity and read scalar groups that come before
    them (so the native program has no cycles); other groups have no arguments."""
    arity: dict[str, int] = {}
    for gi, g in enumerate(groups):
        if g.udf is None:
            if g.args and not g.product:
                raise BundleError("feature plan group has udf arguments but no udf")
            continue
        if g.udf not in udfs:
            raise BundleError(f"feature plan uses udf {g.udf!r}, which the bundle does not carry")
        if not g.args or any(not 0 <= a < gi for a in g.args):
            raise BundleError("feature plan udf arguments must be earlier groups")
        if any(groups[a].emit != "scalar" for a in g.args):
            raise BundleError("feature plan udf arguments must be scalar groups")
        if arity.setdefault(g.udf, len(g.args)) != len(g.args):
            raise BundleError(f"feature plan uses udf {g.udf!r} with different argument counts")
        if g.source != groups[g.args[0]].source:
            raise BundleError("feature plan udf group must name its first argument's column")


class _DescribedUDF:
    """Stands in for a udf when a bundle is loaded for inspection only."""

    def __init__(self, name: str):
        self.name = name

    def address(self, arity: int) -> int:
        raise BundleError(f"udf {self.name!r} was loaded for inspection only; load the bundle "
                          "with allow_code=True to score")


def inspect_bundle(path) -> dict:
    """What a bundle holds, read without compiling or running any of it.

    Parameters
    ----------
    path : str or path-like
        A ``.forge`` file.

    Returns
    -------
    dict
        ``metadata``, ``schema``, ``plan`` (one line per
        op group), ``model`` (kind, task, feature count or None), ``has_profile``,
        ``needs_allow_code`` and ``udfs`` (name, signature, argument names, source,
        checksum of each user-defined function).

    Raises
    ------
    BundleError
        For an unreadable, corrupted or tampered bundle.
    """
    from .scorer import Scorer, _read_parts

    body, arrays = _read_parts(path)
    scorer = Scorer.from_parts(body, arrays, allow_code="describe")
    udfs = udf_summary(body.get("features"))
    model = scorer.model
    return {
        "metadata": scorer.metadata, "schema": scorer.schema.to_dict(),
        "plan": scorer.features.describe(),
        "model": None if model is None else {"kind": model.kind, "task": model.task,
                                             "n_features": model.n_features},
        "has_profile": scorer.profile is not None,
        "needs_allow_code": bool(udfs), "udfs": udfs,
    }
