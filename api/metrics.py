"""Prometheus metrics of a gateway, served at ``/metrics``.

Each app has its own registry, so several apps (tests, benchmarks) live in one process. The
runtime's own counters (events over every transport, messages created and sent, outbox depth)
are read at scrape time; the API adds what only it sees (events that came over HTTP, scoring
latency), so MQTT figures are the runtime's totals minus the API's share.

>>> m = ApiMetrics(lambda: {"outbox_depth": 3, "ingested": 5})
>>> m.count_ingest(accepted=2, duplicates=0, rejected=1)
>>> body, _ = m.render()
>>> b'shelfcast_events_ingested_total{transport="mqtt"} 3.0' in body
True
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from edge_runtime.build_info import REVISION, VERSION

CREATED_PREFIX = "created:"  # runtime stats "created:<kind>": outbox messages made, by kind
SENT_PREFIX = "sent:"  # runtime stats "sent:<kind>": outbox messages the broker acknowledged

# Scoring a batch on a gateway takes 0.1 ms .. 100 ms: finer buckets than the default down there.
SCORING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

# (metric, help, runtime counter, API counter)
_EVENT_METRICS = (
    ("shelfcast_events_ingested", "edge events stored in the ledger", "ingested", "accepted"),
    ("shelfcast_events_duplicate", "edge events already stored (replays)", "duplicates", "duplicates"),
    ("shelfcast_events_rejected", "events or payloads rejected and dead-lettered", "rejected", "rejected"),
)  # fmt: skip


# (metric, help, runtime stat): 1/0 or a count, read at scrape time
_HEALTH_GAUGES = (
    ("shelfcast_ledger_writable", "1 while the ledger takes writes, 0 while it refuses them (full disk)", "ledger_writable"),
    ("shelfcast_intake_held", "MQTT payloads held unacknowledged while the ledger refuses writes", "intake_held"),
    ("shelfcast_broker_connected", "1 while connected and subscribed to the MQTT broker", "broker_connected"),
)  # fmt: skip


class _Collector(Collector):
    def __init__(self, metrics: ApiMetrics):
        self.metrics = metrics

    def collect(self) -> Iterator:
        stats = self.metrics.snapshot()
        with self.metrics.lock:
            api = dict(self.metrics.api)
        for name, text, total_key, api_key in _EVENT_METRICS:
            family = CounterMetricFamily(name, f"{text}, by transport", labels=["transport"])
            family.add_metric(["api"], api.get(api_key, 0))
            if total_key in stats:  # the runtime counts every transport
                family.add_metric(["mqtt"], max(0, stats[total_key] - api.get(api_key, 0)))
            yield family
        yield from _build_and_mqtt(stats)
        if "messages" in stats or any(k.startswith(CREATED_PREFIX) for k in stats):
            yield _by_kind(
                stats,
                CREATED_PREFIX,
                "shelfcast_alerts_created",
                "alerts, conflicts and dead letters written to the outbox, by kind",
            )
        if "sent" in stats:
            yield _by_kind(
                stats,
                SENT_PREFIX,
                "shelfcast_alerts_published",
                "outgoing messages acknowledged by the broker (QoS 1), by kind",
            )
        for name, text, key in _HEALTH_GAUGES:
            if key in stats:
                yield GaugeMetricFamily(name, text, stats[key])
        if "store_failures" in stats:
            yield CounterMetricFamily(
                "shelfcast_store_write_failures",
                "writes the store refused (full disk, I/O error); events wait, unacknowledged",
                stats["store_failures"],
            )
        if "outbox_depth" in stats:
            yield GaugeMetricFamily(
                "shelfcast_outbox_depth",
                "messages waiting in the durable outbox",
                stats["outbox_depth"],
            )
        if stats.get("broker_dropped") is not None:
            yield GaugeMetricFamily(
                "shelfcast_broker_dropped_messages",
                "messages the MQTT broker dropped since it started (a session queue was full; "
                "$SYS/broker/publish/messages/dropped)",
                stats["broker_dropped"],
            )


def _by_kind(stats: Mapping[str, float], prefix: str, name: str, text: str) -> Metric:
    family = CounterMetricFamily(name, text, labels=["kind"])
    for key, n in sorted(stats.items()):
        if key.startswith(prefix):
            family.add_metric([key[len(prefix) :]], n)
    return family


def _build_and_mqtt(stats: Mapping[str, float]) -> Iterator:
    info = GaugeMetricFamily(
        "shelfcast_build_info",
        "the running build: 1, labelled with the shelfcast version and source revision",
        labels=["version", "revision"],
    )
    info.add_metric([VERSION, REVISION], 1)
    yield info
    if "mqtt_connects" in stats:
        yield CounterMetricFamily(
            "shelfcast_mqtt_connects",
            "successful connections to the MQTT broker since start (more than 1: reconnects)",
            stats["mqtt_connects"],
        )


class ApiMetrics:
    """The metric objects of one app and their exposition.

    >>> ApiMetrics(dict).render()[1].startswith("text/plain")
    True
    """

    def __init__(self, snapshot: Callable[[], Mapping[str, float]]):
        self.snapshot = snapshot
        self.lock = threading.Lock()
        self.api: Counter[str] = Counter()
        self.registry = CollectorRegistry(auto_describe=False)
        self.scoring_latency = Histogram(
            "shelfcast_scoring_latency_seconds",
            "time to score one forecast / stock-out request (one SKU or a batch)",
            ["what"],
            buckets=SCORING_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Collector(self))
        # CPU seconds, resident memory, open files, start time (Linux /proc; nothing elsewhere)
        ProcessCollector(registry=self.registry)

    def count_ingest(self, accepted: int, duplicates: int, rejected: int) -> None:
        """Count one API ingest."""
        with self.lock:
            self.api["accepted"] += accepted
            self.api["duplicates"] += duplicates
            self.api["rejected"] += rejected

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
