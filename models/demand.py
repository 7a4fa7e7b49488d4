"""The global demand model: three small LightGBM models on the feature-store matrix, giving the
mean (Tweedie), the median (P50) and the 90th percentile (P90) of a day's units, exported as one
ONNX graph with outputs ``mean``, ``p50``, ``p90``.

>>> import numpy as np
>>> from feature_store.spec import names
>>> rng = np.random.default_rng(0)
>>> X = rng.random((400, len(names()))).astype("float32")
>>> y = rng.poisson(3 * X[:, 0] + 1).astype(float)
>>> m = DemandModel(n_estimators=20, num_leaves=7).fit(X, y)
>>> out = m.predict(X[:5])
>>> sorted(out), bool((out["p90"] >= out["p50"]).all())
(['mean', 'p50', 'p90'], True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from feature_store.spec import FEATURES, SCALE_FEATURE, SCALE_OFFSET, index
from models.p90_lift import (
    HELD_OUT_HORIZONS,
    MIN_FIT_SHARE,
    MIN_HELD_OUT_ROWS,
    held_out_split,
    lift_needed,
)

OUTPUTS = ("mean", "p50", "p90")
# The quantile the P90 model is trained on: a little above 0.9, because a quantile model covers
# fewer of the days it never saw than of its training rows (it fits their tails).
P90_TRAINING_QUANTILE = 0.91
SCALE_COL = index(SCALE_FEATURE)
HORIZON_COL = index("horizon")
UNIT_COLS = np.array([i for i, f in enumerate(FEATURES) if f.in_units])
INPUT_NAME = "features"


def _snap(threshold: str) -> str:
    t = float(threshold)
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return repr(float(f))


def float32_thresholds(booster):
    """The booster with every split threshold moved down to the nearest float32 at or below it.

    For float32 inputs ``x <= t`` and ``x <= snapped(t)`` agree, so native predictions do not
    change, while ONNX (which stores thresholds as float32) now makes the very same splits: no
    split flips after export (design.md pitfalls).
    """
    return _rewritten(booster, "threshold=", _snap)


def scaled_leaves(booster, factor: float):
    """The booster with every leaf value times ``factor``: its predictions times ``factor``
    (a tree's output is one leaf's value, the model's the sum over trees), in ONNX too."""
    return _rewritten(booster, "leaf_value=", lambda v: repr(float(v) * factor))


def _rewritten(booster, key: str, value: Callable[[str], str]):
    """The booster with each value of every ``key`` line of its model text replaced by
    ``value(v)``."""
    import lightgbm as lgb

    # tree_sizes holds byte offsets that no longer hold once values change; without it
    # LightGBM parses the trees in sequence.
    lines = [
        ln for ln in booster.model_to_string().splitlines() if not ln.startswith("tree_sizes=")
    ]
    for i, line in enumerate(lines):
        if line.startswith(key):
            lines[i] = key + " ".join(value(v) for v in line[len(key) :].split())
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def _fit_here(estimator, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None):
    return estimator.fit(X, y, sample_weight=weight).booster_


@dataclass
class DemandModel:
    """Mean, P50 and P90 of daily units from feature rows; small enough for float32 ONNX parity
    (design.md pitfalls: keep trees few and leaves <= 63).

    >>> from feature_store.spec import SCALE_FEATURE, index, names
    >>> X = np.zeros((2, len(names())), np.float32)
    >>> X[:, index("lag_1")], X[:, index(SCALE_FEATURE)] = [4.0, 40.0], [2.0, 20.0]
    >>> Xn, scale = DemandModel.normalize(X)  # what every tree sees: units over the series' scale
    >>> Xn[:, index("lag_1")].astype(float).round(3).tolist(), scale.tolist()
    ([1.6, 1.951], [2.5, 20.5])
    """

    n_estimators: int = 200
    num_leaves: int = 31
    learning_rate: float = 0.05
    min_child_samples: int = 50
    tweedie_variance_power: float = 1.2
    mean_objective: str = "tweedie"  # or "regression" (L2, what RMSSE measures)
    seed: int = 0
    # The factor the P90 model's leaves were raised by (models/p90_lift.py); 1 when not measured.
    p90_lift: float = 1.0
    # One thread: on a shared 2-core box LightGBM's threads fight and run ~6x slower.
    n_jobs: int = 1
    boosters: dict = field(default_factory=dict, repr=False)

    def params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "boosters"}

    def _lgbm(self, objective: str, **extra):
        import lightgbm as lgb

        return lgb.LGBMRegressor(
            objective=objective,
            n_estimators=self.n_estimators,
            num_leaves=self.num_leaves,
            learning_rate=self.learning_rate,
            min_child_samples=self.min_child_samples,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            verbose=-1,
            **extra,
        )

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        mean_weight: np.ndarray | None = None,
        quantile_weight: np.ndarray | None = None,
        fit: Callable | None = None,
        target: np.ndarray | None = None,
        cutoff: int | None = None,
    ) -> DemandModel:
        """Fit the three models on a float32 feature matrix and non-negative units; optional
        per-row loss weights for the mean model and for the two quantile models.

        ``fit(estimator, X, y, weight)`` returns the fitted booster of an unfitted LightGBM
        estimator: where each model learns (e.g. ``training.distributed_fit.DaskFit`` on a
        cluster's workers); by default in this process.

        ``target`` (each row's target step) and ``cutoff`` (the last step the rows may see):
        the P90 is then lifted to cover 90 % of days it never saw, as measured on the last
        steps before the cutoff (:mod:`models.p90_lift`; one more P90 fit). Rows whose mean
        weight is 0 (censored, or of a series that cannot be scored) do not count there."""
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if (y < 0).any():
            raise ValueError("units must be non-negative for the Tweedie mean model")
        specs = {
            "mean": (
                self.mean_objective,
                {"tweedie_variance_power": self.tweedie_variance_power}
                if self.mean_objective == "tweedie"
                else {},
            ),
            "p50": ("quantile", {"alpha": 0.5}),
            "p90": ("quantile", {"alpha": P90_TRAINING_QUANTILE}),
        }
        self.boosters = {}
        Xn, scale = self.normalize(X)
        weights = {"mean": mean_weight, "p50": quantile_weight, "p90": quantile_weight}
        for name, (objective, extra) in specs.items():
            booster = (fit or _fit_here)(
                self._lgbm(objective, **extra), Xn, y / scale, weights[name]
            )
            self.boosters[name] = float32_thresholds(booster)
        self.p90_lift = 1.0
        if target is not None and cutoff is not None:
            counted = None if mean_weight is None else np.asarray(mean_weight) > 0
            horizon = np.asarray(X[:, HORIZON_COL], dtype=np.int64)
            lift = self._measure_p90_lift(
                Xn, scale, y, horizon, target, cutoff, counted, quantile_weight, fit
            )
            if lift > 1.0:
                self.boosters["p90"] = scaled_leaves(self.boosters["p90"], lift)
                self.p90_lift = lift
        return self

    def _measure_p90_lift(
        self, Xn, scale, y, horizon, target, cutoff, counted, weight, fit
    ) -> float:
        """The lift of :mod:`models.p90_lift` on the rows ``fit`` already normalised: 1 when
        the rows are too few to measure it."""
        held_out = HELD_OUT_HORIZONS * int(horizon.max()) if len(horizon) else 0
        train, held = held_out_split(np.asarray(target), horizon, int(cutoff), held_out)
        if counted is not None:
            held &= counted
        if held.sum() < MIN_HELD_OUT_ROWS or train.sum() < MIN_FIT_SHARE * len(y):
            return 1.0
        booster = (fit or _fit_here)(
            self._lgbm("quantile", alpha=P90_TRAINING_QUANTILE),
            Xn[train],
            y[train] / scale[train],
            None if weight is None else np.asarray(weight)[train],
        )
        p90 = np.maximum(booster.predict(Xn[held], num_threads=self.n_jobs) * scale[held], 0.0)
        return lift_needed(y[held], p90)

    def predict_raw(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Each model's own prediction, before the ordering rule (what ONNX reproduces per tree)."""
        Xn, scale = self.normalize(X)
        return {
            k: b.predict(Xn, num_threads=self.n_jobs).astype(np.float64) * scale
            for k, b in self.boosters.items()
        }

    @staticmethod
    def normalize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features in units of demand divided by the series' scale, and that scale.

        One global model then learns shapes, not volumes, and every series weighs alike in the
        loss, as in RMSSE. All arithmetic is float32, exactly as in the ONNX graph.
        """
        X = np.asarray(X, dtype=np.float32)
        scale = X[:, SCALE_COL] + np.float32(SCALE_OFFSET)  # float32, as in the ONNX graph
        Xn = X.copy()
        Xn[:, UNIT_COLS] = X[:, UNIT_COLS] / scale[:, None]
        return Xn, scale.astype(np.float64)

    @staticmethod
    def scale(X: np.ndarray) -> np.ndarray:
        """Each row's series scale (what :meth:`normalize` divides by), as float64."""
        X = np.asarray(X, dtype=np.float32)
        return (X[:, SCALE_COL] + np.float32(SCALE_OFFSET)).astype(np.float64)

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Mean, P50, P90 with the same rules as the ONNX graph: clipped at 0, P90 >= P50."""
        raw = self.predict_raw(X)
        p50 = np.maximum(raw["p50"], 0.0)
        return {
            "mean": np.maximum(raw["mean"], 0.0),
            "p50": p50,
            "p90": np.maximum(raw["p90"], p50),
        }

    def to_onnx(self, n_features: int) -> bytes:
        """One ONNX graph: input ``features`` float32 [N, n_features]; outputs mean, p50, p90 [N, 1]."""
        from models.onnx_export import lightgbm_graph

        return lightgbm_graph(
            self.boosters, n_features, INPUT_NAME, SCALE_COL, SCALE_OFFSET, UNIT_COLS.tolist()
        )
