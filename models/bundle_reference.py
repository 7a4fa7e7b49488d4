"""The reference set a bundle ships: a few feature rows per model and the outputs training got.

Digests and a signature say a bundle is whole and whose it is, not that its models compute
anything sensible. Training scores a handful of real feature rows with each exported model and
stores rows and outputs in ``reference.json``; the gateway scores the same rows in its own ONNX
Runtime before it installs the bundle and refuses it when an output is not finite, when a demand
output is negative or above a plausible ceiling, or when an output differs from training's beyond
:data:`RTOL` / :data:`ATOL`. Training applies the same output rules before it writes a bundle, so
one definition holds on both sides.

>>> import numpy as np
>>> rows = np.array([[1.0, 2.0]], dtype=np.float32)
>>> check_outputs("demand", {"mean": np.array([[1.5]])}, max_units=100.0)
>>> check_outputs("demand", {"mean": np.array([[-1.0]])}, max_units=100.0)
Traceback (most recent call last):
...
models.bundle.BundleError: demand.onnx output 'mean' is -1 on reference row 0: demand cannot be negative
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.bundle import REFERENCE, BundleError
from models.onnx_session import open_session

FORMAT = 1
# Relative and absolute tolerance against training's outputs. ONNX Runtime on the same graph is
# deterministic on one CPU; these leave room for another ORT build or CPU (float32 sums in
# another order) while catching a swapped or mis-exported model.
RTOL = 1e-3
ATOL = 1e-3
# Outputs in units of demand: never negative, never above the ceiling.
UNIT_MODELS = frozenset({"demand"})
# A store selling more than this many units of one SKU in one day is not plausible; the gateway
# can state its own bound ([model] max_daily_units).
DEFAULT_MAX_DAILY_UNITS = 100_000.0
MAX_ROWS = 64  # enough to exercise the trees' branches, small enough to read in the file


def score_rows(sess: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of ``sess`` on ``rows`` as float64, one row per input row."""
    x = np.ascontiguousarray(rows, dtype=np.float32)
    values = sess.run(None, {sess.get_inputs()[0].name: x})
    return {
        out.name: np.asarray(v, dtype=np.float64).reshape(len(x), -1)
        for out, v in zip(sess.get_outputs(), values, strict=True)
    }


def check_outputs(model: str, outputs: dict[str, np.ndarray], max_units: float) -> None:
    """``BundleError`` at the first output that is not finite, or (for a model in units of
    demand) negative or above ``max_units``."""
    for name, values in outputs.items():
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise BundleError(
                f"{model}.onnx output {name!r} is {values[bad][0]} on reference row {row}: "
                "outputs must be finite"
            )
        if model not in UNIT_MODELS:
            continue
        for test, rule in (
            (values < 0, "demand cannot be negative"),
            (values > max_units, f"above the plausible ceiling of {max_units:g} units a day"),
        ):
            if test.any():
                row = int(np.argwhere(test)[0][0])
                raise BundleError(
                    f"{model}.onnx output {name!r} is {values[test][0]:g} on reference row "
                    f"{row}: {rule}"
                )


def pick_rows(rows: np.ndarray, limit: int = MAX_ROWS) -> np.ndarray:
    """Up to ``limit`` rows spread evenly over ``rows`` (deterministic)."""
    rows = np.asarray(rows, dtype=np.float32)
    if len(rows) <= limit:
        return rows
    return rows[np.linspace(0, len(rows) - 1, limit).round().astype(int)]


def build_reference(
    onnx_models: dict[str, bytes],
    rows: dict[str, np.ndarray],
    max_units: float = DEFAULT_MAX_DAILY_UNITS,
) -> dict:
    """The ``reference.json`` content: ``rows[name]`` scored by every model in ONNX Runtime.

    Raises ``BundleError`` when a model has no rows or its outputs break the output rules, so
    training never ships what a gateway would refuse.
    """
    models = {}
    for name, data in onnx_models.items():
        if name not in rows or len(rows[name]) == 0:
            raise BundleError(f"no reference rows for model {name!r}")
        x = pick_rows(rows[name])
        outputs = score_rows(open_session(data), x)
        check_outputs(name, outputs, max_units)
        models[name] = {
            "inputs": x.astype(np.float64).tolist(),
            "outputs": {k: v.tolist() for k, v in outputs.items()},
        }
    return {"format": FORMAT, "models": models}


def _expected(reference: dict, model: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    entry = reference.get("models", {}).get(model) if isinstance(reference, dict) else None
    if not isinstance(entry, dict) or not entry.get("inputs"):
        raise BundleError(f"{REFERENCE} has no reference rows for model {model!r}")
    try:
        x = np.asarray(entry["inputs"], dtype=np.float32)
        want = {k: np.asarray(v, dtype=np.float64) for k, v in entry["outputs"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BundleError(f"{REFERENCE}: rows or outputs of {model!r} are malformed") from None
    if x.ndim != 2:
        raise BundleError(f"{REFERENCE}: rows of {model!r} are not a table")
    return x, want


def check_reference(model: str, sess: Any, reference: dict, max_units: float) -> None:
    """Score ``model``'s reference rows with ``sess``; ``BundleError`` says what is off."""
    x, want = _expected(reference, model)
    width = sess.get_inputs()[0].shape[-1]
    if isinstance(width, int) and x.shape[1] != width:
        raise BundleError(
            f"{REFERENCE}: rows of {model!r} have {x.shape[1]} columns, the model takes {width}"
        )
    got = score_rows(sess, x)
    check_outputs(model, got, max_units)
    if set(got) != set(want):
        raise BundleError(f"{model}.onnx outputs {sorted(got)}, {REFERENCE} expects {sorted(want)}")
    for name, values in got.items():
        expected = want[name].reshape(values.shape) if want[name].size == values.size else None
        if expected is None:
            raise BundleError(f"{REFERENCE}: output {name!r} of {model!r} has the wrong size")
        off = np.abs(values - expected) > ATOL + RTOL * np.abs(expected)
        if off.any():
            row = int(np.argwhere(off)[0][0])
            raise BundleError(
                f"{model}.onnx output {name!r} is {values[off][0]:g} on reference row {row}, "
                f"training got {expected[off][0]:g} (tolerance {ATOL:g} + {RTOL:g} x |expected|)"
            )
