"""A store day's close review of every SKU: states as a list of ``StockState`` vs as columns.

    python benchmarks/close_review.py --events 10000 --runs 20 --json out.json

A gateway (MQTT off, the signed ``latency_bundle``) drains ``--events`` live events after the
cached 1M-event history (``benchmarks/history.py``); then its own forecast policy reviews every
SKU of the store at the last event's time, as a close does, ``--runs`` times each way in
alternation, each on a fresh copy of the policy (its monitor and open orders): ``list`` builds a
``StockState`` for every SKU first (the review before ``edge_runtime.store.state_columns``),
``columns`` hands it ``StateColumns``. The calling thread's CPU per review, and whether both
ways decided the same messages.
"""

from __future__ import annotations

import argparse
import copy
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
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000, help="live events drained first")
    parser.add_argument("--runs", type=int, default=20, help="reviews each way")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    from benchmarks.history import STORE, copy_ledger, live_events
    from benchmarks.latency import latency_bundle
    from edge_runtime.config import load_config, with_section
    from edge_runtime.gateway import Gateway
    from edge_runtime.store.open_transaction import skus_in_order
    from edge_runtime.store.state_columns import StateColumns
    from edge_runtime.store.stock import StockState
    from training.signing_key import public_key_path, signing_key_path

    state = Path(tempfile.mkdtemp(prefix="shelfcast-close-review-"))
    copy_ledger(args.history, state)
    env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(state),
           "SHELFCAST_MQTT_ENABLED": "false"}  # fmt: skip
    bundle = latency_bundle(ROOT / "var/bench/latency_bundle")
    cfg = with_section(load_config(env=env), "model", bundle=str(bundle),
                       public_key=str(public_key_path(signing_key_path())))  # fmt: skip
    events = live_events(args.history, args.events)
    with Gateway(cfg) as gw:
        for i in range(0, len(events), 1000):
            gw.ingest(events[i : i + 1000], "bench")
        led, base = gw.ledger, gw.engine.policy
        stored = led.folded_states()
        states = [stored[k] for k in skus_in_order(led.connection) if stored[k] is not None]
        as_of, buffer, at = led.clock_us, led.safety_buffer, events[-1]["event_time"]
        as_of_us = [max(as_of, s.last_us) for s in states]

        def listed(policy):
            built = [StockState.of(s, buffer, t) for s, t in zip(states, as_of_us, strict=True)]
            return policy.review(built, {}, at)

        def columns(policy):
            return policy.review(StateColumns.of_sku_states(states, buffer, as_of_us), {}, at)

        ways = {"list": listed, "columns": columns}
        spent: dict[str, list[float]] = {w: [] for w in ways}
        decided: dict[str, list] = {}
        for r in range(args.runs):
            for way in list(ways) if r % 2 == 0 else list(ways)[::-1]:
                policy = copy.deepcopy(base)
                t0 = time.thread_time()
                out = ways[way](policy)
                spent[way].append(time.thread_time() - t0)
                decided[way] = sorted(m.to_json().split(b'"created_at"')[0] for m in out)
    figures = {"skus": len(states), "messages": len(decided["list"]),
               "same_decisions": decided["list"] == decided["columns"]}  # fmt: skip
    for way, times in spent.items():
        figures[f"{way}_ms_median"] = round(1000 * statistics.median(times), 2)
        figures[f"{way}_ms_min"] = round(1000 * min(times), 2)
    show_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
