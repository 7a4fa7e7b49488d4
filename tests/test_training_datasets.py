"""Each real data set comes out in the canonical long format and passes validation."""

from __future__ import annotations

import pandas as pd
import pytest

from training.datasets import DATASETS, load_dataset, online_retail

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("name", ["m5_sample", "favorita", "walmart_weekly", "m5_store_days"])
def test_adapter_is_canonical(real_data_dir, name):
    df = load_dataset(name)
    assert list(df.columns[:4]) == ["store_id", "sku", "date", "units"]
    assert not df.duplicated(["store_id", "sku", "date"]).any()
    assert (df["units"] >= 0).all()
    assert pd.api.types.is_datetime64_any_dtype(df["date"])


def test_sizes_match_the_data_readme(real_data_dir):
    assert load_dataset("m5_sample").groupby(["store_id", "sku"]).ngroups == 10
    assert load_dataset("m5_store_days").groupby(["store_id", "sku"]).ngroups == 30_490
    fav = load_dataset("favorita")
    assert fav["store_id"].nunique() == 54 and set(fav["sku"]) == {"ALL"}


def test_online_retail_top_skus_drop_cancellations(real_data_dir):
    df = online_retail(top_skus=25)
    assert df["sku"].nunique() == 25 and set(df["store_id"]) == {"United Kingdom"}
    assert (df["units"] > 0).all() and (df["price"] > 0).all()
    assert df["sku"].str.match(r"^\d").all()


def test_unknown_name():
    with pytest.raises(KeyError, match="unknown data set 'nope'"):
        load_dataset("nope")
    assert "online_retail" in DATASETS
