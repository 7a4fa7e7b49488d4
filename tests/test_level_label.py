"""The level's label, one rule everywhere: a day counts at most ``LEVEL_LABEL_CLIP`` of its
series' scales in what the mean model learns centrally and in River's correction at the edge
(real SQLite, real ONNX Runtime); the quantile models and the buffer see the whole day."""

from __future__ import annotations

import numpy as np

from edge_runtime.forecast.daily_sales import DayUnits
from edge_runtime.gateway import Gateway
from feature_store.spec import LEVEL_LABEL_CLIP, SCALE_FEATURE, index, names
from models.demand import DemandModel, _fit_here
from tests.test_gateway_model import config, demand_bundle, ev


def test_the_central_mean_model_learns_a_spike_clipped_the_quantiles_whole():
    rng = np.random.default_rng(0)
    X = rng.random((400, len(names()))).astype(np.float32)
    X[:, index(SCALE_FEATURE)] = 1.5  # scale 2 units with the offset
    y = rng.poisson(2.0, 400).astype(float)
    y[7] = 500.0  # a wholesale order: 250 scales
    seen = {}

    def fit(estimator, Xn, labels, weight):
        seen[estimator.objective if estimator.objective != "quantile" else estimator.alpha] = labels
        return _fit_here(estimator, Xn, labels, weight)

    DemandModel(n_estimators=5, num_leaves=4).fit(X, y, fit=fit)
    assert seen["tweedie"][7] == LEVEL_LABEL_CLIP
    assert seen[0.5][7] == seen[0.91][7] == 250.0
    assert np.array_equal(seen["tweedie"][y < 10], y[y < 10] / 2.0)  # ordinary days untouched


def test_rivers_correction_learns_a_spike_as_the_central_model_does(tmp_path):
    """Six ordinary days then 30 or 3,000 units, on a SKU whose scale is about 3.5, teach
    River's correction the same: both are above the clip (unclipped, 3,000 units would pin the
    factor at its upper bound)."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    factors = []
    for i, spike in enumerate((30.0, 3000.0)):
        with Gateway(config(tmp_path / str(i), bundle)) as gw:
            for d in range(1, 6):
                gw.ingest([ev(f"a{d}", "A", "sale", 3, d)], "pos")
            model = gw.model
            day = model.central.first_close + np.timedelta64(1, "D")
            for units in [3.0] * 6 + [spike]:
                assert model.learn([(day, DayUnits({"A": units}))]) == 1
            factors.append(model.correction.predict_one("A", 1.0))
    assert factors[0] == factors[1]
    assert 1.0 < factors[0] < model.correction.bounds[1]
