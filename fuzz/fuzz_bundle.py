"""atheris (libFuzzer) harness for ``forgeline.bundle.read_bundle``.

Run: ``tools/fuzz.sh`` or ``python fuzz/fuzz_bundle.py -runs=100000 [corpus_dir ...]``.
Seeds (valid bundles of several shapes) are written to a temporary corpus directory first, so
libFuzzer starts from real zip structure instead of random bytes. Any exception other than
``BundleError`` is a crash: libFuzzer saves the input as ``crash-*`` for a regression test.
Not collected by pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris
import numpy as np

import _srcpath  # noqa: E402,F401  (the in-place build when there is one)

import forgeline  # noqa: E402,F401  (heavy imports stay uninstrumented)

with atheris.instrument_imports(include=["forgeline.bundle"]):
    from forgeline import bundle  # noqa: E402

from forgeline.errors import BundleError  # noqa: E402

LIMITS = {"max_member_bytes": 1 << 20, "max_total_bytes": 4 << 20, "max_members": 64}


def write_seeds(directory: str) -> None:
    rng = np.random.default_rng(0)
    cases = [
        ({}, {}),
        ({"k": [1, 2.5, None, "s"], "nested": {"a": {"b": True}}},
         {"w": rng.normal(size=(3, 4)), "i": np.arange(5, dtype=np.int32)}),
        ({"x": 1}, {"f": np.asfortranarray(rng.normal(size=(2, 3)).astype(np.float32)),
                    "b": np.array([True, False]), "z": np.array(7, dtype=np.uint16),
                    "e": np.zeros((0, 2), dtype=np.int64)}),
    ]
    for i, (body, arrays) in enumerate(cases):
        bundle.write_bundle(os.path.join(directory, f"seed{i}.forge"), body, arrays,
                            created="2026-01-01T00:00:00Z")


def test_one_input(data: bytes) -> None:
    try:
        body, arrays = bundle.read_bundle(data, **LIMITS)
    except BundleError:
        return
    assert isinstance(body, dict)
    for arr in arrays.values():
        assert isinstance(arr, np.ndarray) and not arr.dtype.hasobject
        assert arr.nbytes <= LIMITS["max_member_bytes"]


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        seeds = tempfile.mkdtemp(prefix="forgeline-bundle-corpus-")
        write_seeds(seeds)
        args.append(seeds)
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
