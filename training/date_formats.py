"""Dates in sales files, read without guessing.

Accepted without being told: ISO 8601 (``2024-01-31``, also with a time and offset, of which
only the date written is kept) and numeric ``dd/mm/yyyy`` or ``mm/dd/yyyy`` (``/``, ``.`` or
``-`` between the parts) when the column itself settles which: a first part above 12 makes it
day-first, a second part above 12 month-first. A column where nothing settles it (every part
12 or under, as in ``01/02/2024``), or where both happen, is refused with the formats accepted
and how to state one: ``--date-format %d/%m/%Y`` (any ``strftime`` format). Anything else is
left as not-a-date for the caller to quote: pandas, left to itself, guesses the format from
the first row, so a day-first file parses silently when it starts after the 12th and fails
row by row otherwise.

>>> import pandas as pd
>>> parse_dates(pd.Series(["13/01/2024", "01/02/2024"])).dt.strftime("%Y-%m-%d").tolist()
['2024-01-13', '2024-02-01']
>>> parse_dates(pd.Series(["01/02/2024"]))
Traceback (most recent call last):
...
training.date_formats.DateFormatError: dates like '01/02/2024' can be read as dd/mm/yyyy or mm/dd/yyyy and no part is above 12 to tell; state the format with --date-format %d/%m/%Y (or %m/%d/%Y)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ACCEPTED = (
    "yyyy-mm-dd (ISO 8601), or dd/mm/yyyy or mm/dd/yyyy told apart by a part above 12, "
    "or any strftime format given with --date-format (e.g. --date-format %d.%m.%Y)"
)
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
_NUMERIC = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$"


class DateFormatError(ValueError):
    """A date column whose format cannot be told from the column; the message says how to
    state it.

    >>> try:
    ...     parse_dates(pd.Series(["01/02/2024"]))
    ... except DateFormatError as err:
    ...     print(str(err).split("; ")[1])  # the message says how to state the format
    state the format with --date-format %d/%m/%Y (or %m/%d/%Y)
    """


def parse_dates(values: pd.Series, date_format: str | None = None) -> pd.Series:
    """``values`` as datetimes, NaT where a value is not a date in the column's format.

    Datetime columns (Parquet, data set adapters) pass through. Other values are read as text:
    with ``date_format`` (a ``strftime`` format) strictly in that format, else by the rules in
    the module doc. Raises :class:`DateFormatError` when a numeric column's day/month order is
    not settled by the column.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("datetime", "datetime64", "date"):
        return pd.to_datetime(values, errors="coerce")
    codes, uniques = pd.factorize(values.astype("string").str.strip())
    text = pd.Series(np.asarray(uniques, dtype=object), dtype="string")
    if date_format:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    else:
        parsed = _parse_text(text)
    if getattr(parsed.dt, "tz", None) is not None:  # a --date-format with %z: keep wall time
        parsed = parsed.dt.tz_localize(None)
    out = np.full(len(codes), np.datetime64("NaT"), dtype="datetime64[ns]")
    known = codes >= 0
    out[known] = parsed.to_numpy(dtype="datetime64[ns]")[codes[known]]
    return pd.Series(out, index=values.index)


def expected(date_format: str | None) -> str:
    """The formats a column was read in, for an error about values that did not fit."""
    if date_format:
        return f"the format {date_format} given with --date-format"
    return ACCEPTED


def _parse_text(text: pd.Series) -> pd.Series:
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    iso = text.str.match(_ISO).fillna(False).to_numpy(bool)
    # Only the date as written matters at a daily grain: an offset must not move the day.
    parsed[iso] = pd.to_datetime(text[iso].str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    parts = text.str.extract(_NUMERIC)
    numeric = parts[0].notna().to_numpy(bool)
    if numeric.any():
        first = parts[0][numeric].astype(int).to_numpy()
        second = parts[1][numeric].astype(int).to_numpy()
        order = _day_month_order(text[numeric].to_numpy(), first, second)
        joined = parts[0] + "/" + parts[1] + "/" + parts[2]
        parsed[numeric] = pd.to_datetime(joined[numeric], format=order, errors="coerce")
    return parsed


def _day_month_order(text: np.ndarray, first: np.ndarray, second: np.ndarray) -> str:
    day_first, month_first = first > 12, second > 12
    if day_first.any() and month_first.any():
        raise DateFormatError(
            f"dates are day-first in some rows ({text[day_first][0]!r}) and month-first in "
            f"others ({text[month_first][0]!r}); write them one way, or state it with "
            "--date-format %d/%m/%Y (or %m/%d/%Y)"
        )
    if day_first.any():
        return "%d/%m/%Y"
    if month_first.any() or (first == second).all():
        return "%m/%d/%Y"
    example = text[first != second][0]
    raise DateFormatError(
        f"dates like {example!r} can be read as dd/mm/yyyy or mm/dd/yyyy and no part is above "
        "12 to tell; state the format with --date-format %d/%m/%Y (or %m/%d/%Y)"
    )
