"""The gateway's own regularised incomplete beta against SciPy's ``betainc`` (the reference the
negative-binomial decisions were built on), over the arguments they use and well beyond."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from edge_runtime.forecast import incomplete_beta
from edge_runtime.forecast.incomplete_beta import regularized_incomplete_beta

RTOL, ATOL = 1e-9, 1e-12


def grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a from 1e-4 to 1e6, whole b from 1 to 1e4, x across (0, 1) and close to both ends."""
    a = np.logspace(-4, 6, 41)
    b = np.unique(np.round(np.logspace(0, 4, 17)))
    ends = np.logspace(-12, -0.5, 30)
    x = np.concatenate([ends, 1.0 - ends, np.linspace(0.01, 0.99, 40)])
    return np.meshgrid(a, b, x, indexing="ij")


def test_agrees_with_scipy_over_a_wide_grid():
    a, b, x = grid()
    np.testing.assert_allclose(
        regularized_incomplete_beta(a, b, x), special.betainc(a, b, x), rtol=RTOL, atol=ATOL
    )


def test_agrees_with_scipy_where_the_stockout_probability_takes_it():
    """``I_p(r, k)`` with ``r = m**2 / (v - m)``, ``p = r / (r + m)``: a variance barely above
    the mean (``r`` up to 1e10) and stock up to 1e4 units."""
    m, excess, k = np.meshgrid(
        np.logspace(-6, 4, 21), np.logspace(-6, 3, 19), np.round(np.logspace(0, 4, 13)),
        indexing="ij",
    )  # fmt: skip
    r = m / excess
    p = r / (r + m)
    got = regularized_incomplete_beta(r, k, p)
    np.testing.assert_allclose(got, special.betainc(r, k, p), rtol=RTOL, atol=ATOL)


def test_one_by_one_and_in_arrays_give_the_same_values(monkeypatch):
    a, b, x = (v.ravel()[::37] for v in grid())
    in_arrays = regularized_incomplete_beta(a, b, x)
    monkeypatch.setattr(incomplete_beta, "ELEMENTWISE_UP_TO", a.size)
    np.testing.assert_allclose(regularized_incomplete_beta(a, b, x), in_arrays, rtol=1e-10)


def test_the_last_rows_finished_one_by_one_end_where_the_arrays_would(monkeypatch):
    """The array path hands its last few unconverged rows to plain floats: the very same
    values, to the bit (decisions compare these probabilities with thresholds)."""
    a, b, x = grid()
    with_tail = regularized_incomplete_beta(a, b, x)
    monkeypatch.setattr(incomplete_beta, "ELEMENTWISE_UP_TO", 0)  # arrays to the last row
    assert np.array_equal(regularized_incomplete_beta(a, b, x), with_tail, equal_nan=True)


def test_the_fraction_converges_far_within_its_allowance(monkeypatch):
    """Even at the grid's corners (a = 1e6 against b = 1e4 or 1, x at the symmetry point) the
    fraction has converged within 400 terms, well inside ``max_steps``."""
    a, b, x = grid()
    full = regularized_incomplete_beta(a, b, x)
    assert incomplete_beta.max_steps(1e6) > 10 * 400
    monkeypatch.setattr(
        incomplete_beta, "max_steps", lambda larger: np.full(np.shape(larger), 400.0)
    )
    np.testing.assert_allclose(regularized_incomplete_beta(a, b, x), full, rtol=1e-14)
    corners = np.array([1e6, 1e6, 1e6, 1e-4]), np.array([1.0, 1e4, 5.0, 1e4])
    at_switch = (corners[0] + 1) / (corners[0] + corners[1] + 2)
    for xs in (at_switch * (1 - 1e-9), at_switch, np.minimum(at_switch * (1 + 1e-9), 1.0)):
        np.testing.assert_allclose(
            regularized_incomplete_beta(*corners, xs), special.betainc(*corners, xs),
            rtol=RTOL, atol=ATOL,
        )  # fmt: skip


def test_ends_nan_and_shapes():
    got = regularized_incomplete_beta(2.0, np.array([[1.0], [3.0]]), np.array([0.0, 1.0, np.nan]))
    assert got.shape == (2, 3)
    assert got[:, :2].tolist() == [[0.0, 1.0], [0.0, 1.0]] and np.isnan(got[:, 2]).all()
    assert np.isnan(regularized_incomplete_beta(np.full(100, np.nan), 1.0, 0.5)).all()


@pytest.mark.parametrize(
    ("a", "b", "x", "message"),
    [
        (-1.0, 1.0, 0.5, "a must be finite and > 0, got -1.0 at 0"),
        (1.0, np.array([1.0, 0.0]), 0.5, "b must be finite and > 0, got 0.0 at 1"),
        (np.inf, 1.0, 0.5, "a must be finite and > 0, got inf"),
        (1.0, 1.0, 1.5, r"x must be in \[0, 1\], got 1.5"),
    ],
)
def test_arguments_out_of_range_are_named(a, b, x, message):
    with pytest.raises(ValueError, match=message):
        regularized_incomplete_beta(a, b, x)
