"""Forecasts on demand: a released bundle's ONNX demand model over a canonical sales history.

The demand model is *direct multi-horizon*: one row per (series, horizon) with a ``horizon``
feature, horizons 1..``MAX_HORIZON`` (28) from the last known day. Beyond that the forecast is
extended recursively in blocks of 28 days: the block's ``mean`` forecasts are appended to the
history as if they had been sold, and the next block is forecast from the new last day. Days 29+
are therefore forecasts of forecasts; their P90 is the model's P90 around that path, not a
widened interval.

Features come from the feature store's batch side (:mod:`feature_store.batch`), the same code
the model was trained on; scoring is ONNX Runtime. The CLI (``shelfcast forecast``) and the
MLflow pyfunc (:mod:`training.pyfunc`) both call :meth:`Forecaster.forecast`.

>>> import numpy as np, pandas as pd
>>> from training.forecast import Forecaster, HistoryTooShort
>>> hist = pd.DataFrame({"store_id": "S1", "sku": "A", "units": 2.0,
...                      "date": pd.date_range("2024-01-01", periods=5)})
>>> try:
...     check_history_length(*history_days(hist, None), min_days=28)
... except HistoryTooShort as exc:
...     print(str(exc).splitlines()[0])
1 series have fewer than 28 days of history before the forecast start 2024-01-06:
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.batch import Panel, close_features, forecast_rows, panel_from_frame
from feature_store.spec import (
    DAYS_SINCE_CAP,
    FEATURE_STORE_VERSION,
    HISTORY_STEPS,
    LAGS,
    MAX_HORIZON,
    MAX_WINDOW,
    names,
)
from training.engine import Engine, panel_series, partitions_for
from training.history import validate
from training.progress import progress_bar

OUTPUT_COLUMNS = ("store_id", "sku", "date", "p50", "p90", "mean")
# The longest lag the model reads: a series younger than this would be scored on invented zeros.
MIN_HISTORY_DAYS = max(LAGS)
# Days of history that decide every feature of the last day: windows and lags reach back at most
# MAX_WINDOW days, days-since-sale saturates at DAYS_SINCE_CAP, the year-back features read
# HISTORY_STEPS days back; the price is carried in.
FEATURE_DAYS = max(MAX_WINDOW, max(LAGS), DAYS_SINCE_CAP, HISTORY_STEPS) + 1
# Series per block of a forecast, in one process or in a partition on a worker: the features of
# 500 series x FEATURE_DAYS days stay near the CPU caches (2,000 took twice the CPU time per
# series), ONNX calls stay few, and the progress bar moves on a national assortment.
SERIES_PER_BLOCK = 500


class ForecastError(ValueError):
    """A forecast cannot be made as asked (bad horizon, start, bundle); the message says why.

    >>> output_format("out.csv.gz")
    'csv'
    >>> try:
    ...     output_format("out.xlsx")  # refused before any forecast is computed
    ... except ForecastError as err:
    ...     print(err)
    out.xlsx: unknown output format .xlsx; use .parquet or .csv
    """


class HistoryTooShort(ForecastError):
    """Some series have too little history for the model's lags; ``series`` names them.

    >>> hist = pd.DataFrame({"store_id": "S1", "sku": ["A", "B"], "units": 2.0,
    ...                      "date": pd.to_datetime(["2024-01-01", "2024-01-20"])})
    >>> try:
    ...     check_history_length(hist, pd.Timestamp("2024-02-01"), min_days=28)
    ... except HistoryTooShort as exc:
    ...     print(exc.series)  # the series to drop or give more history
    ['S1/B']
    """

    def __init__(self, message: str, series: list[str]):
        super().__init__(message)
        self.series = series


def history_days(frame: pd.DataFrame, start) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The history before the forecast start and the start itself (default: the day after the
    last date in the frame). A start after that day is refused: the model forecasts from the
    last known day, and a gap would be read as days without sales."""
    dates = pd.to_datetime(frame["date"]).dt.normalize()
    next_day = dates.max() + pd.Timedelta(days=1)
    if start is None or (isinstance(start, str) and not start):
        return frame, next_day
    start = pd.Timestamp(start).normalize()
    if start > next_day:
        raise ForecastError(
            f"start {start.date()} is after the day following the history's last date "
            f"({dates.max().date()}); the forecast can start at {next_day.date()} at the latest"
        )
    kept = frame.loc[(dates < start).to_numpy()]
    if kept.empty:
        raise ForecastError(f"start {start.date()}: the history has no day before it")
    return kept, start


