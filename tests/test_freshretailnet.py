"""FreshRetailNet: the loader, censored-demand recovery and the intraday warning features, on a
small Parquet file copied from real rows of the data set (same schema, a few series)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from configuration.data_dir import DataMissingError
from feature_store.intraday import FEATURES, HISTORY_DAYS, DayContext, hour_features, label_4h
from feature_store.latent_demand import hourly_shares, recover
from training import stockout_warning as sw
from training.datasets import load_dataset
from training.freshretailnet import (
    DAILY,
    FreshRetailNetError,
    availability_labels,
    daily_frame,
    load_hourly,
)
from training.history import validate

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real_rows(tmp_path_factory) -> pa.Table:
    """Every day of 12 real series: 6 products in each of 2 stores, shuffled as a file may be."""
    from configuration.data_dir import available, require

    if not available(DAILY):
        pytest.skip(f"real data absent: {DAILY}")
    table = pq.read_table(require(DAILY), filters=[("store_id", "in", [0, 1])])
    keep = None
    for store in (0, 1):
        products = np.unique(table.filter(pc.equal(table["store_id"], store))["product_id"])[:6]
        m = pc.and_(
            pc.equal(table["store_id"], store), pc.is_in(table["product_id"], pa.array(products))
        )
        keep = m if keep is None else pc.or_(keep, m)
    rows = table.filter(keep)
    return rows.take(np.random.default_rng(0).permutation(rows.num_rows))


@pytest.fixture(scope="module")
def fixture_file(real_rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("frn") / "daily.parquet"
    pq.write_table(real_rows, path)
    return path


def test_hourly_panel_is_the_file(fixture_file, real_rows):
    p = load_hourly(fixture_file)
    assert p.sales.shape == (12, 76, 24) and p.out.shape == (12, 76, 24)
    assert str(p.dates[0]) == "2024-03-28" and str(p.dates[-1]) == "2024-06-11"
    assert sorted(set(p.store.tolist())) == [0, 1]
    # The publisher's own daily columns agree with the hourly arrays we built.
    df = real_rows.to_pandas().sort_values(["store_id", "product_id", "dt"])
    np.testing.assert_allclose(p.sales.sum(2).ravel(), df["sale_amount"], atol=1e-4)
    assert (p.out[:, :, 6:22].sum(2).ravel() == df["stock_hour6_22_cnt"].to_numpy()).all()
    assert (p.category == df.groupby(["store_id", "product_id"])["third_category_id"].first()).all()


def test_sample_is_reproducible_and_a_subset(fixture_file):
    a, b = load_hourly(fixture_file, series=5, seed=3), load_hourly(fixture_file, series=5, seed=3)
    assert a.keys == b.keys and len(a.keys) == 5
    assert set(a.keys) <= set(load_hourly(fixture_file).keys)
    one = load_hourly(fixture_file, stores=1, seed=0)
    assert len(set(one.store.tolist())) == 1 and one.n_series == 6  # the whole store


def test_daily_frame_is_canonical_and_labels_are_hourly(fixture_file):
    p = load_hourly(fixture_file)
    frame = validate(daily_frame(p), source="fixture")
    assert len(frame) == 12 * 76 and list(frame.columns[:4]) == ["store_id", "sku", "date", "units"]
    assert set(frame["promo"].unique()) <= {0.0, 1.0}
    # The discount's depth reaches the model as a relative price (1 = full price).
    assert daily_frame(p)["price"].to_numpy() == pytest.approx(p.discount.ravel())
    assert frame["price"].mean() == pytest.approx(float(p.discount.mean()))
    labels = availability_labels(p)
    assert len(labels) == 12 * 76 * 24
    assert labels["out_of_stock"].mean() == pytest.approx(p.out.mean())
    assert labels["sales"].sum() == pytest.approx(float(p.sales.sum()), rel=1e-5)


def test_a_missing_day_is_refused(real_rows, tmp_path):
    path = tmp_path / "gap.parquet"
    pq.write_table(real_rows.slice(1), path)
    with pytest.raises(FreshRetailNetError, match="not whole series"):
        load_hourly(path)


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("SHELFCAST_DATA_DIR", str(tmp_path))
    with pytest.raises(DataMissingError, match=r"freshretailnet/daily\.parquet does not exist"):
        load_dataset("freshretailnet")


def _weekday(p):
    return sw.weekdays(p)


def test_recovery_finds_hidden_demand_and_never_touches_sales(fixture_file):
    p = load_hourly(fixture_file)
    wd = _weekday(p)
    out = p.out.astype(bool)
    full = ~out[:, :, 6:22].any(2)
    # Hide the evening of fully in-stock days: the truth there is known.
    hidden = full[:, :, None] & (np.arange(24) >= 15)[None, None, :]
    sales = np.where(hidden, 0.0, p.sales)  # an empty shelf sells nothing
    shares = hourly_shares(sales, out | hidden, wd, p.product, p.category)
    np.testing.assert_allclose(shares.sum(2), 1.0, rtol=1e-9)
    latent = recover(sales, out | hidden, shares, wd)
    truth = np.where(hidden, p.sales, 0).sum(2)[full].sum()
    found = latent.recovered.sum(2)[full].sum()
    assert truth > 0 and abs(found - truth) / truth < 0.35
    seen = ~(out | hidden)
    assert (latent.recovered[seen] == 0).all() and (latent.demand[seen] == p.sales[seen]).all()
    assert (latent.demand[~seen] == latent.recovered[~seen]).all()


def test_live_window_gives_the_batch_features(fixture_file):
    """A gateway holding the last 14 days and today's hours up to h computes the same row."""
    p = load_hourly(fixture_file)
    wd = _weekday(p)
    hour, day = 11, 40
    ctx = DayContext.of(p.sales, p.out, wd, store=p.store)
    batch = hour_features(ctx, p.sales, p.out, p.discount, p.activity, hour)[:, day]
    window = slice(day - HISTORY_DAYS, day + 1)
    sales, out = p.sales[:, window].copy(), p.out[:, window].copy()
    sales[:, -1, hour + 1 :] = 0  # later hours of today are not known yet
    out[:, -1, hour + 1 :] = 0
    live_ctx = DayContext.of(sales, out, wd[window], store=p.store)
    live = hour_features(live_ctx, sales, out, p.discount[:, window], p.activity[:, window], hour)
    np.testing.assert_allclose(live[:, -1], batch, rtol=1e-6, equal_nan=True)
    assert batch.shape == (12, len(FEATURES))


