"""User-defined feature functions (``forgeline.udf``), compiled with Numba, called natively.

``udf(fn)`` wraps a scalar Python function of ``k`` float arguments. On first use it is
compiled with Numba (imported lazily: the package works without Numba, only UDFs need it)
into a C-callable block function ``int64(double* in, int64 m, int64 k, double* out)`` that
the C++ kernels call over row blocks in parallel, with the GIL released. The block returns 1;
any other value means the function raised (Numba's cfunc wrapper returns 0 then, after
taking the GIL only to report the exception). Arithmetic follows numpy's error model
(division by zero gives inf/NaN, it does not raise), as a vectorised pipeline would.

This module imports neither scikit-learn nor :mod:`forgeline.transforms`, so loading a
bundle with udfs needs only forgeline, numpy and numba.

For bundles, :meth:`UDF.to_spec` captures the function's source (normalised with ``ast``,
decorators removed), its signature and the module/number globals it reads; and
:meth:`UDF.from_spec` recompiles one. A function whose source cannot be recovered or that
reads any other global cannot be saved, and the error says which global.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import inspect
import json
import math
import textwrap
import types as _pytypes

import numpy as np

from .errors import BundleError, DataError, InputError

#: Modules a saved udf may read as globals (name in the source -> module).
ALLOWED_MODULES = {"math": math, "numpy": np}
# checksum -> UDF compiled from a bundle spec (see UDF.from_spec)
_FROM_SPEC: dict[str, UDF] = {}


class UDF:
    """A scalar function ``f(x1, ..., xk) -> float`` that forgeline compiles with Numba.

    Called with scalars it is the Python function. Called with one 2-D array (what
    ``sklearn.preprocessing.FunctionTransformer(func=udf)`` does) it applies the compiled
    function row by row and returns an ``(n, 1)`` float64 array.
    """

    def __init__(self, fn, name: str | None = None):
        if not callable(fn):
            raise InputError(f"udf needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "udf")
        self._compiled: dict[int, object] = {}

    def __call__(self, *args):
        if len(args) == 1 and getattr(args[0], "ndim", 0) == 2:
            return self.apply(args[0])
        return self.fn(*args)

    def __repr__(self) -> str:
        return f"udf({self.name})"

    def address(self, arity: int) -> int:
        """Address of the compiled block function for ``arity`` input columns."""
        if arity not in self._compiled:
            self._compiled[arity] = _compile(self.fn, arity)
        return self._compiled[arity].address

    def apply(self, X, n_threads: int = 0) -> np.ndarray:
        """Run the compiled function over the rows of 2-D ``X``; returns ``(n, 1)`` float64."""
        from ._native import core

        try:
            A = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"udf {self.name!r} needs numeric input: {exc}") from None
        if A.ndim != 2:
            raise InputError(f"udf {self.name!r} needs a 2-D input, got {A.ndim}-D")
        cols = [np.ascontiguousarray(A[:, j]) for j in range(A.shape[1])]
        try:
            out = core._tf_udf(cols, self.address(A.shape[1]), A.shape[0], n_threads)
        except ValueError as exc:
            raise DataError(f"udf {self.name!r} raised while scoring: {exc}") from None
        return out.reshape(-1, 1)

    def __reduce__(self):
        return (UDF, (self.fn, self.name))

    # ------------------------------------------------------------------ bundles
    def to_spec(self, arity: int) -> dict:
        """The JSON-safe description a bundle stores: normalised source, the function name
        in it, the signature, the globals it reads, and a SHA-256 over all of that.

        Raises
        ------
        BundleError
            When the source cannot be recovered or the function reads a global that is not
            ``math``/``numpy`` or a plain number.
        """
        fn = getattr(self.fn, "py_func", self.fn)  # a numba.njit function: its Python source
        if not isinstance(fn, _pytypes.FunctionType):
            raise BundleError(f"udf {self.name!r} is not a Python function; it cannot be saved")
        node = _function_node(fn, self.name)
        func = fn.__name__ if isinstance(node, ast.FunctionDef) else "_udf_lambda"
        source = _normalised_source(node, func)
        imports, constants = _captured_globals(fn, self.name)
        n_args = fn.__code__.co_argcount
        if n_args != arity:
            raise BundleError(f"udf {self.name!r} takes {n_args} arguments but is applied to "
                              f"{arity} columns")
        spec = {"name": self.name, "func": func, "source": source, "arity": int(arity),
                "args": list(fn.__code__.co_varnames[:n_args]),
                "signature": "float64(" + ", ".join(["float64"] * arity) + ")",
                "imports": imports, "constants": constants}
        spec["sha256"] = spec_digest(spec)
        return spec

    @classmethod
    def from_spec(cls, spec: dict) -> UDF:
        """Rebuild a udf from :meth:`to_spec` output (checked first, see :func:`check_spec`).
        The source is executed only as a bare ``def`` statement (no decorators, defaults or
        annotations), so defining it runs nothing; Numba then compiles it in nopython mode.
        A spec already compiled in this process (same checksum, which covers everything
        that decides the code) is reused, so loading a bundle twice compiles once."""
        check_spec(spec)
        cached = _FROM_SPEC.get(spec["sha256"])
        if cached is not None:
            return cached
        ns: dict = {"__builtins__": builtins}
        for alias, mod in spec["imports"].items():
            ns[alias] = ALLOWED_MODULES[mod]
        for name, (kind, text) in spec["constants"].items():
            ns[name] = float.fromhex(text) if kind == "float" else (
                int(text) if kind == "int" else text == "True")
        exec(compile(spec["source"], f"<forgeline udf {spec['name']}>", "exec"), ns)  # noqa: S102 - allow_code=True
        u = cls(ns[spec["func"]], spec["name"])
        u.address(spec["arity"])  # compile now, so a broken udf fails at load, not at scoring
        if len(_FROM_SPEC) >= 256:
            _FROM_SPEC.clear()
        _FROM_SPEC[spec["sha256"]] = u
        return u


def udf(fn=None, *, name: str | None = None):
    """Turn a scalar Python function into a :class:`UDF` (usable as a decorator).

    Parameters
    ----------
    fn : callable
        ``f(x1, ..., xk) -> float``, Numba nopython-compilable, reading only its arguments,
        ``math``, ``numpy`` and numeric globals (needed to save it in a bundle).
    name : str, optional
        Output feature name (defaults to the function name).

    Returns
    -------
    UDF
    """
    if fn is None:
        return lambda f: UDF(f, name)
    return UDF(fn, name)


def _compile(fn, arity: int):
    try:
        import numba
        from numba import types
    except ImportError as exc:
        raise InputError("forgeline UDFs need numba (pip install 'forgeline[jit]')") from exc
    fn = getattr(fn, "py_func", fn)
    try:
        jitted = numba.njit(fn, error_model="numpy")
    except Exception as exc:  # noqa: BLE001 - numba rejects some callables up front
        raise InputError(f"udf {getattr(fn, '__name__', fn)!r} cannot be compiled by Numba: {exc}") from exc
    args = ", ".join(f"x[{c}, i]" for c in range(arity))
    src = (
        "def block(inp, m, k, out):\n"
        "    x = carray(inp, (k, m))\n"
        "    o = carray(out, (m,))\n"
        "    for i in range(m):\n"
        f"        o[i] = f({args})\n"
        "    return 1\n"
    )
    ns = {"carray": numba.carray, "f": jitted}
    exec(compile(src, f"<forgeline udf {getattr(fn, '__name__', '')}>", "exec"), ns)  # noqa: S102 - generated wrapper, no user text
    sig = types.int64(types.CPointer(types.float64), types.int64, types.int64,
                      types.CPointer(types.float64))
    try:
        return numba.cfunc(sig, nopython=True, error_model="numpy")(ns["block"])
    except Exception as exc:  # numba's typing errors are many classes
        raise InputError(f"udf {getattr(fn, '__name__', fn)!r} cannot be compiled by Numba "
                         f"for {arity} float arguments: {exc}") from exc


# --------------------------------------------------------------------------- source capture

def spec_digest(spec: dict) -> str:
    """SHA-256 over everything in a udf spec that decides what code runs."""
    covered = {k: spec.get(k) for k in ("name", "func", "source", "arity", "imports", "constants")}
    return hashlib.sha256(json.dumps(covered, sort_keys=True).encode()).hexdigest()


def _function_node(fn, name: str):
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise BundleError(f"udf {name!r}: its source is not available ({exc}); define it in a "
                          "file to save it in a bundle") from None
    code = fn.__code__
    if fn.__name__ != "<lambda>":
        try:
            tree = ast.parse(src)
        except SyntaxError:
            tree = None
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name == fn.__name__:
                    return node
        raise BundleError(f"udf {name!r}: could not isolate its source")
    # A lambda's source is the whole line(s) around it: find the lambda expression whose
    # compiled code is the function's own.
    for start in _find_all(src, "lambda"):
        for end in range(len(src), start, -1):
            try:
                expr = ast.parse(src[start:end].strip(), mode="eval").body
            except SyntaxError:
                continue
            if isinstance(expr, ast.Lambda) and _same_code(expr, code):
                return expr
    raise BundleError(f"udf {name!r}: could not isolate the lambda's source; define it with def")


def _find_all(text: str, word: str):
    i = text.find(word)
    while i >= 0:
        yield i
        i = text.find(word, i + 1)


def _same_code(expr: ast.Lambda, code) -> bool:
    try:
        c = compile(ast.Expression(expr), "<udf>", "eval")
    except (SyntaxError, ValueError):
        return False
    inner = next((k for k in c.co_consts if isinstance(k, _pytypes.CodeType)), None)
    return inner is not None and inner.co_code == code.co_code and \
        inner.co_varnames == code.co_varnames and inner.co_consts == code.co_consts


def _normalised_source(node, func: str) -> str:
    if isinstance(node, ast.Lambda):
        node = ast.FunctionDef(name=func, args=node.args, body=[ast.Return(node.body)],
                               decorator_list=[], returns=None, type_comment=None,
                               type_params=[])
    else:
        node = ast.FunctionDef(name=node.name, args=node.args, body=node.body, decorator_list=[],
                               returns=None, type_comment=None, type_params=[])
    mod = ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[]))
    source = ast.unparse(mod) + "\n"
    check_source(source, func, "udf")
    return source


def _code_names(code) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, _pytypes.CodeType):
            names |= _code_names(c)
    return names


def _captured_globals(fn, name: str) -> tuple[dict, dict]:
    imports: dict[str, str] = {}
    constants: dict[str, list] = {}
    found = {n: fn.__globals__[n] for n in _code_names(fn.__code__) if n in fn.__globals__}
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            found[var] = cell.cell_contents
        except ValueError:
            raise BundleError(f"udf {name!r} reads {var!r}, which is not set yet") from None
    for var, val in sorted(found.items()):
        mod = next((m for m, obj in ALLOWED_MODULES.items() if obj is val), None)
        if mod is not None:
            imports[var] = mod
        elif isinstance(val, bool | np.bool_):
            constants[var] = ["bool", str(bool(val))]
        elif isinstance(val, int | np.integer):
            constants[var] = ["int", str(int(val))]
        elif isinstance(val, float | np.floating):
            constants[var] = ["float", float(val).hex()]
        else:
            raise BundleError(f"udf {name!r} reads the global {var!r} ({type(val).__name__}); a "
                              "bundle can carry only math, numpy and plain numbers")
    return imports, constants


def check_source(source: str, func: str, name: str) -> None:
    """The source must be exactly one plain ``def func(args):`` (no decorators, defaults or
    annotations), so that executing it only defines the function."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise BundleError(f"udf {name!r}: source does not parse: {exc}") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef) or \
            tree.body[0].name != func:
        raise BundleError(f"udf {name!r}: source must be one function definition named {func!r}")
    fd = tree.body[0]
    a = fd.args
    if fd.decorator_list or a.defaults or any(d is not None for d in a.kw_defaults) or \
            fd.returns is not None or a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or \
            any(x.annotation is not None for x in a.args):
        raise BundleError(f"udf {name!r}: source must be a plain function of positional "
                          "arguments (no decorators, defaults or annotations)")


