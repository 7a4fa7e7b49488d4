"""Sessions open without graph optimizations (``models.onnx_session``) and still compute what a
fully optimized session computes, to the bit, on both kinds of model a bundle ships: a small
LightGBM demand model and an IsolationForest anomaly model, trained here and exported as
training exports them."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from feature_store.spec import names
from models.anomaly import AnomalyModel
from models.demand import DemandModel
from models.onnx_session import open_session

WIDTH = len(names())  # the demand model's input: the feature spec


def optimized_session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.gamma(1.5, 4.0, size=(3000, WIDTH))
    x[::7] = 0.0  # dormant SKUs: all-zero rows
    x[:, 0] = np.round(x[:, 0])
    return x.astype(np.float32)


def _models(rows: np.ndarray) -> dict[str, bytes]:
    y = np.maximum(rows[:, 0] * 0.7 + rows[:, 1] * 0.2, 0.0)
    demand = DemandModel(n_estimators=20, num_leaves=7, min_child_samples=10).fit(rows, y)
    anomaly = AnomalyModel(n_estimators=30).fit(rows)
    return {"demand": demand.to_onnx(WIDTH), "anomaly": anomaly.to_onnx(WIDTH)}


def test_unoptimized_sessions_compute_what_optimized_ones_do(rows):
    for name, model in _models(rows).items():
        ours, reference = open_session(model), optimized_session(model)
        assert ours.get_session_options().graph_optimization_level == (
            ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        feed = {ours.get_inputs()[0].name: rows}
        for k, (a, b) in enumerate(
            zip(ours.run(None, feed), reference.run(None, feed), strict=True)
        ):
            assert np.array_equal(a, b), f"{name} output {k} differs without graph optimizations"
