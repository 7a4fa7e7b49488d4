"""The store-SKU-day anomaly model: an IsolationForest on close-day features
(:data:`feature_store.spec.ANOMALY_FEATURES`), exported with skl2onnx.

Its ONNX graph has outputs ``label`` (-1 anomalous, 1 normal) and ``scores`` (scikit-learn's
``decision_function``: below 0 is anomalous, lower is stranger).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(300, 8)).astype("float32")
>>> m = AnomalyModel(n_estimators=20).fit(X)
>>> m.score(X[:3]).shape
(3,)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

INPUT_NAME = "features"


@dataclass
class AnomalyModel:
    """IsolationForest with a fixed seed; ``contamination`` sets the share flagged in training.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 4)).astype("float32")
    >>> X[0] = 8.0  # one day far from the others
    >>> m = AnomalyModel(n_estimators=10, max_samples=64).fit(X)
    >>> int(np.argmin(m.score(X))), m.predict(X[:2])["label"].tolist()  # lowest score: most odd
    (0, [-1.0, 1.0])
    """

    n_estimators: int = 100
    max_samples: int = 256
    contamination: float = 0.01
    seed: int = 0
    forest: object = field(default=None, repr=False)

    def params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "forest"}

    def fit(self, X: np.ndarray) -> AnomalyModel:
        from sklearn.ensemble import IsolationForest

        self.forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(X)),
            contamination=self.contamination,
            random_state=self.seed,
        ).fit(np.asarray(X, dtype=np.float32))
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """``decision_function``: negative for anomalies."""
        return self.forest.decision_function(np.asarray(X, dtype=np.float32))

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        X = np.asarray(X, dtype=np.float32)
        return {"label": self.forest.predict(X).astype(np.float64), "scores": self.score(X)}

    def to_onnx(self, n_features: int) -> bytes:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        onx = to_onnx(
            self.forest,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            target_opset={"": 15, "ai.onnx.ml": 3},
        )
        return onx.SerializeToString()
