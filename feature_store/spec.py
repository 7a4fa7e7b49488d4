"""The one definition of every model feature: names, order, dtypes, windows and meaning.

A feature row describes one store-SKU *as of the close of a day* ("close" features, computed
from that series' daily units up to and including the day) plus the *target day* it forecasts
("target" features: horizon and calendar of the day ``close + horizon``). The batch side
(:mod:`feature_store.batch`) and the streaming side (:mod:`feature_store.streaming`) both follow
the definitions here; every window statistic needs only the last ``MAX_WINDOW`` days of a series,
so a gateway keeps O(window) state per store-SKU.

Definitions (``u[t]`` = units on day ``t``, ``c`` = close day, ``n`` = days seen so far):

- ``lag_k``: ``u[c - k + 1]`` (``lag_1`` is the close day itself); 0 before the series began.
- ``mean_w`` / ``std_w``: mean and population std of ``u`` over the last ``min(w, n)`` days.
- ``zero_share_w``: share of days with ``u == 0`` over the last ``min(w, n)`` days.
- ``sale_interval_w``: ``min(w, n) / max(1, sale days in that window)``, the mean interval
  between sales (Croston's p) seen through a window.
- ``ewm_a`` (``a`` in ``EWM_ALPHAS``, named by hundredths: ``ewm_05`` is alpha 0.05): the
  exponentially weighted mean of ``u`` over the last ``min(MAX_WINDOW, n)`` days, day ``c - k``
  weighing ``a (1 - a)^k``, normalised by the weights used (``sum_k w_k u[c-k] / sum_k w_k``):
  the smoothed level of simple exponential smoothing, cut at the longest window so batch,
  streaming and a truncated history agree exactly (``0.95^91 < 1 %``).
- ``ewm_sale_share_a``: the same weighted mean of ``1[u > 0]``, TSB's demand probability.
- ``days_since_sale``: days from the last day with ``u > 0`` to ``c`` (0 if ``u[c] > 0``),
  capped at ``DAYS_SINCE_CAP``; the cap when no sale was seen.
- ``z_last``: ``(u[c] - mean_28) / (std_28 + 1)``, how unusual the close day was.
- ``age``: ``n``, capped at ``MAX_WINDOW``.
- ``price``, ``promo``: the close day's values (0 when the history has none).
- ``horizon``: days from close to target day, 1..``MAX_HORIZON``.
- ``target_dow`` (Monday=0), ``target_dom``, ``target_month``, ``target_event`` (1 when the
  target day carries a calendar event, 0 otherwise or when unknown).
- ``same_dow_mean``: mean of ``u`` on the last 4 days (within 28 days of the close) that share
  the target day's weekday; 0 before any such day. At week grain (no weekday), the last 4 weeks.
- ``year_lag``: ``u[t - Y]`` for the target step ``t``, ``Y`` = a year of steps (364 days or
  52 weeks, so a day keeps its weekday); 0 when the series had not begun.
- ``year_mean``: mean of ``u`` over the ``year_span`` steps centred on ``t - Y`` (the yearly
  profile: the same season a year back); 0 when none of them was seen.
- ``year_ratio``: ``year_mean`` over the mean of the ``year_base`` steps ending at ``c - Y``:
  how demand moved, a year ago, from the close's season to the target's (the November ramp a
  91-day window cannot see); clipped to ``[0, YEAR_RATIO_CAP]``, ``-1`` when the series is younger
  than a year (a value no ratio takes, so a tree can tell it apart).
- ``target_promo``: the promotion flag planned for the target step (0 when unknown).
- ``target_price_ratio``: the price planned for the target step (the last known price when not
  given) over the regular price, the highest known price over the last 28 steps; 1 when no
  price is known. A price cut shows as a ratio below 1 whatever the currency or pack size.

Grain: a history is daily or weekly (:data:`GRAINS`); every feature counts *steps* of that
grain (``lag_7`` is a week back at day grain, seven weeks back at week grain), and the target
calendar is the target step's first day. A weekly history is forecast in weeks, never padded
into days.

>>> names()[:3]
['lag_1', 'lag_2', 'lag_3']
>>> len(names()) == len(FEATURES)
True
>>> spec_dict()["version"] == FEATURE_STORE_VERSION
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from feature_store.intraday import FEATURES as INTRADAY_FEATURES
from feature_store.intraday import WINDOW_DAYS

FEATURE_STORE_VERSION = "1.4"

LAGS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 14, 21, 28)
WINDOWS: tuple[int, ...] = (7, 28, 91)
MAX_WINDOW = 91
MAX_HORIZON = 28
DAYS_SINCE_CAP = 365
SAME_DOW_WEEKS = 4
EWM_ALPHAS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)

DTYPE = "float32"  # the matrix the ONNX models take
YEAR_RATIO_CAP = 10.0
PRICE_WINDOW = 28  # steps over which the highest known price is the regular price


@dataclass(frozen=True)
class Grain:
    """The step of a history and the year-back windows in steps of it.

    >>> GRAINS["week"].days, GRAINS["week"].year, GRAINS["day"].history
    (7, 52, 392)
    """

    name: str
    days: int  # days per step
    season: int  # steps between two steps with the same weekday (1: no weekday at this grain)
    year: int  # steps back to the same season a year earlier
    year_span: int  # steps around t - year averaged by ``year_mean`` (odd)
    year_base: int  # steps ending at c - year averaged for ``year_ratio``

    @property
    def history(self) -> int:
        """Steps of history the features need at this grain (the streaming buffer)."""
        return max(MAX_WINDOW, self.year + self.year_base)


GRAINS: dict[str, Grain] = {
    "day": Grain("day", days=1, season=7, year=364, year_span=7, year_base=28),
    "week": Grain("week", days=7, season=1, year=52, year_span=3, year_base=4),
}
# Steps a streaming series keeps: enough for any grain's year-back features.
HISTORY_STEPS = max(g.history for g in GRAINS.values())


def grain(name: str) -> Grain:
    """The named grain; ``ValueError`` lists the known ones."""
    if name not in GRAINS:
        raise ValueError(f"unknown grain {name!r}; known: {', '.join(GRAINS)}")
    return GRAINS[name]


@dataclass(frozen=True)
class Feature:
    """One model input: its column name, whether it describes the close day or the target day.

    >>> lag = FEATURES[0]
    >>> lag.name, lag.kind, lag.in_units, lag.doc
    ('lag_1', 'close', True, 'units 0 days before the close day')
    """

    name: str
    kind: str  # "close" or "target"
    doc: str
    dtype: str = DTYPE
    # Measured in units of demand: a model may divide it by the series' scale.
    in_units: bool = False


def ewm_name(alpha: float, stem: str = "ewm") -> str:
    """Column name of an exponentially weighted feature: alpha in hundredths.

    >>> ewm_name(0.05), ewm_name(0.4, "ewm_sale_share")
    ('ewm_05', 'ewm_sale_share_40')
    """
    return f"{stem}_{round(alpha * 100):02d}"


def ewm_weights(alpha: float) -> list[float]:
    """Weight of day ``c - k`` for k = 0 .. MAX_WINDOW - 1 (before normalisation).

    >>> [round(w, 3) for w in ewm_weights(0.5)[:3]]
    [0.5, 0.25, 0.125]
    """
    return [alpha * (1.0 - alpha) ** k for k in range(MAX_WINDOW)]


def weekday(epoch_day):
    """``target_dow`` of a day counted from 1970-01-01 (a Thursday): Monday = 0. Works on ints
    and numpy integer arrays alike.

    >>> weekday(0), weekday(4)  # 1970-01-01 was a Thursday, 1970-01-05 a Monday
    (3, 0)
    """
    return (epoch_day + 3) % 7


def _build() -> tuple[Feature, ...]:
    out = [
        Feature(f"lag_{k}", "close", f"units {k - 1} days before the close day", in_units=True)
        for k in LAGS
    ]
    for w in WINDOWS:
        out.append(
            Feature(f"mean_{w}", "close", f"mean daily units over the last {w} days", in_units=True)
        )
        out.append(
            Feature(f"std_{w}", "close", f"population std of units over {w} days", in_units=True)
        )
        out.append(Feature(f"zero_share_{w}", "close", f"share of zero days over {w} days"))
        out.append(Feature(f"sale_interval_{w}", "close", f"mean days between sales, {w} days"))
    for a in EWM_ALPHAS:
        out.append(
            Feature(
                ewm_name(a), "close", f"exponentially weighted mean units, alpha {a}", in_units=True
            )
        )
        out.append(
            Feature(
                ewm_name(a, "ewm_sale_share"), "close", f"weighted share of sale days, alpha {a}"
            )
        )
    out += [
        Feature("days_since_sale", "close", "days since the last day with a sale"),
        Feature("z_last", "close", "close day's units as a z-score against 28 days"),
        Feature("age", "close", "days of history seen, capped at the longest window"),
        Feature("price", "close", "unit price on the close day (0 when unknown)"),
        Feature("promo", "close", "promotion flag on the close day (0 when unknown)"),
        Feature("horizon", "target", "days from the close day to the target day"),
        Feature("target_dow", "target", "weekday of the target day, Monday=0"),
        Feature("target_dom", "target", "day of month of the target day"),
        Feature("target_month", "target", "month of the target day"),
        Feature("target_event", "target", "1 when the target day has a calendar event"),
        Feature(
            "same_dow_mean",
            "target",
            "mean units on recent days with the target weekday",
            in_units=True,
        ),
        Feature("year_lag", "target", "units a year before the target step", in_units=True),
        Feature(
            "year_mean", "target", "mean units around the target step a year back", in_units=True
        ),
        Feature("year_ratio", "target", "a year back: target season over close season"),
        Feature("target_promo", "target", "promotion planned for the target step"),
        Feature("target_price_ratio", "target", "planned price over the regular price"),
    ]
    return tuple(out)


FEATURES: tuple[Feature, ...] = _build()

# A series' demand scale: models may work in units of ``SCALE_FEATURE + SCALE_OFFSET``.
SCALE_FEATURE = "mean_91"
SCALE_OFFSET = 0.5

# The anomaly model scores a store-SKU-day, so it sees only close-day features.
ANOMALY_FEATURES: tuple[str, ...] = (
    "lag_1",
    "mean_7",
    "mean_28",
    "std_28",
    "zero_share_28",
    "days_since_sale",
    "z_last",
    "price",
)


def names() -> list[str]:
    """Ordered names of the demand model's input columns."""
    return [f.name for f in FEATURES]


