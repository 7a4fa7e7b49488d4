"""The bundle's anomaly model (a real IsolationForest in ONNX, in a real signed bundle) scores
every SKU at the day's close, and its scores weigh the theft and phantom decisions."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.forecast.scoring import Scorer
from edge_runtime.gateway import Gateway
from edge_runtime.watch.anomaly_scores import AnomalyScores, score_close
from edge_runtime.watch.phantom import PhantomDetector
from feature_store.spec import ANOMALY_FEATURES, close_names, index, names, spec_dict
from feature_store.streaming import SeriesState, close_feature_matrix
from models.anomaly import AnomalyModel
from models.bundle import load_bundle
from tests.signed_bundles import signed_bundle
from tests.test_api_predictions import column_model
from tests.test_gateway_model import config, ev, kinds

COLUMNS = [close_names().index(n) for n in ANOMALY_FEATURES]


def normal_rows(n: int = 400, seed: int = 3) -> np.ndarray:
    """Close features of SKUs selling about 4 units a day (what the forest learns as normal)."""
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(n):
        s = SeriesState()
        for u in rng.poisson(4.0, size=14):
            s.close_day(float(u))
        states.append(s)
    return close_feature_matrix(states)[:, COLUMNS].astype(np.float32)


@pytest.fixture(scope="module")
def forest_bundle(tmp_path_factory):
    """A signed bundle of a column demand model and a real IsolationForest, and the forest."""
    out = tmp_path_factory.mktemp("bundles") / "iso-1"
    forest = AnomalyModel(n_estimators=25, seed=0).fit(normal_rows())
    models = {
        "demand": column_model(index("mean_7"), len(names())),
        "anomaly": forest.to_onnx(len(ANOMALY_FEATURES)),
    }
    return signed_bundle(out, models, spec_dict(), {"model_version": out.name}), forest


def trade(days: int) -> list[dict]:
    """Two SKUs selling 4 a day; on the last day Z sells 60."""
    out = [ev("r-A", "A", "receipt", 500, 1), ev("r-Z", "Z", "receipt", 500, 1)]
    for d in range(1, days + 1):
        out += [ev(f"a{d}", "A", "sale", 4, d, 12), ev(f"z{d}", "Z", "sale", 4, d, 12)]
    return [*out, ev("z-big", "Z", "sale", 56, days, 13)]


def test_the_close_scores_every_sku_in_one_call_as_the_forest_does(tmp_path, forest_bundle):
    bundle, forest = forest_bundle
    with Gateway(config(tmp_path, bundle)) as gw:
        gw.ingest(trade(10), "seed")
        gw.ingest([ev("next", "A", "sale", 1, 11, 9)], "pos")  # closes day 10
        scores = gw.shelf_watch.anomaly
        assert scores is not None and sorted(scores.skus) == ["A", "Z"]
        assert scores.day == "2026-01-10"
        X = close_feature_matrix([gw.sales.series[s] for s in scores.skus])[:, COLUMNS]
        np.testing.assert_allclose(scores.scores, forest.score(X), atol=1e-5)  # ONNX = sklearn
        assert scores.score("Z") < 0 < scores.score("A")


def test_scores_asked_for_a_few_skus_are_those_of_the_whole_batch(forest_bundle):
    """The close scores a SKU's day only when it is asked for (the phantom check asks for the
    few near an alert); a row's score is the one the whole store's batch gives it."""
    scorer = Scorer.from_bundle(load_bundle(forest_bundle[0], spec_dict()["version"]))
    X = np.vstack([normal_rows(40, seed=5), normal_rows(1, seed=9) * 6.0])
    skus = [f"S{i}" for i in range(len(X))]
    whole = scorer.score("anomaly", X)["scores"].reshape(-1)
    lazy = AnomalyScores.of_close(skus, "2026-01-10", X, scorer)
    few = ["S40", "S3", "S3"]
    assert lazy.weights(few).tolist() == [float(w) for w in (lazy.weight(s) for s in few)]
    assert int(lazy._known.sum()) == 2  # S3 and S40 only
    assert [lazy.score(s) for s in few] == [float(whole[40]), float(whole[3]), float(whole[3])]
    assert lazy.scores.tolist() == whole.astype(float).tolist()


def test_theft_alerts_carry_the_model_score_and_reason(tmp_path, forest_bundle):
    bundle, _ = forest_bundle
    with Gateway(config(tmp_path, bundle)) as gw:
        gw.ingest(trade(10), "seed")
        gates = [ev(f"g-{s}", s, "rfid_exit", 1, 11, 9, source="rfid") for s in ("A", "Z")]
        gw.ingest(gates, "rfid")  # no sale behind either: thefts, decided after the hold
        gw.ingest([ev("later", "A", "sale", 1, 11, 11)], "pos")
        thefts = {m["sku"]: m for m in kinds(gw.recent_messages(), "anomaly")
                  if m["anomaly_type"] == "theft"}  # fmt: skip
    z, a = thefts["Z"], thefts["A"]
    assert "ANOMALY_MODEL_FLAGGED" in z["reason_codes"] and z["evidence"]["anomaly_score"] < 0
    assert "ANOMALY_MODEL_FLAGGED" not in a["reason_codes"] and a["evidence"]["anomaly_score"] > 0
    assert z["score"] > a["score"] == 0.8  # the model's doubt ranks Z's theft first


def test_a_flagged_sku_needs_less_silence_for_a_phantom_alert(forest_bundle):
    scorer = Scorer.from_bundle(load_bundle(forest_bundle[0], spec_dict()["version"]))
    normal = normal_rows(1, seed=9)
    spike = SeriesState()
    for u in [4.0] * 13 + [60.0]:  # 4 a day, then 60 on the last closed day
        spike.close_day(u)
    odd = close_feature_matrix([spike])[:, COLUMNS].astype(np.float32)
    raw = scorer.score("anomaly", np.vstack([normal, odd]))["scores"].reshape(-1)
    scores = AnomalyScores(["N", "O"], "2026-01-10", raw.astype(float))
    assert scores.weight("N") == 1.0 and scores.weight("O") > 4  # 1e-3 x 4 > P(silence)

    def check(anomaly):
        d = PhantomDetector(alpha=0.001)
        d.sale("N", 0.0)
        d.sale("O", 0.0)
        # 1.7 days silent at ~4 sales a day: P(no sale) ~ 1e-3, just above alpha.
        return d.check(1.7 * 86400, ["N", "O"], np.array([5.0, 5.0]), np.array([4.0, 4.0]),
                       np.array([7.0, 7.0]), anomaly)  # fmt: skip

    assert check(None) == []
    [alert] = check(scores)
    assert alert.sku == "O" and "ANOMALY_MODEL_FLAGGED" in alert.reason_codes
    assert alert.evidence["anomaly_score"] < 0 and alert.evidence["p_zero_sales"] > 0.001


def test_a_phantom_already_alerted_is_not_scored_again_at_the_next_close(forest_bundle):
    scorer = Scorer.from_bundle(load_bundle(forest_bundle[0], spec_dict()["version"]))
    X = normal_rows(2, seed=9)
    d = PhantomDetector(alpha=0.001)
    d.sale("A", 0.0)
    d.sale("B", 0.0)

    def close(now_days: float) -> tuple[list[str], int]:
        lazy = AnomalyScores.of_close(["A", "B"], "2026-01-10", X, scorer)
        alerts = d.check(now_days * 86400, ["A", "B"], np.array([5.0, 5.0]),
                         np.array([4.0, 0.0]), np.array([7.0, 1.0]), lazy)  # fmt: skip
        return [a.sku for a in alerts], int(lazy._known.sum())

    assert close(3.0) == (["A"], 1)  # A silent for 3 days at ~4 a day: alerted, its day scored
    # A stays alerted until it sells: the next close neither alerts nor scores it again.
    assert close(4.0) == ([], 0)


def test_without_a_model_nothing_is_scored(tmp_path):
    with Gateway(config(tmp_path)) as gw:
        gw.ingest(trade(3), "seed")
        assert gw.shelf_watch.anomaly is None
    assert score_close.__name__ == "score_close"
