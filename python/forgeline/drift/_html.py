"""HTML rendering of a DriftReport: static markup and inline SVG, nothing external."""

from __future__ import annotations

import math

import numpy as np

from .report import escape

_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.d{background:#fde2e1}.ok{background:#e6f4ea}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;padding:6px;width:300px}
.card h3{font-size:13px;margin:0 0 4px}.card{font-size:11px}.lg span{display:inline-block;width:10px;height:10px;margin:0 4px}
svg{border-bottom:1px solid #999}.r{fill:#4c78a8;fill-opacity:.8}.c{fill:#f58518;fill-opacity:.8}"""

W, H = 290, 110


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "&ndash;"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.4g}"
    return escape(x)


def _bars(ref: np.ndarray, cur: np.ndarray) -> str:
    # One path per series with relative moves keeps ~20 bytes per bar (the 1000-column
    # report must stay under 2 MB).
    k = len(ref)
    if k == 0:
        return ""
    top = float(np.nanmax(np.concatenate([ref, cur]))) or 1.0
    bw = W / k
    out = []
    for series, cls, off in ((ref, "r", 0.0), (cur, "c", 0.5)):
        d = []
        for i, v in enumerate(series):
            if not np.isfinite(v) or v <= 0:
                continue
            h = v / top * (H - 10)
            d.append(f"M{i * bw + off * bw:.1f} {H}v-{h:.1f}h{bw / 2:.1f}v{h:.1f}z")
        if d:
            out.append(f'<path class="{cls}" d="{"".join(d)}"/>')
    return "".join(out)


def _chart(name: str, chart: dict) -> str:
    ref = np.asarray(chart["ref"], dtype=float)
    cur = np.asarray(chart["cur"], dtype=float)
    if chart["kind"] == "categorical" and len(ref) > 30:
        order = np.argsort(-(ref + cur))[:30]
        ref, cur = ref[order], cur[order]
    if chart["kind"] == "numeric":
        caption = f"{_fmt(float(chart['min']))} .. {_fmt(float(chart['max']))}"
    else:
        caption = f"{len(chart['labels'])} categories"
    return (f'<div class="card"><h3>{escape(name)}</h3><svg width="{W}" height="{H}">'
            f"{_bars(ref, cur)}</svg><br>{caption}</div>")


def render(report) -> str:
    by_col: dict = {}
    for r in report.results:
        by_col.setdefault(r.column, []).append(r)
    rows = []
    for col, rs in by_col.items():
        main = report.decisions.get(col, rs[0])
        drifted = main.drifted or any(r.kind == "quality" and r.drifted for r in rs)
        others = " ".join(f"{escape(r.test)}={_fmt(r.statistic)}{'*' if r.drifted else ''}"
                          for r in rs if r is not main)
        rows.append(f'<tr class="{"d" if drifted else "ok"}"><td>{escape(col)}</td>'
                    f"<td>{escape(main.kind)}</td><td>{escape(main.test)}</td>"
                    f"<td>{_fmt(main.statistic)}</td><td>{_fmt(main.p_value)}</td>"
                    f"<td>{_fmt(main.effect_size)}</td><td>{_fmt(main.drifted)}</td><td>{others}</td></tr>")
    charts = [_chart(n, c) for n, c in report.charts.items()]
    verdict = "Dataset drift detected" if report.drifted else "No dataset drift"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>forgeline drift report</title>"
            f"<style>{_CSS}</style></head><body><h1>forgeline drift report</h1>"
            f"<p><b>{verdict}</b>: {len(report.drifted_columns)} of {len(report.decisions)} columns "
            f"drifted (share {report.share_drifted:.3f}, threshold {report.drift_share}; "
            f"correction: {escape(report.correction)}).</p>"
            '<p class="lg"><span style="background:#4c78a8"></span>reference '
            '<span style="background:#f58518"></span>current</p>'
            "<h2>Summary</h2><table><thead><tr><th>column</th><th>kind</th><th>deciding test</th>"
            "<th>statistic</th><th>p-value</th><th>effect size</th><th>drifted</th>"
            "<th>other tests (* = drifted)</th></tr></thead><tbody>" + "".join(rows) +
            "</tbody></table><h2>Distributions</h2><div class=\"grid\">" + "".join(charts) +
            "</div></body></html>")
