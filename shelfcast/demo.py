"""``shelfcast demo`` (what ``make demo`` runs): the whole product on real data, on one machine.

1. Loads the real Online Retail II history (UK as one store, its top SKUs) and holds back the last
   weeks: validation weeks (to tune policies) and test weeks (replayed).
2. Trains the demand and anomaly models on the history before those weeks (ONNX bundle, MLflow on
   SQLite under ``var/mlflow``), or reuses the bundle it trained before for the same cut.
3. Runs the digital twin on the held-out weeks: classic min/max, the edge order-up-to rule on the
   best statsforecast baseline, and on shelfcast's ONNX model + River.
4. Starts an MQTT broker (Mosquitto when installed, else amqtt in-process) and the edge gateway
   (SQLite ledger and outbox) holding the same bundle: it is seeded with the store's real daily
   sales of the weeks before the test (so its own series have history), then the store's real
   invoice lines of the test weeks are replayed over MQTT (plus the opening stock count and the
   receipts of shelfcast's orders from the twin, both labelled synthetic). The gateway closes
   each store day itself: one batched ONNX re-score of every SKU, River correction, stock-out
   and replenishment decisions (``edge_runtime.decide.forecast_policy``); alerts are printed as the
   gateway publishes them.
5. Prints a summary and writes ``var/demo/report.html``.
6. A second act on real shelves (``shelfcast.stockout_act``): one FreshRetailNet store's day
   through its gateway, the intraday stock-out warnings printed as they are published, then how
   many came true against the retailer's own stock-out flags.
7. The network act (``shelfcast.demo_network``; ``--no-network`` skips it): ten M5 stores, the
   hub on NATS JetStream, an online order racing a till for a store's last unit.

>>> sorted(STEPS)[:2]
['1 data', '2 train']
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shelfcast import demo_network

STORE_ID = "UK"  # the gateway's store id for Online Retail's United Kingdom
HISTORY_DAYS = 120  # days of real daily sales the gateway is seeded with (features need 91)
STEPS = ("1 data", "2 train", "3 twin", "4 edge", "5 report", "6 shelves")
TZ = "Europe/London"


@dataclass
class DemoSettings:
    """Sizes of the demo run; ``quick()`` is the short version the test runs.

    >>> DemoSettings.quick().top_skus
    20
    """

    top_skus: int = 50
    test_days: int = 28
    val_days: int = 28
    z_grid: tuple[float, ...] = (0.5, 1.0, 1.645, 2.33, 3.0, 4.0)
    minmax_grid: tuple[float, ...] = (0.0, 1.5, 3.0, 4.5, 6.0)
    baselines: tuple[str, ...] | None = None
    print_alerts: int = 60

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(
            top_skus=20,
            test_days=14,
            val_days=14,
            z_grid=(1.0, 2.33),
            minmax_grid=(1.5, 3.0),
            baselines=("seasonal_naive", "ses", "croston"),
            print_alerts=20,
        )


def say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


# ---- 1-2: data and bundle -------------------------------------------------------------------


def load_store(top_skus: int):
    from training.datasets import online_retail
    from twin.store import DemandPanel

    frame = online_retail(top_skus=top_skus)
    return frame, DemandPanel.from_frame(frame)


def public_key() -> Path:
    """The public half of the key training signs with (created by the first training run)."""
    from training.signing_key import public_key_path, signing_key_path

    return public_key_path(signing_key_path())


def ensure_bundle(frame, cutoff: np.datetime64, out: Path, retrain: bool) -> tuple[Path, dict]:
    """Train on history up to ``cutoff`` (inclusive), or reuse the bundle trained for that cut."""
    from edge_runtime.bundles import BundleTrust, verify
    from models.bundle import BundleError

    source = f"online_retail UK top-{frame['sku'].nunique()} SKUs to {cutoff}"
    meta_path = out / "metadata.json"
    if not retrain and meta_path.exists() and public_key().exists():
        try:
            verify(out, BundleTrust(public_key=str(public_key())))  # as the gateway will
            meta = json.loads(meta_path.read_text())
            if meta.get("data_source") == source:
                say("2 train", f"reusing bundle {out} (model {meta.get('model_version')})")
                return out, meta
        except BundleError as exc:
            say("2 train", f"bundle {out} unusable ({exc}); retraining")
    from training.train import TrainConfig, train

    history = frame[frame["date"] <= np.datetime64(cutoff, "ns")]
    say("2 train", f"training on {len(history):,} rows up to {cutoff} (quick config)")
    result = train(history, out, TrainConfig.quick_config(), source, track=True, quick=True)
    return result.bundle, result.metadata


# ---- 4: the edge stream ---------------------------------------------------------------------


def edge_stream(panel, run, lead_time: int) -> list[dict]:
    """The test weeks as edge events: an opening count (the twin's starting stock), the store's
    real invoice lines of those days, and receipts of shelfcast's orders from the twin."""
    import pandas as pd

    from twin.replay import online_retail_events

    days = panel.dates[run.start : run.end]
    first, last = str(days[0]), str(days[-1])
    skus = {str(s) for s in panel.skus}
    real = [
        e
        for e in online_retail_events(store_id=STORE_ID)
        if e["sku"] in skus and first <= e["event_time"][:10] <= last
    ]

    def at(day: np.datetime64, hour: int) -> str:
        return pd.Timestamp(str(day)).replace(hour=hour).tz_localize(TZ).isoformat()

    synthetic = []
    for i, sku in enumerate(panel.skus):
        synthetic.append(
            _event(f"TWIN-COUNT-{sku}", sku, "cycle_count", run.extra["start_stock"][i],
                   at(days[0], 5), "count", "synthetic opening count (twin starting stock)")
        )  # fmt: skip
        for d in np.flatnonzero(run.orders[i] > 0):
            arrive = int(d) + lead_time
            if arrive < len(days):
                synthetic.append(
                    _event(f"TWIN-RCPT-{sku}-{d}", sku, "receipt", run.orders[i, d],
                           at(days[arrive], 6), "wms", "synthetic receipt of a shelfcast order")
                )  # fmt: skip
    events = real + synthetic
    order = pd.to_datetime([e["event_time"] for e in events], utc=True).argsort(kind="stable")
    return [events[i] for i in order]


def history_batches(frame, panel, run) -> list[list[dict]]:
    """The store's real daily sales of the ``HISTORY_DAYS`` before the test weeks, one batch per
    day, opened by one receipt per SKU sized so that the book at the test start equals the
    twin's starting stock (the synthetic opening count then finds no difference)."""
    import pandas as pd

    start = panel.dates[run.start]
    first = start - np.timedelta64(HISTORY_DAYS, "D")
    dates = frame["date"].to_numpy().astype("datetime64[D]")
    past = frame[(dates >= first) & (dates < start)]
    sold = past.groupby(past["sku"].astype(str))["units"].sum()

    def at(day, hour: int) -> str:
        return pd.Timestamp(str(day)[:10]).replace(hour=hour).tz_localize(TZ).isoformat()

    opening_qty = [
        run.extra["start_stock"][i] + sold.get(str(sku), 0.0) for i, sku in enumerate(panel.skus)
    ]
    opening = [
        _event(f"HIST-OPEN-{sku}", sku, "receipt", qty, at(first, 5), "wms",
               "synthetic opening stock of the seeded history")
        for sku, qty in zip(panel.skus, opening_qty, strict=True)
        if qty > 0  # a SKU with no stock and no sales to seed gets no receipt (qty must be > 0)
    ]  # fmt: skip
    by_day: dict[str, list[dict]] = {}
    for sku, day, units in zip(past["sku"].astype(str), past["date"], past["units"], strict=True):
        if units <= 0:  # a day whose orders were all cancelled: no sale to seed (qty must be > 0)
            continue
        text = f"{day:%Y-%m-%d}"
        by_day.setdefault(text, []).append(
            _event(f"HIST-{sku}-{text}", sku, "sale", units, at(text, 12), "pos",
                   "real daily units of the history")
        )  # fmt: skip
    return [opening] + [by_day[d] for d in sorted(by_day)]


def _event(eid, sku, kind, qty, when, source, reason) -> dict:
    return {
        "event_id": eid,
        "store_id": STORE_ID,
        "sku": str(sku),
        "type": kind,
        "qty": int(qty),
        "event_time": when,
        "source": source,
        "reason": reason,
    }


def batches(events: list[dict], size: int = 500):
    """Consecutive runs of one source, at most ``size`` events each (order kept)."""
    chunk: list[dict] = []
    for e in events:
        if chunk and (len(chunk) >= size or e["source"] != chunk[0]["source"]):
            yield chunk[0]["source"], chunk
            chunk = []
        chunk.append(e)
    if chunk:
        yield chunk[0]["source"], chunk


class AlertPrinter:
    """Subscribes to the store's alert and conflict topics and prints each message as it arrives,
    up to ``limit`` of each kind (so a run of replenishment triggers cannot hide the stock-out
    alerts); every message is counted."""

    def __init__(self, host: str, port: int, prefix: str, limit: int, write=print):
        import paho.mqtt.client as mqtt

        self.received: list[dict] = []
        self.limit = limit
        self._printed: Counter[str] = Counter()
        self.write = write
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shelfcast-demo-ui")
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{prefix}/{STORE_ID}/alerts/#", 1), (f"{prefix}/{STORE_ID}/conflicts", 1)]
        )
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise TimeoutError("could not subscribe to the alert topics")

    def _on_message(self, client, userdata, msg) -> None:
        body = json.loads(msg.payload)
        kind = str(body.get("kind", "?"))
        with self._lock:
            self.received.append(body)
            self._printed[kind] += 1
            n = self._printed[kind]
        if n <= self.limit:
            self.write(describe(body))
        elif n == self.limit + 1:
            self.write(
                f"  ... (printing of {kind} messages stops at {self.limit}; all are counted and "
                "in the report)"
            )

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def describe(m: dict) -> str:
    """One console line for an outgoing message."""
    when = str(m.get("event_time", ""))[:16].replace("T", " ")
    if m.get("kind") == "stockout":
        return (
            f"  ALERT stockout  {when}  sku {m['sku']:<7} p={m['probability']:.2f} "
            f"atp={m.get('atp')}  {','.join(m.get('reason_codes', []))}"
        )
    if m.get("kind") == "conflict":
        return f"  conflict        {when}  sku {m.get('sku')}  {m.get('rule')}"
    return f"  ALERT {m.get('kind', '?'):<9} {when}  sku {m.get('sku')}"


