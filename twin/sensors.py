"""Sensor simulator: shelf-weight and RFID streams consistent with a real POS replay, plus labels.

Given POS sale events (edge event dicts, as ``twin.replay`` produces them), :func:`simulate`
builds what a store's sensors would have seen, and injects labelled incidents from a seed:

- **every sale** is preceded by a pick from the shelf (``pick_lead_s`` before the sale): the smart
  shelf publishes its new absolute weight (``shelf_weight``, grams, with scale noise). Tagged SKUs
  (``rfid_tagged_share``) also pass the exit gate after the sale (``rfid_exit``, each tag read with
  probability ``rfid_read_rate``). Shelves are restocked to capacity at 06:00 when they ran low, and in the day
  shortly before a pick that needs more than the shelf holds (the sale happened, so it was there).
- **theft** (label ``theft``): units picked from the shelf and carried through the exit gate with no
  sale, ``thefts_per_day`` on average, at times drawn from the real sales' times of day.
- **phantom inventory** (label ``phantom``): for ``phantom_episodes`` regularly selling SKUs, the
  units vanish from the shelf for ``phantom_days`` days (misplaced or stolen unseen): every real sale
  of the SKU in that span is dropped from the stream, while the ledger still believes in them.
- **mis-scans** (label ``misscan``): with probability ``misscan_rate`` a sale is rung up as another
  SKU: the shelf and the gate see the real item, the POS records the wrong one.
- **noise**: customers put items back (``put_back_rate``), scales jitter by ``weight_noise_g``.

Nothing is random beyond ``seed``: the same inputs give the same events and labels. Events
that are not sales (returns, receipts, counts) pass through unchanged.

``shelfcast sensors --in replay.jsonl --out sensors.jsonl --labels labels.json`` does it for a
replay written by ``shelfcast replay``.

>>> sales = [{"event_id": f"s{i}", "store_id": "S1", "sku": "A", "type": "sale", "qty": 1,
...           "event_time": f"2026-01-05T1{i}:00:00+00:00", "source": "pos"} for i in range(3)]
>>> sim = simulate(sales, SensorConfig(seed=1, thefts_per_day=0, misscan_rate=0,
...                phantom_episodes=0, put_back_rate=0, rfid_tagged_share=1.0))
>>> sorted({e["type"] for e in sim.events})
['rfid_exit', 'sale', 'shelf_weight']
>>> sim.labels
[]
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

DAY_S = 86400.0
MAX_SHELF_G = 900_000.0


@dataclass(frozen=True)
class SensorConfig:
    """Knobs of the simulation; every default is a plausible mid-size store.

    >>> from dataclasses import replace
    >>> quiet = replace(SensorConfig(), thefts_per_day=0, misscan_rate=0, phantom_episodes=0)
    >>> quiet.thefts_per_day, quiet.rfid_read_rate  # the other knobs keep their defaults
    (0, 0.97)
    """

    seed: int = 0
    thefts_per_day: float = 6.0
    theft_units: tuple[int, int] = (1, 3)
    phantom_episodes: int = 8
    phantom_days: tuple[float, float] = (3.0, 7.0)
    phantom_min_sales_per_day: float = 2.0
    misscan_rate: float = 0.003
    put_back_rate: float = 0.02
    rfid_tagged_share: float = 0.5
    rfid_read_rate: float = 0.97
    pick_lead_s: tuple[float, float] = (60.0, 1200.0)
    exit_lag_s: tuple[float, float] = (30.0, 300.0)
    put_back_after_s: tuple[float, float] = (20.0, 600.0)
    unit_weight_g: tuple[float, float] = (40.0, 900.0)
    weight_noise_g: float = 2.0
    restock_hour: float = 6.0
    restock_before_s: tuple[float, float] = (300.0, 1800.0)


@dataclass(frozen=True)
class Label:
    """A labelled incident: ``kind`` theft, phantom or misscan; times are POSIX seconds.

    >>> sales = [{"event_id": f"s{i}", "store_id": "S1", "sku": "A", "type": "sale", "qty": 1,
    ...           "event_time": f"2026-01-05T1{i}:00:00+00:00", "source": "pos"} for i in range(6)]
    >>> sim = simulate(sales, SensorConfig(seed=1, thefts_per_day=20, misscan_rate=0,
    ...                phantom_episodes=0, put_back_rate=0, rfid_tagged_share=1.0))
    >>> label = sim.labels[0]
    >>> label.kind, label.sku, label.qty, label.start == label.end  # a theft is a moment
    ('theft', 'A', 1, True)
    """

    kind: str
    sku: str
    start: float
    end: float
    qty: float = 0.0
    other_sku: str | None = None  # for a mis-scan: the SKU the POS recorded instead


@dataclass
class Simulation:
    """Events (edge event dicts, sorted by event time), labels, and the item master it used.

    >>> sales = [{"event_id": f"s{i}", "store_id": "S1", "sku": "A", "type": "sale", "qty": 1,
    ...           "event_time": f"2026-01-05T1{i}:00:00+00:00", "source": "pos"} for i in range(6)]
    >>> sim = simulate(sales, SensorConfig(seed=1, thefts_per_day=20, misscan_rate=0,
    ...                phantom_episodes=0, put_back_rate=0, rfid_tagged_share=1.0))
    >>> sim.counts, sim.rfid_tagged, sim.dropped_sales
    ({'theft': 22}, {'A'}, 0)
    """

    events: list[dict]
    labels: list[Label]
    unit_weight_g: dict[str, float]
    rfid_tagged: set[str]
    dropped_sales: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _ts(event: dict) -> float:
    return datetime.fromisoformat(event["event_time"]).timestamp()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class _Builder:
    """Accumulates sensor events and per-SKU shelf changes while walking the sales."""

    def __init__(self, cfg: SensorConfig, store_id: str, skus: list[str]):
        self.cfg = cfg
        self.store_id = store_id
        self.rng = np.random.default_rng(cfg.seed)
        rng = self.rng
        lo, hi = cfg.unit_weight_g
        self.unit_w = {s: float(np.round(rng.uniform(lo, hi), 1)) for s in skus}
        self.tagged = {s for s in skus if rng.random() < cfg.rfid_tagged_share}
        self.shelf_changes: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.events: list[tuple[float, dict]] = []
        self.n = 0

    def _event(self, t: float, sku: str, kind: str, qty: float, source: str) -> None:
        self.n += 1
        event = {
            "event_id": f"sim-{kind}-{self.n}",
            "store_id": self.store_id,
            "sku": sku,
            "type": kind,
            "qty": qty,
            "event_time": _iso(t),
            "source": source,
        }
        self.events.append((t, event))

    def pick(self, sku: str, t: float, qty: float) -> None:
        self.shelf_changes[sku].append((t, -qty))

    def exit_gate(self, sku: str, t: float, qty: int) -> None:
        if sku not in self.tagged:
            return
        read = int(self.rng.binomial(qty, self.cfg.rfid_read_rate))
        if read:
            self._event(t, sku, "rfid_exit", read, "rfid")

    def shelf_readings(self) -> None:
        """Walk each SKU's shelf changes in time order and publish absolute weights."""
        cfg, rng = self.cfg, self.rng
        for sku, changes in self.shelf_changes.items():
            changes.sort()
            removed_per_day = sum(-d for _, d in changes if d < 0) / max(
                (changes[-1][0] - changes[0][0]) / DAY_S, 1.0
            )
            capacity = max(20.0, math.ceil(2.5 * removed_per_day))
            largest = max(capacity, max(-d for _, d in changes))
            # Keep a wholesale-sized shelf under the event schema's 1e6 limit (grams).
            self.unit_w[sku] = min(self.unit_w[sku], round(MAX_SHELF_G / largest, 1))
            level, restock_due, previous = capacity, None, -math.inf
            self._weigh(sku, changes[0][0] - 3600.0, level, rng)  # the shelf's first reading
            for t, delta in changes:
                if restock_due is not None and t >= restock_due:
                    level = max(level, capacity)
                    self._weigh(sku, restock_due, level, rng)
                    restock_due = None
                if level + delta < 0:  # the units were sold, so staff had refilled the shelf
                    level = max(capacity, -delta)
                    before = max(t - rng.uniform(*cfg.restock_before_s), (previous + t) / 2)
                    self._weigh(sku, before, level, rng)
                level += delta
                previous = t
                self._weigh(sku, t, level, rng)
                if level < 0.3 * capacity and restock_due is None:
                    day = math.floor(t / DAY_S) * DAY_S
                    restock_due = day + DAY_S + cfg.restock_hour * 3600.0

    def _weigh(self, sku: str, t: float, level: float, rng: np.random.Generator) -> None:
        unit = self.unit_w[sku]
        noise = rng.normal(0.0, min(self.cfg.weight_noise_g, unit / 10.0))
        grams = max(level * unit + noise, 0.0)
        self._event(t, sku, "shelf_weight", round(float(grams), 1), "shelf")


