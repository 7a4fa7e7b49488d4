"""Where nats-server's CPU goes in ``benchmarks/hub.py``'s timed drain, by what it was doing.

``benchmarks/hub.py``'s throughput phase itself (stream filled, consumers paused, ``--workers``
hub processes pinned and subscribed), with ``perf record -g`` on nats-server from just before
the consumers' resumption to the last acknowledgement only (the fill's own stores are left
out). The samples are sorted into what the server was doing (a sample may count under more than one heading: a key-value write's storing
is inside its client's read loop) and printed with the drain's figures. Needs ``perf``.

    python benchmarks/hub_drain_profile.py --workers 2 --out /tmp/drain
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import benchmarks.hub as bench  # noqa: E402

SERVER = "github.com/nats-io/nats-server/v2/server."
HEADINGS = {  # heading -> a function some frame of the sample's stack starts with
    "stream stores (key-value writes)": "(*stream).processJetStreamMsgWithBatch",
    "  of which the file store": "(*fileStore).storeRawMsg",
    "  of which the last value's read (compare-and-set)": "(*fileStore).LoadLastMsg",
    "clients' read loops (parse, route)": "(*client).readLoop",
    "consumers' deliveries": "(*consumer).loopAndGatherMsgs",
    "  of which the filtered look-up": "(*msgBlock).firstMatching",
    "acknowledgements": "(*consumer).processInboundAcks",
    "consumers' state files": "(*consumerFileStore).flushLoop",
    "JetStream API (info, pause)": "(*Server).processJSAPIRoutedRequests",
    "Go scheduler": "runtime.schedule",
    "Go sysmon": "runtime.sysmon",
    "Go GC": "runtime.gcBgMarkWorker",
}


def stacks(perf_data: Path) -> list[list[str]]:
    out = subprocess.run(
        ["perf", "script", "-i", str(perf_data)], capture_output=True, text=True, check=True
    ).stdout
    found, current = [], []
    for line in out.splitlines():
        if not line.strip():
            if current:
                found.append(current)
            current = []
        elif line[:1] in (" ", "\t"):
            frame = line.strip().split(" ", 1)[-1].rsplit(" (", 1)[0].rsplit("+0x", 1)[0]
            current.append(frame.replace(SERVER, ""))
    if current:
        found.append(current)
    return found


def shares(samples: list[list[str]]) -> dict[str, float]:
    n = max(1, len(samples))
    return {
        heading: round(100 * sum(any(f.startswith(fn) for f in s) for s in samples) / n, 1)
        for heading, fn in HEADINGS.items()
    }


@contextlib.contextmanager
def perf_recording(pid: int, data: Path) -> Iterator[None]:
    """``perf record -g`` on ``pid`` while the block runs (a second's start first)."""
    perf = subprocess.Popen(
        ["perf", "record", "-F", "999", "-g", "-p", str(pid), "-o", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    try:
        yield
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--tp-stores", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="keep perf.data here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hub-drain-"))
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    phase = argparse.Namespace(
        messages=args.messages, tp_stores=args.tp_stores, pin=True, one_session=False
    )
    try:
        figures = bench.throughput_phase(
            args.workers, phase, work,
            around_drain=lambda pid: perf_recording(pid, out / "perf.data"),
        )  # fmt: skip
        samples = stacks(out / "perf.data")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["perf_samples"] = len(samples)
    figures["nats_server_share_pct"] = shares(samples)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
