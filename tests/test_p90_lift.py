"""The P90 is lifted by what its model misses on the last steps before the cutoff, never
lowered, and the lift reaches the ONNX graph: a demand model trained with its rows' target
steps covers the days after a level shift that its own training rows did not show."""

from __future__ import annotations

import numpy as np
import pytest

from feature_store.spec import index, names
from models.demand import DemandModel, scaled_leaves
from models.onnx_export import max_abs_diff, run_onnx
from models.p90_lift import HELD_OUT_HORIZONS, lift_needed

WIDTH = len(names())
HORIZON = 7


def rows(shift: float, n_steps: int = 400, seed: int = 0):
    """Feature rows of a synthetic series family whose units, on the target steps after the
    last ``HELD_OUT_HORIZONS`` horizons began, are ``shift`` times what the features say."""
    rng = np.random.default_rng(seed)
    n = 6000
    X = rng.random((n, WIDTH)).astype("float32")
    X[:, index("mean_91")] = 10.0
    h = rng.integers(1, HORIZON + 1, n)
    X[:, index("horizon")] = h
    target = rng.integers(h, n_steps)
    level = 10.0 * (1 + X[:, 0])
    late = target > n_steps - 1 - HELD_OUT_HORIZONS * HORIZON
    y = rng.poisson(np.where(late, shift, 1.0) * level).astype(float)
    return X, y, target, n_steps - 1


def test_lift_needed_is_never_below_one_and_reaches_the_coverage():
    y = np.arange(100, dtype=float)
    assert lift_needed(y, np.full(100, 200.0)) == 1.0  # over-covered: no lowering
    c = lift_needed(y, np.full(100, 45.0))
    assert np.mean(y <= c * 45.0) >= 0.9 and np.mean(y <= (c - 0.03) * 45.0) < 0.9


def test_scaled_leaves_scale_the_prediction():
    X, y, _, _ = rows(1.0)
    model = DemandModel(n_estimators=15, num_leaves=7).fit(X, y)
    before = model.boosters["p90"].predict(X[:50])
    after = scaled_leaves(model.boosters["p90"], 1.3).predict(X[:50])
    np.testing.assert_allclose(after, 1.3 * before, rtol=1e-9)


@pytest.fixture(scope="module")
def shifted():
    X, y, target, cutoff = rows(1.4)
    plain = DemandModel(n_estimators=30, num_leaves=7).fit(X, y)
    lifted = DemandModel(n_estimators=30, num_leaves=7).fit(X, y, target=target, cutoff=cutoff)
    return X, y, target, cutoff, plain, lifted


def test_a_level_shift_before_the_cutoff_lifts_the_p90(shifted):
    X, y, target, cutoff, plain, lifted = shifted
    assert plain.p90_lift == 1.0
    assert 1.1 < lifted.p90_lift <= 2.0
    raw_plain, raw_lifted = plain.predict_raw(X[:200]), lifted.predict_raw(X[:200])
    np.testing.assert_allclose(raw_lifted["p90"], lifted.p90_lift * raw_plain["p90"], rtol=1e-6)
    np.testing.assert_allclose(raw_lifted["mean"], raw_plain["mean"])  # only the P90 moves
    late = target > cutoff - HELD_OUT_HORIZONS * HORIZON
    # The shifted steps were trained on, so both cover them in-sample; the plain P90 less so.
    assert np.mean(y[late] <= lifted.predict(X[late])["p90"]) > np.mean(
        y[late] <= plain.predict(X[late])["p90"]
    )


def test_the_lift_is_in_the_onnx_graph(shifted):
    X, _, _, _, _, lifted = shifted
    native = lifted.predict(X[:500])
    diff = max_abs_diff(native, run_onnx(lifted.to_onnx(WIDTH), X[:500]))
    assert diff <= 1e-4 * max(1.0, float(native["p90"].max()))


def test_no_shift_no_lift_and_too_few_rows_no_lift():
    X, y, target, cutoff = rows(0.7)  # the last steps sell less: the P90 covers them
    model = DemandModel(n_estimators=30, num_leaves=7).fit(X, y, target=target, cutoff=cutoff)
    assert model.p90_lift == 1.0
    X, y, target, cutoff = rows(1.4)
    few = DemandModel(n_estimators=10, num_leaves=7).fit(
        X[:300], y[:300], target=target[:300], cutoff=cutoff
    )
    assert few.p90_lift == 1.0
