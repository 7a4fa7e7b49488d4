"""Prometheus metrics of a gateway, served at ``/metrics``.

Each app has its own registry, so several apps (tests, benchmarks) live in one process. Counters
the runtime already keeps (events ingested and rejected over MQTT and the API, alerts published,
outbox depth) are read from it at scrape time instead of being counted twice.

>>> m = ApiMetrics(lambda: {"outbox_depth": 3})
>>> m.events_ingested.labels(transport="api").inc(2)
>>> body, _ = m.render()
>>> b'shelfcast_outbox_depth 3.0' in body
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

# Scoring a batch on a gateway takes 0.1 ms .. 100 ms; finer buckets than the default at the low end.
SCORING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _RuntimeCollector(Collector):
    """Reads the runtime's own counters at scrape time."""

    def __init__(self, snapshot: Callable[[], Mapping[str, float]]):
        self.snapshot = snapshot

    def collect(self) -> Iterator:
        stats = self.snapshot()
        if "outbox_depth" in stats:
            yield GaugeMetricFamily(
                "shelfcast_outbox_depth",
                "messages waiting in the durable outbox",
                stats["outbox_depth"],
            )
        if "dead_letters" in stats:
            yield GaugeMetricFamily(
                "shelfcast_dead_letters",
                "payloads kept in the dead-letter store",
                stats["dead_letters"],
            )
        published = CounterMetricFamily(
            "shelfcast_alerts_published", "alerts published over MQTT, by kind", labels=["kind"]
        )
        for key, value in stats.items():
            if key.startswith("published_"):
                published.add_metric([key.removeprefix("published_")], value)
        yield published


class ApiMetrics:
    """The metric objects of one app and their exposition."""

    def __init__(self, snapshot: Callable[[], Mapping[str, float]]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_ingested = Counter(
            "shelfcast_events_ingested",
            "edge events accepted into the ledger (duplicates excluded), by transport",
            ["transport"],
            registry=self.registry,
        )
        self.events_duplicate = Counter(
            "shelfcast_events_duplicate",
            "edge events already in the ledger (idempotent replays), by transport",
            ["transport"],
            registry=self.registry,
        )
        self.events_rejected = Counter(
            "shelfcast_events_rejected",
            "edge events or payloads rejected and dead-lettered, by transport",
            ["transport"],
            registry=self.registry,
        )
        self.scoring_latency = Histogram(
            "shelfcast_scoring_latency_seconds",
            "time to score one forecast / stock-out request (one or a batch of SKUs)",
            ["what"],
            buckets=SCORING_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_RuntimeCollector(snapshot))

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