def simulate(sales: list[dict], config: SensorConfig | None = None) -> Simulation:
    """Sensor events and labelled incidents for ``sales`` (see the module docstring)."""
    cfg = config or SensorConfig()
    pos = [e for e in sales if e.get("type") == "sale"]
    if not pos:
        raise ValueError("simulate needs at least one event of type 'sale' in the POS stream")
    store_id = pos[0]["store_id"]
    times = np.array([_ts(e) for e in pos])
    skus = sorted({e["sku"] for e in pos})
    b = _Builder(cfg, store_id, skus)
    rng = b.rng
    labels: list[Label] = []
    phantom = _phantom_episodes(pos, times, cfg, rng, labels)
    kept: list[tuple[float, dict]] = []
    dropped = 0
    for e, t in zip(pos, times.tolist(), strict=True):
        sku, qty = e["sku"], e["qty"]
        window = phantom.get(sku)
        if window and window[0] <= t <= window[1]:
            dropped += 1  # the units were not on the shelf: this sale never happened
            continue
        recorded = e
        if rng.random() < cfg.misscan_rate:
            other = skus[int(rng.integers(len(skus)))]
            gone = phantom.get(other)
            if other != sku and not (gone and gone[0] <= t <= gone[1]):
                recorded = {**e, "sku": other}
                labels.append(Label("misscan", sku, t, t, qty, other))
        kept.append((t, recorded))
        b.pick(sku, t - rng.uniform(*cfg.pick_lead_s), qty)
        b.exit_gate(sku, t + rng.uniform(*cfg.exit_lag_s), qty)
        if rng.random() < cfg.put_back_rate:
            tb = t - rng.uniform(*cfg.pick_lead_s)
            b.pick(sku, tb, qty)
            b.shelf_changes[sku].append((tb + rng.uniform(*cfg.put_back_after_s), float(qty)))
    _inject_thefts(b, pos, times, cfg, labels)
    b.shelf_readings()
    # Everything that is not a sale (returns, receipts, counts...) passes through unchanged.
    others = [(_ts(e), e) for e in sales if e.get("type") != "sale"]
    events = kept + b.events + others
    events.sort(key=lambda te: te[0])
    counts: dict[str, int] = defaultdict(int)
    for label in labels:
        counts[label.kind] += 1
    labels.sort(key=lambda lb: lb.start)
    return Simulation([e for _, e in events], labels, b.unit_w, b.tagged, dropped, dict(counts))


