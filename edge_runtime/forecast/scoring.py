"""ONNX Runtime scoring of a model bundle's models, batched over SKUs.

One ``InferenceSession`` per model, created once when the bundle is loaded; a re-score of every
SKU in the store is one ``run`` call on a float32 matrix (one row per SKU x horizon), never a
loop over SKUs. The feature order is the bundle's ``feature_spec.json``; a matrix with the wrong
number of columns is refused with a clear error rather than scored wrongly.

>>> import numpy as np
>>> scorer = Scorer({"demand": identity_model(3)}, feature_names=["a", "b", "c"])
>>> scorer.score("demand", np.ones((2, 3), dtype=np.float32))["y"].shape
(2, 3)
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from models.onnx_session import open_session

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)


class ScoringError(ValueError):
    """A model is missing or a feature matrix does not fit it.

    >>> scorer = Scorer({"demand": identity_model(3)}, feature_names=["a", "b", "c"])
    >>> try:
    ...     scorer.score("demand", np.ones((2, 4), dtype=np.float32))
    ... except ScoringError as err:
    ...     print(err)
    demand: feature matrix has shape (2, 4); expected (rows, 3) in the bundle's order (a, b, c, ...)
    """


class Scorer:
    """Sessions for a bundle's models; :meth:`score` runs one batched call.

    ``threads`` sets ONNX Runtime's intra-op threads (1 keeps a gateway's other work
    responsive; tree ensembles on a few thousand rows gain little from more). ``sessions``:
    sessions already open on these models with one thread each (the ones the bundle's
    verification opened), used instead of opening them again when ``threads`` is 1.

    A model's session is opened when the model is first used (:meth:`score`, :meth:`outputs`,
    :meth:`open_all`), not here: a restart whose last close's scoring was kept scores nothing
    until the next close, and opening a tree ensemble's session is a large part of a start's
    CPU. The model bytes are read here, right after the bundle's digests were checked.

    >>> scorer = Scorer({"demand": identity_model(2)}, feature_names=["a", "b"], model_version="7")
    >>> scorer.models, scorer.outputs("demand")  # the session opens when first needed
    (['demand'], ['y'])
    >>> scorer.score("demand", np.array([[1.0, 2.0]]))["y"].tolist()
    [[1.0, 2.0]]
    """

    def __init__(
        self,
        models: dict[str, bytes],
        feature_names: list[str],
        model_version: str = "unknown",
        threads: int = 1,
        sessions: dict[str, ort.InferenceSession] | None = None,
    ):
        self.feature_names = list(feature_names)
        self.model_version = model_version
        self._threads = threads
        self._bytes = dict(models)
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._inputs: dict[str, str] = {}
        self._outputs: dict[str, list[str]] = {}
        self._widths: dict[str, int] = {}  # input columns each model declares
        self._opening = threading.Lock()  # the worker and a warm-up may ask at once
        for name, session in ((sessions or {}) if threads == 1 else {}).items():
            if name in self._bytes:
                self._adopt(name, session)

    @classmethod
    def from_bundle(cls, bundle, threads: int = 1, sessions: dict | None = None) -> Scorer:
        """Sessions for every model of a verified ``models.bundle.Bundle`` (``sessions``: see
        the class)."""
        names = [f["name"] for f in bundle.feature_spec.get("features", [])]
        models = {name: bundle.model_bytes(name) for name in bundle.models}
        return cls(models, names, bundle.model_version, threads, sessions)

    @property
    def models(self) -> list[str]:
        return list(self._bytes)

    @property
    def opened(self) -> list[str]:
        """The models whose session is open."""
        return list(self._sessions)

    def open_all(self) -> None:
        """Open every model's session now (ahead of its first use)."""
        for name in self._bytes:
            self._session(name)

    def open_all_in_background(self) -> threading.Thread:
        """:meth:`open_all` on a thread of its own, started now. A failure is logged: the
        first scoring opens the session again and reports it where it is used."""

        def run() -> None:
            try:
                self.open_all()
            except Exception:
                log.exception("opening the model's ONNX sessions failed")

        thread = threading.Thread(target=run, name="onnx-sessions", daemon=True)
        thread.start()
        return thread

    def outputs(self, model: str) -> list[str]:
        self._session(model)
        return list(self._outputs[model])

    def _adopt(self, name: str, session: ort.InferenceSession) -> None:
        self._inputs[name] = session.get_inputs()[0].name
        self._outputs[name] = [o.name for o in session.get_outputs()]
        width = session.get_inputs()[0].shape[-1]
        if isinstance(width, int):
            self._widths[name] = width
        self._sessions[name] = session  # last: a session listed here is ready to run

    def _session(self, model: str) -> ort.InferenceSession:
        session = self._sessions.get(model)
        if session is not None:
            return session
        if model not in self._bytes:
            raise ScoringError(f"no model {model!r} loaded; have {', '.join(self._bytes)}")
        with self._opening:
            if model not in self._sessions:
                self._adopt(model, self._open(self._bytes[model]))
        return self._sessions[model]

    def _open(self, data: bytes) -> ort.InferenceSession:
        # ONNX Runtime is imported there, not with this module: a gateway without a bundle
        # never needs it, and its import is part of every start before the broker connection.
        return open_session(data, self._threads)

    def score(self, model: str, features: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``model`` on ``features`` (rows x len(feature_names)); outputs by name."""
        session = self._session(model)
        x = np.ascontiguousarray(features, dtype=np.float32)
        width = self._widths.get(model, len(self.feature_names))
        if x.ndim != 2 or (width and x.shape[1] != width):
            raise ScoringError(
                f"{model}: feature matrix has shape {x.shape}; expected (rows, "
                f"{width}) in the bundle's order ({', '.join(self.feature_names[:4])}, ...)"
            )
        values = session.run(None, {self._inputs[model]: x})
        return dict(zip(self._outputs[model], values, strict=True))

    def demand(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, P50 and P90 per row from the bundle's ``demand`` model."""
        out = self.score("demand", features)
        return out["mean"].reshape(-1), out["p50"].reshape(-1), out["p90"].reshape(-1)


def identity_model(n_features: int) -> bytes:
    """A tiny ONNX model (``y = x``) for examples and tests that need no trained bundle.

    Needs the ``onnx`` package (dev/train extras), imported only here: the gateway never calls it.
    """
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n_features])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()
