"""Batch scoring file to file: ``forgeline score`` (streaming) vs a plain pandas + sklearn
script doing the same job, on the T2 schema as Parquet. Also peak memory of the streaming
scorer on a larger file, to show it does not grow with the row count.

Usage: python bench/peers_batch.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import print_rows, row  # noqa: E402
from peers_pipeline import _target  # noqa: E402
from peers_transforms import make_data, sklearn_ct  # noqa: E402


def _write_parquet(path: Path, n: int, chunk: int = 500_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for i, start in enumerate(range(0, n, chunk)):
        t = pa.Table.from_pandas(make_data(min(chunk, n - start), seed=100 + i), preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(str(path), t.schema)
        writer.write_table(t)
    writer.close()


def _timed_subprocess(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of a child process, measured by the child itself."""
    code = textwrap.dedent(f"""
        import resource, subprocess, sys, time
        t0 = time.perf_counter()
        r = subprocess.run({args!r})
        dt = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(dt, peak)
        sys.exit(r.returncode)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, peak = out.stdout.split()[-2:]
    return float(dt), float(peak)


PANDAS_SCRIPT = """
import sys, pickle, warnings, pandas as pd, pyarrow.parquet as pq
warnings.simplefilter("ignore")
pipe = pickle.load(open(sys.argv[1], "rb"))
df = pd.read_parquet(sys.argv[2])
out = pd.DataFrame({"proba_1": pipe.predict_proba(df)[:, 1]})
out.to_parquet(sys.argv[3])
"""


def run(quick: bool, n: int | None = None, n_big: int | None = None) -> list[dict]:
    import pickle

    import forgeline as fl
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    n = n or (200_000 if quick else 5_000_000)
    n_big = n_big or (400_000 if quick else 10_000_000)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        train = make_data(100_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = make_pipeline(sklearn_ct(), LogisticRegression(max_iter=200)).fit(train, _target(train))
        fl.compile(pipe, train[:5000]).save(d / "t2.forge")
        pickle.dump(pipe, open(d / "t2.pkl", "wb"))
        (d / "score_pandas.py").write_text(PANDAS_SCRIPT)
        _write_parquet(d / "in.parquet", n)
        cli = [sys.executable, "-m", "forgeline.cli", "score", str(d / "t2.forge"), str(d / "in.parquet"),
               "-o", str(d / "out_fl.parquet"), "--quiet"]
        t_fl, rss_fl = _timed_subprocess(cli)
        t_pd, rss_pd = _timed_subprocess([sys.executable, str(d / "score_pandas.py"), str(d / "t2.pkl"),
                                          str(d / "in.parquet"), str(d / "out_pd.parquet")])
        import pyarrow.parquet as pq

        a = pq.read_table(d / "out_fl.parquet").column("proba_1").to_numpy()
        b = pq.read_table(d / "out_pd.parquet").column("proba_1").to_numpy()
        same = np.allclose(a, b, rtol=1e-12, atol=0)
        wl = f"T2 batch scoring Parquet -> Parquet ({n:,} rows)"
        rows.append(row(wl, "forgeline score (CLI)", t_fl,
                        f"{n / t_fl:,.0f} rows/s, peak RSS {rss_fl:,.0f} MiB; output "
                        f"{'identical' if same else 'DIFFERS'}"))
        rows.append(row(wl, "pandas + sklearn script", t_pd, f"{n / t_pd:,.0f} rows/s, peak RSS {rss_pd:,.0f} MiB"))
        (d / "in.parquet").unlink()
        _write_parquet(d / "big.parquet", n_big)
        cli[-4] = str(d / "big.parquet")
        t_big, rss_big = _timed_subprocess(cli)
        rows.append(row(f"T2 streaming memory ({n_big:,} rows)", "forgeline score (CLI)", t_big,
                        f"peak RSS {rss_big:,.0f} MiB vs {rss_fl:,.0f} MiB at {n:,} rows "
                        f"({n_big / t_big:,.0f} rows/s)"))
    return rows


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int, help="rows of the side-by-side file (default 5M)")
    ap.add_argument("--big-rows", type=int, help="rows of the streaming-memory file (default 10M)")
    a = ap.parse_args()
    print_rows(run(a.quick, a.rows, a.big_rows))
