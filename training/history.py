"""Load and validate canonical sales history: a long table ``store_id, sku, date, units``
(optional ``price``, ``promo``, ``event``, ``stockout`` and other calendar columns), Parquet or
CSV. ``stockout`` is 1 on a day whose shelf closed empty: its units are censored demand
(``feature_store.censored_demand``), read by the features as the estimated demand, not as a low
day, and left out of the demand model's loss (``training.loss_weights``).

Bad input raises :class:`HistoryError`, one line naming the file, the column and the first
offending rows, never a traceback from inside pandas. A CSV may be delimited by ``,``, ``;``,
tab or ``|`` (told by the header). Long runs of days without a row are reported (see
:func:`find_gaps`).

>>> import pandas as pd, tempfile, os
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "sales.csv")
>>> pd.DataFrame({"store_id": ["S1"], "sku": ["A"], "date": ["2024-01-01"],
...               "units": [3]}).to_csv(path, index=False)
>>> load_history(path)["units"].tolist()
[3.0]
>>> tmp.cleanup()
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.date_formats import DateFormatError, expected, parse_dates

REQUIRED = ("store_id", "sku", "date", "units")
OPTIONAL_NUMERIC = ("price", "promo", "event", "stockout")
KEY = ("store_id", "sku", "date")
# Longer runs of days without a row are reported: read as zero sales, a month the item was not
# on sale (or not recorded) teaches the model that demand fell to nothing.
GAP_DAYS = 28
_SHOW = 5  # offending rows quoted in an error
_DELIMITERS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


class HistoryError(ValueError):
    """The sales history is not in the canonical shape; the message says where and how.

    >>> frame = pd.DataFrame({"store_id": ["S1"], "sku": ["A"], "date": ["2024-01-01"]})
    >>> try:
    ...     validate(frame, "sales.csv")
    ... except HistoryError as err:
    ...     print(str(err).split(". ")[0])
    sales.csv: missing column(s) units; found store_id, sku, date
    """


def _plain(value: object) -> str:
    """A value as a person would write it: no ``np.float64(...)`` or ``Timestamp(...)``."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return "empty"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(str(value))


def _rows(frame: pd.DataFrame, mask: np.ndarray, cols: list[str]) -> str:
    """The first offending rows on one line, numbered as a spreadsheet shows them."""
    bad = frame.loc[mask, cols].head(_SHOW)
    shown = "; ".join(
        f"row {i + 2}: " + ", ".join(f"{c}={_plain(r[c])}" for c in cols) for i, r in bad.iterrows()
    )
    return shown + (f" ... {int(mask.sum())} rows in all" if mask.sum() > _SHOW else "")


def _csv_delimiter(path: Path) -> str:
    """The delimiter that splits the header into the most canonical column names: a ``;`` or
    tab separated export is read as such, not as one column named ``store_id;sku;...``."""
    found = {sep: pd.read_csv(path, sep=sep, nrows=0).columns for sep in _DELIMITERS}
    return max(_DELIMITERS, key=lambda sep: sum(str(c).strip() in REQUIRED for c in found[sep]))


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise HistoryError(f"{path}: no such file")
    if path.is_dir():
        raise HistoryError(f"{path}: is a directory; give a .parquet or .csv file")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        if ".csv" in suffixes:
            return pd.read_csv(
                path, sep=_csv_delimiter(path), dtype={"store_id": str, "sku": str, "date": str}
            )
    except pd.errors.EmptyDataError:
        raise HistoryError(
            f"{path}: the file is empty; expected a header {','.join(REQUIRED)} and rows"
        ) from None
    except Exception as exc:  # a broken file: say which, keep pandas' reason short
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HistoryError(f"{path}: cannot be read as {suffixes or 'a table'}: {reason}") from None
    raise HistoryError(f"{path}: unknown format {suffixes!r}; use .parquet or .csv (or .csv.gz)")


def _missing_columns(frame: pd.DataFrame, missing: list[str], source: str) -> HistoryError:
    found = [str(c) for c in frame.columns]
    hint = ""
    if len(found) == 1 and (seps := [s for s in _DELIMITERS[1:] if s in found[0]]):
        hint = f" The header is one column: is the file delimited by {seps[0]!r}?"
    return HistoryError(
        f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(found)}. "
        f"Canonical history needs {', '.join(REQUIRED)} (optional price, promo, event).{hint}"
    )


