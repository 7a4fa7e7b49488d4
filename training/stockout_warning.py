"""The 4-hour stock-out warning model: training rows, the classifier, baselines and scores.

A row is a series in stock at a complete trading hour ``h`` (:data:`feature_store.intraday.
WARNING_HOURS`); its label is 1 when the shelf is out in any of the hours ``h+1..h+4``. Features
come from :mod:`feature_store.intraday` (the gateway computes the same ones live). Training days
come strictly before test days, so no row learns from its own future.

>>> import numpy as np
>>> reliability(np.array([0.1, 0.1, 0.9, 0.9]), np.array([0, 0, 1, 0]), bins=2)
[{'bin': '0.0-0.5', 'n': 2, 'mean_p': 0.1, 'observed': 0.0}, {'bin': '0.5-1.0', 'n': 2, 'mean_p': 0.9, 'observed': 0.5}]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from feature_store.intraday import (
    FEATURES,
    HISTORY_DAYS,
    WARNING_HOURS,
    first_out_in,
    label_4h,
    today_features,
)

WARNING_MODEL = "stockout_4h"  # the model's name in a bundle (the gateway's MODEL)
PARAMS = dict(
    n_estimators=300,
    learning_rate=0.06,
    num_leaves=63,
    min_child_samples=100,
    subsample=0.7,
    subsample_freq=1,
    colsample_bytree=0.8,
    verbose=-1,
)


@dataclass
class WarningRows:
    """Feature rows with their label, series, day, hour, first-out lead and streak rule.

    >>> rows = WarningRows(X=np.zeros((3, 2)), y=np.array([0, 1, 0]), series=np.array([0, 0, 1]),
    ...                    day=np.full(3, 5), hour=np.array([9, 10, 11]), lead=np.zeros(3))
    >>> rows.take(rows.y == 1).hour.tolist(), rows.take(rows.series == 0).X.shape
    ([10], (2, 2))
    """

    X: np.ndarray
    y: np.ndarray
    series: np.ndarray
    day: np.ndarray
    hour: np.ndarray
    lead: np.ndarray

    def take(self, mask: np.ndarray) -> WarningRows:
        return WarningRows(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def weekdays(panel) -> np.ndarray:
    """Weekday (Monday 0) of each day of the panel."""
    return (panel.dates.astype("datetime64[D]").astype(np.int64) + 3) % 7


def warning_rows(panel, progress=None) -> WarningRows:
    """Every in-stock (series, day >= HISTORY_DAYS, warning hour) row of a FreshRetailNet
    :class:`training.freshretailnet.HourlyPanel`, each day's rows computed as a gateway does:
    :func:`feature_store.intraday.today_features` on the window of that day and the 14 before
    (stores pooled apart), so no row sees a later day."""
    wd = weekdays(panel)
    hours = list(WARNING_HOURS)
    parts = []
    for d in range(HISTORY_DAYS, panel.n_days):
        win = slice(d - HISTORY_DAYS, d + 1)
        X = today_features(
            panel.sales[:, win],
            panel.out[:, win],
            panel.discount[:, win],
            panel.activity[:, win],
            wd[win],
            hours,
            panel.store,
        )
        today = panel.out[:, d : d + 1]
        for i, h in enumerate(hours):
            keep = today[:, 0, h] == 0
            n = int(keep.sum())
            parts.append(
                (
                    X[i][keep],
                    label_4h(today, h)[keep, 0],
                    np.flatnonzero(keep),
                    np.full(n, d),
                    np.full(n, h),
                    first_out_in(today, h)[keep, 0],
                )
            )
        if progress is not None:
            progress(d)
    return WarningRows(*(np.concatenate(p) for p in zip(*parts, strict=True)))


def fit(rows: WarningRows, n_jobs: int = 1, **params):
    """LightGBM classifier on the rows (``params`` override :data:`PARAMS`)."""
    import lightgbm as lgb

    model = lgb.LGBMClassifier(**{**PARAMS, "n_jobs": n_jobs, **params})
    return model.fit(rows.X, rows.y)


def baseline_scores(rows: WarningRows) -> dict[str, np.ndarray]:
    """Scores of the simple baselines on the same rows (higher = more likely out):
    ``hour_of_week_frequency``: the SKU's stock-out frequency in the next 4 hours on the same
    weekday and hour over past weeks (all days when no same weekday yet); ``zero_sales_streak``:
    hours without a sale while in stock (the shelf-check rule)."""
    col = {n: i for i, n in enumerate(FEATURES)}
    same = rows.X[:, col["same_weekday_out_next"]]
    freq = np.where(np.isnan(same), rows.X[:, col["hist_out_next_mean"]], same)
    return {
        "hour_of_week_frequency": freq,
        "stockout_frequency_14d": rows.X[:, col["hist_out_next_mean"]],
        "zero_sales_streak": rows.X[:, col["hours_since_sale"]],
    }


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    """Calibration table: per probability bin, rows, mean predicted and observed frequency."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        m = idx == b
        if m.any():
            table.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": int(m.sum()),
                    "mean_p": round(float(p[m].mean()), 4),
                    "observed": round(float(y[m].mean()), 4),
                }
            )
    return table