def check_spec(spec) -> None:
    """Structure, names and checksum of one stored udf; raises BundleError."""
    if not isinstance(spec, dict):
        raise BundleError("udf entry in bundle is not a mapping")
    name = spec.get("name")
    try:
        ok = (isinstance(name, str) and isinstance(spec["func"], str) and
              spec["func"].isidentifier() and isinstance(spec["source"], str) and
              isinstance(spec["arity"], int) and not isinstance(spec["arity"], bool) and
              1 <= spec["arity"] <= 10_000 and isinstance(spec["imports"], dict) and
              isinstance(spec["constants"], dict) and isinstance(spec["sha256"], str))
    except KeyError as exc:
        raise BundleError(f"udf {name!r} entry lacks {exc}") from None
    if not ok:
        raise BundleError(f"udf {name!r} entry is malformed")
    if spec_digest(spec) != spec["sha256"]:
        raise BundleError(f"udf {name!r}: source checksum mismatch; the bundle was modified")
    for alias, mod in spec["imports"].items():
        if mod not in ALLOWED_MODULES or not str(alias).isidentifier():
            raise BundleError(f"udf {name!r} imports {mod!r}, which is not allowed")
    for var, val in spec["constants"].items():
        if not (str(var).isidentifier() and isinstance(val, list) and len(val) == 2 and
                val[0] in ("float", "int", "bool") and isinstance(val[1], str)):
            raise BundleError(f"udf {name!r} constant {var!r} is malformed")
        try:
            float.fromhex(val[1]) if val[0] == "float" else int(val[1]) if val[0] == "int" else None
        except (ValueError, OverflowError):
            raise BundleError(f"udf {name!r} constant {var!r} is malformed") from None
    check_source(spec["source"], spec["func"], name)
