"""The demo's HTML report: one self-contained page that opens offline. Charts are matplotlib
figures embedded as inline SVG (no script, no external asset), tables have human headers and
scroll inside their box instead of running off the page, and every alert the gateway
published is listed, not only counted.

>>> from matplotlib.figure import Figure
>>> fig = Figure(figsize=(2, 1)); _ = fig.add_subplot().plot([0, 1])
>>> figure_html(fig, "a line").startswith("<figure><svg")
True
>>> "<th>Kind</th>" in alerts_table([{"kind": "stockout", "sku": "A", "probability": 0.7,
...     "event_time": "2011-09-01T18:00:00+00:00", "reason_codes": ["ATP_LOW"]}])
True
"""

from __future__ import annotations

import html
import io
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never a GUI backend: the report is built on servers and in CI

from matplotlib.figure import Figure


def figure_html(fig: Figure, alt: str) -> str:
    """``fig`` as inline SVG (text kept as text, so it stays sharp and searchable), with
    ``alt`` as its accessible title."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "shelfcast"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: not allowed inline
    svg = re.sub(r"<svg ", f'<svg role="img" aria-label="{html.escape(alt)}" ', svg, count=1)
    return f"<figure>{svg}</figure>"


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if v.is_integer():  # counts and whole parameters read as such, not as "3.000"
            return f"{int(v):,}"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return html.escape(str(v))


def table(rows: Sequence[Mapping], columns: Mapping[str, str], css_class: str = "") -> str:
    """An HTML table of ``rows``: ``columns`` maps each row key to its header. Numbers are
    rounded for reading and right-aligned; the table scrolls inside its box when too wide."""

    def cls(v) -> str:
        return ' class="num"' if isinstance(v, int | float) and not isinstance(v, bool) else ""

    head = "".join(f"<th>{html.escape(h)}</th>" for h in columns.values())
    body = "".join(
        "<tr>" + "".join(f"<td{cls(r.get(k))}>{_cell(r.get(k))}</td>" for k in columns) + "</tr>"
        for r in rows
    )
    extra = f" {css_class}" if css_class else ""
    return f"<div class='table-box{extra}'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


ALERT_COLUMNS = {
    "time": "Time",
    "sku": "SKU",
    "kind": "Kind",
    "value": "Probability / qty",
    "detail": "Decision numbers",
    "reasons": "Reason codes",
}


def _alert_row(m: Mapping) -> dict:
    kind = str(m.get("kind", "?"))
    when = str(m.get("event_time", ""))[:16].replace("T", " ")
    if kind == "stockout":
        value = f"p = {m.get('probability', 0):.2f}"
        detail = ", ".join(
            f"{k.replace('_', ' ')} {_cell(m.get(k))}"
            for k in ("atp", "on_hand", "horizon_hours")
            if m.get(k) is not None
        )
    elif kind == "replenishment":
        value = f"order {m.get('recommended_qty')} units"
        detail = ", ".join(
            f"{label} {_cell(m.get(k))}"
            for k, label in (
                ("atp", "atp"),
                ("reorder_point", "reorder point"),
                ("order_up_to", "order-up-to"),
            )
            if m.get(k) is not None
        )
    elif kind == "anomaly":
        value = f"score {_cell(m.get('score'))}"
        units = m.get("units")
        detail = str(m.get("anomaly_type", "")) + (f", {_cell(units)} units" if units else "")
    elif kind == "conflict":
        value = f"granted {_cell(m.get('qty_granted'))} of {_cell(m.get('qty_requested'))}"
        detail = str(m.get("rule", ""))
    else:
        value, detail = "", ""
    return {
        "time": when,
        "sku": m.get("sku") or "–",
        "kind": kind,
        "value": value,
        "detail": detail,
        "reasons": ", ".join(m.get("reason_codes") or []),
    }


def alerts_table(messages: Sequence[Mapping]) -> str:
    """Every alert and conflict message, oldest first, with the numbers behind it; a count per
    kind above the table."""
    rows = sorted((_alert_row(m) for m in messages), key=lambda r: (r["time"], r["sku"]))
    kinds = Counter(r["kind"] for r in rows)
    counts = ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items())) or "none"
    return f"<p>{len(rows):,} messages received ({counts}), in event time:</p>" + table(
        rows, ALERT_COLUMNS, "alerts"
    )


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.table-box { overflow-x: auto; max-width: 100%; margin: 1em 0; }
.table-box.alerts { max-height: 32em; overflow-y: auto; border: 1px solid #ddd; width: fit-content; }
table { border-collapse: collapse; font-size: 13px; }
th { background: #f4f4f4; position: sticky; top: 0; text-align: left; vertical-align: bottom;
     white-space: normal; max-width: 9em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; }
td { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; }
code, pre { background: #f4f4f4; padding: 2px 4px; }
.note { color: #555; font-size: 13px; }
dl.rules dt { font-weight: bold; } dl.rules dd { margin: 0 0 .5em 1.5em; font-size: 13px; }
"""


def write_report(path: str | Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write ``sections`` (heading, HTML body) as one page; returns the path."""
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