def replay_through_gateway(panel, run, frame, bundle: Path, settings, out: Path, args):
    """Start broker + gateway (with ``bundle``), seed the history, publish the test weeks'
    stream, collect alerts; returns stats."""
    import paho.mqtt.client as mqtt
    from tqdm import tqdm

    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.gateway import Gateway
    from shelfcast.broker import EmbeddedBroker
    from twin.stockout_replay import wait_handled

    events = edge_stream(panel, run, run.extra["lead_time"])
    kinds = Counter(e["type"] for e in events)
    say(
        "4 edge",
        f"{len(events):,} events for {panel.n_skus} SKUs: "
        + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()),
    )
    broker = EmbeddedBroker(prefer=args.broker, work_dir=out / "broker").start()
    say("4 edge", f"MQTT broker: {broker.kind} on 127.0.0.1:{broker.port}")
    state = out / "gateway"
    shutil.rmtree(state, ignore_errors=True)  # a fresh store each run
    env = {
        "SHELFCAST_STORE_ID": STORE_ID,
        "SHELFCAST_STATE_DIR": str(state),
        "SHELFCAST_BUNDLE": str(bundle),
        "SHELFCAST_MODEL_PUBLIC_KEY": str(public_key()),
        "SHELFCAST_MODEL_LEAD_TIME_DAYS": str(run.extra["lead_time"]),
    }
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)
    history = history_batches(frame, panel, run)
    seeded = sum(len(b) for b in history)
    stats: dict = {"broker": broker.kind, "events": len(events), "event_types": dict(kinds)}
    stats["history_events"] = seeded
    gw = printer = pub = None
    try:
        gw = Gateway(cfg)
        gw.seed_history(history)  # nothing is sent about the past: its alerts would be stale
        say("4 edge", f"gateway seeded with {seeded:,} history events ({HISTORY_DAYS} days, "
            f"{gw.counters['day_closes']} day closes re-scored by the gateway)")  # fmt: skip
        gw.start()
        # A first connection's session holds nothing published before its SUBSCRIBE: wait for it.
        if not gw.transport.wait_connected(30):
            raise RuntimeError(f"the gateway did not subscribe on {broker.kind} within 30 s")
        say("4 edge", f"gateway up: ledger {cfg.ledger_path}, model {gw.model_version}")
        printer = AlertPrinter(
            "127.0.0.1", broker.port, cfg.mqtt.topic_prefix, settings.print_alerts, tqdm.write
        )
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shelfcast-demo-replayer")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        t0 = time.perf_counter()
        with tqdm(total=len(events), unit="ev", desc="replay", file=sys.stdout) as bar:
            sent, last_source = 0, None
            for source, chunk in batches(events):
                if source != last_source and not wait_handled(gw, seeded + sent, 30):
                    # Topics are separate queues: the gateway takes everything sent so far
                    # before the topic changes, so receipts and sales keep their event order.
                    tqdm.write(f"  the gateway stopped ingesting after {sent} events; see its log")
                    break
                topic = f"{cfg.mqtt.topic_prefix}/{STORE_ID}/events/{source}"
                pub.publish(topic, json.dumps(chunk), qos=1).wait_for_publish(30)
                sent, last_source = sent + len(chunk), source
                bar.update(len(chunk))
        done = wait_handled(gw, seeded + len(events), timeout=120)
        stats["replay_seconds"] = time.perf_counter() - t0
        gw.flush(30)
        time.sleep(1.0)  # let the last alerts reach the printer
        stats.update(counters=dict(gw.counters), all_ingested=done, outbox_depth=gw.outbox_depth())
        stats["messages"] = list(printer.received)
    finally:
        for thing in (pub,):
            if thing is not None:
                thing.loop_stop()
                thing.disconnect()
        if printer is not None:
            printer.stop()
        if gw is not None:
            gw.close()
        broker.stop()
    return stats


