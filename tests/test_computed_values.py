"""Alerts built without validation (``computed``) against the validated models, byte for byte."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from benchmarks.message_build import shapes
from edge_runtime.messages import ReplenishmentAlert, StockoutAlert
from edge_runtime.messages.computed_values import computed

AT = datetime(2026, 1, 7, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
EDGES = [
    (StockoutAlert, {"store_id": "S", "model_version": "m", "probability": 1}),  # int -> float
    (StockoutAlert, {"store_id": "S", "model_version": "m", "probability": 0.0, "sku": None,
                     "atp": math.nan, "on_hand": math.inf, "reserved": -math.inf,
                     "event_time": AT, "hour_start": AT.astimezone(UTC)}),
    (ReplenishmentAlert, {"store_id": "S", "model_version": "m", "recommended_qty": 12.0,
                          "reason_codes": ["atp_at_reorder_point"], "atp": 1 / 3,
                          "evidence": {"a": 0.1 + 0.2, "b": 10**20, "c": None, "d": False}}),
]  # fmt: skip


def _cases():
    return [*shapes(), *EDGES]


@pytest.mark.parametrize("cls,fields", _cases())
def test_same_bytes_as_the_validated_model(cls, fields):
    fields = {**fields, "message_id": "id-1", "created_at": AT}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a serialiser's type warning is a difference
        built = computed(cls, **fields)
        assert built.to_json() == cls(**fields).to_json()
        assert built.to_dict() == cls(**fields).to_dict()
    assert built == cls(**fields)
    assert built.__pydantic_fields_set__ == cls(**fields).__pydantic_fields_set__


def test_values_it_does_not_know_are_validated_as_before():
    base = {"store_id": "S", "model_version": "m"}
    for bad in (math.nan, 1.5, -0.1, "x"):
        with pytest.raises(ValidationError):
            computed(StockoutAlert, **base, probability=bad)
    with pytest.raises(ValidationError):
        computed(StockoutAlert, **base, probability=1.0, event_time=datetime(2026, 1, 7))
    with pytest.raises(ValidationError):
        computed(ReplenishmentAlert, **base, recommended_qty=2.5)
    with pytest.raises(ValidationError):
        computed(StockoutAlert, **base, probability=1.0, colour="red")
    with pytest.raises(ValidationError):
        computed(StockoutAlert, store_id="S", probability=1.0)  # model_version missing
    a = computed(StockoutAlert, **base, probability=True, event_time="2026-01-07T09:00:00+01:00")
    assert a.probability == 1.0 and a.event_time == datetime(2026, 1, 7, 8, tzinfo=UTC)
