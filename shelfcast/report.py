"""The demo's HTML report: one self-contained page, charts drawn as inline SVG (no plotting library).

>>> html = line_chart("t", {"a": [1.0, 2.0, 3.0]}, markers={"x": [1]})
>>> html.startswith("<svg") and "polyline" in html
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MARKER_COLORS = ("#ff7f0e", "#000000", "#8c564b")


def line_chart(
    title: str,
    series: dict[str, Sequence[float]],
    markers: dict[str, Sequence[int]] | None = None,
    labels: Sequence[str] | None = None,
    band: tuple[Sequence[float], Sequence[float]] | None = None,
    width: int = 560,
    height: int = 220,
) -> str:
    """Lines over a shared x axis (day index), optional shaded band and marked x positions."""
    pad_l, pad_r, pad_t, pad_b = 48, 10, 22, 30
    n = max((len(v) for v in series.values()), default=0)
    values = [float(x) for v in series.values() for x in v if x is not None and math.isfinite(x)]
    if band:
        values += [float(x) for x in band[1] if math.isfinite(x)]
    top = max(values, default=1.0) or 1.0
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (w * i / max(n - 1, 1))
        return x, pad_t + h - h * min(max(v, 0.0), top) / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="{pad_l}" y="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + h}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" text-anchor="end">{top:,.0f}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + h}" text-anchor="end">0</text>',
    ]
    if labels:
        for i in sorted({0, n // 2, n - 1}):
            if 0 <= i < len(labels):
                x, _ = xy(i, 0)
                parts.append(
                    f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{html.escape(labels[i])}</text>'
                )
    if band:
        lo, hi = band
        pts = [xy(i, v) for i, v in enumerate(hi)] + [
            xy(i, v) for i, v in reversed(list(enumerate(lo)))
        ]
        parts.append(
            '<polygon fill="#1f77b4" fill-opacity="0.15" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            + '"/>'
        )
    legend_x = pad_l + 8
    for k, (name, vals) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, float(v)) for i, v in enumerate(vals)))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')
        parts.append(
            f'<text x="{legend_x}" y="{pad_t + 12}" fill="{color}">{html.escape(name)}</text>'
        )
        legend_x += 8 + 7 * len(name)
    for k, (name, xs) in enumerate((markers or {}).items()):
        color = MARKER_COLORS[k % len(MARKER_COLORS)]
        for i in xs:
            x, _ = xy(int(i), 0)
            parts.append(
                f'<line x1="{x:.1f}" y1="{pad_t}" x2="{x:.1f}" y2="{pad_t + h}" stroke="{color}" '
                f'stroke-dasharray="3,3" stroke-opacity="0.7"/>'
            )
        parts.append(
            f'<text x="{legend_x}" y="{pad_t + 12}" fill="{color}">┆ {html.escape(name)}</text>'
        )
        legend_x += 14 + 7 * len(name)
    parts.append("</svg>")
    return "\n".join(parts)


def table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """An HTML table of ``rows`` restricted to ``columns`` (floats rounded for reading)."""

    def fmt(v) -> str:
        if isinstance(v, float):
            if not math.isfinite(v):
                return "–"
            return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


STYLE = """
body { font-family: sans-serif; max-width: 1180px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
code, pre { background: #f4f4f4; padding: 2px 4px; }
.note { color: #555; font-size: 13px; }
"""


def write_report(path: str | Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write ``sections`` (heading, HTML body) as one page; returns the path."""
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