# ---- 5: report ------------------------------------------------------------------------------


def build_report(path: Path, panel, cmp, forecasts, stats, meta, settings) -> Path:
    from shelfcast.demo_figures import forecast_figure, stock_figure
    from shelfcast.report import alerts_table, figure_html, write_report

    sc, mm = cmp.test_run("shelfcast"), cmp.test_run("minmax")
    days = panel.dates[sc.start : sc.end]
    top = np.argsort(-sc.demand.sum(axis=1), kind="stable")[:6]
    alerts_by_sku: dict[str, list] = {}
    for m in stats.get("messages", []):
        if m.get("kind") == "stockout" and m.get("event_time"):
            day = np.datetime64(str(m["event_time"])[:10], "D")
            if days[0] <= day <= days[-1]:  # alerts on the seeded history are not in these charts
                alerts_by_sku.setdefault(m["sku"], []).append(day)
    forecast_panels, stock_panels = [], []
    for i in top:
        sku = str(panel.skus[i])
        # the forecast for day d was made at the close of day d-1 (horizon 1)
        mean = np.concatenate([[np.nan], forecasts.mean[i, :-1, 0]])
        p90 = np.concatenate([[np.nan], forecasts.p90[i, :-1, 0]])
        forecast_panels.append(
            {"days": days, "actual": sc.demand[i], "mean": mean, "p90": np.nan_to_num(p90),
             "title": f"SKU {sku}"}
        )  # fmt: skip
        stock_panels.append(
            {"days": days, "shelfcast": sc.on_hand[i], "minmax": mm.on_hand[i],
             "alerts": sorted(set(alerts_by_sku.get(sku, []))),
             "lost": list(days[sc.lost[i] > 0]), "title": f"SKU {sku}"}
        )  # fmt: skip
    messages = stats.get("messages", [])
    kinds = Counter(m.get("kind") for m in messages)
    mlflow_cmd = "mlflow ui --backend-store-uri sqlite:///var/mlflow/mlflow.db"
    sections = [
        (
            "What ran",
            f"<p>Store <b>{panel.store_id}</b> (Online Retail II, real invoice lines), top "
            f"{panel.n_skus} SKUs. Model bundle <code>{meta.get('model_version')}</code> trained on "
            f"data up to <b>{_train_end(meta)}</b>; validation weeks {cmp.windows['validation'][0]} .. "
            f"{cmp.windows['validation'][1]}; test weeks {cmp.windows['test'][0]} .. "
            f"{cmp.windows['test'][1]} (held out from training).</p>"
            f"<p>Edge replay: the gateway was seeded with {stats['history_events']:,} events of "
            f"real daily sales before the test weeks, then {stats['events']:,} events came over "
            f"MQTT ({stats['broker']}); {stats['counters'].get('ingested', 0):,} ingested into "
            f"the SQLite ledger in all, the replay took {stats.get('replay_seconds', 0):.1f} s; "
            f"the gateway closed {stats['counters'].get('day_closes', 0)} store days itself "
            "(one batched ONNX re-score of every SKU each); messages received by a subscriber: "
            + (", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())) or "none")
            + " (all listed under Alerts below).</p>",
        ),
        ("Policy comparison (test weeks, digital twin)", policy_section(cmp)),
        (
            "Forecasts against actuals (top SKUs)",
            figure_html(
                forecast_figure(
                    forecast_panels,
                    "Day-ahead forecast (made at the previous close) against real demand, "
                    "test weeks",
                ),
                "forecast against actual demand per SKU",
            ),
        ),
        (
            "Stock trajectories with alerts",
            figure_html(stock_figure(stock_panels), "stock on hand per SKU with alerts")
            + "<p class='note'>▼ a stock-out alert the gateway published that day; × a day "
            "real demand found shelfcast's shelf empty (lost sales).</p>",
        ),
        ("Alerts and conflicts from the gateway", alerts_table(messages)),
        (
            "MLflow",
            f"<p>Runs, metrics and registered model versions (run <code>{meta.get('mlflow_run_id')}"
            f"</code>): from the project root run <code>{mlflow_cmd}</code> and open "
            "<a href='http://127.0.0.1:5000'>http://127.0.0.1:5000</a>.</p>",
        ),
    ]
    return write_report(path, "shelfcast demo", sections)


def policy_section(cmp) -> str:
    """The policy table (the console's names and headers), what each policy is, and each
    against min/max."""
    from shelfcast.report import table
    from twin.simulate import COLUMN_LABELS, FAMILIES, TABLE_COLUMNS

    rows = cmp.table()
    summary = cmp.summary()
    versus = [
        {
            "policy": r["policy"],
            "lost": _percent(summary.get(f"{r['policy']}_lost_sales_reduction_vs_minmax")),
            "inventory": _percent(summary.get(f"{r['policy']}_inventory_ratio_vs_minmax")),
            "equal": _percent(
                summary.get(f"{r['policy']}_lost_reduction_at_equal_inventory_interpolated")
            ),
        }
        for r in rows
        if r["policy"] != "minmax"
    ]
    rules = "".join(
        f"<dt>{r['policy']}</dt><dd>{FAMILIES.get(r['policy'], '')}; chosen parameter "
        f"{r['parameter']:g}</dd>"
        for r in rows
    )
    return (
        table(rows, {c: COLUMN_LABELS.get(c, c) for c in TABLE_COLUMNS})
        + "<p class='note'>Each policy's parameter was chosen on the validation weeks: the "
        "fewest lost units at no more average inventory than min/max at its default. Lost "
        "units and stock-outs are counted where real demand found an empty shelf. Stock-out "
        "columns: P(out within the lead time) against what happened in the twin, alert "
        "threshold 0.5.</p>"
        + table(
            versus,
            {
                "policy": "Policy",
                "lost": "Lost sales vs min/max (reduction)",
                "inventory": "Avg inventory vs min/max",
                "equal": "Lost-sales reduction at min/max's inventory (interpolated)",
            },
        )
        + f"<dl class='rules'>{rules}</dl>"
    )


def _percent(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def _train_end(meta: dict) -> str:
    return str((meta.get("training_data") or {}).get("end", "?"))[:10]


# ---- the command ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:  # `shelfcast demo`
    parser.add_argument("--quick", action="store_true", help="short version: 20 SKUs, 2+2 weeks")
    parser.add_argument("--top-skus", type=int, default=None, help="SKUs of the store (default 50)")
    parser.add_argument("--out", default="var/demo", help="working directory and report")
    parser.add_argument("--retrain", action="store_true", help="train even if a bundle exists")
    parser.add_argument(
        "--broker", default="auto", choices=["auto", "mosquitto", "amqtt"], help="MQTT broker"
    )
    demo_network.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from configuration.data_dir import DataMissingError
    from shelfcast.stockout_act import run_act
    from training.library_noise import silence_library_noise
    from twin.simulate import COLUMN_LABELS, TABLE_COLUMNS, compare_policies, markdown
    from twin.store import StoreConfig

    silence_library_noise()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    if args.top_skus:
        settings.top_skus = args.top_skus
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        frame, panel = load_store(settings.top_skus)
    except DataMissingError as exc:
        print(f"shelfcast demo: {exc}", file=sys.stderr)
        return 1
    test0 = panel.n_days - settings.test_days
    val0 = test0 - settings.val_days
    cutoff = panel.dates[val0 - 1]
    say("1 data", f"store {panel.store_id}: {panel.n_skus} SKUs, {panel.dates[0]} .. {panel.dates[-1]}; "
        f"held out from {panel.dates[val0]} (validation) and {panel.dates[test0]} (test)")  # fmt: skip
    bundle, meta = ensure_bundle(frame, cutoff, out / "bundle", args.retrain)

    config = StoreConfig()
    say("3 twin", "replaying held-out demand through the simulated store (3 policies)")
    cmp = compare_policies(
        panel,
        ["shelfcast", "statsforecast"],
        config,
        str(bundle),
        settings.test_days,
        settings.val_days,
        settings.z_grid,
        settings.minmax_grid,
        settings.baselines,
        progress=lambda i, n, what: say("3 twin", f"  [{i}/{n}] {what}"),
    )
    sc = cmp.test_run("shelfcast")
    sc.extra["lead_time"] = config.lead_time
    forecasts = _forecasts(panel, sc)

    say("4 edge", "starting the edge runtime and replaying the test weeks' real stream")
    stats = replay_through_gateway(panel, sc, frame, bundle, settings, out, args)

    report = build_report(out / "report.html", panel, cmp, forecasts, stats, meta, settings)
    kinds = Counter(m.get("kind") for m in stats["messages"])
    c = stats["counters"]
    print("\n## Summary\n")
    print(markdown([
        {"what": "events replayed over MQTT", "value": stats["events"]},
        {"what": "history events seeded", "value": stats["history_events"]},
        {"what": "day closes re-scored by the gateway", "value": c["day_closes"]},
        {"what": "ingested / duplicates / rejected", "value": f"{c['ingested']} / {c['duplicates']} / {c['rejected']}"},
        {"what": "stock-out alerts received", "value": kinds.get("stockout", 0)},
        {"what": "conflicts received", "value": kinds.get("conflict", 0)},
        {"what": "outbox still pending", "value": stats["outbox_depth"]},
        {"what": "replay seconds", "value": round(stats.get("replay_seconds", 0.0), 2)},
    ], ("what", "value")))  # fmt: skip
    print(f"Policy comparison, test weeks {cmp.windows['test'][0]} .. {cmp.windows['test'][1]}:\n")
    print(markdown(cmp.table(), TABLE_COLUMNS, COLUMN_LABELS))
    for k, v in cmp.summary().items():
        print(f"{k}: {'n/a' if v is None else round(v, 4)}")
    print(f"\nreport: {report.resolve()}")
    print("MLflow UI: mlflow ui --backend-store-uri sqlite:///var/mlflow/mlflow.db")
    print("\n## Second act: warnings on real shelves\n")
    shelves = run_act(bundle, out, args.broker)
    network_ok = demo_network.run_network_act(args, out)
    print(f"demo took {time.perf_counter() - t0:.0f} s")
    (out / "summary.json").write_text(
        json.dumps(
            {"summary": cmp.summary(), "policies": cmp.table(), "edge": {k: v for k, v in stats.items() if k != "messages"},
             "alerts": dict(kinds), "shelves": shelves, "seconds": time.perf_counter() - t0},
            indent=2, default=str,
        )
    )  # fmt: skip
    return 0 if stats["all_ingested"] and shelves["all_ingested"] and network_ok else 1


def _forecasts(panel, run):
    from edge_runtime.decide.forecast_policy import DailyForecasts

    trace = run.extra["policy"].trace  # what the gateway's day close forecast each day
    days = range(run.start, run.end)
    h = min(trace[d][0].shape[1] for d in days)
    mean = np.stack([trace[d][0][:, :h] for d in days], axis=1)
    p90 = np.stack([trace[d][1][:, :h] for d in days], axis=1)
    return DailyForecasts([str(s) for s in panel.skus], panel.dates[run.start], mean, p90)
