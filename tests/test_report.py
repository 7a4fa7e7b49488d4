"""The demo report's page: matplotlib figures inline (no external asset), readable tables with
human headers, and every alert listed with its numbers."""

from __future__ import annotations

import re

import numpy as np

from shelfcast.demo_figures import forecast_figure, stock_figure
from shelfcast.report import alerts_table, figure_html, table, write_report
from twin.simulate import COLUMN_LABELS, TABLE_COLUMNS

DAYS = np.arange("2011-09-01", "2011-09-15", dtype="datetime64[D]")
MESSAGES = [
    {"kind": "replenishment", "sku": "85123A", "event_time": "2011-09-03T18:00:00+01:00",
     "recommended_qty": 24, "atp": 3.0, "reorder_point": 5.0, "order_up_to": 27.0,
     "reason_codes": ["below_reorder_point"]},
    {"kind": "stockout", "sku": "22423", "event_time": "2011-09-02T18:00:00+01:00",
     "probability": 0.83, "atp": 1.0, "horizon_hours": 72.0, "reason_codes": ["ATP_LOW"]},
    {"kind": "conflict", "sku": "22423", "event_time": "2011-09-04T10:00:00+01:00",
     "rule": "first-committed-wins", "qty_requested": 2.0, "qty_granted": 1.0,
     "reason_codes": ["LAST_UNITS"]},
]  # fmt: skip


def _page(tmp_path) -> str:
    rng = np.random.default_rng(0)
    actual = rng.poisson(5, len(DAYS)).astype(float)
    fc = forecast_figure(
        [{"days": DAYS, "actual": actual, "mean": np.full(len(DAYS), 5.0),
          "p90": np.full(len(DAYS), 8.0), "title": "SKU 22423"}], "forecasts")  # fmt: skip
    stock = stock_figure(
        [{"days": DAYS, "shelfcast": np.linspace(20, 2, len(DAYS)), "minmax": np.full(len(DAYS), 9.0),
          "alerts": [DAYS[1]], "lost": [DAYS[-1]], "title": "SKU 22423"}])  # fmt: skip
    rows = [{"policy": "minmax", "parameter": 3.0, "fill_rate": 0.91, "lost_units": 120.0}]
    path = write_report(
        tmp_path / "report.html",
        "shelfcast demo",
        [
            ("Policies", table(rows, {c: COLUMN_LABELS[c] for c in TABLE_COLUMNS})),
            ("Forecasts", figure_html(fc, "forecasts")),
            ("Stock", figure_html(stock, "stock")),
            ("Alerts", alerts_table(MESSAGES)),
        ],
    )
    return path.read_text()


def test_report_embeds_figures_and_lists_every_alert(tmp_path):
    page = _page(tmp_path)
    # Two matplotlib figures, inline: no script, no link, no image fetched from anywhere.
    assert page.count("<figure><svg") == 2 and "matplotlib" in page
    assert not re.search(r"<script|<link|src=\"http|href=\"http", page)
    # Axes have units and more than two ticks; dates are labelled.
    assert "units per day" in page and "units on hand" in page
    assert page.count("stock-out alert (gateway)") == 1 and "forecast P90 band" in page
    # Human headers, not snake_case keys.
    assert "<th>Avg inventory (units)</th>" in page and "avg_inventory_units" not in page
    # Every alert is a row, oldest first, with its numbers and reason codes.
    alerts = page[page.index("3 messages received") :]
    assert "conflict 1, replenishment 1, stockout 1" in alerts
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", alerts)
    assert rows == [
        ("2011-09-02 18:00", "22423", "stockout"),
        ("2011-09-03 18:00", "85123A", "replenishment"),
        ("2011-09-04 10:00", "22423", "conflict"),
    ]
    assert "p = 0.83" in alerts and "order 24 units" in alerts and "ATP_LOW" in alerts


def test_alerts_table_says_when_there_were_none():
    assert "0 messages received (none)" in alerts_table([])
