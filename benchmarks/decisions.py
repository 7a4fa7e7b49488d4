"""Edge decisions on a real-data replay with injected incidents.

Sections (each prints what it used, and any figure it cannot measure is null with a reason):

- theft / phantom: a real POS replay (Online Retail II, United Kingdom, every invoice line as a
  sale at its real minute), run through ``twin.sensors.simulate`` (shelf weights, exit-gate
  RFID, labelled thefts, phantom-inventory episodes and mis-scans from a seed), then through the
  gateway's ``ShelfWatch`` detectors in event-time order. Precision, recall, detection delay.
- stock-out: M5 store days (real daily unit sales of 3,049 items in each of 10 stores). For each
  SKU and decision day, a forecast (mean, P90) from the days before it, a stock position (ATP)
  drawn from a seed, the predicted P(run out within the lead time), and the real outcome.
- online correction: Online Retail II UK daily SKU panel; a central forecast frozen at a cutoff
  (trailing 8-week mean x day-of-week profile), then the held-out 8 weeks with and without the
  River correction learning from each day (the gateway's level correction, and the two residual
  learners it replaced). RMSSE ratio (< 1 means the correction helps).
- scoring: ONNX Runtime, one batched call for 10,000 SKUs, median of repeated runs.
- feature parity: streaming vs batch features when ``feature_store.streaming`` exists.
- gateway day close: the same real Online Retail history replayed as sale events, day by day,
  into a real ``Gateway`` holding the same bundle (``SHELFCAST_BUNDLE``): every store day's close
  re-scores all SKUs in one ONNX call from the gateway's own incremental series. Figures: the
  time of the one-event ingest that closes a day (median, p95) against the plain ingest of the
  rest of that day's events in one batch (same run), the ONNX call alone, parity of the gateway's central forecasts with the batch-feature
  forecasts of the same close, and the held-out RMSSE of its River-corrected forecasts against
  its central ones (the gateway path of the online-correction figure).

- anomaly model: what the bundle's ``anomaly.onnx``, scored at every store day's close as the
  gateway does, adds to the theft and phantom detectors at equal alert volume
  (``anomaly_model_effect``).

Usage: ``python benchmarks/decisions.py --json out.json [--quick] [--only-anomaly-model]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

# Run as a script, this folder is first on the path, and its twin.py would shadow the twin
# package: the project root goes before it, ahead of the project's imports.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.machine import machine
from benchmarks.online_learners import EwmCorrection, OnlineAnomaly, OnlineCorrection
from configuration.data_dir import require
from edge_runtime.decide.stockout import stockout_risk
from edge_runtime.forecast.online import LevelCorrection
from edge_runtime.forecast.scoring import Scorer
from edge_runtime.store.events import parse_events
from edge_runtime.watch.phantom import PhantomDetector
from edge_runtime.watch.shelf_watch import ShelfWatch
from twin.sensors import SensorConfig, simulate

DAY_S = 86400.0
# Longest a theft can take to surface as an alert of its SKU: a paying shopper's sale may
# consume the thief's removal (FIFO) and leave their own removal unmatched instead, up to one
# pick window later; that one is decided a pick window plus the mis-scan hold after it.
MAX_THEFT_DELAY_S = 1800.0 + 1800.0 + 600.0
STORE = "UK"
CUTOFF = "2011-08-05"  # the bundle learns up to here; the 8 weeks after are held out
LEAD_TIME_DAYS = 3
BUNDLE_DIR = Path("var/bench/decisions_bundle")


# -- real data ----------------------------------------------------------------------------------
def online_retail_sales() -> pd.DataFrame:
    """UK sale lines of real products (no cancellations, no postage/manual codes)."""
    path = require("online_retail/online_retail_ii_2009-12-01_2011-09-30.parquet")
    df = pd.read_parquet(
        path, columns=["Invoice", "StockCode", "Quantity", "InvoiceDate", "Country"]
    )
    df = df[(df.Country == "United Kingdom") & (df.Quantity > 0)]
    df = df[~df.Invoice.astype(str).str.startswith("C")]
    df = df[df.StockCode.astype(str).str.match(r"^\d")]
    return df.assign(sku=df.StockCode.astype(str)).sort_values("InvoiceDate", kind="stable")


def pos_events(lines: pd.DataFrame) -> list[dict]:
    """Invoice lines as edge sale events (UK local minute, recorded as UTC)."""
    stamps = lines.InvoiceDate.dt.strftime("%Y-%m-%dT%H:%M:00+00:00").tolist()
    return [
        {
            "event_id": f"{inv}-{i}",
            "store_id": STORE,
            "sku": sku,
            "type": "sale",
            "qty": int(q),
            "event_time": ts,
            "source": "pos",
        }
        for i, (inv, sku, q, ts) in enumerate(
            zip(lines.Invoice.astype(str), lines.sku, lines.Quantity, stamps, strict=True)
        )
    ]


def daily_panel(lines: pd.DataFrame) -> pd.DataFrame:
    """SKU x day units (calendar days, zeros filled)."""
    daily = lines.groupby(["sku", lines.InvoiceDate.dt.normalize()]).Quantity.sum()
    wide = daily.unstack(fill_value=0)
    full = pd.date_range(wide.columns.min(), wide.columns.max(), freq="D")
    return wide.reindex(columns=full, fill_value=0).astype(np.float64)


# -- theft and phantom --------------------------------------------------------------------------
def recency_forecast(daily: np.ndarray, halflife_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-SKU daily mean and P90 from history, recent days weighted more (half-life in days).

    A stand-in for the central demand model (which has lag features, so it also forgets
    SKUs that stopped selling); P90 from the weighted variance: mean + z90 * sd.
    """
    n = daily.shape[1]
    w = 0.5 ** (np.arange(n)[::-1] / halflife_days)
    w /= w.sum()
    mean = daily @ w
    var = ((daily - mean[:, None]) ** 2) @ w
    return mean, mean + 1.2815515655446004 * np.sqrt(var)


