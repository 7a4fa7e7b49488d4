"""Decisions from stock and forecasts: the decision policy protocol and its rule and forecast
policies, replenishment orders, service-level buffers, stock-out risk and alert episodes, the day
close, and how a batch is cut into state changes.
"""
