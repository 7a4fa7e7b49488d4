"""The decision policies a gateway's configuration asks for: the ``[policy]`` rules until a
bundle scores, and the forecast policy's settings from ``[model]``.

>>> from edge_runtime.config import load_config
>>> cfg = load_config(env={"SHELFCAST_STORE_ID": "S1"})
>>> rules_policy(cfg).version, decision_settings(cfg).lead_time_days == cfg.model.lead_time_days
('rules-1', True)
"""

from __future__ import annotations

from edge_runtime.config import GatewayConfig
from edge_runtime.decide.decisions import RulePolicy
from edge_runtime.decide.forecast_policy import DecisionSettings


def decision_settings(cfg: GatewayConfig) -> DecisionSettings:
    """The forecast policy's settings from ``[model]``."""
    m = cfg.model
    return DecisionSettings(
        lead_time_days=m.lead_time_days,
        review_days=m.review_days,
        service_z=m.service_z,
        threshold=m.stockout_threshold,
        min_change=m.stockout_min_change,
        hysteresis=m.stockout_hysteresis,
    )


def rules_policy(cfg: GatewayConfig) -> RulePolicy:
    """The ``[policy]`` rules of the store (what decides without a bundle)."""
    p = cfg.policy
    return RulePolicy(
        cfg.gateway.store_id,
        reorder_point=p.reorder_point,
        order_up_to=p.order_up_to,
        pack_size=p.pack_size,
        lead_time_hours=p.lead_time_hours,
    )