def theft_and_phantom(
    lines: pd.DataFrame,
    start: str,
    days: int,
    seed: int,
    alpha: float = 1e-4,
    halflife_days: float = 14.0,
    phantom_episodes: int = 30,
) -> dict:
    t0 = pd.Timestamp(start)
    history = lines[(lines.InvoiceDate >= t0 - pd.Timedelta(days=56)) & (lines.InvoiceDate < t0)]
    replay = lines[(lines.InvoiceDate >= t0) & (lines.InvoiceDate < t0 + pd.Timedelta(days=days))]
    sales = pos_events(replay)
    sim = simulate(sales, SensorConfig(seed=seed, phantom_episodes=phantom_episodes))
    events, rejected = [], []
    for i in range(0, len(sim.events), 10_000):  # the gateway takes batches of <= 20,000
        ok, bad = parse_events(sim.events[i : i + 10_000], store_id=STORE)
        events += ok
        rejected += bad
    if rejected:
        raise RuntimeError(f"simulator produced invalid events: {rejected[:3]}")

    # The forecast the phantom rule needs: trailing 8-week daily mean and P90 per SKU (a stand-in
    # for the bundle's demand model, which is not what is measured here).
    panel = daily_panel(history)
    skus = sorted({e.sku for e in events if e.type == "sale"})
    panel = panel.reindex(skus, fill_value=0.0)
    mean, p90 = recency_forecast(panel.to_numpy(), halflife_days)
    on_hand = np.ones(len(skus))  # the ledger believes every SKU is in stock (phantom premise)
    # Units per sale learnt from the history, as the gateway would have by then.
    phantom = PhantomDetector(alpha=alpha)
    for sku, q, ts in zip(history.sku, history.Quantity, history.InvoiceDate, strict=True):
        phantom.sale(sku, ts.timestamp(), float(q))
    watch = ShelfWatch(unit_weight_g=sim.unit_weight_g, phantom=phantom)

    alerts = []
    next_tick = events[0].ts_us / 1e6
    tick = 60.0
    next_check = next_tick + 3600.0
    started = time.perf_counter()
    for e in events:
        t = e.ts_us / 1e6
        if t >= next_tick:
            alerts += watch.advance(t)
            next_tick = t + tick
        if t >= next_check:
            alerts += phantom.check(t, skus, on_hand, mean, p90)
            next_check = t + 3600.0
        alerts += watch.observe(e.type, e.sku, t, e.qty)
    end = events[-1].ts_us / 1e6
    alerts += watch.advance(end + DAY_S)
    elapsed = time.perf_counter() - started

    theft = _score_theft(alerts, sim.labels)
    ph = _score_phantom(alerts, sim.labels)
    hst = half_space_trees(events, sim, seed)
    return {
        "replay": f"online_retail UK {start} + {days} days",
        "pos_sales": len(sales),
        "skus": len(skus),
        "events_with_sensors": len(events),
        "labels": sim.counts,
        "detector_events_per_s": round(len(events) / elapsed),
        **theft,
        **ph,
        **hst,
    }


PHANTOM_ALPHAS = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3)


