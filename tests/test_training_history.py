"""Loading canonical sales history: clear errors naming file, column and offending rows."""

from __future__ import annotations

import pandas as pd
import pytest

from training.history import HistoryError, load_history


def write(tmp_path, rows, name="sales.csv"):
    path = tmp_path / name
    df = pd.DataFrame(rows)
    if name.endswith(".parquet"):
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    return path


GOOD = {
    "store_id": ["S1", "S1"],
    "sku": ["A", "A"],
    "date": ["2024-01-01", "2024-01-02"],
    "units": [3, 0],
}


def test_good_csv_and_parquet(tmp_path):
    for name in ("sales.csv", "sales.parquet"):
        df = load_history(write(tmp_path, {**GOOD, "price": [1.5, 1.5]}, name))
        assert list(df.columns[:4]) == ["store_id", "sku", "date", "units"]
        assert df["units"].tolist() == [3.0, 0.0]
        assert str(df["date"].dtype).startswith("datetime64")


def test_missing_column_names_file_and_column(tmp_path):
    path = write(tmp_path, {k: v for k, v in GOOD.items() if k != "units"})
    with pytest.raises(HistoryError, match=rf"{path}: missing column\(s\) units"):
        load_history(path)


def test_negative_units_quote_the_rows(tmp_path):
    path = write(tmp_path, {**GOOD, "units": [3, -2]})
    with pytest.raises(HistoryError) as err:
        load_history(path)
    msg = str(err.value)
    assert (
        str(path) in msg
        and "column units is negative" in msg
        and "row 3" in msg
        and "units=-2" in msg
    )


def test_non_numeric_units(tmp_path):
    path = write(tmp_path, {**GOOD, "units": ["3", "many"]})
    with pytest.raises(
        HistoryError, match=r"column units is empty or not numeric in row 3: units='many'$"
    ):
        load_history(path)


def test_unparseable_dates(tmp_path):
    path = write(tmp_path, {**GOOD, "date": ["2024-01-01", "not a date"]})
    with pytest.raises(
        HistoryError,
        match=r"column date has values that are not dates in row 3: date='not a date'; expected",
    ):
        load_history(path)


def test_duplicate_keys(tmp_path):
    path = write(tmp_path, {**GOOD, "date": ["2024-01-01", "2024-01-01"]})
    with pytest.raises(HistoryError, match=r"duplicate \(store_id, sku, date\) keys"):
        load_history(path)


def test_many_bad_rows_are_summarised(tmp_path):
    n = 12
    path = write(
        tmp_path,
        {
            "store_id": ["S"] * n,
            "sku": ["A"] * n,
            "date": [f"2024-01-{d + 1:02d}" for d in range(n)],
            "units": [-1] * n,
        },
    )
    with pytest.raises(HistoryError, match=r"\.\.\. 12 rows in all"):
        load_history(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(HistoryError, match="no such file"):
        load_history(tmp_path / "nope.csv")
    path = tmp_path / "sales.xlsx"
    path.write_text("x")
    with pytest.raises(HistoryError, match="unknown format"):
        load_history(path)


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "sales.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(HistoryError, match=r"cannot be read as \.parquet"):
        load_history(path)
