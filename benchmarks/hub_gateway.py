"""One store's gateway as its own process, for ``benchmarks/hub.py``: as in a store, each gateway
has an interpreter (and a GIL) of its own rather than sharing the benchmark's.

    python benchmarks/hub_gateway.py STORE WORK_DIR MQTT_PORT NATS_URL COUNTS.jsonl

It starts a real ``Gateway`` (SQLite ledger, outbox, rule policy, paho, the JetStream uplink,
a 20 ms uplink window whose due time MQTT events wait for, at most 20 ms, to share a commit:
``[ingest] commit_wait_s``), ingests the opening counts, waits until JetStream holds them and prints
``ready``. Then it answers one command a line on stdin: ``drain`` (the outbox is empty and every
uplink row acknowledged: prints ``drained``), ``stock <sku>`` (prints the ledger's on hand) and
``quit``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gateway_variant import apply_from_env  # noqa: E402
from benchmarks.hub_stage_trace import stage_log, trace_gateway  # noqa: E402
from edge_runtime.config import load_config, with_mqtt  # noqa: E402
from edge_runtime.gateway import Gateway  # noqa: E402

UPLINK_WINDOW_S = "0.02"
# Events wait for the window they would wait for anyway: one commit serves them and the window.
COMMIT_WAIT_S = os.environ.get("HUB_BENCH_COMMIT_WAIT_S", UPLINK_WINDOW_S)


def start_gateway(work: Path, store: str, mqtt_port: int, nats_url: str) -> Gateway:
    """A gateway for ``store`` with its state under ``work/store``, linked to the hub."""
    env = {
        "SHELFCAST_STORE_ID": store,
        "SHELFCAST_STATE_DIR": str(work / store),
        "SHELFCAST_UPLINK_INTERVAL_S": UPLINK_WINDOW_S,
        "SHELFCAST_INGEST_COMMIT_WAIT_S": COMMIT_WAIT_S,
        "SHELFCAST_HUB_URL": nats_url,
        "SHELFCAST_HUB_HEARTBEAT_S": "1",
    }
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=mqtt_port)
    return Gateway(cfg).start()


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    store, work, port, nats_url, counts_path = argv
    apply_from_env()  # BENCH_GATEWAY_VARIANT: an experiment's settings, else none
    gw = start_gateway(Path(work), store, int(port), nats_url)
    log = stage_log(f"gateway-{store}")
    if log is not None:
        trace_gateway(gw, log)
    try:
        if not gw.transport.wait_connected(30):
            raise SystemExit(f"{store}: the gateway did not reach Mosquitto on port {port}")
        counts = [json.loads(line) for line in Path(counts_path).read_text().splitlines()]
        for i in range(0, len(counts), 1000):
            gw.ingest(counts[i : i + 1000], "count")
        gw.hub_link.wait_forwarded(120)
        say("ready")
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "drain":
                gw.flush(60)
                gw.hub_link.wait_forwarded(60)
                say("drained")
            elif cmd == "stock":
                st = gw.stock(arg)
                say(json.dumps(None if st is None else st.on_hand))
            elif cmd == "quit":
                break
    finally:
        gw.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
