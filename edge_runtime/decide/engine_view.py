"""The decision engine's state as read from the object that owns it.

Why: the API, the tests and the benchmarks read the policy, the model, the sales series and the
watches off the gateway; the engine holds them. One read-only face, kept beside the engine,
serves every such reader, and the gateway itself stays wiring, the transaction and the threads.

>>> class Owner(EngineView):
...     def __init__(self, engine):
...         self.engine = engine
>>> class Engine:
...     model = None
>>> Owner(Engine()).bundle is None
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_runtime.decide.engine import DecisionEngine
    from edge_runtime.decide.forecast_policy import DailyForecasts
    from models.bundle import Bundle


class EngineView:
    """Read-only properties over ``self.engine`` (a :class:`DecisionEngine`)."""

    engine: DecisionEngine

    policy = property(lambda self: self.engine.policy, doc="The decision policy in use.")
    model = property(lambda self: self.engine.model, doc="The day-close model (None: rules).")
    sales = property(lambda self: self.engine.sales, doc="The daily sales series per SKU.")
    shelf_watch = property(lambda self: self.engine.shelf_watch, doc="Theft / mis-scan watch.")
    count_watch = property(lambda self: self.engine.count_watch, doc="Cycle-count shrink.")
    intraday = property(lambda self: self.engine.intraday, doc="The intraday warning.")

    @property
    def bundle(self) -> Bundle | None:
        """The verified bundle the decisions score with (None: the rules decide)."""
        return self.model.bundle if self.model is not None else None

    @property
    def forecasts(self) -> DailyForecasts | None:
        """The forecast table decisions use: the last day-close re-score (API reads it)."""
        return self.engine.forecasts

    @property
    def model_version(self) -> str:
        return self.policy.version