def ranking_scores(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC and PR AUC (average precision) of a score against 0/1 labels."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    score = np.nan_to_num(np.asarray(score, np.float64), nan=-1.0)
    return {
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
    }


def alert_scores(rows: WarningRows, p: np.ndarray, threshold: float, stores: np.ndarray) -> dict:
    """Precision and recall at ``threshold``; alerts as the gateway raises them (once per
    episode: a series-day alerts at its first hour over the threshold, the rest of that day is
    the same episode); lead = hours from that first alert to the first stock-out hour after it,
    for alerts that came true; alerts per store-day over the store-days scored (which depends on
    how many of a store's SKUs the sample holds: ``skus_per_store_day``) and per SKU-day."""
    alert = p >= threshold
    y = rows.y.astype(bool)
    tp = (alert & y).sum()
    key = rows.series.astype(np.int64) * 1000 + rows.day
    order = np.lexsort((rows.hour, key))
    k, a = key[order], alert[order]
    first = np.zeros(len(k), bool)
    idx = np.flatnonzero(a)
    first_idx = idx[np.r_[True, k[idx][1:] != k[idx][:-1]]] if len(idx) else idx
    first[first_idx] = True
    episodes = first_idx
    true = rows.y[order][episodes].astype(bool)
    lead = rows.lead[order][episodes][true]
    store_days = len(np.unique(stores[rows.series].astype(np.int64) * 1000 + rows.day))
    return {
        "threshold": float(threshold),
        "precision": float(tp / max(alert.sum(), 1)),
        "recall": float(tp / max(y.sum(), 1)),
        "alerts": len(episodes),
        "alerts_true": int(true.sum()),
        "alerts_per_store_day": float(len(episodes) / max(store_days, 1)),
        "alerts_per_sku_day": float(len(episodes) / max(len(np.unique(key)), 1)),
        "skus_per_store_day": float(len(np.unique(key)) / max(store_days, 1)),
        "median_lead_hours": float(np.median(lead)) if len(lead) else None,
    }


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability threshold with the best F1 on (training or validation) rows."""
    from sklearn.metrics import precision_recall_curve

    prec, rec, thr = precision_recall_curve(y, p)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    return float(thr[int(np.argmax(f1))])


def to_onnx(model, n_features: int) -> bytes:
    """The classifier as an ONNX graph whose ``probabilities`` output is ``[N, 2]``."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    from models.demand import float32_thresholds

    # ONNX stores split thresholds as float32: snap them so no split flips after export.
    onx = convert_lightgbm(
        float32_thresholds(model.booster_),
        initial_types=[("features", FloatTensorType([None, n_features]))],
        target_opset=15,
        zipmap=False,
    )
    return onx.SerializeToString()


def onnx_probability(model_bytes: bytes, X: np.ndarray) -> np.ndarray:
    """P(out within 4 hours) from the ONNX graph under ONNX Runtime."""
    from models.onnx_session import open_session

    sess = open_session(model_bytes)
    prob = sess.get_outputs()[1].name  # the label output is not needed
    (out,) = sess.run([prob], {"features": np.ascontiguousarray(X, np.float32)})
    return np.asarray(out)[:, 1]


def bundle_with_warning(
    base: str | Path,
    out: str | Path,
    model_bytes: bytes,
    rows: np.ndarray,
    threshold: float,
    sign,
    about: dict | None = None,
) -> Path:
    """A gateway bundle: the demand and anomaly models of the verified bundle ``base`` plus the
    4-hour warning model ``stockout_4h`` (its reference rows scored here, its ``threshold`` and
    ``about`` in ``metadata.json``), under this checkout's feature spec, signed by ``sign``."""
    from feature_store.spec import FEATURE_STORE_VERSION, spec_dict
    from models.bundle import REFERENCE, load_bundle, write_bundle
    from models.bundle_reference import build_reference

    old = load_bundle(base, FEATURE_STORE_VERSION)
    models = {name: old.model_bytes(name) for name in old.models}
    models[WARNING_MODEL] = model_bytes
    reference = json.loads((old.path / REFERENCE).read_text(encoding="utf-8"))
    new = build_reference({WARNING_MODEL: model_bytes}, {WARNING_MODEL: rows})
    reference["models"][WARNING_MODEL] = new["models"][WARNING_MODEL]
    meta = {k: v for k, v in old.metadata.items() if k not in ("models", "bundle_format")}
    meta[WARNING_MODEL] = {
        "threshold": float(threshold),
        "features": list(FEATURES),
        **(about or {}),
    }
    return write_bundle(out, models, spec_dict(), meta, reference=reference, sign=sign)
