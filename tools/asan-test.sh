#!/usr/bin/env bash
# Builds forgeline's extension with AddressSanitizer + UndefinedBehaviorSanitizer and runs a
# pytest selection against it.
#
#   tools/asan-test.sh                          # tests/test_runtime.py
#   tools/asan-test.sh tests/test_trees.py -k lightgbm
#
# The `asan` preset builds in place (it copies _core into python/forgeline), which would
# clobber the dev build. So the working tree is first copied to $ASAN_TREE (default
# build/asan-src, ignored by git; the copy keeps timestamps so rebuilds are incremental),
# and the sanitized build and the tests run there. The dev build is never touched.
#
# Python is not built with ASan, so the runtime is preloaded; leak detection is off because
# CPython deliberately leaks at exit. UBSan aborts on the first finding
# (-fno-sanitize-recover), so any finding fails the run. Exit status = pytest's.
# ASAN_EXTRA_OPTIONS (e.g. allocator_may_return_null=1) is prepended to ASAN_OPTIONS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TREE="${ASAN_TREE:-$ROOT/build/asan-src}"
JOBS="${ASAN_JOBS:-2}"

[ $# -eq 0 ] && set -- tests/test_runtime.py

export PYBIND11_CMAKE_DIR="${PYBIND11_CMAKE_DIR:-$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')}"

echo "asan: syncing the working tree to $TREE"
mkdir -p "$TREE"
# Every file git knows about or would add (tracked + untracked, not ignored), so uncommitted
# work is tested too. Compiled objects and venvs are ignored files and stay behind.
git ls-files -z --cached --others --exclude-standard \
  | tar --null -T - -cf - \
  | tar -xf - -C "$TREE" --keep-newer-files 2>/dev/null || true
# tar -x above does not delete files removed from the tree; mirror deletions of sources.
(cd "$TREE" && find cpp python tests -type f \( -name '*.py' -o -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null) \
  | while read -r f; do [ -e "$ROOT/$f" ] || rm -f "$TREE/$f"; done

echo "asan: building the asan preset (-j$JOBS)"
(cd "$TREE" && cmake --preset asan >/dev/null && cmake --build --preset asan -j "$JOBS")

ASAN_LIB=$(g++ -print-file-name=libasan.so)
UBSAN_LIB=$(g++ -print-file-name=libubsan.so)
for lib in "$ASAN_LIB" "$UBSAN_LIB"; do
  [ -f "$lib" ] || { echo "asan: $lib not found (install the gcc sanitizer runtimes)" >&2; exit 2; }
done

echo "asan: running pytest $* under ASan + UBSan"
cd "$TREE"
set +e
LD_PRELOAD="$ASAN_LIB:$UBSAN_LIB" \
ASAN_OPTIONS="${ASAN_EXTRA_OPTIONS:+$ASAN_EXTRA_OPTIONS:}detect_leaks=0:abort_on_error=1:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
PYTHONPATH="$TREE/python" \
python -m pytest -q -p no:randomly "$@"
rc=$?
set -e
echo "asan: pytest exit status $rc"
exit $rc
