"""The bundle's anomaly model at the edge: every SKU's closed day scored in one batched call.

The central pipeline trains an IsolationForest on store-SKU-day close features
(``feature_store.spec.ANOMALY_FEATURES``) and ships it as ``anomaly.onnx``. At each store day's
close the gateway scores every SKU's last closed day with it in one ONNX Runtime call
(:func:`score_close`): scikit-learn's ``decision_function``, below 0 anomalous, lower stranger.

The score is evidence the detectors weigh, never an alert by itself (an odd sales day is not a
theft): :func:`evidence_weight` turns it into a factor, 1 for a normal day and up to
``1 + MAX_BOOST`` for the strangest, and the one rule applies everywhere:

- phantom inventory (``edge_runtime.watch.phantom``): a SKU alerts when the chance of its silence is
  below ``alpha`` times its weight (the model's doubt about the SKU makes less silence enough);
- theft (``edge_runtime.watch.shrink``): an alert's score (its priority for whoever works through the
  alerts) is multiplied by the weight;
- both carry the score as ``evidence.anomaly_score`` and, when the model flags the day, the
  reason code ``ANOMALY_MODEL_FLAGGED``.

>>> scores = AnomalyScores(["A", "B"], "2026-01-05", np.array([0.12, -0.3]))
>>> scores.weight("A"), scores.weight("B"), scores.weight("C")
(1.0, 10.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from edge_runtime.messages import ReasonCode
from feature_store.spec import ANOMALY_FEATURES, close_names
from feature_store.streaming import close_feature_matrix

if TYPE_CHECKING:
    from edge_runtime.forecast.daily_sales import DailySales
    from edge_runtime.forecast.scoring import Scorer
    from edge_runtime.watch.shrink import ShrinkAlert

MAX_BOOST = 9.0  # the strangest day multiplies the detectors' evidence by 1 + this
FULL_AT = 0.1  # a decision_function this far below 0 gets the whole boost
_COLUMNS = [close_names().index(n) for n in ANOMALY_FEATURES]


def evidence_weight(score: np.ndarray | float) -> np.ndarray:
    """The factor a model score puts on the detectors' evidence (the module docstring's rule).

    >>> evidence_weight(np.array([0.2, 0.0, -0.05, -1.0])).tolist()
    [1.0, 1.0, 5.5, 10.0]
    """
    s = np.asarray(score, dtype=np.float64)
    return 1.0 + MAX_BOOST * np.clip(-s / FULL_AT, 0.0, 1.0)


@dataclass
class AnomalyScores:
    """The model's score of each SKU's last closed day ``day`` (ISO date)."""

    skus: list[str]
    day: str
    scores: np.ndarray
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {s: i for i, s in enumerate(self.skus)}

    def score(self, sku: str) -> float | None:
        i = self._index.get(sku)
        return None if i is None else float(self.scores[i])

    def weight(self, sku: str) -> float:
        """:func:`evidence_weight` of the SKU's score (1 for a SKU not scored)."""
        s = self.score(sku)
        return 1.0 if s is None else float(evidence_weight(s))

    def weights(self, skus: list[str]) -> np.ndarray:
        index, scores = self._index, self.scores
        at = np.fromiter((index.get(s, -1) for s in skus), dtype=np.int64, count=len(skus))
        out = np.ones(len(skus))
        found = at >= 0
        out[found] = evidence_weight(scores[at[found]])
        return out

    def evidence(self, sku: str) -> tuple[dict, tuple[str, ...]]:
        """What an alert about ``sku`` carries from the model: evidence and reason codes."""
        s = self.score(sku)
        if s is None:
            return {}, ()
        flagged = (ReasonCode.ANOMALY_MODEL_FLAGGED,) if s < 0 else ()
        return {"anomaly_score": round(s, 4), "anomaly_day": self.day}, flagged

    def weigh(self, alert: ShrinkAlert) -> ShrinkAlert:
        """A theft alert with its score times the SKU's weight and the model's evidence; other
        kinds unchanged (a mis-scan or a count's shrink is settled by its own evidence)."""
        if alert.kind != "theft":
            return alert
        evidence, reasons = self.evidence(alert.sku)
        if not evidence:
            return alert
        return replace(
            alert,
            score=alert.score * self.weight(alert.sku),
            reason_codes=(*alert.reason_codes, *reasons),
            evidence={**alert.evidence, **evidence},
        )


def anomaly_output(scorer: Scorer) -> str:
    """The anomaly model's score output: ``scores`` (skl2onnx's IsolationForest), else its one."""
    outputs = scorer.outputs("anomaly")
    return "scores" if "scores" in outputs else outputs[-1]


def score_close(scorer: Scorer, sales: DailySales) -> AnomalyScores | None:
    """Every SKU's last closed day scored by the bundle's ``anomaly`` model in one call; None
    when the bundle has no anomaly model or no day has closed yet."""
    close, skus = sales.last_closed, sales.skus()
    if close is None or not skus or "anomaly" not in scorer.models:
        return None
    X = close_feature_matrix([sales.series[s] for s in skus])[:, _COLUMNS]
    out = scorer.score("anomaly", X)[anomaly_output(scorer)]
    return AnomalyScores(skus, str(close), np.asarray(out, dtype=np.float64).reshape(-1))
