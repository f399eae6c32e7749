#!/usr/bin/env bash
# CI fuzz pass: every atheris harness for a fixed number of inputs, then the fixed hostile
# frame shapes (10^5 columns, 0 rows, 1 column, NaN/inf everywhere, huge strings, mixed dtypes).
# About 3 minutes on 2 cores. Fails (exit 1) on any crash, hang (an input slower than
# FUZZ_INPUT_TIMEOUT s, or a harness over FUZZ_HARNESS_TIMEOUT s), memory blow-up
# (rss > 2 GB) or exception that is not a ForgelineError.
#
#   tools/fuzz-ci.sh                      # the CI pass
#   FUZZ_SCALE=10 tools/fuzz-ci.sh        # ten times the inputs (nightly)
#   FUZZ_SEED=1234 tools/fuzz-ci.sh       # replay a run (the seed is printed; default random)
#   FUZZ_NO_ATHERIS=1 tools/fuzz-ci.sh    # the hypothesis fallback, as without atheris
#
# atheris comes from PyPI. The script uses, in order: $FUZZ_PYTHON, bench/.venv-fuzz,
# build/.venv-fuzz, the current python; if none has atheris and FUZZ_INSTALL=1 (the default),
# it creates build/.venv-fuzz (seeing the main site-packages) and pip-installs atheris there.
# If atheris still cannot be had for this python, it says so and runs the equivalent
# hypothesis fuzz suites for a fixed example count instead (FUZZ_HYPOTHESIS_EXAMPLES).
#
# A crashing input is saved as build/fuzz/<harness>/crash-*; reproduce it with
#   $PY fuzz/<harness>.py build/fuzz/<harness>/crash-...
# and keep it as a regression test in tests/test_fuzz_regressions.py.
set -uo pipefail
cd "$(dirname "$0")/.."
# The in-place dev build when there is one; otherwise (CI on a fresh clone) the installed package.
if compgen -G "python/forgeline/_core*.so" >/dev/null; then
  export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
fi

SCALE="${FUZZ_SCALE:-1}"
SEED="${FUZZ_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}"
INPUT_TIMEOUT="${FUZZ_INPUT_TIMEOUT:-20}"
HARNESS_TIMEOUT="${FUZZ_HARNESS_TIMEOUT:-$(( 240 * SCALE ))}"
# inputs per harness, sized so the three take about 2 minutes together on a loaded 2-core box
declare -A RUNS=([fuzz_bundle]=$(( 100000 * SCALE )) [fuzz_frame]=$(( 15000 * SCALE ))
                 [fuzz_load]=$(( 12000 * SCALE )))
ORDER=(fuzz_bundle fuzz_frame fuzz_load)

has_atheris() { [ -x "$1" ] || command -v "$1" >/dev/null 2>&1 || return 1; "$1" -c "import atheris" 2>/dev/null; }

PY=""
[ "${FUZZ_NO_ATHERIS:-0}" = "1" ] && FUZZ_INSTALL=0  # exercise the fallback
for cand in "${FUZZ_PYTHON:-}" bench/.venv-fuzz/bin/python build/.venv-fuzz/bin/python python; do
  [ "${FUZZ_NO_ATHERIS:-0}" = "1" ] && break
  [ -n "$cand" ] && has_atheris "$cand" && { PY="$cand"; break; }
done
if [ -z "$PY" ] && [ "${FUZZ_INSTALL:-1}" = "1" ]; then
  echo "fuzz-ci: installing atheris into build/.venv-fuzz"
  python -m venv --system-site-packages build/.venv-fuzz >/dev/null 2>&1 &&
    build/.venv-fuzz/bin/python -m pip install -q atheris >build/fuzz-install.log 2>&1 &&
    has_atheris build/.venv-fuzz/bin/python && PY=build/.venv-fuzz/bin/python
fi

rc=0
start_all=$(date +%s)
if [ -z "$PY" ]; then
  if [ "${FUZZ_NO_ATHERIS:-0}" = "1" ]; then
    echo "fuzz-ci: atheris disabled (FUZZ_NO_ATHERIS=1); running the hypothesis fuzz suites instead"
  else
    echo "fuzz-ci: atheris is not installable for $(python -c 'import sys; print(sys.version.split()[0])')" \
         "(see build/fuzz-install.log); running the hypothesis fuzz suites for a fixed count instead"
  fi
  export FORGELINE_FUZZ_EXAMPLES="${FUZZ_HYPOTHESIS_EXAMPLES:-$(( 150 * SCALE ))}"
  start=$(date +%s)
  timeout --signal=KILL "$HARNESS_TIMEOUT" python -m pytest -q -p no:cacheprovider \
    tests/test_fuzz_frame.py tests/test_fuzz_bundle.py tests/test_fuzz_regressions.py
  hrc=$?
  [ "$hrc" -eq 137 ] && echo "fuzz-ci: hypothesis suites FAILED: over ${HARNESS_TIMEOUT} s (hang?)" >&2
  [ "$hrc" -ne 0 ] && rc=1
  echo "fuzz-ci: hypothesis suites, $FORGELINE_FUZZ_EXAMPLES examples per test, $(( $(date +%s) - start )) s, exit $hrc"
else
  echo "fuzz-ci: atheris with $PY, seed $SEED, scale $SCALE"
  for h in "${ORDER[@]}"; do
    out="build/fuzz/$h"
    rm -rf "$out" && mkdir -p "$out"
    start=$(date +%s)
    timeout --signal=KILL "$HARNESS_TIMEOUT" "$PY" "fuzz/$h.py" -runs="${RUNS[$h]}" -seed="$SEED" \
      -timeout="$INPUT_TIMEOUT" -rss_limit_mb=2048 -malloc_limit_mb=2048 -artifact_prefix="$out/" \
      -print_final_stats=1 >"$out/log.txt" 2>&1
    hrc=$?
    secs=$(( $(date +%s) - start ))
    done_runs=$(grep -aoE 'Done [0-9]+ runs' "$out/log.txt" | grep -oE '[0-9]+' || echo 0)
    cov=$(grep -aoE 'cov: [0-9]+' "$out/log.txt" | tail -1)
    if [ "$hrc" -eq 0 ] && [ "$done_runs" -ge "${RUNS[$h]}" ]; then
      echo "fuzz-ci: $h ok: $done_runs inputs in ${secs} s (${cov:-cov: ?})"
    else
      rc=1
      if [ "$hrc" -eq 137 ]; then why="hang: the harness ran over ${HARNESS_TIMEOUT} s"; else why="exit $hrc"; fi
      echo "fuzz-ci: $h FAILED ($why) after ${secs} s; log $out/log.txt, inputs $out/crash-* $out/timeout-* $out/oom-*" >&2
      grep -aA14 -E "Uncaught Python exception|ERROR: libFuzzer|SUMMARY" "$out/log.txt" | head -30 >&2 \
        || tail -30 "$out/log.txt" >&2
    fi
  done
fi
echo "fuzz-ci: fixed hostile frame shapes"
timeout --signal=KILL "$HARNESS_TIMEOUT" python fuzz/frame_shapes.py \
  --max-seconds "${FUZZ_SHAPES_MAX_SECONDS:-90}" || rc=1
echo "fuzz-ci: total $(( $(date +%s) - start_all )) s, exit $rc"
exit $rc