def anomaly_model_effect(
    lines: pd.DataFrame, start: str, days: int, seed: int, scorer: Scorer, alpha: float = 1e-4
) -> dict:
    """What the bundle's anomaly model adds to theft and phantom detection, at equal alert
    volume, on the replay of :func:`theft_and_phantom` (same window, seed and forecasts).

    The gateway's own objects: a ``DailySales`` closes each store day from the replayed sales
    (history first) and ``score_close`` scores every SKU's closed day in one ONNX call, as at
    the gateway's close; the scores go to one ``ShelfWatch`` (theft alerts weighed by them) and
    to phantom detectors fed the same sales. Theft: the detectors raise the same alerts either
    way (the model only re-scores them), so the comparison is precision and recall of the top
    half of the alerts ranked by score, with and without the model (ties by time). Phantom: the
    model loosens the bound of flagged SKUs, so both variants run at several ``alpha`` and the
    model's run at ``alpha`` is set against the run without it of the nearest alert volume.
    """
    from edge_runtime.forecast.daily_sales import DailySales
    from edge_runtime.watch.anomaly_scores import score_close

    t0 = pd.Timestamp(start)
    history = lines[(lines.InvoiceDate >= t0 - pd.Timedelta(days=56)) & (lines.InvoiceDate < t0)]
    replay = lines[(lines.InvoiceDate >= t0) & (lines.InvoiceDate < t0 + pd.Timedelta(days=days))]
    sim = simulate(pos_events(replay), SensorConfig(seed=seed, phantom_episodes=30))
    events = _parsed(sim.events)
    panel = daily_panel(history)
    skus = sorted({e.sku for e in events if e.type == "sale"})
    mean, p90 = recency_forecast(panel.reindex(skus, fill_value=0.0).to_numpy(), 14.0)
    on_hand = np.ones(len(skus))
    sales = DailySales()
    sales.observe(_parsed(pos_events(history)))
    plain, weighed = ShelfWatch(sim.unit_weight_g), ShelfWatch(sim.unit_weight_g)
    detectors = {(a, m): PhantomDetector(a) for a in PHANTOM_ALPHAS for m in (False, True)}
    for sku, q, ts in zip(history.sku, history.Quantity, history.InvoiceDate, strict=True):
        for d in detectors.values():
            d.sale(sku, ts.timestamp(), float(q))
    weighed.anomaly = score_close(scorer, sales)  # the history's last closed day
    theft: dict[bool, list] = {False: [], True: []}
    phantom: dict[tuple, list] = {k: [] for k in detectors}
    flagged_share, closes = [], 0
    next_tick, next_check = events[0].ts_us / 1e6, events[0].ts_us / 1e6 + 3600.0
    for e in events:
        t = e.ts_us / 1e6
        if e.type in ("sale", "return", "void") and sales.observe([e]):
            weighed.anomaly = score_close(scorer, sales)  # the gateway's day-close call
            flagged_share.append(float((weighed.anomaly.scores < 0).mean()))
            closes += 1
        if t >= next_tick:
            theft[False] += plain.advance(t)
            theft[True] += weighed.advance(t)
            next_tick = t + 60.0
        if t >= next_check:
            for (a, m), d in detectors.items():
                phantom[(a, m)] += d.check(t, skus, on_hand, mean, p90,
                                           weighed.anomaly if m else None)  # fmt: skip
            next_check = t + 3600.0
        theft[False] += plain.observe(e.type, e.sku, t, e.qty)
        theft[True] += weighed.observe(e.type, e.sku, t, e.qty)
        if e.type == "sale":
            for d in detectors.values():
                d.sale(e.sku, t, e.qty)
    end = events[-1].ts_us / 1e6 + DAY_S
    theft[False] += plain.advance(end)
    theft[True] += weighed.advance(end)
    return {
        "day_closes_scored": closes,
        "mean_share_of_skus_flagged": round(float(np.mean(flagged_share)), 4)
        if flagged_share
        else None,
        "theft": _theft_at_equal_volume(theft, sim.labels),
        "phantom": _phantom_at_equal_volume(phantom, sim.labels, alpha),
    }


def _parsed(raw: list[dict]) -> list:
    events = []
    for i in range(0, len(raw), 10_000):
        ok, bad = parse_events(raw[i : i + 10_000], store_id=STORE)
        if bad:
            raise RuntimeError(f"invalid replay events: {bad[:3]}")
        events += ok
    return events


