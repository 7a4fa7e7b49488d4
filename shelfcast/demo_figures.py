"""The demo report's charts: day-ahead forecasts against real demand, and stock on hand under
shelfcast and min/max with the gateway's stock-out alerts and the days sales were lost.

Axes come from :mod:`training.forecast_figures` (dates, units from 0, legend below the plot),
so these read like the backtest figures in MLflow.

>>> import numpy as np
>>> days = np.arange("2024-01-01", "2024-01-08", dtype="datetime64[D]")
>>> fig = stock_figure([{"title": "SKU A", "days": days, "shelfcast": np.arange(7.0),
...     "minmax": np.ones(7), "alerts": [days[2]], "lost": [days[3]]}])
>>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:2]
['shelfcast', 'min/max']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.forecast_figures import (
    FORECAST_COLOR,
    Figure,
    date_axis,
    forecast_grid,
    units_axis,
)

MINMAX_COLOR = "#e07b00"
ALERT_COLOR = "#c62828"


def _dt(days) -> list:
    return list(np.asarray(days, dtype="datetime64[D]").astype("datetime64[ms]").astype(object))


def _through_last_day(days, values) -> tuple[list, list]:
    """A step line's points with the last day's level held to the end of that day."""
    end = np.asarray(days, dtype="datetime64[D]")[-1] + 1
    return _dt([*days, end]), [*values, values[-1]]


def forecast_figure(panels: Sequence[dict], title: str) -> Figure:
    """Day-ahead forecast panels (``draw_forecast`` keyword arguments per SKU)."""
    return forecast_grid(panels, title)


def stock_figure(
    panels: Sequence[dict], title: str = "Stock on hand at close, test weeks", columns: int = 2
) -> Figure:
    """Per SKU: ``days``, ``shelfcast`` and ``minmax`` on-hand units, ``alerts`` (days a
    stock-out alert was published) and ``lost`` (days shelfcast's shelf could not meet demand)."""
    rows = max(1, -(-len(panels) // columns))
    fig = Figure(figsize=(5.2 * columns, 2.9 * rows + 0.6), layout="constrained")
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, p in zip(axes, panels, strict=False):
        ax.step(*_through_last_day(p["days"], p["shelfcast"]), where="post",
                color=FORECAST_COLOR, lw=1.6, label="shelfcast")  # fmt: skip
        ax.step(*_through_last_day(p["days"], p["minmax"]), where="post",
                color=MINMAX_COLOR, lw=1.3, ls="--", label="min/max")  # fmt: skip
        top = max(1.0, float(np.nanmax([*p["shelfcast"], *p["minmax"]])))
        if len(p["alerts"]):
            ax.plot(_dt(p["alerts"]), [top * 1.06] * len(p["alerts"]), "v", color=ALERT_COLOR,
                    ms=7, label="stock-out alert (gateway)")  # fmt: skip
        if len(p["lost"]):
            ax.plot(_dt(p["lost"]), [0] * len(p["lost"]), "x", color="black", ms=7, mew=2,
                    clip_on=False, label="lost sales (shelfcast)")  # fmt: skip
        ax.set_title(p["title"], fontsize=10, loc="left")
        units_axis(ax, "units on hand")
        ax.set_ylim(0, top * 1.15)
        date_axis(ax, p["days"], pad_days=(0.2, 0.95))
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, fontsize=8, frameon=False
        )
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig
