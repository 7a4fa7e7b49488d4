"""Load and validate canonical sales history: a long table ``store_id, sku, date, units``
(optional ``price``, ``promo``, ``event`` and other calendar columns), Parquet or CSV.

Bad input raises :class:`HistoryError` naming the file, the column and the first offending rows,
never a traceback from inside pandas.

>>> import pandas as pd, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "sales.csv")
>>> pd.DataFrame({"store_id": ["S1"], "sku": ["A"], "date": ["2024-01-01"],
...               "units": [3]}).to_csv(path, index=False)
>>> load_history(path)["units"].tolist()
[3.0]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ("store_id", "sku", "date", "units")
OPTIONAL_NUMERIC = ("price", "promo", "event")
KEY = ("store_id", "sku", "date")
_SHOW = 5  # offending rows quoted in an error


class HistoryError(ValueError):
    """The sales history is not in the canonical shape; the message says where and how."""


def _rows(frame: pd.DataFrame, mask: np.ndarray, cols: list[str]) -> str:
    bad = frame.loc[mask, cols].head(_SHOW)
    lines = [
        f"  row {i + 2}: " + ", ".join(f"{c}={r[c]!r}" for c in cols) for i, r in bad.iterrows()
    ]
    return "\n".join(lines) + (
        f"\n  ... {int(mask.sum())} rows in all" if mask.sum() > _SHOW else ""
    )


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise HistoryError(f"{path}: no such file")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        if ".csv" in suffixes:
            return pd.read_csv(path, dtype={"store_id": str, "sku": str})
    except Exception as exc:  # a broken file: say which, keep pandas' reason short
        raise HistoryError(f"{path}: cannot be read as {suffixes or 'a table'}: {exc}") from None
    raise HistoryError(f"{path}: unknown format {suffixes!r}; use .parquet or .csv (or .csv.gz)")


def validate(frame: pd.DataFrame, source: str = "<frame>") -> pd.DataFrame:
    """Check and normalise a canonical frame (types, key uniqueness); return a clean copy.

    ``source`` names the origin (a file path) in error messages. Row numbers in errors count the
    header as row 1, as a spreadsheet or CSV editor shows them.
    """
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise HistoryError(
            f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}. "
            f"Canonical history needs {', '.join(REQUIRED)} (optional price, promo, event)."
        )
    out = frame.reset_index(drop=True).copy()
    for col in ("store_id", "sku"):
        null = out[col].isna().to_numpy()
        if null.any():
            raise HistoryError(
                f"{source}: column {col} is empty in rows:\n{_rows(out, null, [col])}"
            )
        out[col] = out[col].astype(str)
    dates = pd.to_datetime(out["date"], errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        raise HistoryError(
            f"{source}: column date has unparseable dates:\n{_rows(out, bad, ['date'])}"
        )
    for col in ("units", *[c for c in OPTIONAL_NUMERIC if c in out.columns]):
        values = pd.to_numeric(out[col], errors="coerce")
        bad = (values.isna() & out[col].notna()).to_numpy()
        if col == "units":
            bad |= out[col].isna().to_numpy()
        if bad.any():
            raise HistoryError(
                f"{source}: column {col} is not numeric in rows:\n{_rows(out, bad, [col])}"
            )
        out[col] = values.astype(np.float64)
    neg = (out["units"] < 0).to_numpy()
    if neg.any():
        raise HistoryError(
            f"{source}: column units is negative in rows (net returns out first):\n"
            f"{_rows(out, neg, [*KEY, 'units'])}"
        )
    out["date"] = dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    out["date"] = out["date"].dt.normalize()
    dup = out.duplicated(list(KEY), keep=False).to_numpy()
    if dup.any():
        raise HistoryError(
            f"{source}: duplicate (store_id, sku, date) keys; aggregate to one row per day:\n"
            f"{_rows(out, dup, [*KEY, 'units'])}"
        )
    return out.sort_values(list(KEY), kind="stable").reset_index(drop=True)


def load_history(path: str | Path, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a canonical Parquet/CSV file and validate it (see :func:`validate`); ``columns``
    maps canonical names to the file's (``training.history_columns``)."""
    from training.history_columns import to_canonical_columns

    path = Path(path)
    return validate(to_canonical_columns(_read(path), columns, str(path)), source=str(path))