def check_history_length(
    frame: pd.DataFrame, start: pd.Timestamp, min_days: int = MIN_HISTORY_DAYS
) -> None:
    """Refuse series whose first row is fewer than ``min_days`` days before ``start``."""
    first = frame.groupby(["store_id", "sku"], sort=True)["date"].min()
    days = (start - pd.to_datetime(first)).dt.days
    short = days[days < min_days]
    if short.empty:
        return
    names_ = [f"{s}/{k}" for s, k in short.index]
    shown = "\n".join(
        f"  {s}/{k}: {int(d)} day(s) from {pd.Timestamp(first[(s, k)]).date()}"
        for (s, k), d in short.head(10).items()
    )
    more = f"\n  ... {len(short)} series in all" if len(short) > 10 else ""
    raise HistoryTooShort(
        f"{len(short)} series have fewer than {min_days} days of history before the forecast "
        f"start {start.date()}:\n{shown}{more}\nThe model's lags reach {min_days} days back; "
        "drop these series or give them more history.",
        names_,
    )


def _without(frame: pd.DataFrame, series: list[str]) -> pd.DataFrame:
    keys = frame["store_id"].astype(str) + "/" + frame["sku"].astype(str)
    return frame.loc[~keys.isin(series).to_numpy()]


def tail(panel: Panel, keep: int = FEATURE_DAYS) -> Panel:
    """The last ``keep`` days of ``panel`` with the last known price carried into its first
    day: with ``keep >= FEATURE_DAYS`` the features of the last day are unchanged, and the
    features (float64 series x days x features) no longer grow with the length of the file."""
    cut = panel.n_days - keep
    if cut <= 0:
        return panel
    price = None
    if panel.price is not None:
        known = np.where(np.isnan(panel.units[:, : cut + 1]), np.nan, panel.price[:, : cut + 1])
        seen = ~np.isnan(known)
        last = cut - np.argmax(seen[:, ::-1], axis=1)
        carried = np.where(seen.any(axis=1), known[np.arange(len(known)), last], np.nan)
        price = panel.price[:, cut:].copy()
        price[:, 0] = carried
    return Panel(
        keys=panel.keys,
        start=np.datetime64(panel.start, "D") + cut * panel.step.days,
        units=panel.units[:, cut:],
        price=price,
        promo=None if panel.promo is None else panel.promo[:, cut:],
        event=None if panel.event is None else panel.event[cut:],
        future_events={d - cut for d in panel.future_events if d >= cut},
        grain=panel.grain,
        known_ahead=panel.known_ahead,
    )


def _extend(panel: Panel, values: np.ndarray) -> Panel:
    """The panel with ``values`` (series x days) appended as if they had been observed."""
    days = values.shape[1]

    def pad(a):
        return None if a is None else np.concatenate([a, np.full((len(a), days), np.nan)], 1)

    event = None
    if panel.event is not None:
        new = np.array([float(panel.n_days + i in panel.future_events) for i in range(days)])
        event = np.concatenate([panel.event, new])
    return Panel(
        keys=panel.keys,
        start=panel.start,
        units=np.concatenate([panel.units, values], axis=1),
        price=pad(panel.price),
        promo=pad(panel.promo),
        event=event,
        future_events=panel.future_events,
        grain=panel.grain,
        known_ahead=panel.known_ahead,
    )


