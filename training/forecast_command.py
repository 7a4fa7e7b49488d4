"""``shelfcast forecast``: forecasts for any horizon from a released bundle, without a gateway.

    shelfcast forecast --bundle var/bundle --data sales.parquet --horizon 28 --out fc.parquet
    shelfcast forecast --bundle var/bundle --data sales.csv --horizon 56 --out fc.csv \\
        --start 2016-03-28 --calendar holidays.csv

>>> import argparse
>>> p = argparse.ArgumentParser(); add_arguments(p)
>>> p.parse_args(["--bundle", "b", "--data", "d.csv", "--out", "o.csv"]).horizon
28
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="model bundle directory (shelfcast train)")
    parser.add_argument(
        "--data",
        required=True,
        help="canonical sales history (Parquet/CSV: store_id, sku, date, units[, price, promo, "
        "event]) or a data set name: online_retail, m5_sample, favorita, ...",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        default=28,
        help="days to forecast (default 28; beyond 28 the model is applied recursively)",
    )
    parser.add_argument("--out", required=True, help="output table, .parquet or .csv")
    parser.add_argument(
        "--start",
        default=None,
        help="first forecast day (default: the day after the history's last date); "
        "history from this day on is ignored",
    )
    parser.add_argument(
        "--calendar",
        default=None,
        help="CSV/Parquet of known calendar events: a date column (and an optional event "
        "column, 1 = event day) for the target_event feature",
    )
    from training.train import add_columns_argument

    add_columns_argument(parser)
    parser.add_argument(
        "--skip-short",
        action="store_true",
        help="leave out (and name) series with under 28 days of history instead of refusing",
    )


def _calendar_events(path: str | None) -> list:
    if not path:
        return []
    import pandas as pd

    from training.forecast import ForecastError

    try:
        cal = pd.read_parquet(path) if ".parquet" in path.lower() else pd.read_csv(path)
    except Exception as exc:  # an unreadable calendar: name the file, keep pandas' reason
        raise ForecastError(f"{path}: cannot be read: {exc}") from None
    if "date" not in cal.columns:
        raise ForecastError(f"{path}: no date column; found {', '.join(map(str, cal.columns))}")
    if "event" in cal.columns:
        cal = cal[cal["event"].fillna(0).astype(float) > 0]
    return list(pd.to_datetime(cal["date"]))


def run(args: argparse.Namespace) -> int:
    from shelfcast.data_dir import DataMissingError
    from training.forecast import ForecastError, forecast_file
    from training.history import HistoryError
    from training.train import load_input

    try:
        history, _source = load_input(args.data, None, args.columns)
        table, seconds = forecast_file(
            args.bundle,
            history,
            args.horizon,
            args.out,
            start=args.start,
            calendar_events=_calendar_events(args.calendar),
            skip_short=args.skip_short,
        )
    except (ForecastError, HistoryError, DataMissingError, KeyError, ValueError) as exc:
        print(f"shelfcast forecast: {exc}", file=sys.stderr)
        return 1
    n_series = table.groupby(["store_id", "sku"]).ngroups
    print(
        f"{len(table):,} forecasts ({n_series:,} series x {args.horizon} days) in {seconds:.2f} s "
        f"-> {args.out}",
        file=sys.stderr,
    )
    print(args.out)
    return 0
