"""``forgeline quickstart``: the whole journey on the bundled demo data, in under a minute.

train a sklearn pipeline (LightGBM, or HistGradientBoosting without it) -> compile ->
save ``churn.forge`` -> reload -> score the drifted batch to Parquet -> drift report.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .errors import ForgelineError


class QuickstartError(ForgelineError):
    """A dependency of the quickstart is missing."""


def _need(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise QuickstartError(f"the quickstart needs {module}: pip install 'forgeline[{extra}]'") from exc


def build_pipeline(seed: int = 0):
    """The demo pipeline: impute numerics, one-hot categoricals, gradient-boosted trees."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.pipeline import Pipeline

    from . import _demo

    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), _demo.NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), _demo.CATEGORICAL),
        ("flag", "passthrough", ["paperless_billing"]),
    ])
    try:
        import lightgbm as lgb

        model = lgb.LGBMClassifier(n_estimators=150, num_leaves=31, learning_rate=0.08,
                                   random_state=seed, verbose=-1, n_jobs=2)
    except ImportError:
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(max_iter=150, random_state=seed)
    return Pipeline([("pre", pre), ("model", model)])


def run(out_dir: Path, n_rows: int = 50_000, quiet: bool = False) -> int:
    _need("sklearn", "demo")
    _need("pandas", "demo")
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    from . import _demo
    from .cli import score_file
    from .compile import compile as fl_compile
    from .scorer import load

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    say(f"forgeline quickstart -> {out_dir}/")
    train_t = _demo.churn_table(n_rows, seed=7)
    cur_t = _demo.churn_table(max(n_rows // 2, 1000), seed=7, drifted=True)
    pq.write_table(train_t, out_dir / "train.parquet")
    pq.write_table(cur_t, out_dir / "current.parquet")
    say(f"  1. demo data: {train_t.num_rows:,} training rows, {cur_t.num_rows:,} drifted rows")

    df = train_t.to_pandas()
    y = df.pop(_demo.TARGET)
    X = df.drop(columns=[_demo.ID])
    n_train = int(len(X) * 0.8)
    pipe = build_pipeline()
    t0 = time.perf_counter()
    pipe.fit(X.iloc[:n_train], y.iloc[:n_train])
    auc = roc_auc_score(y.iloc[n_train:], pipe.predict_proba(X.iloc[n_train:])[:, 1])
    say(f"  2. trained {type(pipe[-1]).__name__} in {time.perf_counter() - t0:.1f} s; "
        f"holdout AUC {auc:.4f}")

    t0 = time.perf_counter()
    sample = X.iloc[n_train:n_train + 5000]
    scorer = fl_compile(pipe, sample)
    bundle = out_dir / "churn.forge"
    scorer.save(bundle)
    scorer = load(bundle)
    same = abs(roc_auc_score(y.iloc[n_train:], scorer.predict_proba(X.iloc[n_train:])[:, 1]) - auc)
    say(f"  3. compiled, verified and saved {bundle} ({bundle.stat().st_size / 1024:.0f} KiB) "
        f"in {time.perf_counter() - t0:.1f} s; AUC difference vs sklearn: {same:.1e}")

    scores = out_dir / "scores.parquet"
    stats = score_file(scorer, str(out_dir / "current.parquet"), str(scores),
                       passthrough=[_demo.ID], monitor=True, progress=False)
    say(f"  4. scored {stats['rows_out']:,} rows -> {scores} "
        f"({stats['rows_per_second']:,.0f} rows/s, file to file)")

    report = scorer.drift()
    html = out_dir / "drift_report.html"
    report.to_html(html)
    drifted = list(getattr(report, "drifted_columns", []))
    say(f"  5. drift report -> {html}: "
        + (f"{len(drifted)} drifted column(s): {', '.join(drifted)}" if drifted else "no drift"))

    print(f"AUC {auc:.4f} | {stats['rows_per_second']:,.0f} rows/s | drifted: "
          f"{', '.join(drifted) if drifted else 'none'} | files: {out_dir}/ "
          f"(churn.forge, scores.parquet, drift_report.html) | "
          f"{time.perf_counter() - t_start:.1f} s total")
    return 0
