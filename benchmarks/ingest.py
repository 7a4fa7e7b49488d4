"""Durable ledger ingest on one core: group commit vs one transaction per event, and ack latency
at a paced offered load.

Events: the 20,000 best-selling real M5 item x store series (``sku = item@store``) as one
gateway's stream: each day's real units spread over opening hours (seed 0), plus the replayer's
synthetic opening counts and weekly receipts; the first 1,000,000 events by event time. They are
written once to a JSON-lines file; each measurement runs in a fresh subprocess pinned to one CPU,
reading that file and calling ``Ledger.ingest_raw`` on JSON batches (parse + validate + durable
commit, ``synchronous=FULL``), so peak RSS is the ledger's own.

    python benchmarks/ingest.py --json out.json            # full run (~5 minutes)
    python benchmarks/ingest.py --quick --json out.json    # 100,000 events, for development
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402

STORE = "M5-POOL"


# ---- the event stream (built once, cached) --------------------------------------------------


def build_events(path: Path, n_events: int, n_skus: int, seed: int) -> dict:
    """Write the benchmark stream to ``path`` (JSON lines); return a description of it."""
    from twin.replay import M5_TZ, m5_frame, spread_daily, write_jsonl

    frame = m5_frame()
    volume = frame.groupby("sku")["units"].sum().sort_values(ascending=False, kind="stable")
    if len(volume) < n_skus:
        raise SystemExit(f"only {len(volume)} M5 series available, asked for {n_skus} SKUs")
    chosen = set(volume.index[:n_skus])
    frame = frame[frame["sku"].isin(chosen)]
    events = spread_daily(frame, STORE, M5_TZ["CA"], seed=seed, restock=True)
    if len(events) < n_events:
        raise SystemExit(f"the stream has {len(events)} events, fewer than {n_events}")
    events = events[:n_events]
    write_jsonl(events, path)
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    return {
        "events": len(events),
        "skus": len({e["sku"] for e in events}),
        "types": kinds,
        "first_event_time": events[0]["event_time"],
        "last_event_time": events[-1]["event_time"],
        "source": f"M5 store days, {n_skus} best-selling item x store series pooled into one "
        f"gateway, daily units spread over opening hours (seed {seed}), synthetic opening "
        "counts and weekly receipts",
    }


def read_lines(path: Path, start: int, count: int) -> list[bytes]:
    out = []
    with open(path, "rb") as src:
        for i, line in enumerate(src):
            if i >= start + count:
                break
            if i >= start:
                out.append(line.rstrip(b"\n"))
    return out


def read_batches(path: Path, count: int, batch: int):
    """The first ``count`` lines of ``path`` in lists of ``batch`` lines."""
    with open(path, "rb") as src:
        lines: list[bytes] = []
        for i, line in enumerate(src):
            if i >= count:
                break
            lines.append(line.rstrip(b"\n"))
            if len(lines) == batch:
                yield lines
                lines = []
        if lines:
            yield lines


# ---- workers (run in a subprocess pinned to one CPU) ----------------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would include the parent's, kept across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pin(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})


def _fresh_ledger(tmp: Path):
    from edge_runtime.store.ledger import Ledger

    return Ledger(tmp / "ledger.sqlite", STORE)


def worker_throughput(args) -> dict:
    """All events in batches of ``--batch``: one durable transaction per batch."""
    _pin(args.cpu)
    tmp = Path(tempfile.mkdtemp(dir=args.tmp))
    ledger = _fresh_ledger(tmp)
    batch = args.batch
    payloads_done = accepted = n = 0
    commit_ms: list[float] = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    # The file is read batch by batch inside the timed loop (as a gateway receives messages),
    # so peak RSS is the ledger's, not a million buffered input lines.
    for lines in read_batches(Path(args.events_file), args.count, batch):
        payload = b"[" + b",".join(lines) + b"]"
        t = time.perf_counter()
        result = ledger.ingest_raw(payload, "bench")
        commit_ms.append((time.perf_counter() - t) * 1000)
        accepted += result.accepted
        n += len(lines)
        payloads_done += 1
        if result.rejected:
            raise SystemExit(f"benchmark events rejected: {result.rejections[:2]}")
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    out = {
        "events": n,
        "accepted": accepted,
        "batch": batch,
        "transactions": payloads_done,
        "seconds": wall,
        "cpu_seconds": cpu,
        "events_per_s": n / wall,
        "batch_ms_p50": statistics.median(commit_ms),
        "db_mb": (tmp / "ledger.sqlite").stat().st_size / 2**20,
        "skus": ledger.sku_count(),
    }
    if args.latency_seconds > 0:
        # Steady state: the paced run starts once the 1M-event burst is checkpointed (ext4
        # fsyncs of the WAL otherwise queue behind the background checkpoint's writes).
        t = time.perf_counter()
        ledger.checkpoint()
        out["checkpoint_after_load_s"] = time.perf_counter() - t
        out["latency"] = paced_windows(ledger, Path(args.events_file), args)
    out["peak_rss_mb"] = peak_rss_mb()
    ledger.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def paced_windows(ledger, events_file: Path, args) -> dict:
    """The paced run (on the ledger holding the whole throughput run's events) cut into
    ``--latency-windows`` consecutive windows; medians over windows,
    so one stall of the shared machine does not decide the p99 alone (all windows are kept)."""
    n = int(args.rate * args.latency_seconds)
    k = args.latency_windows
    windows = [
        paced_latency(ledger, events_file, args, args.count + w * (n // k), n // k)
        for w in range(k)
    ]
    return {
        "offered_events_per_s": args.rate,
        "windows": windows,
        "p50_ack_ms": statistics.median(w["p50_ack_ms"] for w in windows),
        "p99_ack_ms": statistics.median(w["p99_ack_ms"] for w in windows),
        "max_ack_ms": max(w["max_ack_ms"] for w in windows),
        "mean_group": statistics.mean(w["mean_group"] for w in windows),
    }


def paced_latency(ledger, events_file: Path, args, first: int, n: int) -> dict:
    """A producer offering ``--rate`` events/s on a fixed schedule; the committer takes whatever
    is due as one group (no extra wait). Ack latency = commit returned - event's scheduled time."""
    lines = read_lines(events_file, first, n)
    if len(lines) < n:
        raise SystemExit(f"need {n} events from line {first} for the paced run")
    interval = 1.0 / args.rate
    latencies: list[float] = []
    groups = 0
    start = time.perf_counter() + 0.05
    i = 0
    while i < n:
        now = time.perf_counter()
        due = min(n, int((now - start) / interval) + 1) if now >= start else 0
        if due <= i:
            time.sleep(max(0.0, start + i * interval - now))
            continue
        payload = b"[" + b",".join(lines[i:due]) + b"]"
        ledger.ingest_raw(payload, "bench")
        acked = time.perf_counter()
        latencies.extend(acked - (start + k * interval) for k in range(i, due))
        groups += 1
        i = due
    latencies.sort()
    return {
        "offered_events_per_s": args.rate,
        "events": n,
        "seconds": n / args.rate,
        "groups": groups,
        "mean_group": n / groups,
        "p50_ack_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ack_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ack_ms": latencies[-1] * 1000,
    }


def run_worker(mode: str, args, **over) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--events-file", str(args.events_file)]
    params = {
        "cpu": args.cpu,
        "count": args.events,
        "batch": args.batch,
        "rate": args.rate,
        "latency_seconds": 0,
        "latency_windows": args.latency_windows,
        "tmp": args.tmp,
    }
    params.update(over)
    for key, value in params.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the report -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5000, help="events per group commit")
    parser.add_argument("--naive-events", type=int, default=5000,
                        help="events for the one-transaction-per-event run (rate extrapolated)")  # fmt: skip
    parser.add_argument("--rate", type=float, default=1200.0, help="offered load, events/s")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-windows", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: last)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="100k events, 1 repeat, 5 s paced")
    parser.add_argument("--tmp", default=str(ROOT / "var" / "bench" / "tmp"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--events-file", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker_throughput(args)))
        return 0
    if args.quick:
        args.events, args.naive_events, args.repeats, args.latency_seconds = 100_000, 1000, 1, 5
    if args.cpu is None:
        args.cpu = max(os.sched_getaffinity(0))
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    extra = int(args.rate * args.latency_seconds)
    cache = (
        ROOT
        / "var"
        / "bench"
        / f"ingest_events_{args.events + extra}_{args.skus}_{args.seed}.jsonl"
    )
    meta_path = cache.with_suffix(".json")
    if not (cache.exists() and meta_path.exists()):
        print(
            f"building {args.events + extra:,} events over {args.skus:,} SKUs -> {cache}",
            flush=True,
        )
        meta_path.write_text(
            json.dumps(build_events(cache, args.events + extra, args.skus, args.seed))
        )
    stream = json.loads(meta_path.read_text())
    args.events_file = cache

    report: dict = {
        "benchmark": "ingest",
        "machine": machine(
            sqlite=sqlite3.sqlite_version,
            filesystem_note="ledger on the project disk (var/bench), synchronous=FULL, WAL",
        ),
        "stream": stream,
    }
    report["settings"] = {k: getattr(args, k) for k in ("events", "skus", "batch", "naive_events",
                          "rate", "latency_seconds", "repeats", "cpu")}  # fmt: skip
    runs = []
    for r in range(args.repeats):
        last = r == args.repeats - 1
        print(f"group-commit run {r + 1}/{args.repeats} ...", flush=True)
        runs.append(run_worker("throughput", args,
                               latency_seconds=args.latency_seconds if last else 0))  # fmt: skip
    naive = []
    for r in range(args.repeats):
        print(f"naive run {r + 1}/{args.repeats} ...", flush=True)
        naive.append(run_worker("throughput", args, count=args.naive_events, batch=1))
    eps = statistics.median(x["events_per_s"] for x in runs)
    neps = statistics.median(x["events_per_s"] for x in naive)
    latency = runs[-1]["latency"]
    report.update(
        {
            "events_per_s": eps,
            "events_per_s_runs": [x["events_per_s"] for x in runs],
            # Events per second of this process's CPU time: the code's own cost, unaffected by
            # other processes sharing the pinned core (wall-clock events_per_s is the figure).
            "events_per_cpu_s": statistics.median(x["events"] / x["cpu_seconds"] for x in runs),
            "loadavg_at_end": os.getloadavg(),
            "naive_events_per_s": neps,
            "naive_events_per_s_runs": [x["events_per_s"] for x in naive],
            "naive_note": f"one durable transaction per event, first {args.naive_events:,} "
            "events into a fresh ledger; rate measured on those and extrapolated",
            "ratio_group_vs_naive": eps / neps,
            "p50_ack_ms": latency["p50_ack_ms"],
            "p99_ack_ms": latency["p99_ack_ms"],
            "latency": latency,
            "peak_rss_mb": max(x["peak_rss_mb"] for x in runs),
            "group_runs": runs,
            "naive_runs": naive,
        }
    )
    print_table(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def print_table(r: dict) -> None:
    m, lat = r["machine"], r["latency"]
    rows = [
        (
            "events / SKUs",
            f"{r['stream']['events']:,} / {r['stream']['skus']:,} (ingested "
            f"{r['settings']['events']:,})",
        ),
        (
            "group commit events_per_s (median)",
            f"{r['events_per_s']:,.0f}  runs: "
            + ", ".join(f"{x:,.0f}" for x in r["events_per_s_runs"]),
        ),
        (
            "naive events_per_s (1 txn/event)",
            f"{r['naive_events_per_s']:,.0f}  runs: "
            + ", ".join(f"{x:,.0f}" for x in r["naive_events_per_s_runs"]),
        ),
        ("ratio", f"{r['ratio_group_vs_naive']:.1f}x"),
        ("group commit events per CPU-second", f"{r['events_per_cpu_s']:,.0f}"),
        (
            f"p50 / p99 ack at {lat['offered_events_per_s']:,.0f} ev/s (median of "
            f"{len(lat['windows'])} windows; p99 per window: "
            + ", ".join(f"{w['p99_ack_ms']:.1f}" for w in lat["windows"])
            + ")",
            f"{lat['p50_ack_ms']:.2f} / {lat['p99_ack_ms']:.2f} ms (max {lat['max_ack_ms']:.1f}, "
            f"{lat['mean_group']:.1f} events per commit)",
        ),
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB"),
        (
            "machine",
            f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, pinned to "
            f"CPU {r['settings']['cpu']}, load avg {m['load_average_1m_at_start']:.1f}",
        ),
    ]
    print("\n| figure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nstream: {r['stream']['source']}; types {r['stream']['types']}")


if __name__ == "__main__":
    raise SystemExit(main())
