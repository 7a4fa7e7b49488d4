"""Alerts handed to paho: one ``publish`` each vs ``LeanClient.publish_many`` (one write).

    python benchmarks/mqtt_publish.py --messages 2000 --runs 10 --json out.json

A connected ``LeanClient`` (MQTT 3.1.1, paho's in-flight limit off, as the gateway's transport
sets it) on a real Mosquitto (``tests.mosquitto``) publishes ``--messages`` QoS 1 alerts of
~500 bytes, ``--runs`` times each way in alternation, until every PUBACK is in: the calling
thread's CPU (the gateway's worker) and the process's (paho's network thread too). Pin it
(``taskset -c 0``) to weigh it as the full path's gateway is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import show_figures  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="alerts per hand-over")
    parser.add_argument("--runs", type=int, default=10, help="hand-overs each way")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    import paho.mqtt.client as mqtt

    from edge_runtime.transport.lean_client import LeanClient
    from tests.mosquitto import Mosquitto

    broker = Mosquitto(Path(tempfile.mkdtemp(prefix="shelfcast-publish-")) / "broker").start()
    client = LeanClient(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-publish",
                        protocol=mqtt.MQTTv311, manual_ack=True)  # fmt: skip
    client.max_inflight_messages_set(0)
    acked: list[int] = []
    client.on_publish = lambda _c, _u, mid, *rest: acked.append(mid)
    payload = json.dumps({"kind": "stockout", "pad": "x" * 500}).encode()
    messages = [("shelfcast/OR/alerts/stockout", payload, False)] * args.messages

    def one_by_one() -> None:
        for topic, body, retain in messages:
            client.publish(topic, body, qos=1, retain=retain)

    ways = {"one_by_one": one_by_one, "publish_many": lambda: client.publish_many(messages)}
    spent: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
    try:
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        time.sleep(0.5)
        for r in range(args.runs):
            for way in list(ways) if r % 2 == 0 else list(ways)[::-1]:
                acked.clear()
                t0, p0 = time.thread_time(), time.process_time()
                ways[way]()
                caller = time.thread_time() - t0
                while len(acked) < args.messages:
                    time.sleep(0.001)
                spent[way].append((caller, time.process_time() - p0))
    finally:
        client.loop_stop()
        client.disconnect()
        broker.stop()
    figures: dict = {"messages": args.messages, "runs": args.runs}
    for way, runs in spent.items():
        figures[f"{way}_caller_ms_median"] = round(1000 * statistics.median(c for c, _ in runs), 2)
        figures[f"{way}_process_ms_median"] = round(1000 * statistics.median(p for _, p in runs), 2)
    show_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