def _theft_at_equal_volume(theft: dict[bool, list], labels) -> dict:
    out = {}
    for with_model, alerts in theft.items():
        thefts = [a for a in alerts if a.kind == "theft"]
        top = sorted(thefts, key=lambda a: (-a.score, a.event_time))[: len(thefts) // 2]
        scored = _score_theft(top, labels)
        out["with_model" if with_model else "without_model"] = {
            k: scored[k] for k in ("theft_alerts", "theft_precision", "theft_recall")
        }
    return out


def _phantom_at_equal_volume(phantom: dict[tuple, list], labels, alpha: float) -> dict:
    curves = {False: [], True: []}
    for (a, with_model), alerts in sorted(phantom.items()):
        scored = _score_phantom(alerts, labels)
        curves[with_model].append({"alpha": a, **{k: scored[k] for k in (
            "phantom_alerts", "phantom_precision", "phantom_recall")}})  # fmt: skip
    model = next(c for c in curves[True] if c["alpha"] == alpha)
    same = min(curves[False], key=lambda c: abs(c["phantom_alerts"] - model["phantom_alerts"]))
    return {"with_model": model, "without_model_nearest_volume": same,
            "curve_with_model": curves[True], "curve_without_model": curves[False]}  # fmt: skip


def half_space_trees(events, sim, seed: int) -> dict:
    """River HalfSpaceTrees over SKU-hour signals (units sold, taken from the shelf, read at the
    exit gate; score first, then learn), judged by ROC AUC against SKU-hours holding a theft.
    Extra evidence only: the rule-based matcher carries theft (design.md pitfalls)."""
    hours: dict[tuple[str, int], list[float]] = {}
    level: dict[str, float] = {}
    for e in events:
        key = (e.sku, int(e.ts_us // 3_600_000_000))
        if e.type == "shelf_weight":
            units = round(e.qty / sim.unit_weight_g[e.sku])
            before = level.get(e.sku)
            level[e.sku] = units
            if before is None or units >= before:
                continue
            row, col, value = hours.setdefault(key, [0.0, 0.0, 0.0]), 1, before - units
        elif e.type in ("sale", "rfid_exit"):
            row, col, value = (
                hours.setdefault(key, [0.0, 0.0, 0.0]),
                (0 if e.type == "sale" else 2),
                e.qty,
            )
        else:
            continue
        row[col] += value
    theft_hours = {(lb.sku, int(lb.start // 3600)) for lb in sim.labels if lb.kind == "theft"}
    detector = OnlineAnomaly(seed=seed)
    scores, labels = [], []
    for key in sorted(hours, key=lambda k: k[1]):
        sold, taken, gate = hours[key]
        x = {"sold": sold, "taken": taken, "gate": gate, "taken_minus_sold": taken - sold}
        scores.append(detector.score_one(x))
        detector.learn_one(x)
        labels.append(key in theft_hours)
    y = np.asarray(labels, dtype=float)
    return {
        "hst_sku_hours": len(y),
        "hst_theft_auc": round(auc(np.asarray(scores), y), 4) if 0 < y.sum() < len(y) else None,
    }


def _score_theft(alerts, labels) -> dict:
    thefts = [lb for lb in labels if lb.kind == "theft"]
    theft_alerts = [a for a in alerts if a.kind == "theft"]
    by_sku: dict[str, list] = {}
    for lb in thefts:
        by_sku.setdefault(lb.sku, []).append(lb)
    hit_labels: dict[int, float] = {}
    true_alerts = 0
    # An alert matches a theft of its SKU that happened before it, within MAX_THEFT_DELAY_S.
    for a in theft_alerts:
        match = None
        for lb in by_sku.get(a.sku, []):
            if lb.start - 1.0 <= a.event_time <= lb.start + MAX_THEFT_DELAY_S:
                match = lb
                break
        if match is not None:
            true_alerts += 1
            key = id(match)
            delay = a.event_time - match.start
            hit_labels[key] = min(hit_labels.get(key, np.inf), delay)
    misscans = [lb for lb in labels if lb.kind == "misscan"]
    misscan_alerts = sum(a.kind == "misscan" for a in alerts)
    return {
        "theft_labels": len(thefts),
        "theft_alerts": len(theft_alerts),
        "theft_precision": _ratio(true_alerts, len(theft_alerts)),
        "theft_recall": _ratio(len(hit_labels), len(thefts)),
        "median_detection_delay_min": round(statistics.median(hit_labels.values()) / 60.0, 2)
        if hit_labels
        else None,
        "misscan_labels": len(misscans),
        "misscan_alerts": misscan_alerts,
    }


def _score_phantom(alerts, labels) -> dict:
    episodes = [lb for lb in labels if lb.kind == "phantom"]
    phantom_alerts = [a for a in alerts if a.kind == "phantom"]
    found, true_alerts, delays = set(), 0, []
    for a in phantom_alerts:
        for i, lb in enumerate(episodes):
            if lb.sku == a.sku and lb.start <= a.event_time <= lb.end + DAY_S:
                true_alerts += 1
                if i not in found:
                    found.add(i)
                    delays.append((a.event_time - lb.start) / 3600.0)
                break
    return {
        "phantom_episodes": len(episodes),
        "phantom_alerts": len(phantom_alerts),
        "phantom_precision": _ratio(true_alerts, len(phantom_alerts)),
        "phantom_recall": _ratio(len(found), len(episodes)),
        "phantom_median_delay_h": round(statistics.median(delays), 1) if delays else None,
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


# -- the central model: a bundle trained up to the cutoff ----------------------------------------
def bundle_source(top_skus: int) -> str:
    """The cached bundle's key: the data, the cut and the training code, so that a change to
    the training code is never hidden behind a bundle an older one trained."""
    from benchmarks.twin import training_code_digest

    return (
        f"online_retail UK top-{top_skus} SKUs to {CUTOFF} (benchmarks/decisions.py), "
        f"training code {training_code_digest()}"
    )


def held_out_setup(top_skus: int, retrain: bool) -> dict:
    """Online Retail UK top SKUs, a bundle trained up to CUTOFF, and its ONNX scorer."""
    from feature_store.batch import close_features, panel_from_frame
    from feature_store.spec import FEATURE_STORE_VERSION
    from models.bundle import BundleError, load_bundle
    from training.datasets import online_retail

    frame = online_retail(top_skus=top_skus)
    cutoff = np.datetime64(CUTOFF, "ns")
    source = bundle_source(top_skus)
    bundle = None
    if not retrain:
        try:
            bundle = load_bundle(BUNDLE_DIR, FEATURE_STORE_VERSION)
            if (
                bundle.metadata.get("data_source") != source
                or not (BUNDLE_DIR / "signature.json").exists()
            ):  # a bundle from before signing is retrained
                bundle = None
        except BundleError:
            bundle = None
    if bundle is None:
        from training.train import TrainConfig, train

        print(f"training the demand bundle on data up to {CUTOFF} -> {BUNDLE_DIR}", flush=True)
        train(frame[frame["date"] <= cutoff], BUNDLE_DIR, TrainConfig.quick_config(), source, False)
        bundle = load_bundle(BUNDLE_DIR, FEATURE_STORE_VERSION)
    panel = panel_from_frame(frame)
    close = close_features(panel)
    first_test = int(np.flatnonzero(panel.dates > np.datetime64(CUTOFF, "D"))[0])
    return {
        "frame": frame,
        "panel": panel,
        "close": close,
        "scorer": Scorer.from_bundle(bundle),
        "bundle": bundle,
        "first_test": first_test,
        "model_version": bundle.model_version,
        "source": source,
    }


def forecasts(
    setup: dict, day: int, horizons: list[int], with_p50: bool = False
) -> tuple[np.ndarray, ...]:
    """Bundle forecasts (mean, P90[, P50]) from close ``day``, (series, horizons); NaN if unstarted."""
    from feature_store.batch import forecast_rows

    panel = setup["panel"]
    X, series, h = forecast_rows(panel, setup["close"], day, horizons)
    mean, p50, p90 = setup["scorer"].demand(X)
    n = panel.units.shape[0]
    col = np.searchsorted(np.asarray(horizons), h)
    out = []
    for values in (mean, np.maximum(p90, mean), p50) if with_p50 else (mean, np.maximum(p90, mean)):
        grid = np.full((n, len(horizons)), np.nan)
        grid[series, col] = values
        out.append(grid)
    return tuple(out)


# -- online correction ---------------------------------------------------------------------------
def online_correction(setup: dict) -> dict:
    """1-day-ahead bundle forecasts on the held-out days, with and without River correction."""
    panel, first = setup["panel"], setup["first_test"]
    units = panel.units
    n, days = units.shape[0], units.shape[1]
    skus = [k[1] for k in panel.keys]
    # River learns in units of each SKU's typical day (as the twin's forecaster does).
    scale = np.maximum(np.nanmean(units[:, max(0, first - 91) : first], axis=1), 1.0)
    # river_level is the gateway's; the residual learners are kept for comparison.
    variants = {
        "river_level": LevelCorrection(),
        "river_lr": OnlineCorrection(),
        "river_ewm": EwmCorrection(fading=0.1),
    }
    preds = {"central": np.full((n, days), np.nan)} | {
        k: np.full((n, days), np.nan) for k in variants
    }
    for day in range(first, days):
        mean, _ = forecasts(setup, day - 1, [1])
        central = mean[:, 0]
        preds["central"][:, day] = central
        for name, model in variants.items():
            for i in np.flatnonzero(~np.isnan(central)):
                c = central[i] / scale[i]
                preds[name][i, day] = model.predict_one(skus[i], c) * scale[i]
        actual = units[:, day]
        for model in variants.values():
            for i in np.flatnonzero(~np.isnan(central) & ~np.isnan(actual)):
                model.learn_one(skus[i], central[i] / scale[i], actual[i] / scale[i])
    base = rmsse(units, preds["central"], first)
    out = {
        "held_out": f"{panel.dates[first]} .. {panel.dates[-1]} ({days - first} days, {n} SKUs)",
        "rmsse_central": round(base, 4),
    }
    for name in variants:
        value = rmsse(units, preds[name], first)
        out[f"rmsse_{name}"] = round(value, 4)
        out[f"ratio_{name}"] = round(value / base, 4)
    return out


def rmsse(units: np.ndarray, pred: np.ndarray, first: int) -> float:
    """Mean over SKUs of RMSSE (scale: in-sample one-step naive MSE before ``first``)."""
    train = units[:, :first]
    scale = np.nanmean(np.diff(train, axis=1) ** 2, axis=1)
    err = np.nanmean((units[:, first:] - pred[:, first:]) ** 2, axis=1)
    ok = np.isfinite(scale) & (scale > 0) & np.isfinite(err)
    return float(np.mean(np.sqrt(err[ok] / scale[ok])))


# -- stock-out prediction ------------------------------------------------------------------------
def stockout_quality(setup: dict, seed: int) -> dict:
    """P(run out within the lead time) from the bundle's forecasts vs what real demand did.

    Stock positions are drawn from a seed around each SKU's trailing 28-day demand over the
    lead time (0..2x), independent of the model being judged.
    """
    panel, first = setup["panel"], setup["first_test"]
    units = panel.units
    rng = np.random.default_rng(seed)
    horizons = list(range(1, LEAD_TIME_DAYS + 1))
    probs, probs_p90, outcomes = [], [], []
    for day in range(first - 1, units.shape[1] - LEAD_TIME_DAYS):
        mean, p90, p50 = forecasts(setup, day, horizons, with_p50=True)
        ok = ~np.isnan(mean).any(axis=1)
        recent = np.nanmean(units[:, day - 27 : day + 1], axis=1) * LEAD_TIME_DAYS
        atp = np.floor(rng.uniform(0.0, 2.0, len(recent)) * recent)
        # Days independent: the lead-time mean is the sum; P90 (and P50) shape the dispersion.
        m, q90, q50 = mean[ok].mean(axis=1), p90[ok].mean(axis=1), p50[ok].mean(axis=1)
        probs.append(stockout_risk(m, q90, atp[ok], LEAD_TIME_DAYS, p50_daily=q50).probability)
        probs_p90.append(stockout_risk(m, q90, atp[ok], LEAD_TIME_DAYS).probability)
        demand = units[ok, day + 1 : day + 1 + LEAD_TIME_DAYS].sum(axis=1)
        outcomes.append(demand >= atp[ok])
    p = np.concatenate(probs)
    p_90 = np.concatenate(probs_p90)
    y = np.concatenate(outcomes).astype(float)
    return {
        "lead_time_days": LEAD_TIME_DAYS,
        "decisions": len(p),
        "stockout_rate": round(float(y.mean()), 4),
        "distribution": "negative binomial from the bundle's mean, P50 and P90",
        "stockout_auc": round(auc(p, y), 4),
        "stockout_brier": round(float(np.mean((p - y) ** 2)), 4),
        "brier_of_base_rate": round(float(y.mean() * (1 - y.mean())), 4),
        "reliability": reliability(p, y),
        "mean_p90_only_auc": round(auc(p_90, y), 4),
        "mean_p90_only_brier": round(float(np.mean((p_90 - y) ** 2)), 4),
        "mean_p90_only_reliability": reliability(p_90, y),
    }


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 5) -> list[dict]:
    """Predicted vs observed stock-out rate per probability bin (calibration, not just ranking)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for lo, hi in itertools.pairwise(edges):
        sel = (p >= lo) & ((p < hi) if hi < 1.0 else (p <= hi))
        if sel.any():
            out.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "n": int(sel.sum()),
                    "predicted": round(float(p[sel].mean()), 3),
                    "observed": round(float(y[sel].mean()), 3),
                }
            )
    return out


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    ranks = pd.Series(score).rank(method="average").to_numpy()
    pos = label == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# -- scoring speed -------------------------------------------------------------------------------
def scoring_speed(setup: dict, rows: int = 10_000, repeats: int = 50) -> dict:
    """One batched ONNX call on 10,000 real feature rows (the store's SKUs at several closes),
    against the baseline of one call per row measured in the same run. The box is shared, so
    the load average is reported beside median and minimum."""
    from feature_store.batch import forecast_rows

    panel, first = setup["panel"], setup["first_test"]
    blocks, day = [], first - 1
    while sum(len(b) for b in blocks) < rows:
        blocks.append(forecast_rows(panel, setup["close"], day, [1])[0])
        day -= 1
    X = np.ascontiguousarray(np.concatenate(blocks)[:rows], dtype=np.float32)
    load_before = os.getloadavg()[0]
    out: dict = {
        "rows": rows,
        "rows_from": f"{len(blocks)} close days x {panel.units.shape[0]} SKUs (real features)",
        "model": "bundle demand.onnx: mean, P50, P90 LightGBM ensembles in one graph",
    }
    for threads in (1, 2):
        scorer = Scorer.from_bundle(setup["bundle"], threads=threads)
        scorer.demand(X)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            scorer.demand(X)
            times.append((time.perf_counter() - t) * 1000)
        out[f"threads_{threads}_median_ms"] = round(statistics.median(times), 3)
        out[f"threads_{threads}_min_ms"] = round(min(times), 3)
    scorer = Scorer.from_bundle(setup["bundle"], threads=1)
    t = time.perf_counter()
    for i in range(rows):
        scorer.demand(X[i : i + 1])
    loop_ms = (time.perf_counter() - t) * 1000
    out["score_10k_skus_ms"] = out["threads_1_median_ms"]
    out["per_row_calls_ms"] = round(loop_ms, 1)
    out["batched_speedup_vs_per_row"] = round(loop_ms / out["score_10k_skus_ms"], 1)
    out["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return out


# -- feature parity ------------------------------------------------------------------------------
def feature_parity(setup: dict) -> dict:
    """Streaming features (``feature_store.streaming``, fed one closed day at a time, as on the
    gateway) against batch features (``feature_store.batch``, as in training) at every day's
    close of the real Online Retail replay, every SKU; plus the full model rows (horizons 1..28)
    at the last close of the training data."""
    from feature_store.batch import forecast_rows
    from feature_store.streaming import SeriesState

    panel, close = setup["panel"], setup["close"]
    units, price = panel.units, panel.price
    promo = panel.promo
    first = panel.first_day()
    worst, compared = 0.0, 0
    states = []
    for s in range(units.shape[0]):
        state = SeriesState()
        for d in range(int(first[s]), units.shape[1]):
            state.close_day(
                units[s, d],
                None if price is None else price[s, d],
                None if promo is None else promo[s, d],
            )
            diff = np.max(np.abs(state.close_features() - close[s, d]))
            worst = max(worst, float(diff))
            compared += 1
        states.append(state)
    # Full rows (close + target features) at the last day: batch rows vs streaming rows.
    last = units.shape[1] - 1
    X, series, _ = forecast_rows(panel, close, last, list(range(1, 29)))
    rows = np.concatenate(
        [states[s].feature_rows(panel.dates[last], list(range(1, 29))) for s in np.unique(series)]
    )
    row_diff = float(np.max(np.abs(rows.astype(np.float64) - X.astype(np.float64))))
    return {
        "feature_parity_max_abs_diff": max(worst, row_diff),
        "close_features_compared": compared,
        "close_feature_max_abs_diff": worst,
        "model_rows_max_abs_diff": row_diff,
        "replay": f"online_retail UK, {units.shape[0]} SKUs x every day {panel.dates[0]} .. {panel.dates[-1]}",
    }


# -- the gateway path: day close inside a real Gateway --------------------------------------------
def gateway_day_close(setup: dict, frame: pd.DataFrame) -> dict:
    """Replay the real daily sales as events through a real Gateway holding the bundle; the
    gateway closes each store day itself (see the module docstring for the figures)."""
    import tempfile

    from edge_runtime.config import load_config
    from edge_runtime.gateway import Gateway
    from training.signing_key import public_key_path, signing_key_path

    panel, first = setup["panel"], setup["first_test"]
    by_day = _daily_events(frame)
    state = Path(tempfile.mkdtemp(prefix="decisions-gateway-"))
    env = {
        "SHELFCAST_STORE_ID": STORE,
        "SHELFCAST_STATE_DIR": str(state),
        "SHELFCAST_MQTT_ENABLED": "false",
        "SHELFCAST_BUNDLE": str(setup["bundle"].path),
        "SHELFCAST_MODEL_PUBLIC_KEY": str(public_key_path(signing_key_path())),
        "SHELFCAST_MODEL_LEAD_TIME_DAYS": str(LEAD_TIME_DAYS),
    }
    gw = Gateway(load_config(env=env))
    onnx_ms: list[float] = []
    real_demand = gw.model.scorer.demand

    def timed_demand(X):
        t = time.perf_counter()
        out = real_demand(X)
        onnx_ms.append((time.perf_counter() - t) * 1000)
        return out

    gw.model.scorer.demand = timed_demand  # the benchmark times the real call, nothing else
    close_ms, plain_ms, parity = [], [], 0.0
    n, days = panel.units.shape
    grids = {"central": np.full((n, days), np.nan), "river": np.full((n, days), np.nan)}
    index = {str(d)[:10]: i for i, d in enumerate(panel.dates)}
    skus = [str(k[1]) for k in panel.keys]
    try:
        for day in sorted(by_day):
            # The day's first event alone crosses midnight (the close); the rest is one plain
            # batch of the same day, the baseline a close is compared with.
            closes = gw.counters["day_closes"]
            t = time.perf_counter()
            gw.ingest(by_day[day][:1], "pos")
            close_ms.append((time.perf_counter() - t) * 1000)
            if len(by_day[day]) > 1:
                t = time.perf_counter()
                gw.ingest(by_day[day][1:], "pos")
                plain_ms.append((time.perf_counter() - t) * 1000)
            if gw.counters["day_closes"] == closes:
                close_ms.pop()  # the first day closes nothing
                continue
            c = index[str(gw.forecasts.last_close)]
            if first <= c + 1 < days:
                parity = max(parity, _gateway_parity(gw, setup, c, skus))
                _collect_held_out(gw, c, skus, grids)
        figures = {
            "days_replayed": len(by_day),
            "events": sum(len(v) for v in by_day.values()),
            "day_closes": gw.counters["day_closes"],
            "skus_scored_per_close": len(gw.forecasts.skus),
            "rows_per_onnx_call": len(gw.forecasts.skus) * len(gw.model.horizons),
            "day_close_ingest_ms_median": round(statistics.median(close_ms), 2),
            "day_close_ingest_ms_p95": round(float(np.percentile(close_ms, 95)), 2),
            "plain_ingest_ms_median": round(statistics.median(plain_ms), 2),
            "plain_batch_events_median": statistics.median(len(v) - 1 for v in by_day.values()),
            "onnx_call_ms_median": round(statistics.median(onnx_ms), 2),
            "central_vs_batch_max_abs_diff": parity,
            "policy_errors": gw.counters["policy_errors"],
            "alerts": _alert_counts(gw),
        }
    finally:
        gw.close()
    base = rmsse(panel.units, grids["central"], first)
    river = rmsse(panel.units, grids["river"], first)
    return figures | {
        "held_out_forecasts": int(np.isfinite(grids["central"][:, first:]).sum()),
        "gateway_rmsse_central": round(base, 4),
        "gateway_rmsse_river": round(river, 4),
        "gateway_rmsse_ratio_river_vs_central": round(river / base, 4),
    }


def _daily_events(frame: pd.DataFrame) -> dict[str, list[dict]]:
    """Each day's sale events (one per SKU-day with its real units and price), opened by one
    receipt per SKU that covers all of its sales (the replay is about demand, not stock-outs)."""
    by_day: dict[str, list[dict]] = {}
    total = frame.groupby("sku").units.sum()
    first_day = frame.groupby("sku").date.min()
    for sku, day in first_day.items():
        stamp = f"{day:%Y-%m-%d}T06:00:00+00:00"
        by_day.setdefault(f"{day:%Y-%m-%d}", []).append(
            {"event_id": f"open-{sku}", "store_id": STORE, "sku": str(sku), "type": "receipt",
             "qty": int(total[sku]) + 1000, "event_time": stamp, "source": "wms"}
        )  # fmt: skip
    for sku, day, units, price in zip(frame.sku, frame.date, frame.units, frame.price, strict=True):
        text = f"{day:%Y-%m-%d}"
        by_day.setdefault(text, []).append(
            {"event_id": f"{sku}-{text}", "store_id": STORE, "sku": str(sku), "type": "sale",
             "qty": int(units), "event_time": f"{text}T12:00:00+00:00", "source": "pos",
             "unit_price": float(price)}
        )  # fmt: skip
    return by_day


def _gateway_parity(gw, setup: dict, close: int, skus: list[str]) -> float:
    """Largest |gateway central mean - batch-feature mean| over the SKUs of one close (h=1)."""
    mean, _ = forecasts(setup, close, [1])
    central = gw.model.central
    at = {s: i for i, s in enumerate(skus)}
    batch = np.array([mean[at[s], 0] for s in central.skus])
    diff = np.abs(central.mean[:, 0, 0] - batch)
    return float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0


def _collect_held_out(gw, close: int, skus: list[str], grids: dict) -> None:
    """The gateway's next-day forecasts, central and River-corrected, into the day grids."""
    table, central = gw.forecasts, gw.model.central
    at = {s: i for i, s in enumerate(skus)}
    rows = np.array([at[s] for s in table.skus])
    grids["central"][rows, close + 1] = central.mean[:, 0, 0]
    grids["river"][rows, close + 1] = table.mean[:, 0, 0]


def _alert_counts(gw) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for m in gw.recent_messages(limit=1_000_000):
        kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
    return kinds


def markdown(out: dict) -> str:
    rows = [
        ("theft_precision", out["theft_phantom"]["theft_precision"]),
        ("theft_recall", out["theft_phantom"]["theft_recall"]),
        ("median_detection_delay_min", out["theft_phantom"]["median_detection_delay_min"]),
        ("phantom_precision", out["theft_phantom"]["phantom_precision"]),
        ("phantom_recall", out["theft_phantom"]["phantom_recall"]),
        ("stockout_auc", out["stockout"]["stockout_auc"]),
        ("stockout_brier", out["stockout"]["stockout_brier"]),
        ("online_correction_rmsse_ratio", out["online_correction_rmsse_ratio"]),
        ("score_10k_skus_ms", out["scoring"]["score_10k_skus_ms"]),
        ("feature_parity_max_abs_diff", out["parity"]["feature_parity_max_abs_diff"]),
        ("gateway_day_close_ingest_ms_median", out["gateway"]["day_close_ingest_ms_median"]),
        ("gateway_plain_ingest_ms_median", out["gateway"]["plain_ingest_ms_median"]),
        ("gateway_onnx_call_ms_median", out["gateway"]["onnx_call_ms_median"]),
        ("gateway_central_vs_batch_max_abs_diff", out["gateway"]["central_vs_batch_max_abs_diff"]),
        (
            "gateway_rmsse_ratio_river_vs_central",
            out["gateway"]["gateway_rmsse_ratio_river_vs_central"],
        ),
    ]
    m = out["machine"]
    lines = [
        f"machine: nproc={m['nproc']}, memory={m['memory_gib']} GiB, python {m['python']}",
        "",
        "| figure | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {'null' if v is None else v} |" for k, v in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True, help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="smaller replay for development")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--top-skus", type=int, default=300, help="SKUs of the central model")
    ap.add_argument("--retrain", action="store_true", help="retrain the bundle even if present")
    ap.add_argument("--only-anomaly-model", action="store_true",
                    help="only the anomaly model's effect (theft/phantom at equal volume)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.only_anomaly_model:
        return _only_anomaly_model(args)
    out: dict = {"machine": machine(), "seed": args.seed}
    started = time.perf_counter()
    lines = online_retail_sales()
    days = 7 if args.quick else 28
    print(f"theft/phantom replay ({days} days) ...", flush=True)
    out["theft_phantom"] = theft_and_phantom(lines, "2011-06-01", days, args.seed)
    print("central model and held-out weeks ...", flush=True)
    setup = held_out_setup(60 if args.quick else args.top_skus, args.retrain)
    out["central_model"] = {"source": setup["source"], "model_version": setup["model_version"]}
    print("anomaly model at equal alert volume ...", flush=True)
    out["anomaly_model"] = anomaly_model_effect(
        lines, "2011-06-01", days, args.seed, setup["scorer"]
    )
    print("stock-out quality ...", flush=True)
    out["stockout"] = stockout_quality(setup, args.seed)
    print("online correction ...", flush=True)
    corr = online_correction(setup)
    out["online_correction"] = corr
    out["online_correction_rmsse_ratio"] = corr["ratio_river_level"]
    print("scoring speed ...", flush=True)
    out["scoring"] = scoring_speed(setup)
    out["parity"] = feature_parity(setup)
    print("gateway day close (real Gateway, the same bundle) ...", flush=True)
    out["gateway"] = gateway_day_close(setup, setup["frame"])
    out["seconds"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=float))
    print(json.dumps(out, indent=2, default=float))
    print(markdown(out))
    return 0


def _only_anomaly_model(args: argparse.Namespace) -> int:
    setup = held_out_setup(60 if args.quick else args.top_skus, args.retrain)
    days = 7 if args.quick else 28
    out = {"machine": machine(), "seed": args.seed, "model_version": setup["model_version"],
           "replay": f"online_retail UK 2011-06-01 + {days} days",
           "anomaly_model": anomaly_model_effect(
               online_retail_sales(), "2011-06-01", days, args.seed, setup["scorer"])}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=float))
    print(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