@dataclass
class Forecaster:
    """A bundle's demand model, ready to forecast any canonical history.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as empty:  # removed after the example
    ...     try:
    ...         Forecaster.from_bundle(empty)
    ...     except ForecastError as exc:
    ...         print("refused:", "manifest.json missing" in str(exc))
    refused: True
    """

    demand_onnx: bytes
    model_version: str = "unknown"
    threads: int = 1

    def __post_init__(self) -> None:
        from models.onnx_session import open_session

        self._session = open_session(self.demand_onnx, self.threads)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]

    @classmethod
    def from_bundle(cls, path: str | Path, threads: int = 1) -> Forecaster:
        """Verify a bundle (digests, feature-store version, feature order) and open its model."""
        from models.bundle import BundleError, load_bundle

        try:
            bundle = load_bundle(path, FEATURE_STORE_VERSION)
            spec_names = [f["name"] for f in bundle.feature_spec.get("features", [])]
            if spec_names != names():
                raise BundleError(
                    f"bundle {path} feature order differs from this feature store's "
                    f"({len(spec_names)} vs {len(names())} features)"
                )
            data = bundle.model_bytes("demand")
        except BundleError as exc:
            raise ForecastError(f"cannot use bundle {path}: {exc}") from None
        return cls(data, bundle.model_version, threads)

    def _score(self, X: np.ndarray) -> dict[str, np.ndarray]:
        out = self._session.run(None, {self._input: np.ascontiguousarray(X, dtype=np.float32)})
        pairs = zip(self._outputs, out, strict=True)
        return {n: np.maximum(np.asarray(v).reshape(-1), 0.0) for n, v in pairs}

    def forecast(
        self,
        history: pd.DataFrame,
        horizon: int = MAX_HORIZON,
        start=None,
        calendar_events: Iterable | None = None,
        min_history_days: int = MIN_HISTORY_DAYS,
        progress=None,
        skip_short: bool = False,
        engine: Engine | None = None,
    ) -> pd.DataFrame:
        """Forecast the ``horizon`` days from ``start`` for every store x SKU in ``history``
        (a weekly history: the ``horizon`` weeks after its last week, one row per week).

        ``history`` is a canonical frame (validated here); ``calendar_events`` are dates of
        known future calendar events (holidays) for the ``target_event`` feature. A series with
        less than ``min_history_days`` of history raises :class:`HistoryTooShort`, or with
        ``skip_short`` is left out of the table (and named through ``progress``). ``engine``
        (:mod:`training.engine`) forecasts partitions of whole series where it runs them; the
        table does not depend on it. Returns the long table ``store_id, sku, date, p50, p90,
        mean`` sorted by series then date.
        """
        if int(horizon) < 1:
            raise ForecastError(f"horizon must be at least 1 day, got {horizon}")
        horizon = int(horizon)
        frame = validate(history, source="history")
        frame, start = history_days(frame, start)
        say = progress or (lambda _m: None)
        try:
            check_history_length(frame, start, min_history_days)
        except HistoryTooShort as exc:
            if not skip_short:
                raise
            frame = _without(frame, exc.series)
            say(f"skipped {len(exc.series)} series with too short a history: {exc.series[:5]}")
            if frame.empty:
                raise
        known = () if calendar_events is None else calendar_events
        events = [str(pd.Timestamp(d).date()) for d in known]
        panel = tail(panel_from_frame(frame, calendar_events=events))
        parts = partitions_for(engine, len(panel.keys))
        if len(parts) <= 1:
            values = self._forecast_in_chunks(panel, horizon, say)
        else:
            say(f"forecasting {len(panel.keys)} series in {len(parts)} partitions")
            tasks = [(self.demand_onnx, panel_series(panel, p), horizon) for p in parts]
            results = engine.map(forecast_partition, tasks)
            values = {k: np.concatenate([r[k] for r in results]) for k in ("p50", "p90", "mean")}
        if panel.grain != "day":  # a weekly history is forecast in weeks after its last week
            start = pd.Timestamp(panel.dates[-1]) + pd.Timedelta(days=panel.step.days)
        return self._table(panel.keys, start, values, horizon, panel.step.days)

    def _forecast_in_chunks(self, panel: Panel, horizon: int, say) -> dict[str, np.ndarray]:
        """``forecast_panel`` over blocks of series, so a long forecast shows progress; series
        are forecast independently, so the blocks give the same table as one call."""
        n = len(panel.keys)
        if n <= SERIES_PER_BLOCK:
            return self.forecast_panel(panel, horizon, say)
        with progress_bar(n, "forecast", unit="series") as bar:
            return self.forecast_blocks(panel, horizon, bar.update)

    def forecast_blocks(self, panel: Panel, horizon: int, done=None) -> dict[str, np.ndarray]:
        """``forecast_panel`` over blocks of ``SERIES_PER_BLOCK`` series, calling ``done(n)``
        after each block of ``n``; the same values as one call, in less time and memory."""
        n = len(panel.keys)
        out: list[dict[str, np.ndarray]] = []
        for rows in np.array_split(np.arange(n), max(1, -(-n // SERIES_PER_BLOCK))):
            out.append(self.forecast_panel(panel_series(panel, rows), horizon))
            if done is not None:
                done(len(rows))
        return {k: np.concatenate([b[k] for b in out]) for k in ("p50", "p90", "mean")}

    def forecast_panel(self, panel: Panel, horizon: int, say=None) -> dict[str, np.ndarray]:
        """``p50``, ``p90`` and ``mean`` (series x ``horizon`` days) from the panel's last day;
        days beyond 28 recursively (see the module docstring)."""
        say = say or (lambda _m: None)
        blocks: list[dict[str, np.ndarray]] = []
        done = 0
        while done < horizon:
            steps = min(MAX_HORIZON, horizon - done)
            close = close_features(panel)
            X, _series, _h = forecast_rows(panel, close, panel.n_days - 1, range(1, steps + 1))
            out = {k: v.reshape(len(panel.keys), steps) for k, v in self._score(X).items()}
            blocks.append(out)
            done += steps
            say(
                f"forecast days {done - steps + 1}..{done} of {horizon} for {len(panel.keys)} series"
            )
            if done < horizon:
                panel = _extend(panel, out["mean"].astype(np.float64))
        return {k: np.concatenate([b[k] for b in blocks], axis=1) for k in ("p50", "p90", "mean")}

    @staticmethod
    def _table(keys, start, values, horizon: int, step_days: int = 1) -> pd.DataFrame:
        n = len(keys)
        dates = pd.date_range(start, periods=horizon, freq=f"{step_days}D")
        return pd.DataFrame(
            {
                "store_id": np.repeat([k[0] for k in keys], horizon),
                "sku": np.repeat([k[1] for k in keys], horizon),
                "date": np.tile(dates.to_numpy(), n),
                "p50": values["p50"].reshape(-1).astype(np.float64),
                "p90": values["p90"].reshape(-1).astype(np.float64),
                "mean": values["mean"].reshape(-1).astype(np.float64),
            },
            columns=list(OUTPUT_COLUMNS),
        )


_SESSIONS: dict[str, Forecaster] = {}


def forecast_partition(task: tuple[bytes, Panel, int]) -> dict[str, np.ndarray]:
    """One partition's forecasts on whichever process runs it: ``(demand ONNX, panel of whole
    series, horizon)``. The ONNX session is opened once per process and model."""
    import hashlib

    onnx, panel, horizon = task
    key = hashlib.sha256(onnx).hexdigest()
    if key not in _SESSIONS:
        _SESSIONS.clear()  # one model at a time per worker: sessions hold the model's memory
        _SESSIONS[key] = Forecaster(onnx)
    return _SESSIONS[key].forecast_blocks(panel, horizon)


OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def output_format(path: str | Path) -> str:
    """``parquet`` or ``csv``, from the output file's extension (``.csv.gz`` is CSV);
    :class:`ForecastError` for anything else, so a caller can refuse before computing."""
    suffixes = "".join(Path(path).suffixes).lower()
    for ext, fmt in OUTPUT_FORMATS.items():
        if ext in suffixes:
            return fmt
    raise ForecastError(
        f"{path}: unknown output format {suffixes or '(no extension)'}; use .parquet or .csv"
    )


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a forecast table as Parquet or CSV, chosen by the file's extension."""
    fmt = output_format(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        out = frame.assign(date=pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d"))
        out.to_csv(path, index=False)
    return path


def forecast_file(
    bundle: str | Path,
    data: pd.DataFrame,
    horizon: int,
    out: str | Path,
    start=None,
    calendar_events: Iterable | None = None,
    skip_short: bool = False,
    engine: Engine | None = None,
) -> tuple[pd.DataFrame, float]:
    """What ``shelfcast forecast`` does: forecast and write; returns the table and the seconds
    the forecast itself took (bundle load, features and scoring; not file I/O)."""
    t0 = time.perf_counter()
    forecaster = Forecaster.from_bundle(bundle)
    table = forecaster.forecast(
        data,
        horizon,
        start,
        calendar_events,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        skip_short=skip_short,
        engine=engine,
    )
    seconds = time.perf_counter() - t0
    write_table(table, out)
    return table, seconds


def holdout_rmsse(full: pd.DataFrame, table: pd.DataFrame, point: str = "mean") -> pd.Series:
    """RMSSE per series (``store_id/sku``) of a forecast ``table`` against the actuals in
    ``full`` on the table's dates, scaled by each series' history before the first forecast day
    (:mod:`training.metrics`, as the backtest scores). Series with no usable scale are left out.

    >>> h = pd.DataFrame({"store_id": "S", "sku": "A", "date": pd.date_range("2024-01-01",
    ...                   periods=6), "units": [1.0, 3.0, 1.0, 3.0, 2.0, 4.0]})
    >>> t = h.tail(2).assign(mean=[2.0, 2.0])  # errors 0, 2 against a naive MSE of 4[["store_id", "sku", "date", "mean"]]
    >>> holdout_rmsse(h, t).round(6).to_dict()
    {'S/A': 0.707107}
    """
    from training.metrics import Scales, rmsse

    first = pd.Timestamp(table["date"].min())
    panel = panel_from_frame(validate(full, source="actuals"))
    index = {k: i for i, k in enumerate(panel.keys)}
    cut = int((np.datetime64(first, "D") - panel.start).astype(np.int64))
    out = {}
    for (store, sku), rows in table.groupby(["store_id", "sku"], sort=True):
        s = index.get((str(store), str(sku)))
        if s is None:
            continue
        scale = Scales.of(panel.units[s, :cut])
        days = pd.to_datetime(rows["date"]).to_numpy().astype("datetime64[D]") - panel.start
        days = days.astype(np.int64)
        if not scale.usable or days.max() >= panel.n_days:
            continue
        actual = np.nan_to_num(panel.units[s, days], nan=0.0)
        out[f"{store}/{sku}"] = rmsse(actual, rows[point].to_numpy(np.float64), scale)
    return pd.Series(out, name=f"rmsse_{point}", dtype=np.float64)
