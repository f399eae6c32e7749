#!/usr/bin/env bash
# Runs the atheris (libFuzzer) harnesses in fuzz/ for a fixed number of inputs each.
#
#   tools/fuzz.sh [RUNS] [HARNESS ...]      # default: 20000 runs of fuzz_bundle and fuzz_frame
#   tools/fuzz.sh 20000 fuzz_load           # hostile bundle content (needs sklearn + lightgbm)
#   FUZZ_PYTHON=/path/to/python tools/fuzz.sh 100000 fuzz_bundle
#   tools/fuzz.sh --hypothesis 2000         # the hypothesis fuzz suites with 2000 examples each
#
# atheris comes from PyPI; if it cannot go into the main environment, use a venv that sees the
# main site-packages:  python -m venv --system-site-packages bench/.venv-fuzz &&
# bench/.venv-fuzz/bin/pip install atheris   (picked up automatically).
# Crashing inputs are saved under build/fuzz/<harness>/; turn each into a regression test in
# tests/test_fuzz_*.py. Exit status is non-zero if any harness found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--hypothesis" ]; then
  export FORGELINE_FUZZ_EXAMPLES="${2:-1000}"
  exec env PYTHONPATH=python python -m pytest -q -p no:randomly tests/test_fuzz_frame.py tests/test_fuzz_bundle.py
fi

RUNS="${1:-20000}"
shift || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -eq 0 ] && HARNESSES=(fuzz_bundle fuzz_frame)

PY="${FUZZ_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x bench/.venv-fuzz/bin/python ]; then PY=bench/.venv-fuzz/bin/python; else PY=python; fi
fi
if ! "$PY" -c "import atheris" 2>/dev/null; then
  echo "fuzz: atheris is not installed for $PY (see the header of $0)" >&2
  exit 2
fi

rc=0
for h in "${HARNESSES[@]}"; do
  out="build/fuzz/$h"
  mkdir -p "$out"
  echo "fuzz: $h, $RUNS runs"
  start=$(date +%s)
  if "$PY" "fuzz/$h.py" -runs="$RUNS" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$out/" \
       -print_final_stats=1 >"$out/log.txt" 2>&1; then
    echo "fuzz: $h ok ($(grep -aoE 'Done [0-9]+ runs' "$out/log.txt" || echo '?'), $(( $(date +%s) - start )) s," \
         "$(grep -aoE 'cov: [0-9]+' "$out/log.txt" | tail -1))"
  else
    rc=1
    echo "fuzz: $h FOUND A CRASH; see $out/log.txt and $out/crash-*" >&2
    grep -aA12 "Uncaught Python exception" "$out/log.txt" | head -20 >&2 || tail -20 "$out/log.txt" >&2
  fi
done
exit $rc
