"""A full disk under a running gateway: how much is lost or mis-stated, and does it resume alone?

Real Online Retail II events (the United Kingdom store, with the replayer's synthetic counts and
receipts) go over a real Mosquitto into a gateway whose state directory is a small tmpfs. A
quarter of the way in the filesystem is filled to the last block; the rest is published while
the disk refuses writes; after ``--stall-s`` seconds the filler is deleted. Nothing restarts.
Figures: events lost (published, acknowledged by the broker, never in the ledger), SKUs whose
state disagrees with a re-fold of the log (during the stall and after), dead letters, whether
``/ready`` said so, and how long the gateway took to apply the held events once space was back.
Needs root (it mounts a tmpfs).

    SHELFCAST_DATA_DIR=/work/shared/data python benchmarks/disk_full.py --events 40000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import show_figures  # noqa: E402

STORE = "UK"
PER_MESSAGE = 50


def publish(port: int, events: list[dict]) -> None:
    """QoS 1, one JSON array of ``PER_MESSAGE`` events per message, each PUBACK awaited."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="disk-full-till")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [
            client.publish(
                f"shelfcast/{STORE}/events/pos", json.dumps(events[i : i + PER_MESSAGE]), 1
            )
            for i in range(0, len(events), PER_MESSAGE)
        ]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        client.disconnect()
        client.loop_stop()


def episode(events: list[dict], work: Path, stall_s: float) -> dict:
    """One full-disk episode (see the module docstring); returns its figures."""
    from api.runtime import runtime_for
    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.gateway import Gateway
    from tests.mosquitto import Mosquitto, wait
    from tests.small_disk import fill, mount_small_disk, unmount

    disk = work / "disk"
    mount_small_disk(disk, "64m")
    broker = Mosquitto(work / "broker").start()
    env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(disk / "state")}
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)
    gw = Gateway(cfg).start()
    out: dict = {"events": len(events), "skus": len({e["sku"] for e in events})}
    try:
        assert gw.transport.wait_connected(30), "gateway never connected"
        first = len(events) // 4
        publish(broker.port, events[:first])
        wait(lambda: gw.ledger.event_count() >= first, 60, step=0.05)
        filler = fill(disk)
        publish(broker.port, events[first:])
        out["noticed"] = wait(lambda: "ledger" in gw.problems(), 60, step=0.05)
        time.sleep(stall_s)
        checks = runtime_for(gw).checks()
        out["ready_during_stall"] = checks.get("ledger", "")[:200]
        out["applied_during_stall"] = gw.ledger.event_count()
        out["verify_mismatch_skus_during_disk_full"] = len(gw.ledger.verify())
        filler.unlink()
        freed = time.monotonic()
        wait(lambda: gw.ledger.event_count() >= len(events), 300, step=0.05)
        out["resumed_in_s"] = round(time.monotonic() - freed, 3)
        out["disk_full_lost"] = len(events) - gw.ledger.event_count()
        out["verify_mismatch_skus_after_disk_full"] = len(gw.ledger.verify())
        out["dead_letters"] = len(gw.ledger.dead_letters(1_000_000))
        out["broker_connects"] = gw.transport.connects  # 1: no reconnect was needed
        out["ready_after"] = runtime_for(gw).checks().get("ledger")
    finally:
        gw.close()
        broker.stop()
        unmount(disk)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000, help="real events to replay")
    parser.add_argument("--stall-s", type=float, default=5.0, help="seconds the disk stays full")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("disk_full.py: needs root to mount a tmpfs", file=sys.stderr)
        return 2
    from twin.replay import online_retail_events

    events = online_retail_events("United Kingdom", STORE, limit=args.events, restock=True)
    with tempfile.TemporaryDirectory(prefix="disk-full-") as tmp:
        figures = episode(events, Path(tmp), args.stall_s)
    figures["load_average"] = os.getloadavg()
    show_figures(figures, args.json)
    return 0 if figures["disk_full_lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
