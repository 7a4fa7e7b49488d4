"""The batched forecast lookup the decision rows use gives exactly the per-SKU lookup's values."""

from __future__ import annotations

import random

import numpy as np

from edge_runtime.decide.forecast_policy import DailyForecasts


def test_lookup_many_matches_lookup_sku_by_sku():
    rng = np.random.default_rng(5)
    skus = [f"S{i}" for i in range(40)]
    table = DailyForecasts(
        skus, np.datetime64("2024-01-10"), rng.gamma(2.0, 2.0, (40, 3, 7)),
        rng.gamma(3.0, 2.0, (40, 3, 7)),
    )  # fmt: skip
    pick = random.Random(5)
    asked = [pick.choice([*skus, "unknown"]) for _ in range(500)]
    days = ["2024-01-08", "2024-01-10", "2024-01-11", "2024-01-12", "2024-01-30"]
    whens = [pick.choice([None, *(f"{d}T09:00:00+00:00" for d in days)]) for _ in asked]
    for horizon in (1, 3, 7, 12):
        found, values = table.lookup_many(asked, whens, horizon)
        expected = [
            table.lookup(s, w, horizon) if w else None for s, w in zip(asked, whens, strict=True)
        ]
        assert found.tolist() == [i for i, e in enumerate(expected) if e is not None]
        assert [tuple(v) for v in values.tolist()] == [e for e in expected if e is not None]
    # A day's close asks for every SKU at one time: the same values as that time for each.
    for when in (f"{d}T09:00:00+00:00" for d in days):
        for horizon in (1, 3, 7):
            found, values = table.lookup_many(asked, when, horizon)
            found_each, values_each = table.lookup_many(asked, [when] * len(asked), horizon)
            assert found.tolist() == found_each.tolist()
            assert values.tolist() == values_each.tolist()