def validate(
    frame: pd.DataFrame, source: str = "<frame>", date_format: str | None = None
) -> pd.DataFrame:
    """Check and normalise a canonical frame (types, key uniqueness); return a clean copy.

    ``source`` names the origin (a file path) in error messages, which are one line each. Row
    numbers in errors count the header as row 1, as a spreadsheet or CSV editor shows them.
    Dates are read by :func:`training.date_formats.parse_dates` (``date_format``: a
    ``strftime`` format when the file's own cannot be told).
    """
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise _missing_columns(frame, missing, source)
    if frame.empty:
        raise HistoryError(
            f"{source}: no rows, only a header; expected one row per store_id, sku and date"
        )
    out = frame.reset_index(drop=True).copy()
    for col in ("store_id", "sku"):
        null = out[col].isna().to_numpy()
        if null.any():
            raise HistoryError(f"{source}: column {col} is empty in {_rows(out, null, [col])}")
        out[col] = out[col].astype(str)
    dates = _dates(out, source, date_format)
    for col in ("units", *[c for c in OPTIONAL_NUMERIC if c in out.columns]):
        out[col] = _numeric(out, col, source)
    neg = (out["units"] < 0).to_numpy()
    if neg.any():
        raise HistoryError(
            f"{source}: column units is negative (net returns out first) in "
            f"{_rows(out, neg, [*KEY, 'units'])}"
        )
    out["date"] = dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    out["date"] = out["date"].dt.normalize()
    dup = out.duplicated(list(KEY), keep=False).to_numpy()
    if dup.any():
        raise HistoryError(
            f"{source}: duplicate (store_id, sku, date) keys, aggregate to one row per day: "
            f"{_rows(out, dup, [*KEY, 'units'])}"
        )
    return out.sort_values(list(KEY), kind="stable").reset_index(drop=True)


def _dates(frame: pd.DataFrame, source: str, date_format: str | None) -> pd.Series:
    try:
        dates = parse_dates(frame["date"], date_format)
    except DateFormatError as err:
        raise HistoryError(f"{source}: column date: {err}") from None
    bad = dates.isna().to_numpy()
    if bad.any():
        raise HistoryError(
            f"{source}: column date has values that are not dates in "
            f"{_rows(frame, bad, ['date'])}; expected {expected(date_format)}"
        )
    return dates


def _numeric(frame: pd.DataFrame, col: str, source: str) -> pd.Series:
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = (values.isna() & frame[col].notna()).to_numpy()
    if col == "units":
        bad |= frame[col].isna().to_numpy()
    if bad.any():
        hint = ""
        if frame.loc[bad, col].astype(str).str.match(_DECIMAL_COMMA).any():
            hint = "; write decimals with a point (1.5), not a comma"
        raise HistoryError(
            f"{source}: column {col} is empty or not numeric in {_rows(frame, bad, [col])}{hint}"
        )
    return values.astype(np.float64)


@dataclass(frozen=True)
class Gap:
    """A run of days without a row inside a series, or from its last row to the file's last
    day; :func:`feature_store.batch.panel_from_frame` reads those days as zero sales.

    >>> Gap("S1/A", pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-31")).describe()
    'S1/A 2024-02-01..2024-03-31 (60 days)'
    """

    series: str
    first: pd.Timestamp
    last: pd.Timestamp

    @property
    def days(self) -> int:
        return int((self.last - self.first).days) + 1

    def describe(self) -> str:
        return f"{self.series} {self.first.date()}..{self.last.date()} ({self.days} days)"


def find_gaps(frame: pd.DataFrame, min_days: int = GAP_DAYS) -> list[Gap]:
    """Runs of more than ``min_days`` missing days in a validated frame, longest first."""
    keys = frame["store_id"] + "/" + frame["sku"]
    dates = frame["date"]
    same = (keys == keys.shift()).to_numpy()
    inside = same & ((dates - dates.shift()).dt.days.to_numpy() - 1 > min_days)
    last_row = ~np.append(same[1:], False)
    end = dates.max()
    trailing = last_row & ((end - dates).dt.days.to_numpy() > min_days)
    one = pd.Timedelta(days=1)
    gaps = [
        Gap(keys.iat[i], dates.iat[i - 1] + one, dates.iat[i] - one) for i in np.flatnonzero(inside)
    ]
    gaps += [Gap(keys.iat[i], dates.iat[i] + one, end) for i in np.flatnonzero(trailing)]
    return sorted(gaps, key=lambda g: (-g.days, g.series, g.first))


def gaps_warning(gaps: list[Gap], source: str, min_days: int = GAP_DAYS) -> str:
    """One line naming the longest gaps and what the loader does with them."""
    shown = ", ".join(g.describe() for g in gaps[:3])
    more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
    series = len({g.series for g in gaps})
    return (
        f"{source}: {series} series have runs of more than {min_days} days without a row, read "
        f"as zero sales: {shown}{more}; if an item was not on sale then, cut its series there"
    )


def load_history(
    path: str | Path,
    columns: dict[str, str] | None = None,
    date_format: str | None = None,
    warn: Callable[[str], None] | None = None,
    gap_days: int = GAP_DAYS,
) -> pd.DataFrame:
    """Read a canonical Parquet/CSV file and validate it (see :func:`validate`); ``columns``
    maps canonical names to the file's (``training.history_columns``).

    Runs of more than ``gap_days`` days without a row in a series are reported through
    ``warn`` (default: a ``logging`` warning), one line, since they will be read as zero sales.
    """
    from training.history_columns import to_canonical_columns

    path = Path(path)
    frame = to_canonical_columns(_read(path), columns, str(path))
    frame = validate(frame, source=str(path), date_format=date_format)
    if gaps := find_gaps(frame, gap_days):
        (warn or logging.getLogger(__name__).warning)(gaps_warning(gaps, str(path), gap_days))
    return frame
