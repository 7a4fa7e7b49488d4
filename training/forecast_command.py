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
from pathlib import Path

from configuration.command_options import positive_int


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
        type=positive_int,
        default=28,
        help="days to forecast (default 28; beyond 28 the model is applied recursively)",
    )
    parser.add_argument("--out", required=True, help="output table, .parquet or .csv")
    parser.add_argument(
        "--start",
        type=_iso_day,
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
    parser.add_argument(
        "--date-format",
        default=None,
        help="strftime format of the history's date column, e.g. %%d/%%m/%%Y, when it is "
        "neither ISO yyyy-mm-dd nor a dd/mm/yyyy or mm/dd/yyyy the file itself settles",
    )
    from training.train import add_columns_argument

    add_columns_argument(parser)
    parser.add_argument(
        "--top-skus",
        type=positive_int,
        default=None,
        help="online_retail only: the N SKUs with most units (default: the bundle's own "
        "selection when it was trained on online_retail, else 300)",
    )
    from training.engine import add_engine_arguments

    add_engine_arguments(parser)
    parser.add_argument(
        "--skip-short",
        action="store_true",
        help="leave out (and name) series with under 28 days of history instead of refusing",
    )


def _iso_day(text: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as yyyy-mm-dd, got {text!r}") from None


def _calendar_events(path: str | None) -> list:
    if not path:
        return []
    import pandas as pd

    from training.date_formats import DateFormatError, parse_dates
    from training.forecast import ForecastError

    try:
        cal = pd.read_parquet(path) if ".parquet" in path.lower() else pd.read_csv(path)
    except Exception as exc:  # an unreadable calendar: name the file, keep pandas' reason
        raise ForecastError(f"{path}: cannot be read: {exc}") from None
    if "date" not in cal.columns:
        raise ForecastError(f"{path}: no date column; found {', '.join(map(str, cal.columns))}")
    if "event" in cal.columns:
        cal = cal[pd.to_numeric(cal["event"], errors="coerce").fillna(0) > 0]
    try:
        dates = parse_dates(cal["date"])
    except DateFormatError as err:
        raise ForecastError(f"{path}: column date: {err}") from None
    if dates.isna().any():
        bad = cal["date"][dates.isna()].iloc[0]
        raise ForecastError(f"{path}: column date: {str(bad)!r} is not a yyyy-mm-dd date")
    return list(dates)


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options themselves, found before any data is read."""
    from training.forecast import ForecastError, output_format

    try:
        output_format(args.out)
    except ForecastError as err:
        return f"argument --out: {err}"
    if not Path(args.bundle).is_dir():
        return (
            f"argument --bundle: {args.bundle} is not a directory (a bundle from shelfcast train)"
        )
    return None


def bundle_selection(bundle: str | Path, data: str) -> dict:
    """The series selection the bundle was trained on (``data_selection`` in its metadata) when
    it was trained on the data set ``data``; empty otherwise."""
    import json

    try:
        meta = json.loads(Path(bundle, "metadata.json").read_text())
    except (OSError, ValueError):
        return {}  # Forecaster.from_bundle refuses the bundle with the reason
    if meta.get("data_source") != data:
        return {}
    return dict(meta.get("data_selection") or {})


def run(args: argparse.Namespace) -> int:
    from configuration.data_dir import DataMissingError
    from training.engine import engine_for
    from training.forecast import ForecastError, forecast_file
    from training.history import HistoryError
    from training.train import load_input

    if problem := _usage_problem(args):
        print(f"shelfcast forecast: error: {problem}", file=sys.stderr)
        return 2
    engine = None
    try:
        top = args.top_skus or bundle_selection(args.bundle, args.data).get("top_skus")
        engine = engine_for(args.engine, args.workers, args.scheduler)
        history, _source = load_input(
            args.data,
            top,
            args.columns,
            date_format=args.date_format,
            warn=lambda m: print(f"shelfcast forecast: warning: {m}", file=sys.stderr),
        )
        table, seconds = forecast_file(
            args.bundle,
            history,
            args.horizon,
            args.out,
            start=args.start,
            calendar_events=_calendar_events(args.calendar),
            skip_short=args.skip_short,
            engine=engine,
        )
    except (ForecastError, HistoryError, DataMissingError, KeyError, ValueError) as exc:
        print(f"shelfcast forecast: {exc}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.close()
    n_series = table.groupby(["store_id", "sku"]).ngroups
    print(
        f"{len(table):,} forecasts ({n_series:,} series x {args.horizon} days) in {seconds:.2f} s "
        f"-> {args.out}",
        file=sys.stderr,
    )
    print(args.out)
    return 0
