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

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from edge_runtime.messages import ReasonCode
from feature_store.spec import ANOMALY_FEATURES, close_names

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


class AnomalyScores:
    """The model's score of each SKU's last closed day ``day`` (ISO date): given, or scored on
    demand (:meth:`of_close`).

    >>> scores = AnomalyScores(["A", "B"], "2026-01-05", np.array([0.12, -0.3]))
    >>> scores.evidence("B")  # a negative score: the model flags the day
    ({'anomaly_score': -0.3, 'anomaly_day': '2026-01-05'}, ('ANOMALY_MODEL_FLAGGED',))
    >>> from edge_runtime.watch.shrink import ShrinkAlert
    >>> theft = ShrinkAlert("theft", "B", 0.0, ("EXIT_GATE_WITHOUT_SALE",), {"units": 1})
    >>> weighed = scores.weigh(theft)
    >>> weighed.score, weighed.reason_codes
    (10.0, ('EXIT_GATE_WITHOUT_SALE', 'ANOMALY_MODEL_FLAGGED'))
    """

    def __init__(self, skus: list[str], day: str, scores: np.ndarray):
        self.skus, self.day = skus, day
        self._index = {s: i for i, s in enumerate(skus)}
        self._scores = np.asarray(scores, dtype=np.float64)
        self._known = np.ones(len(skus), dtype=bool)  # rows scored so far
        self._pending: np.ndarray | None = None  # rows' features, for rows not scored yet
        self._scorer: Scorer | None = None

    @classmethod
    def of_close(cls, skus: list[str], day: str, features: np.ndarray, scorer: Scorer):
        """Scores of ``features`` rows (the model's input, one per SKU) computed only when a
        SKU's score is asked for, a batch of rows per call.

        Why: at a close the detectors weigh only the few SKUs near an alert, and scoring every
        SKU's day was most of the anomaly model's share of the close. The model scores each
        row on its own, so a row's score does not depend on which rows share its call."""
        out = cls(skus, day, np.full(len(skus), np.nan))
        out._known[:] = False
        out._pending, out._scorer = np.ascontiguousarray(features, dtype=np.float32), scorer
        return out

    def bind(self, scorer: Scorer) -> None:
        """The model to score pending rows with (after a snapshot restored these scores)."""
        self._scorer = scorer

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_scorer": None}  # sessions are not pickled: bound again

    @property
    def scores(self) -> np.ndarray:
        """Every SKU's score (scoring those not scored yet)."""
        return self._scored(np.arange(len(self.skus)))

    def _scored(self, rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` (indices), scoring the pending ones among them in one call."""
        scores = self._scores
        if self._pending is not None:
            todo = rows[~self._known[rows]]
            if len(todo):
                todo = np.unique(todo)
                out = self._scorer.score("anomaly", self._pending[todo])
                scores[todo] = np.asarray(out[anomaly_output(self._scorer)], np.float64).ravel()
                self._known[todo] = True
        return scores[rows]

    def score(self, sku: str) -> float | None:
        i = self._index.get(sku)
        return None if i is None else float(self._scored(np.array([i]))[0])

    def weight(self, sku: str) -> float:
        """:func:`evidence_weight` of the SKU's score (1 for a SKU not scored)."""
        s = self.score(sku)
        return 1.0 if s is None else float(evidence_weight(s))

    def weights(self, skus: list[str]) -> np.ndarray:
        index = self._index
        at = np.fromiter((index.get(s, -1) for s in skus), dtype=np.int64, count=len(skus))
        out = np.ones(len(skus))
        found = at >= 0
        out[found] = evidence_weight(self._scored(at[found]))
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
    """Every SKU's last closed day for the bundle's ``anomaly`` model (scored when asked); None
    when the bundle has no anomaly model or no day has closed yet."""
    close, skus = sales.last_closed, sales.skus()
    if close is None or not skus or "anomaly" not in scorer.models:
        return None
    X = sales.panel.close_features()[:, _COLUMNS]  # every SKU, in ``skus`` order
    return AnomalyScores.of_close(skus, str(close), X, scorer)
