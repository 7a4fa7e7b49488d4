"""The backtest as tables a person reads: one row per method (or method and fold), mean
error over series-folds, best first. Logged to MLflow as CSV, markdown and HTML.

>>> import pandas as pd
>>> rows = pd.DataFrame({"fold": [1, 1], "series": ["S/A", "S/A"], "method": ["shelfcast", "naive"],
...     "rmsse": [0.8, 1.0], "mase": [0.7, 0.9], "spl50": [0.5, 0.6]})
>>> method_table(rows)["method"].tolist()
['shelfcast', 'naive']
>>> print(markdown_table(method_table(rows)).splitlines()[0])
| method | series-folds | RMSSE | MASE | scaled pinball P50 |
"""

from __future__ import annotations

# Metric column -> header (the means over series-folds; lower is better except coverage).
METRICS = {
    "rmsse": "RMSSE",
    "mase": "MASE",
    "spl50": "scaled pinball P50",
    "spl90": "scaled pinball P90",
    "cov90": "P90 coverage",
}


def method_table(rows, by_fold: bool = False):
    """Mean metrics per method (and fold), sorted by RMSSE; human column headers."""
    keys = ["fold", "method"] if by_fold else ["method"]
    cols = [c for c in METRICS if c in rows.columns]
    grouped = rows.groupby(keys)
    table = grouped[cols].mean()
    table.insert(0, "series-folds", grouped.size())
    table = table.reset_index().sort_values([*keys[:-1], "rmsse"], kind="stable")
    return table.rename(columns=METRICS).reset_index(drop=True)


def markdown_table(table) -> str:
    """A markdown table (numbers to 4 decimals), without a tabulate dependency."""

    def cell(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def html_page(table, title: str) -> str:
    """The table as a small styled HTML page (MLflow's artifact view shows it as is)."""
    style = (
        "body{font-family:system-ui,sans-serif;font-size:13px}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 8px}"
        "th{background:#f4f4f4;text-align:left}td{text-align:right}td:first-child{text-align:left}"
    )
    body = table.to_html(index=False, float_format="{:.4f}".format, border=0, na_rep="–")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body><h3>{title}</h3>{body}</body></html>"
    )
