"""CPU of acknowledging a backlog of QoS 1 events: one PUBACK write per event, or one per commit.

    python benchmarks/mqtt_acks.py --events 20000 --group 1000 --pairs 3 --json out.json

Real Mosquitto on the shipped configuration (``tests.mosquitto``), the gateway's own transport
(``edge_runtime.transport.mqtt.MqttTransport``, pinned with ``taskset`` when ``--cpu`` is
given). Per run, ``--events`` one-event QoS 1 messages wait in the transport's persistent
session; it receives them and, like the gateway's intake after each commit, acknowledges what
it holds in groups of up to ``--group``: ``per_event`` with paho's ``ack`` for each (the
gateway before), ``per_commit`` with ``LeanClient.ack_many`` for the group. The figure is the
process's CPU seconds from the first event received to the last acknowledgement written, per
1,000 events; the two ways alternate, ``--pairs`` times each, and the medians are reported.
Nothing but acknowledging differs: no ledger, no decisions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import child_figures, show_figures  # noqa: E402


def _child(args: argparse.Namespace) -> int:
    """One run: drain ``--expect`` queued events, acknowledging them the ``--mode`` way."""
    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.transport.mqtt import MqttTransport

    held: list[tuple[int, int]] = []
    cfg = with_mqtt(
        load_config(env={"SHELFCAST_STORE_ID": "S1"}),
        host="127.0.0.1",
        port=args.port,
        client_id=args.client_id,
    )
    t = MqttTransport(cfg, on_payload=lambda p, s, mid, qos: held.append((mid, qos)),
                      model_version="m")  # fmt: skip
    t.start()
    if not t.wait_connected(10):
        raise SystemExit("no connection")
    done, cpu = acknowledge(t, held, args.expect, args.group, args.mode == "per_commit")
    t.stop()
    print(json.dumps({"mode": args.mode, "acked": done, "cpu_s": round(cpu, 4)}), flush=True)
    return 0


def acknowledge(t, held: list[tuple[int, int]], expect: int, group: int,
                per_commit: bool = True, timeout_s: float = 300) -> tuple[int, float]:  # fmt: skip
    """Acknowledge ``expect`` messages as connected transport ``t`` receives them into ``held``
    (``(mid, qos)``, appended by paho's thread), up to ``group`` at a time: in one write
    (``MqttTransport.ack``, the gateway's intake after a commit) or, without ``per_commit``,
    one paho ``ack`` each. Returns how many were acknowledged and the process's CPU seconds
    from the first held to the last acknowledgement written (``full_path_floor.py`` too)."""
    done, cpu0, deadline = 0, None, time.monotonic() + timeout_s
    while done < expect and time.monotonic() < deadline:
        if not held:
            time.sleep(0.0005)
            continue
        if cpu0 is None:
            cpu0 = time.process_time()
        taken = held[:group]
        del held[: len(taken)]  # list ops are atomic under the GIL: paho appends meanwhile
        if per_commit:
            t.ack(taken)
        else:
            for mid, qos in taken:
                t.client.ack(mid, qos)
        done += len(taken)
    while t.client._out_packet and time.monotonic() < deadline:  # the last PUBACKs written
        time.sleep(0.0005)
    return done, time.process_time() - (cpu0 or time.process_time())


def _run(args: argparse.Namespace, port: int, mode: str, client_id: str, expect: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--mode", mode,
           "--port", str(port), "--client-id", client_id, "--expect", str(expect),
           "--group", str(args.group)]  # fmt: skip
    if args.cpu:
        cmd = ["taskset", "-c", args.cpu, *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return child_figures(cmd, env, 600, "acknowledging child")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--group", type=int, default=1000, help="events acknowledged together")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each way, alternated")
    parser.add_argument("--cpu", default="0", help="core(s) for taskset ('' to not pin)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-id", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    from tests.mosquitto import Mosquitto

    broker = Mosquitto(Path(tempfile.mkdtemp(prefix="shelfcast-acks-"))).start()
    modes = ("per_event", "per_commit")
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    load = []
    try:
        for m in modes:  # the persistent sessions exist before the events are sent
            _run(args, broker.port, m, f"acks-{m}", 0)
        for i in range(args.pairs):
            lines = b"".join(b'{"n":%d}\n' % n for n in range(args.events))
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t",
                            "shelfcast/S1/events/pos", "-q", "1", "-l", "-i", "acks-tills"],
                           input=lines, check=True, timeout=300)  # fmt: skip
            for m in modes if i % 2 == 0 else modes[::-1]:
                load.append(round(os.getloadavg()[0], 2))
                res = _run(args, broker.port, m, f"acks-{m}", args.events)
                res["cpu_ms_per_1000"] = round(1000 * res["cpu_s"] / res["acked"] * 1000, 2)
                res["loadavg_1m"] = load[-1]
                runs[m].append(res)
                print(json.dumps(res), file=sys.stderr, flush=True)
    finally:
        broker.stop()
    result: dict = {"events": args.events, "group": args.group, "loadavg_1m": load, "runs": runs}
    for m in modes:
        result[f"median_cpu_ms_per_1000_{m}"] = statistics.median(
            r["cpu_ms_per_1000"] for r in runs[m]
        )
    show_figures(result, args.json, unprinted=("runs",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