def close_names() -> list[str]:
    """Ordered names of the close-day features (a prefix-free subset of :func:`names`)."""
    return [f.name for f in FEATURES if f.kind == "close"]


def index(name: str) -> int:
    """Column of ``name`` in the demand feature matrix; ``KeyError`` names the unknown feature."""
    for i, f in enumerate(FEATURES):
        if f.name == name:
            return i
    raise KeyError(f"unknown feature {name!r}; known: {', '.join(names())}")


def spec_dict() -> dict:
    """The spec as plain JSON-ready data: what ``feature_spec.json`` in a bundle holds."""
    return {
        "version": FEATURE_STORE_VERSION,
        "dtype": DTYPE,
        "lags": list(LAGS),
        "windows": list(WINDOWS),
        "max_window": MAX_WINDOW,
        "max_horizon": MAX_HORIZON,
        "days_since_cap": DAYS_SINCE_CAP,
        "same_dow_weeks": SAME_DOW_WEEKS,
        "ewm_alphas": list(EWM_ALPHAS),
        "grains": {k: asdict(g) for k, g in GRAINS.items()},
        "year_ratio_cap": YEAR_RATIO_CAP,
        "price_window": PRICE_WINDOW,
        "features": [asdict(f) for f in FEATURES],
        "anomaly_features": list(ANOMALY_FEATURES),
        "intraday_features": list(INTRADAY_FEATURES),
        "intraday_window_days": WINDOW_DAYS,
        "scale_feature": SCALE_FEATURE,
        "scale_offset": SCALE_OFFSET,
    }
