"""The ``forgeline`` command: quickstart, score, drift, inspect.

Exit codes: 0 ok, 1 drift detected (``drift --fail-on-drift``), 2 usage or input error, with a
one-line message on stderr and no traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import ForgelineError, InputError, SchemaError

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2


class CliError(ForgelineError):
    """A usage or input problem reported as one line with exit code 2."""


# --------------------------------------------------------------------------- I/O helpers

class _Input:
    """A CSV file, a Parquet file, or a directory of either, read batch by batch.

    Parquet is read one row group at a time without pre-buffering or read-ahead, so peak
    memory is bounded by a row group and a batch, not by the file (Arrow's dataset scanner
    buffers far ahead and grew with the file in measurements).
    """

    def __init__(self, path: str):
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        p = Path(path)
        if not p.exists():
            raise CliError(f"input not found: {path}")
        files = [p]
        if p.is_dir():
            files = sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith((".", "_")))
            if not files:
                raise CliError(f"input directory is empty: {path}")
        self.csv = all(f.suffix.lower() in (".csv", ".txt") for f in files)
        self.files = files
        try:
            if self.csv:
                self._ds = ds.dataset(str(p), format="csv")
                self.names = list(self._ds.schema.names)
            else:
                self.names = list(pq.ParquetFile(str(files[0])).schema_arrow.names)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for unreadable files
            raise CliError(f"cannot read {path} as {'csv' if self.csv else 'parquet'}: {exc}") from exc
        self.path = path

    def count_rows(self) -> int | None:
        if self.csv:
            return None  # would need a full scan
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(str(f)).metadata.num_rows for f in self.files)

    def to_batches(self, columns, batch_size: int):
        import pyarrow.parquet as pq

        try:
            if self.csv:
                yield from self._ds.to_batches(columns=columns, batch_size=batch_size,
                                               batch_readahead=2, fragment_readahead=1)
                return
            for f in self.files:
                pf = pq.ParquetFile(str(f), pre_buffer=False, buffer_size=1 << 20)
                yield from pf.iter_batches(batch_size=batch_size, columns=columns, use_threads=False)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ForgelineError):
                raise
            raise CliError(f"cannot read {self.path}: {exc}") from exc


def _open_writer(path: str, schema):
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    out = Path(path)
    if out.parent and not out.parent.exists():
        raise CliError(f"output directory does not exist: {out.parent}")
    if not os.access(out.parent if str(out.parent) else ".", os.W_OK):
        raise CliError(f"output is not writable: {path}")
    if out.suffix.lower() == ".csv":
        return pcsv.CSVWriter(str(out), schema)
    return pq.ParquetWriter(str(out), schema)


class _Progress:
    """tqdm progress bar (rows/s and ETA) when stderr is a terminal and tqdm is installed."""

    def __init__(self, total: int | None, enabled: bool):
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="rows", unit_scale=True, file=sys.stderr)
            except ImportError:
                self.bar = None

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- scoring

def _bisect_rejects(scorer, batch, out_rows: list, rejects: list, monitor: bool):
    """Score what can be scored; collect failing rows with their reason (bisection, so a few
    bad rows in a large batch cost O(bad * log n) re-validations)."""
    try:
        out_rows.append((batch, scorer.score(batch, monitor=monitor)))
        return
    except SchemaError as exc:
        if any(p == "missing" for p in exc.problems.values()):
            raise  # a missing column is a file-level problem, not a row-level one
        err = exc
    except (ForgelineError, ValueError) as exc:
        err = exc
    if batch.num_rows == 1:
        rejects.append((batch, str(err)))
        return
    mid = batch.num_rows // 2
    _bisect_rejects(scorer, batch.slice(0, mid), out_rows, rejects, monitor)
    _bisect_rejects(scorer, batch.slice(mid), out_rows, rejects, monitor)


def score_file(scorer, input_path: str, output_path: str, *, batch_size: int = 65_536,
               n_threads: int | None = None, passthrough=(), rejects_path: str | None = None,
               monitor: bool = False, progress: bool = True) -> dict:
    """Stream ``input_path`` through ``scorer`` into ``output_path`` in record batches.

    Memory stays bounded by ``batch_size`` whatever the file size. Rows that fail validation
    go to ``rejects_path`` with the reason; without it the first bad row stops the run.
    Returns counts and timing.
    """
    import pyarrow as pa

    dset = _Input(input_path)
    names = dset.names
    missing = [c for c in passthrough if c not in names]
    if missing:
        raise CliError(f"--columns not in the input: {', '.join(missing)}")
    needed = [c for c in scorer.schema.names if c in names]
    absent = [c for c in scorer.schema.names if c not in names]
    if absent:
        raise SchemaError(f"input is missing required columns: {', '.join(map(repr, absent))}",
                          column=absent[0], problems={c: "missing" for c in absent})
    cols = list(dict.fromkeys([*passthrough, *needed]))
    total = dset.count_rows()
    bar = _Progress(total, progress)
    writer = rej_writer = None
    n_in = n_out = n_rej = 0
    t0 = time.perf_counter()
    try:
        for batch in dset.to_batches(cols, batch_size):
            if batch.num_rows == 0:
                continue
            n_in += batch.num_rows
            scored: list = []
            rejects: list = []
            if rejects_path is None:
                scored.append((batch, scorer.score(batch, n_threads=n_threads, monitor=monitor)))
            else:
                _bisect_rejects(scorer, batch, scored, rejects, monitor)
            for src, table in scored:
                for c in reversed(passthrough):
                    table = table.add_column(0, c, src.column(c))
                if writer is None:
                    writer = _open_writer(output_path, table.schema)
                writer.write_table(table)
                n_out += table.num_rows
            for src, reason in rejects:
                t = pa.Table.from_batches([src]).append_column("reject_reason", pa.array([reason]))
                if rej_writer is None:
                    rej_writer = _open_writer(rejects_path, t.schema)
                rej_writer.write_table(t)
                n_rej += 1
            bar.update(batch.num_rows)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if rej_writer is not None:
            rej_writer.close()
    if writer is None:
        raise CliError(f"no rows were scored from {input_path}")
    secs = time.perf_counter() - t0
    return {"rows_in": n_in, "rows_out": n_out, "rows_rejected": n_rej, "seconds": secs,
            "rows_per_second": n_in / secs if secs > 0 else float("inf")}


# --------------------------------------------------------------------------- commands

def _load(path: str, allow_code=False):
    from .scorer import load

    if not Path(path).exists():
        raise CliError(f"model not found: {path}")
    return load(path, allow_code=allow_code)


def cmd_score(args) -> int:
    scorer = _load(args.model, args.allow_code)
    stats = score_file(scorer, args.input, args.output, batch_size=args.batch_size,
                       n_threads=args.threads, passthrough=args.columns or (),
                       rejects_path=args.rejects, monitor=bool(args.monitor),
                       progress=not args.quiet)
    if args.monitor:
        report = scorer.drift()
        report.to_html(args.monitor)
    print(f"scored {stats['rows_out']:,} rows in {stats['seconds']:.2f} s "
          f"({stats['rows_per_second']:,.0f} rows/s) -> {args.output}"
          + (f"; {stats['rows_rejected']:,} rejected -> {args.rejects}" if args.rejects else ""),
          file=sys.stderr)
    return EXIT_OK


def _profile_of_file(scorer, path: str, batch_size: int = 262_144):
    """Profile of a file, built batch by batch (bounded memory) and merged."""
    from .drift import Profile
    from .scorer import _prediction_column

    dset = _Input(path)
    names = dset.names
    cols = [c for c in scorer.schema.names if c in names]
    absent = [c for c in scorer.schema.names if c not in names]
    if absent:
        raise SchemaError(f"input is missing required columns: {', '.join(map(repr, absent))}",
                          column=absent[0], problems={c: "missing" for c in absent})
    prof = None
    for batch in dset.to_batches(cols, batch_size):
        if batch.num_rows == 0:
            continue
        frame = scorer.profile_frame(batch)
        pred = None
        if scorer.model is not None and scorer.profile_has_prediction():
            out = (scorer.predict_proba(batch) if scorer.model.classes_ is not None
                   else scorer.predict(batch))
            pred = _prediction_column(out)
        part = Profile.fit(frame, prediction=pred)
        prof = part if prof is None else prof.merge(part)
    if prof is None:
        raise CliError(f"{path} has no rows")
    return prof


def _drift_summary(report) -> str:
    drifted = report.drifted_columns if hasattr(report, "drifted_columns") else []
    head = "DRIFT DETECTED" if report.drifted else "no dataset-level drift"
    cols = ", ".join(drifted[:12]) + (f" (+{len(drifted) - 12} more)" if len(drifted) > 12 else "")
    return f"{head}: {len(drifted)} drifted column(s){': ' + cols if drifted else ''}"


def cmd_drift(args) -> int:
    from .drift import Profile, compare

    scorer = _load(args.model, args.allow_code)
    if args.reference:
        ref_path = Path(args.reference)
        if not ref_path.exists():
            raise CliError(f"reference not found: {args.reference}")
        if ref_path.suffix == ".json":
            try:
                reference = Profile.from_dict(json.loads(ref_path.read_text()))
            except (ValueError, KeyError, TypeError) as exc:
                raise CliError(f"cannot read reference profile {args.reference}: {exc}") from exc
        else:
            reference = _profile_of_file(scorer, args.reference)
    else:
        reference = scorer.profile
        if reference is None:
            raise CliError("the bundle has no reference profile; pass --reference FILE")
    current = _profile_of_file(scorer, args.current)
    report = compare(reference, current)
    if args.html:
        report.to_html(args.html)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, default=str))
    print(_drift_summary(report))
    return EXIT_DRIFT if (args.fail_on_drift and report.drifted) else EXIT_OK


def cmd_inspect(args) -> int:
    from ._udf_plan import udf_summary
    from .scorer import Scorer, _read_parts

    if not Path(args.model).exists():
        raise CliError(f"model not found: {args.model}")
    body, arrays = _read_parts(args.model)
    # "describe": udfs are listed, never compiled or run, whatever the bundle holds
    scorer = Scorer.from_parts(body, arrays, allow_code="describe")
    udfs = udf_summary(body.get("features"))
    info = {
        "udfs": udfs,
        "metadata": scorer.metadata,
        "schema": scorer.schema.to_dict(),
        "plan": scorer.features.describe(),
        "model": None if scorer.model is None else {
            "kind": scorer.model.kind, "task": scorer.model.task,
            "n_features": scorer.model.n_features,
            "classes": None if scorer.model.classes_ is None else
            [str(c) for c in scorer.model.classes_]},
        "profile": None if scorer.profile is None else _profile_summary(scorer.profile),
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return EXIT_OK
    md = scorer.metadata
    print(f"forgeline bundle {args.model}")
    print(f"  source: {md.get('source')} {md.get('source_version') or ''} ({md.get('estimator')})")
    print(f"  created: {md.get('created')}  task: {md.get('task')}  classes: {md.get('classes')}")
    print(f"schema: {len(scorer.schema)} columns")
    for c in scorer.schema:
        voc = f" [{len(c.vocabulary)} categories]" if c.vocabulary is not None else ""
        print(f"  {c.name}: {c.kind}{voc}")
    print(scorer.explain_plan())
    if udfs:
        print(f"udfs: {len(udfs)} user-defined functions (code: loading needs allow_code=True)")
        for u in udfs:
            print(f"  {u['name']}: {u['signature']}  sha256 {u['sha256'][:16]}")
            for line in (u["source"] or "").rstrip().splitlines():
                print(f"    | {line}")
    if info["profile"]:
        print(f"profile: {info['profile']}")
    return EXIT_OK


def _profile_summary(profile) -> dict:
    cols = getattr(profile, "columns", {})
    return {"columns": len(cols), "rows": getattr(profile, "n_rows", None)}


def cmd_quickstart(args) -> int:
    from ._quickstart import run

    return run(Path(args.dir), n_rows=args.rows, quiet=args.quiet)


# --------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="forgeline", description="Fast, exact, safe native scoring "
                                "of fitted ML models, with drift monitoring.")
    p.add_argument("--version", action="version", version=f"forgeline {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("quickstart", help="train, compile, save, score and monitor the demo model")
    q.add_argument("--dir", default="forgeline-quickstart", help="where to write the files")
    q.add_argument("--rows", type=int, default=50_000, help="training rows (default 50000)")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=cmd_quickstart)

    s = sub.add_parser("score", help="score a CSV/Parquet file or directory into Parquet/CSV")
    s.add_argument("model")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--threads", type=int, default=None, help="native threads (default: all cores)")
    s.add_argument("--batch-size", type=int, default=65_536)
    s.add_argument("--columns", nargs="*", help="input columns to pass through (ids)")
    s.add_argument("--rejects", help="write rows that fail validation here, with the reason")
    s.add_argument("--monitor", metavar="REPORT_HTML", help="drift report computed in the same pass")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--allow-code", action="store_true",
                   help="compile and run the bundle's udfs (only for trusted bundles)")
    s.set_defaults(func=cmd_score)

    d = sub.add_parser("drift", help="compare a data file against the bundle's reference profile")
    d.add_argument("model")
    d.add_argument("current")
    d.add_argument("--reference", help="reference data file or profile JSON (default: the bundle's)")
    d.add_argument("--html")
    d.add_argument("--json")
    d.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is detected")
    d.add_argument("--allow-code", action="store_true",
                   help="compile and run the bundle's udfs (only for trusted bundles)")
    d.set_defaults(func=cmd_drift)

    i = sub.add_parser("inspect", help="print schema, plan, metadata and profile summary")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_inspect)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors already; keep its code
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if args.command == "score" and args.batch_size <= 0:
        print("forgeline: error: --batch-size must be positive", file=sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.func(args) or 0)
    except (ForgelineError, OSError, InputError) as exc:
        if args.debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"forgeline: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("forgeline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
