"""Sales history in Nixtla's layout or with a column mapping becomes canonical history, for
`shelfcast train` and `shelfcast forecast` alike; a bad mapping says what is wrong, in one line."""

from __future__ import annotations

import pandas as pd
import pytest

from shelfcast.cli import main
from training.history import HistoryError, load_history
from training.history_columns import parse_column_mapping


def test_nixtla_columns_are_read_as_one_store(tmp_path):
    path = tmp_path / "nixtla.csv"
    pd.DataFrame(
        {
            "unique_id": ["A", "A", "B"],
            "ds": ["2024-01-01", "2024-01-02", "2024-01-01"],
            "y": [3, 0, 2],
        }
    ).to_csv(path, index=False)
    frame = load_history(path)
    assert frame[["store_id", "sku", "units"]].values.tolist() == [
        ["store", "A", 3.0], ["store", "A", 0.0], ["store", "B", 2.0]
    ]  # fmt: skip


def test_a_mapping_renames_the_files_columns(tmp_path):
    path = tmp_path / "sales.parquet"
    pd.DataFrame(
        {"shop": ["S1"], "item": ["A"], "day": pd.to_datetime(["2024-01-01"]), "qty": [4]}
    ).to_parquet(path)
    mapping = parse_column_mapping("store_id=shop,sku=item,date=day,units=qty")
    assert load_history(path, mapping).iloc[0][["store_id", "sku", "units"]].tolist() == [
        "S1", "A", 4.0
    ]  # fmt: skip


def test_a_mapping_to_a_missing_column_names_it(tmp_path):
    path = tmp_path / "sales.csv"
    pd.DataFrame({"item": ["A"], "day": ["2024-01-01"], "qty": [4]}).to_csv(path, index=False)
    with pytest.raises(
        HistoryError,
        match=r"sales.csv: --columns names column\(s\) not in the file: units=quantity",
    ):
        load_history(path, parse_column_mapping("sku=item,date=day,units=quantity"))


def test_train_cli_reports_a_bad_mapping_in_one_line(tmp_path, capsys):
    path = tmp_path / "sales.csv"
    pd.DataFrame({"item": ["A"], "day": ["2024-01-01"], "qty": [4]}).to_csv(path, index=False)
    argv = ["train", "--data", str(path), "--out", str(tmp_path / "b"), "--no-mlflow"]
    assert main([*argv, "--columns", "sku=item,day"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("shelfcast train: --columns 'day': each item is canonical=file_column")
    assert main([*argv, "--columns", "item=sku"]) == 1
    assert "item is not a canonical column" in capsys.readouterr().err
