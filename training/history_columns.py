"""Sales history in other column layouts, renamed to the canonical one before validation:
Nixtla's long format (``unique_id, ds, y``, as statsforecast and mlforecast take it) is
recognised as is; any other layout is named with a mapping (``--columns sku=item,date=day``).

>>> frame = pd.DataFrame({"item": ["A"], "day": ["2024-01-01"], "qty": [2]})
>>> to_canonical_columns(frame, parse_column_mapping("sku=item,date=day,units=qty")).columns.tolist()
['sku', 'date', 'units', 'store_id']
"""

from __future__ import annotations

import pandas as pd

from training.history import OPTIONAL_NUMERIC, REQUIRED, HistoryError

# Nixtla's long format (statsforecast, mlforecast, neuralforecast): one series id, a date, a target.
NIXTLA = {"sku": "unique_id", "date": "ds", "units": "y"}
DEFAULT_STORE = "store"


def parse_column_mapping(text: str) -> dict[str, str]:
    """``"sku=item,date=day,units=qty"`` -> ``{"sku": "item", ...}`` (canonical=file column).

    >>> parse_column_mapping("sku=item, date=day,units=qty")
    {'sku': 'item', 'date': 'day', 'units': 'qty'}
    >>> parse_column_mapping("sku")
    Traceback (most recent call last):
    ...
    training.history.HistoryError: --columns 'sku': each item is canonical=file_column, e.g. sku=item,date=day,units=qty
    """
    mapping: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise HistoryError(
                f"--columns {item!r}: each item is canonical=file_column, "
                "e.g. sku=item,date=day,units=qty"
            )
        mapping[key.strip()] = value.strip()
    known = {*REQUIRED, *OPTIONAL_NUMERIC}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise HistoryError(
            f"--columns: {', '.join(unknown)} is not a canonical column; "
            f"map any of {', '.join(sorted(known))}"
        )
    return mapping


def to_canonical_columns(
    frame: pd.DataFrame, columns: dict[str, str] | None = None, source: str = "<frame>"
) -> pd.DataFrame:
    """Rename a frame's columns to the canonical ones: by ``columns`` (canonical -> file
    column) when given, else Nixtla's ``unique_id, ds, y`` when the frame has them and no
    canonical ``sku``/``date``/``units``. A missing ``store_id`` becomes one store,
    ``"store"``. Anything else is left to :func:`validate` to judge.

    >>> nixtla = pd.DataFrame({"unique_id": ["A"], "ds": ["2024-01-01"], "y": [2]})
    >>> to_canonical_columns(nixtla).columns.tolist()
    ['sku', 'date', 'units', 'store_id']
    """
    if columns:
        absent = [f"{k}={v}" for k, v in columns.items() if v not in frame.columns]
        if absent:
            raise HistoryError(
                f"{source}: --columns names column(s) not in the file: {', '.join(absent)}; "
                f"found {', '.join(map(str, frame.columns))}"
            )
        mapping = columns
    elif set(NIXTLA.values()) <= set(frame.columns) and not set(NIXTLA) & set(frame.columns):
        mapping = NIXTLA
    else:
        return frame
    out = frame.rename(columns={v: k for k, v in mapping.items()})
    if "store_id" not in out.columns and "sku" in out.columns:
        out["store_id"] = DEFAULT_STORE
    return out
