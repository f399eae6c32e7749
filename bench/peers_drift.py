"""Drift workloads D1 and D2 (DESIGN.md) side by side with scipy, Evidently and NannyML.

D1: reference and current of 100k rows, 50 normal numeric + 10 categorical (20 levels);
KS + Jensen-Shannon per numeric column, chi-square + Jensen-Shannon per categorical one.
Evidently and NannyML run in their own venv (``bench/.venv-drift``, created with
``python -m venv bench/.venv-drift && bench/.venv-drift/bin/pip install "pandas<3" evidently
nannyml``) through a subprocess, on the same generated data.

D2: 1M rows x 1000 numeric columns against a prebuilt reference profile: time and peak
memory relative to the current frame's size (run in a fresh subprocess so the peak is
clean). ``FORGELINE_BENCH_D2_COLS`` / ``FORGELINE_BENCH_D2_ROWS`` shrink it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _timing import add_source_tree, best_of, forgeline_root, row

HERE = Path(__file__).resolve().parent
VENV_PY = HERE / ".venv-drift" / "bin" / "python"

DATA_CODE = textwrap.dedent('''
    import numpy as np, pandas as pd
    def d1_frame(n, seed, shift, num=50, cat=10):
        rng = np.random.default_rng(seed)
        d = {f"n{i}": rng.normal(shift if i % 5 == 0 else 0, 1, n) for i in range(num)}
        for i in range(cat):
            p = (np.ones(20) / 20 if not (shift and i % 3 == 0)
                 else np.r_[np.ones(10) * 0.07, np.ones(10) * 0.03])
            d[f"c{i}"] = pd.Categorical(rng.choice([f"v{k}" for k in range(20)], n, p=p))
        return pd.DataFrame(d)
''')

PEER_CODE = DATA_CODE + textwrap.dedent('''
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    n, which = int(sys.argv[1]), sys.argv[2]
    ref, cur = d1_frame(n, 0, 0.0), d1_frame(n, 1, 0.1)
    best = best_cpu = None
    for _ in range(2):
        t, c = time.perf_counter(), time.process_time()
        if which == "evidently":
            from evidently import Report
            from evidently.presets import DataDriftPreset
            Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
        else:
            import nannyml as nml
            calc = nml.UnivariateDriftCalculator(
                column_names=list(ref.columns), chunk_number=1,
                continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
                categorical_methods=["chi2", "jensen_shannon"])
            calc.fit(ref)
            calc.calculate(cur)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        best = dt if best is None else min(best, dt)
        best_cpu = dc if best_cpu is None else min(best_cpu, dc)
    print(json.dumps({"seconds": best, "cpu": best_cpu}))
''')

D2_CODE = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    from forgeline.drift import Profile, compare
    n, k = int(sys.argv[1]), int(sys.argv[2])

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
        return 0

    # reference profile built chunk by chunk of columns (never the whole reference at once)
    prof = None
    fit_s = 0.0
    for start in range(0, k, 50):
        rng = np.random.default_rng(start)
        part = {f"x{j}": rng.normal(0, 1, n) for j in range(start, min(k, start + 50))}
        t0 = time.perf_counter()
        p = Profile.fit(part)
        fit_s += time.perf_counter() - t0
        if prof is None:
            prof = p
        else:
            prof.columns.update(p.columns)
        del part
    rng = np.random.default_rng(12345)
    cur = {f"x{j}": rng.normal(0.05 if j % 10 == 0 else 0.0, 1, n) for j in range(k)}
    frame_bytes = sum(v.nbytes for v in cur.values())
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS counter
        f.write("5")
    base = status("VmRSS:")
    t, c = time.perf_counter(), time.process_time()
    rep = compare(prof, cur, tests=["ks", "psi", "js"])
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    peak = status("VmHWM:")
    print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "load": os.getloadavg()[0],
                      "frame_bytes": frame_bytes, "rss_before": base,
                      "peak_rss": peak, "rows": len(rep.results), "fit_seconds": fit_s,
                      "profile_bytes": sum(a.nbytes for a in prof.to_parts()[1].values())}))
''')


def _peer(which: str, n: int) -> dict | None | str:
    if not VENV_PY.exists():
        return None
    env = dict(os.environ, DO_NOT_TRACK="1", NML_DISABLE_USAGE_LOGGING="1")
    proc = subprocess.run([str(VENV_PY), "-c", PEER_CODE, str(n), which], capture_output=True,
                          text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1][:200] if proc.stderr else proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _d1(quick: bool) -> list[dict]:
    import numpy as np
    from scipy import stats

    from forgeline.drift import Profile, compare

    ns: dict = {}
    exec(DATA_CODE, ns)  # the same generator the peers run
    n = 5_000 if quick else 100_000
    ref, cur = ns["d1_frame"](n, 0, 0.0), ns["d1_frame"](n, 1, 0.1)
    wl = f"D1 drift ({n // 1000}k+{n // 1000}k rows, 50 num + 10 cat)"
    tests = {"numeric": ["ks", "js"], "categorical": ["chi2", "js"]}
    rows = []
    # CPU seconds (all threads of the process) next to wall time: on a shared, loaded
    # machine the CPU ratios of one run are the stable comparison.
    t_raw = best_of(lambda: compare(ref, cur, tests=tests), repeats=5)
    c_raw = best_of(lambda: compare(ref, cur, tests=tests), repeats=5, clock=time.process_time)
    rows.append(row(wl, "forgeline compare (raw frames)", t_raw,
                    f"KS exact/asymp as scipy + JS; CPU {c_raw:.3f} s"))
    prof = Profile.fit(ref)
    t_prof = best_of(lambda: compare(prof, cur, tests=tests), repeats=3)
    rows.append(row(wl, "forgeline (prebuilt profile)", t_prof,
                    "sketch KS (|dD| <= rank error) + JS; profile fit once"))
    num = [f"n{i}" for i in range(50)]
    cat = [f"c{i}" for i in range(10)]

    def scipy_loop():
        for c in num:
            a, b = ref[c].to_numpy(), cur[c].to_numpy()
            stats.ks_2samp(a, b)
            edges = np.quantile(a, np.linspace(0, 1, 21)[1:-1])
            pa = np.bincount(np.searchsorted(edges, a), minlength=20) / a.size
            pb = np.bincount(np.searchsorted(edges, b), minlength=20) / b.size
            from scipy.spatial.distance import jensenshannon
            jensenshannon(pa, pb, base=2)
        for c in cat:
            a = ref[c].value_counts().sort_index()
            b = cur[c].value_counts().sort_index()
            stats.chi2_contingency(np.vstack([a.values, b.values]))
            from scipy.spatial.distance import jensenshannon
            jensenshannon(a.values / a.sum(), b.values / b.sum(), base=2)

    c_sp = best_of(scipy_loop, repeats=2, clock=time.process_time)
    rows.append(row(wl, "scipy loop (ks_2samp + JS, chi2 + JS)", best_of(scipy_loop, repeats=2),
                    f"same statistics, one column at a time; CPU {c_sp:.2f} s "
                    f"= {c_sp / c_raw:.0f}x forgeline's CPU"))
    for which, label in (("evidently", "Evidently DataDriftPreset"),
                         ("nannyml", "NannyML UnivariateDriftCalculator (ks, js, chi2)")):
        res = _peer(which, n)
        if res is None:
            rows.append(row(wl, label, None, "skipped: create bench/.venv-drift "
                            '(pip install "pandas<3" evidently nannyml)'))
        elif isinstance(res, str):
            rows.append(row(wl, label, None, res))
        else:
            rows.append(row(wl, label, res["seconds"],
                            f"own venv, same data; CPU {res['cpu']:.2f} s (its process) "
                            f"= {res['cpu'] / c_raw:.0f}x forgeline's CPU"))
    return rows


def _d2(quick: bool) -> list[dict]:
    n = int(os.environ.get("FORGELINE_BENCH_D2_ROWS", 20_000 if quick else 1_000_000))
    k = int(os.environ.get("FORGELINE_BENCH_D2_COLS", 40 if quick else 1000))
    wl = f"D2 wide drift ({n:,} rows x {k} numeric, profile prebuilt)"
    python_dir = forgeline_root()
    proc = subprocess.run([sys.executable, "-c", D2_CODE, str(n), str(k), python_dir],
                          capture_output=True, text=True, timeout=7200)
    if proc.returncode != 0:
        return [row(wl, "forgeline compare", None, f"failed: {proc.stderr[-300:]}")]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    ratio = r["peak_rss"] / r["frame_bytes"]
    cores = os.cpu_count() or 1
    rows = [row(wl, "forgeline compare (KS sketch + PSI + JS)", r["seconds"],
                f"peak RSS {r['peak_rss'] / 2**30:.2f} GiB = {ratio:.2f}x the current frame "
                f"({r['frame_bytes'] / 2**30:.2f} GiB); CPU {r['cpu_seconds']:.1f} s over all "
                f"threads; load {r['load']:.1f}; target <= 20 s and <= 1.5x"),
            row(f"Profile.fit ({n:,} rows x {k} numeric)", "forgeline Profile.fit", r["fit_seconds"],
                f"{r['fit_seconds'] * cores / k:.3f} s per column-core; "
                f"{r['profile_bytes'] / k / 1024:.0f} KiB arrays per column")]
    import numpy as np
    from scipy import stats
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.normal(size=n)
    t = time.perf_counter()
    for _ in range(3):
        stats.ks_2samp(a, b)
    per_col = (time.perf_counter() - t) / 3
    rows.append(row(wl, "scipy ks_2samp loop (extrapolated)", per_col * k,
                    f"{per_col:.3f} s per column x {k} columns (raw reference needed)"))
    return rows


def run(quick: bool) -> list[dict]:
    """Rows for bench/peers.py."""
    return _d1(quick) + _d2(quick)


if __name__ == "__main__":
    add_source_tree()
    for r in run("--quick" in sys.argv):
        print(r)
