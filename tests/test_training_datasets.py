"""Each real data set comes out in the canonical long format and passes validation."""

from __future__ import annotations

import pandas as pd
import pytest

from training.datasets import (
    DATASETS,
    load_dataset,
    net_cancellations,
    online_retail,
    top_skus_by_units,
)

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(
    "name", ["m5_sample", "favorita", "walmart_weekly", "m5_store_days", "dunnhumby_batf"]
)
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


def test_online_retail_top_skus(real_data_dir):
    df = online_retail(top_skus=25)
    assert df["sku"].nunique() == 25 and set(df["store_id"]) == {"United Kingdom"}
    assert (df["units"] >= 0).all() and (df["price"] > 0).all()
    assert df["sku"].str.match(r"^\d").all()


def test_online_retail_nets_a_cancelled_day_to_zero(real_data_dir):
    # C541433 cancels, minutes later, customer 12346's 74,215-unit order of 23166 (541431).
    df = online_retail()
    day = df[(df["sku"] == "23166") & (df["date"] == "2011-01-18")]
    assert day["units"].tolist() == [0.0]
    assert df.loc[df["sku"] == "23166", "units"].max() < 1_000


def test_cancellation_nets_against_the_order_it_cancels():
    # C581484 (after this file's end) cancels an 80,995-unit order 12 minutes later; a
    # cancellation of part of an earlier order takes only those units off that order's line.
    t = pd.to_datetime(
        ["2011-12-09 09:15", "2011-12-09 09:27", "2011-12-01 10:00", "2011-12-05 10:00"]
    )
    lines = pd.DataFrame(
        {
            "Invoice": ["581483", "C581484", "580001", "C580002"],
            "StockCode": ["23843", "23843", "22423", "22423"],
            "Quantity": [80995, -80995, 12, -4],
            "InvoiceDate": t,
            "Customer ID": pd.array([16446, 16446, 17850, 17850], dtype="Int64"),
        }
    )
    out = net_cancellations(lines)
    assert out["Invoice"].tolist() == ["581483", "580001"]
    assert out["Quantity"].tolist() == [0, 8]


def test_cancellation_without_an_earlier_order_is_dropped():
    lines = pd.DataFrame(
        {
            "Invoice": ["C1", "2"],
            "StockCode": ["A", "A"],
            "Quantity": [-5, 7],
            "InvoiceDate": pd.to_datetime(["2011-01-01", "2011-01-02"]),
            "Customer ID": pd.array([1, 1], dtype="Int64"),
        }
    )
    assert net_cancellations(lines)["Quantity"].tolist() == [7]


def test_top_skus_rank_before_a_day_only():
    f = pd.DataFrame(
        {
            "sku": ["A", "B", "B"],
            "units": [5.0, 1.0, 90.0],
            "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-01"]),
        }
    )
    assert list(top_skus_by_units(f, 1)) == ["B"]
    assert list(top_skus_by_units(f, 1, before="2024-03-01")) == ["A"]


def test_unknown_name():
    with pytest.raises(KeyError, match="unknown data set 'nope'"):
        load_dataset("nope")
    assert "online_retail" in DATASETS


def test_weekly_data_sets_become_panels_of_weeks(real_data_dir):
    from feature_store.batch import panel_from_frame

    walmart = panel_from_frame(load_dataset("walmart_weekly"))
    assert walmart.grain == "week" and walmart.n_days == 130  # 2010-02-05 .. 2012-07-27
    dunnhumby = load_dataset("dunnhumby_batf")
    panel = panel_from_frame(dunnhumby)
    assert panel.grain == "week" and panel.n_days == 143  # 2009-01-14 .. 2011-10-05
    # Feature, display or a temporary price reduction: a promotion week.
    assert 0.2 < dunnhumby["promo"].mean() < 0.4
    assert (dunnhumby["price"].dropna() > 0).all() and dunnhumby["price"].notna().mean() > 0.99


def test_walmart_markdown_weeks_are_promotions(real_data_dir):
    df = load_dataset("walmart_weekly")
    # Markdowns were published from November 2011 only.
    assert df.loc[df["date"] < "2011-11-01", "promo"].sum() == 0
    assert df.loc[df["date"] >= "2011-11-11", "promo"].mean() > 0.9
    assert df.loc[df["date"] == "2011-11-25", "event"].eq(1).all()  # Thanksgiving week


def test_m5_history_carries_the_calendar_and_the_states_snap_days(real_data_dir):
    df = load_dataset("m5_history")
    assert df.groupby(["store_id", "sku"]).ngroups == 944 and df["store_id"].nunique() == 10
    day = df[df["date"] == "2016-02-07"]  # Super Bowl, a SNAP day in CA and TX, not in WI
    assert day["event"].eq(1).all()
    snap = day.groupby(day["store_id"].str[:2])["promo"].first().to_dict()
    assert snap == {"CA": 1.0, "TX": 1.0, "WI": 0.0}


def test_dunnhumby_weeks_without_sales_are_zero_at_the_last_price(real_data_dir):
    """The file lists only weeks that sold; a price known only then would leak which did."""
    df = load_dataset("dunnhumby_batf")
    first = df.groupby(["store_id", "sku"])["date"].min()
    weeks = (df["date"].max() - first).dt.days // 7 + 1
    assert (df.groupby(["store_id", "sku"]).size() == weeks).all()
    zero = df[df["units"] == 0]
    assert len(zero) > 10_000 and zero["price"].notna().all() and (zero["promo"] == 0).all()
