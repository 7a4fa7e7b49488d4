"""`shelfcast train --stores`: a per-store bundle trained on real weekly data names the stores it
serves and its grain; a store the history lacks is refused before any work."""

from __future__ import annotations

import json

import pytest

from shelfcast.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_a_per_store_bundle_names_its_stores_and_its_week_grain(real_data_dir, tmp_path):
    bundle = tmp_path / "bundle"
    argv = ["train", "--data", "dunnhumby_batf", "--out", str(bundle), "--quick"]
    assert (
        main([*argv, "--stores", "389,2277", "--no-backtest", "--no-mlflow", "--trees", "10"]) == 0
    )
    meta = json.loads((bundle / "metadata.json").read_text())
    assert meta["stores"] == ["2277", "389"] and meta["grain"] == "week"
    assert meta["training_data"]["end"] == "2011-10-05"


def test_an_unknown_store_is_refused(real_data_dir, tmp_path, capsys):
    argv = ["train", "--data", "dunnhumby_batf", "--out", str(tmp_path / "b"), "--quick"]
    assert main([*argv, "--stores", "389,S999", "--no-backtest", "--no-mlflow"]) == 1
    err = capsys.readouterr().err
    assert "--stores: no rows for store(s) S999" in err
