"""Side-by-side benchmarks: forgeline and its peers, in one process run, reported as ratios.

Usage::

    python bench/peers.py                 # every workload, default sizes
    python bench/peers.py trees drift     # only these sections
    python bench/peers.py --quick         # small sizes (smoke run)

Each section lives in ``bench/peers_<name>.py`` and exposes ``run(quick: bool) -> list[dict]``;
each dict is a row with at least ``workload``, ``engine``, ``seconds`` and optionally
``note``. Peers that are not installed are skipped with a message saying how to install them.
Ratios are computed against forgeline's row of the same workload, so they come from one run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

SECTIONS = ["trees", "transforms", "pipeline", "batch", "linear", "drift", "tune", "hist", "spark", "runtime"]


def _fmt(rows: list[dict]) -> str:
    out = []
    by_wl: dict[str, list[dict]] = {}
    for r in rows:
        by_wl.setdefault(r["workload"], []).append(r)
    for wl, rs in by_wl.items():
        base = next((r["seconds"] for r in rs if r["engine"].startswith("forgeline")), None)
        out.append(f"\n## {wl}")
        out.append(f"| engine | seconds | forgeline speed-up | note |\n|---|---|---|---|")
        for r in rs:
            ratio = "" if base in (None, 0) or r["seconds"] is None else f"{r['seconds'] / base:.1f}x"
            secs = "skipped" if r["seconds"] is None else f"{r['seconds']:.4g}"
            out.append(f"| {r['engine']} | {secs} | {ratio} | {r.get('note', '')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sections", nargs="*", default=SECTIONS)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    # Every section measures the checkout's in-place build when there is one (not a stale
    # installed forgeline); sections that also run standalone call it themselves.
    from _timing import add_source_tree

    add_source_tree()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    rows: list[dict] = []
    for name in args.sections:
        try:
            mod = importlib.import_module(f"peers_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"peers_{name}":
                raise  # a section's own import failed: that is a bug, not a missing section
            print(f"[{name}] section not written yet: {exc}", file=sys.stderr)
            continue
        rows.extend(mod.run(args.quick))
    print(_fmt(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
