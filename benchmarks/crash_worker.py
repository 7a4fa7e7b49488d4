"""The process ``benchmarks/crash.py`` kills: replays an event file into a ledger, acknowledging
each committed group by appending ``<end index>`` to an ack file (flushed and fsynced after the
commit returned). On restart it resumes ``--overlap`` events before its last acknowledgement, as a
producer that re-sends from its last checkpoint would, so replays of acknowledged events happen.

    python benchmarks/crash_worker.py EVENTS.jsonl LEDGER.sqlite ACKS.txt --store UK
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def last_ack(path: Path) -> int:
    """The highest complete acknowledgement (a torn last line, cut by the kill, is ignored)."""
    if not path.exists():
        return 0
    best = 0
    for line in path.read_text().split("\n")[:-1]:  # only newline-terminated lines
        if line.strip():
            best = max(best, int(line))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events")
    parser.add_argument("ledger")
    parser.add_argument("acks")
    parser.add_argument("--store", required=True)
    parser.add_argument("--max-batch", type=int, default=1000)
    parser.add_argument("--overlap", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--archive-days", type=float, default=0.0,
                        help="archive events this many days behind the clock as it goes (0: off)")  # fmt: skip
    args = parser.parse_args(argv)

    from edge_runtime.store.event_archive import EventArchive
    from edge_runtime.store.ledger import Ledger
    from edge_runtime.store.plausibility import DAY_US, Plausibility

    lines = Path(args.events).read_bytes().rstrip(b"\n").split(b"\n")
    acks = Path(args.acks)
    start = max(0, last_ack(acks) - args.overlap)
    rng = random.Random(args.seed * 1_000_003 + start)
    bounds = Plausibility(max_late_days=args.archive_days) if args.archive_days else Plausibility()
    ledger = Ledger(args.ledger, args.store, bounds=bounds)
    archive = EventArchive(Path(args.ledger).with_name("archive"))
    groups = 0
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    i = start
    while i < len(lines):
        end = min(len(lines), i + rng.randint(1, args.max_batch))
        result = ledger.ingest_raw(b"[" + b",".join(lines[i:end]) + b"]", "crash-bench")
        if result.rejected:
            raise SystemExit(f"rejected: {result.rejections[:2]}")
        os.write(fd, f"{end}\n".encode())  # acknowledged only after the commit returned
        os.fsync(fd)
        i = end
        groups += 1
        if args.archive_days and groups % 50 == 0:  # as the gateway's retention would
            ledger.write_index()
            ledger.archive_events(archive, ledger.clock_us - round(args.archive_days * DAY_US))
    os.close(fd)
    ledger.close()
    print("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
