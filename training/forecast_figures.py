"""Forecast-against-actual charts (matplotlib): the backtest's figures in MLflow and the demo
report's forecast panels draw their axes with the same :func:`draw_forecast`, so a P90 band, an
actual line and a date axis look and read the same in both places.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``): no global
state, no GUI backend, safe in threads and on a headless server.

>>> import numpy as np
>>> days = np.arange("2024-01-01", "2024-01-15", dtype="datetime64[D]")
>>> fig = Figure(figsize=(4, 2.5))
>>> draw_forecast(fig.add_subplot(), days, np.arange(14.0), np.full(14, 6.0), np.full(14, 9.0))
>>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
['actual units', 'forecast mean', 'forecast P90 band']
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before any pyplot import anywhere: never a GUI backend on a server

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

ACTUAL_COLOR = "#222222"
FORECAST_COLOR = "#1f77b4"
HISTORY_COLOR = "#9a9a9a"


def date_axis(ax, days: Sequence, pad_days: tuple[float, float] = (0.5, 0.5)) -> None:
    """Dates on the x axis: a concise auto-locator (never a clipped last label), the plotted
    days padded by ``pad_days`` (before, after) so the first and last points sit inside."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    first = mdates.date2num(_as_datetimes([days[0]])[0]) - pad_days[0]
    last = mdates.date2num(_as_datetimes([days[-1]])[0]) + pad_days[1]
    ax.set_xlim(first, last)


def _as_datetimes(days: Sequence) -> list:
    return list(np.asarray(days, dtype="datetime64[D]").astype("datetime64[ms]").astype(object))


def units_axis(ax, label: str = "units per day") -> None:
    """A y axis from 0 with whole-number ticks and its unit named."""
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=3))
    ax.set_ylabel(label)
    ax.grid(True, axis="y", alpha=0.3)


def draw_forecast(
    ax,
    days: Sequence,
    actual: Sequence[float],
    mean: Sequence[float],
    p90: Sequence[float] | None = None,
    history: tuple[Sequence, Sequence[float]] | None = None,
    title: str | None = None,
) -> None:
    """Actual daily units, the forecast mean and its band up to P90 over ``days`` (dates);
    ``history`` (days, units) is drawn before them in grey. The legend sits below the axes."""
    x = _as_datetimes(days)
    first = days
    if history is not None and len(history[0]):
        hx = _as_datetimes(history[0])
        ax.plot(hx, history[1], color=HISTORY_COLOR, lw=1, label="history")
        first = history[0]
    ax.plot(x, actual, color=ACTUAL_COLOR, lw=1.4, marker=".", ms=3, label="actual units")
    ax.plot(x, mean, color=FORECAST_COLOR, lw=1.6, label="forecast mean")
    if p90 is not None:
        ax.fill_between(
            x, 0, p90, color=FORECAST_COLOR, alpha=0.15, lw=0, label="forecast P90 band"
        )
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    units_axis(ax)
    date_axis(ax, [first[0], days[-1]])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, fontsize=8, frameon=False)


def forecast_grid(
    panels: Sequence[dict],
    title: str,
    columns: int = 2,
    panel_size: tuple[float, float] = (5.2, 2.9),
) -> Figure:
    """One figure of several :func:`draw_forecast` panels; each dict holds its keyword arguments."""
    rows = max(1, -(-len(panels) // columns))
    fig = Figure(
        figsize=(panel_size[0] * columns, panel_size[1] * rows + 0.6), layout="constrained"
    )
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, kwargs in zip(axes, panels, strict=False):
        draw_forecast(ax, **kwargs)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig


def backtest_forecast_figure(panel, model, cutoff: int, horizon: int, top: int = 6) -> Figure:
    """The last backtest fold's forecasts against what happened, for the ``top`` series with
    the most units in that window, with the 8 weeks of history before the cutoff."""
    from feature_store.batch import close_features, forecast_rows

    close = close_features(panel)
    X, series, _h = forecast_rows(panel, close, cutoff, range(1, horizon + 1))
    pred = {k: v.reshape(-1, horizon) for k, v in model.predict(X).items()}
    series = series.reshape(-1, horizon)[:, 0]
    window = slice(cutoff + 1, cutoff + 1 + horizon)
    actual = np.nan_to_num(panel.units[series, window])
    order = np.argsort(-actual.sum(axis=1), kind="stable")[:top]
    dates = panel.dates
    past = slice(max(0, cutoff + 1 - 56), cutoff + 1)
    panels = [
        {
            "days": dates[window],
            "actual": actual[i],
            "mean": pred["mean"][i],
            "p90": pred["p90"][i],
            "history": (dates[past], np.nan_to_num(panel.units[series[i], past])),
            "title": " / ".join(panel.keys[series[i]]),
        }
        for i in order
    ]
    return forecast_grid(
        panels, f"Backtest: forecast from {dates[cutoff]} against actual daily units"
    )


def error_by_method_figure(rows) -> Figure:
    """RMSSE per series (lower is better) of each backtest method: a box per method."""
    methods = rows.groupby("method")["rmsse"].mean().sort_values().index.tolist()
    fig = Figure(figsize=(7, 0.5 + 0.45 * len(methods) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    data = [rows.loc[rows["method"] == m, "rmsse"].dropna().to_numpy() for m in methods]
    ax.boxplot(data, vert=False, tick_labels=methods, showmeans=True)
    ax.invert_yaxis()
    ax.set_xlabel("RMSSE per series and fold (lower is better; 1 = in-sample naive)")
    ax.set_title("Backtest error by method", fontsize=11, loc="left")
    ax.grid(True, axis="x", alpha=0.3)
    return fig
