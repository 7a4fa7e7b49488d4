"""The demo's second act: a real FreshRetailNet store's shelves, warned live, then checked.

One store of the data set (every SKU it sells), its warning model trained on the days before the
replayed one of that store and three more (``TRAIN_STORES``), added to the demo's bundle (``training.stockout_warning.bundle_with_warning``);
its gateway is seeded with the 14 days before, then one day goes over MQTT hour by hour
(:mod:`twin.stockout_replay`). Each intraday warning is printed as the gateway publishes it,
and a closing line says how many came true: the shelf was empty within the 4 hours after.

>>> ACT
'6 shelves'
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ACT = "6 shelves"
STORE_SEED = 3  # which stores: the first has enough stock-outs in the replayed day to show
TRAIN_STORES = 4
PRINT_ALERTS = 12


def _print(step: str):
    shown = {"n": 0}

    def write(m: dict) -> None:
        if m.get("episode") != "open" or shown["n"] >= PRINT_ALERTS:
            return
        shown["n"] += 1
        ev = m.get("evidence", {})
        hour = int(ev.get("hour", 0))
        print(
            f"[{step}] WARNING sku {m['sku']} after {hour:02d}:00-{hour + 1:02d}:00: "
            f"P(out within {m['horizon_hours']:.0f} h) = {m['probability']:.2f} "
            f"(sold today {ev.get('sold_today', 0):g}, expected next 4 h "
            f"{ev.get('expected_next_4h', 0):.0f})",
            flush=True,
        )

    return write


def _panel(out: Path):
    """The act's stores, kept in ``out`` after the first run: reading the whole data set to
    pick them takes longer than the act itself."""
    from dataclasses import fields

    from training.freshretailnet import HourlyPanel, in_till_units, load_hourly

    cache = out / "shelves-panel.npz"
    if cache.exists():
        with np.load(cache) as z:
            return HourlyPanel(**{f.name: z[f.name] for f in fields(HourlyPanel)})
    panel = in_till_units(load_hourly(stores=TRAIN_STORES, seed=STORE_SEED))
    np.savez(cache, **{f.name: getattr(panel, f.name) for f in fields(HourlyPanel)})
    return panel


def _warning_bundle(panel, live: int, base_bundle: Path, out: Path) -> Path:
    """The demo's bundle plus the warning trained on the days before ``live``; the one built
    before is reused while it verifies and was built on the same demo bundle."""
    import json

    from edge_runtime.bundles import BundleTrust, verify
    from models.bundle import BundleError
    from training import stockout_warning as sw
    from training.signing_key import public_key_path, signer_for, signing_key_path

    target = out / "bundle-shelves"
    base = json.loads((Path(base_bundle) / "metadata.json").read_text())["model_version"]
    try:
        meta = verify(target, BundleTrust(public_key=str(public_key_path(signing_key_path()))))
        if meta.metadata.get(sw.WARNING_MODEL, {}).get("base_model_version") == base:
            return target
    except BundleError:
        pass
    rows = sw.warning_rows(panel)
    train = rows.take(rows.day < live)
    model = sw.fit(train, n_estimators=60)
    threshold = sw.best_f1_threshold(train.y, model.predict_proba(train.X)[:, 1])
    return sw.bundle_with_warning(
        base_bundle, target, sw.to_onnx(model, len(sw.FEATURES)), train.X, threshold,
        signer_for(None, say=lambda _m: None), {"base_model_version": base},
    )  # fmt: skip


def run_act(base_bundle: Path, out: Path, broker_prefer: str = "auto") -> dict:
    """Train (or reuse), bundle, replay one store-day live; returns the scores (see module
    docstring)."""
    from shelfcast.broker import EmbeddedBroker
    from training.signing_key import public_key_path, signing_key_path
    from twin.stockout_replay import AlertCollector, replay_store, score, store_stream

    t0 = time.perf_counter()
    panel = _panel(out)
    live = panel.n_days - 1
    store = panel.store[0]
    mine = np.flatnonzero(panel.store == store)
    print(f"[{ACT}] FreshRetailNet store {store}: {len(mine)} SKUs with the retailer's hourly "
          f"stock-out flags; training the 4-hour warning on {TRAIN_STORES} stores' days before "
          f"{panel.dates[live]}", flush=True)  # fmt: skip
    bundle = _warning_bundle(panel, live, base_bundle, out)
    stream = store_stream(panel, mine, live, 1)
    broker = EmbeddedBroker(prefer=broker_prefer, work_dir=out / "broker-shelves").start()
    collector = AlertCollector(broker.port, "shelfcast", write=_print(ACT))
    print(f"[{ACT}] gateway for store {store} seeded with 14 days; {stream.live_events} events of "
          f"{panel.dates[live]} go over MQTT ({broker.kind}), warnings as they are published:",
          flush=True)  # fmt: skip
    try:
        r = replay_store(stream, bundle, public_key_path(signing_key_path()), broker.port,
                         out / "gateway-shelves", collector)  # fmt: skip
    finally:
        collector.stop()
        broker.stop()
    figures = score(panel, [r], live_days=1)
    shown = min(figures.get("alerts", 0), PRINT_ALERTS)
    more = figures.get("alerts", 0) - shown
    if more > 0:
        print(f"[{ACT}] ... and {more} more")
    print(
        f"[{ACT}] {figures.get('alerts', 0)} warnings published, {figures.get('alerts_true', 0)} "
        f"came true (the shelf was empty within 4 h; median lead "
        f"{figures.get('median_lead_hours')} h); all {figures.get('predictions', 0)} hourly "
        f"predictions: ROC AUC {figures.get('roc_auc') or float('nan'):.2f} against the real flags "
        f"({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    figures["all_ingested"] = r.all_ingested
    return figures