def _phantom_episodes(
    pos: list[dict], times: np.ndarray, cfg: SensorConfig, rng, labels: list[Label]
) -> dict[str, tuple[float, float]]:
    """Pick regularly selling SKUs and a silent span for each; the labels say where."""
    if cfg.phantom_episodes <= 0:
        return {}
    t0, t1 = float(times.min()), float(times.max())
    days = max((t1 - t0) / DAY_S, 1.0)
    per_sku: dict[str, int] = defaultdict(int)
    for e in pos:
        per_sku[e["sku"]] += 1
    eligible = sorted(s for s, n in per_sku.items() if n / days >= cfg.phantom_min_sales_per_day)
    chosen = rng.permutation(eligible)[: cfg.phantom_episodes] if eligible else []
    out = {}
    for sku in chosen:
        length = rng.uniform(*cfg.phantom_days) * DAY_S
        latest = max(t1 - length, t0)
        start = float(rng.uniform(t0 + 0.2 * (latest - t0), latest))
        out[str(sku)] = (start, start + length)
        labels.append(Label("phantom", str(sku), start, start + length))
    return out


def _inject_thefts(
    b: _Builder,
    pos: list[dict],
    times: np.ndarray,
    cfg: SensorConfig,
    labels: list[Label],
) -> None:
    """Thefts at real shopping times, of SKUs drawn by how often they sell."""
    rng = b.rng
    days = max((float(times.max()) - float(times.min())) / DAY_S, 1.0)
    n = int(rng.poisson(cfg.thefts_per_day * days))
    if n == 0:
        return
    popularity = np.array([e["sku"] for e in pos])
    for i in rng.integers(len(pos), size=n).tolist():
        sku = str(popularity[i])
        t = float(times[i]) + rng.uniform(-1800.0, 1800.0)
        qty = int(rng.integers(cfg.theft_units[0], cfg.theft_units[1] + 1))
        b.pick(sku, t, qty)
        b.exit_gate(sku, t + rng.uniform(*cfg.exit_lag_s), qty)
        labels.append(Label("theft", sku, t, t, qty))


def add_arguments(parser) -> None:  # `shelfcast sensors`
    parser.add_argument("--in", dest="inp", required=True,
                        help="JSON-lines POS replay (from `shelfcast replay`)")  # fmt: skip
    parser.add_argument("--out", required=True, help="JSON-lines file: replay + sensor events")
    parser.add_argument("--labels", default=None, help="JSON file for the injected incidents")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thefts-per-day", type=float, default=SensorConfig.thefts_per_day)
    parser.add_argument("--phantom-episodes", type=int, default=SensorConfig.phantom_episodes)
    parser.add_argument("--misscan-rate", type=float, default=SensorConfig.misscan_rate)


def run(args) -> int:
    import json
    from dataclasses import asdict

    with open(args.inp, encoding="utf-8") as src:
        events = [json.loads(line) for line in src if line.strip()]
    cfg = SensorConfig(
        seed=args.seed,
        thefts_per_day=args.thefts_per_day,
        phantom_episodes=args.phantom_episodes,
        misscan_rate=args.misscan_rate,
    )
    sim = simulate(events, cfg)
    with open(args.out, "w", encoding="utf-8") as out:
        for e in sim.events:
            out.write(json.dumps(e, separators=(",", ":")) + "\n")
    if args.labels:
        payload = {
            "labels": [asdict(lb) for lb in sim.labels],
            "unit_weight_g": sim.unit_weight_g,
            "rfid_tagged": sorted(sim.rfid_tagged),
            "config": asdict(cfg),
        }
        with open(args.labels, "w", encoding="utf-8") as out:
            json.dump(payload, out)
    print(
        f"wrote {len(sim.events)} events to {args.out} ({len(events)} in, "
        f"{sim.dropped_sales} sales dropped by phantom episodes); incidents: {sim.counts}"
    )
    return 0
