"""HTML rendering of a DriftReport: static markup and inline SVG, nothing external."""

from __future__ import annotations

import math

import numpy as np

from .report import escape

_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.d{background:#fde2e1}.ok{background:#e6f4ea}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;padding:6px;width:300px}
.card h3{font-size:13px;margin:0 0 4px}.lg span{display:inline-block;width:10px;height:10px;margin:0 4px}"""

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
    k = len(ref)
    if k == 0:
        return ""
    top = float(np.nanmax(np.concatenate([ref, cur]))) or 1.0
    bw = W / k
    parts = []
    for series, color, off in ((ref, "#4c78a8", 0.0), (cur, "#f58518", 0.5)):
        for i, v in enumerate(series):
            if not np.isfinite(v) or v <= 0:
                continue
            h = v / top * (H - 10)
            parts.append(f'<rect x="{i * bw + off * bw:.1f}" y="{H - h:.1f}" width="{bw / 2:.1f}" '
                         f'height="{h:.1f}" fill="{color}" fill-opacity="0.8"/>')
    return "".join(parts)


def _chart(name: str, chart: dict) -> str:
    ref = np.asarray(chart["ref"], dtype=float)
    cur = np.asarray(chart["cur"], dtype=float)
    if chart["kind"] == "categorical" and len(ref) > 30:
        order = np.argsort(-(ref + cur))[:30]
        ref, cur = ref[order], cur[order]
    body = _bars(ref, cur)
    if chart["kind"] == "numeric":
        caption = f"{_fmt(float(chart['min']))} .. {_fmt(float(chart['max']))} (reference quantile bins)"
    else:
        caption = f"{len(chart['labels'])} categories (top 30 shown)" if len(chart["labels"]) > 30 \
            else f"{len(chart['labels'])} categories"
    return (f'<div class="card"><h3>{escape(name)}</h3><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(name)}">'
            f'<line x1="0" y1="{H}" x2="{W}" y2="{H}" stroke="#999"/>{body}</svg>'
            f'<div style="font-size:11px">{caption}</div></div>')


def render(report) -> str:
    rows = []
    for r in report.results:
        cls = "d" if r.drifted else "ok"
        rows.append(f'<tr class="{cls}"><td>{escape(r.column)}</td><td>{escape(r.kind)}</td>'
                    f"<td>{escape(r.test)}</td><td>{_fmt(r.statistic)}</td><td>{_fmt(r.p_value)}</td>"
                    f"<td>{_fmt(r.threshold)}</td><td>{_fmt(r.effect_size)}</td>"
                    f"<td>{_fmt(r.drifted)}</td><td>{escape(r.method)}</td></tr>")
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
            "<h2>Summary</h2><table><thead><tr><th>column</th><th>kind</th><th>test</th>"
            "<th>statistic</th><th>p-value</th><th>threshold</th><th>effect size</th>"
            "<th>drifted</th><th>method</th></tr></thead><tbody>" + "".join(rows) +
            "</tbody></table><h2>Distributions</h2><div class=\"grid\">" + "".join(charts) +
            "</div></body></html>")