def test_warning_model_learns_and_its_onnx_agrees(fixture_file):
    p = load_hourly(fixture_file)
    rows = sw.warning_rows(p)
    assert rows.X.shape[1] == len(FEATURES) and set(np.unique(rows.y)) == {0, 1}
    assert (p.out[rows.series, rows.day, rows.hour] == 0).all()  # in stock when warned
    assert (rows.y == label_4h(p.out, 10)[rows.series, rows.day])[rows.hour == 10].all()
    train, test = rows.take(rows.day < 62), rows.take(rows.day >= 62)
    model = sw.fit(train, n_estimators=40, min_child_samples=20)
    prob = model.predict_proba(test.X)[:, 1]
    assert sw.ranking_scores(test.y, prob)["roc_auc"] > 0.6
    onnx = sw.to_onnx(model, len(FEATURES))
    np.testing.assert_allclose(sw.onnx_probability(onnx, test.X), prob, atol=1e-5)
    alerts = sw.alert_scores(test, prob, 0.5, p.store)
    assert alerts["alerts"] <= (prob >= 0.5).sum() and 0 <= alerts["precision"] <= 1


def test_usual_level_comes_only_from_the_days_given():
    """A day out of stock all day takes the series' usual level, never from later days."""
    sales = np.array([[[0.0, 0.0], [3.0, 3.0]]])  # day 0 all out, day 1 sold 6
    out = np.array([[[1, 1], [0, 0]]], bool)
    shares = np.full((1, 7, 2), 0.5)
    wd = np.array([0, 1])
    assert recover(sales, out, shares, wd).demand[0, 0].sum() == 6.0
    assert recover(sales, out, shares, wd, days=np.array([True, False])).demand[0, 0].sum() == 0


def test_stock_cover_scales_past_sell_outs_by_the_sales_before_them():
    """A shelf stocked with two days' sales that sold out: today's stock is read the same way."""
    days = HISTORY_DAYS + 1
    sales = np.zeros((1, days, 24))
    out = np.zeros((1, days, 24), np.uint8)
    sales[0, :, 8] = 10.0  # 10 a day at 8:00 ...
    for d in (9, 12):  # ... but two sell-outs of 20 (two days' sales) at 10:00, out after
        sales[0, d, 9] = 10.0
        out[0, d, 10:] = 1
    ctx = DayContext.of(sales, out)
    X = hour_features(ctx, sales, out, np.ones((1, days)), np.zeros((1, days)), hour=8)[0, -1]
    col = {n: i for i, n in enumerate(FEATURES)}
    assert X[col["days_since_out"]] == 2 and X[col["out_streak_days"]] == 0
    assert X[col["sold_before_out_cv"]] == pytest.approx(0.0, abs=1e-6)
    # Each sell-out sold 20 over a trailing 10 (day 9) or ~11.4 a day (day 12): cover ~1.9.
    assert 1.7 < X[col["stock_cover_7"]] < 2.0
    assert X[col["sold_vs_yesterday_by_hour"]] == pytest.approx(1.0, rel=1e-3)
    assert X[col["yesterday_vs_daily_7"]] < 1.0  # yesterday sold 10, the week before more
