"""A gateway's restart to its first commit, alone: the start path of ``benchmarks/e2e_crash.py``
without the rest of the crash run, repeated, old and new code alternating.

    python benchmarks/restart.py --restarts 6 --json out.json [--compare main] [--profile DIR]

The state a restart in the crash run finds, built once per preparing code and cached under
``var/bench`` (with ``--compare``, the older side prepares it: a gateway reads an older derived
snapshot, not a newer one): a copy of
the 1M-event history ledger (``benchmarks/history.py``, store "OR", ~4,900 SKUs) that a
gateway with the signed model bundle (``benchmarks/latency.py``'s) has started on, written its
snapshots and then logged ``--tail`` more events after them (the crash run's restarts read
0-20,000 such events, a start that read more writes new snapshots) before a SIGKILL. Each
restart: a copy of that state, a fresh Mosquitto on the shipped settings holding the
gateway's persistent session with ``--queued`` real events waiting (what the tills sent while
it was down: ~2 s at 1,200 events/s), then ``shelfcast run`` as its own process, SIGKILLed once
it has committed every queued event. Each side's copy has its derived snapshot saved again by
that side's code (same position and content, in its own format).

Figures per restart, as the crash run reads them: ``wall_s`` from spawning the process to its
first commit (the commit's time is stored with each event) and ``cpu_s``, the process's CPU
(all threads) at that commit, from the gateway's own start-up-phases line (``--log-level
DEBUG``; ``phases`` holds the line); medians per side. With ``--compare REF`` the other side runs
the gateway packages of git ``REF`` (``benchmarks/full_path.py``'s export), on the same state
and events, in alternating order; ``same_decisions``: every restart's messages (outbox rows
after the state's, uplink and state messages aside) equal on both sides. ``--profile DIR``:
``py-spy`` folded stacks of each new-side restart (raw format, all threads) in ``DIR``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.e2e_crash import read as _read  # noqa: E402
from benchmarks.e2e_crash import spawn_gateway  # noqa: E402
from benchmarks.figures_out import show_figures  # noqa: E402
from benchmarks.full_path import GATEWAY_PACKAGES, _decisions_digest, _publish  # noqa: E402
from benchmarks.history import STORE, copy_ledger, live_events  # noqa: E402
from benchmarks.shipped_bytecode import compile_gateway, remove_bytecode  # noqa: E402
from tests.mosquitto import wait  # noqa: E402

# Polls read the ledger file: every 50 ms keeps them light beside the gateway being measured.
_wait = functools.partial(wait, step=0.05)
PHASES = re.compile(r"start-up phases \(wall/cpu s\): (.*)")


def _old_code(ref: str, out: Path) -> Path:
    """The gateway's packages and the command line as of git ``ref``, exported under ``out``."""
    out.mkdir(parents=True)
    packages = [*GATEWAY_PACKAGES, "shelfcast"]
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *packages],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def _spawn(code_root: Path, state: Path, port: int, model_env: dict, log_file: Path,
           profile: Path | None = None) -> subprocess.Popen:  # fmt: skip
    wrap = None
    if profile is not None:
        spy = str(Path(sys.executable).with_name("py-spy"))
        wrap = [spy, "record", "-f", "raw", "-r", "200", "--threads", "-o", str(profile), "--"]
    return spawn_gateway(state, port, log_file, model_env, code_root, "DEBUG", wrap)


def _provision(port: int) -> None:
    from benchmarks.e2e_crash import provision_session

    provision_session(port)


def _commit(ref: str) -> str:
    """The short commit id of git ``ref``."""
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip()


def _model_env() -> dict[str, str]:
    from benchmarks.e2e_crash import gateway_model

    return gateway_model("model")[0]


def prepared_state(
    n_history: int, tail: int, model_env: dict, code_root: Path = ROOT, label: str = "head"
) -> tuple[Path, int]:
    """The cached state a restart finds (see the module docstring), prepared by the gateway at
    ``code_root`` (cached under ``label``), and its events' count."""
    from tests.mosquitto import Mosquitto

    prep = ROOT / "var" / "bench" / f"restart-{n_history}-tail{tail}-{label}"
    if (prep / "done").exists():
        return prep, int((prep / "done").read_text())
    shutil.rmtree(prep, ignore_errors=True)
    copy_ledger(n_history, prep)
    ledger = prep / "ledger.sqlite"
    n0 = _read(ledger, "SELECT count(*) FROM events")[0][0]
    work = Path(tempfile.mkdtemp(prefix="shelfcast-restart-prep-"))
    broker = Mosquitto(work / "broker").start()
    try:
        _provision(broker.port)
        events = live_events(n_history, 2_000 + tail)
        _publish(broker.port, f"shelfcast/{STORE}/events/pos", events[:2_000])
        gw = _spawn(code_root, prep, broker.port, model_env, work / "gateway.log")
        snapshots = (prep / "derived.pickle", prep / "ledger.sqlite.index.npz")
        ok = _wait(
            lambda: all(p.exists() for p in snapshots) or gw.poll() is not None, 600, step=0.5
        )
        ok = ok and gw.poll() is None
        # Both snapshots written (and renamed into place) before the tail is sent.
        ok = ok and _wait(lambda: _read(ledger, "SELECT count(*) FROM events")[0][0] >= n0 + 2_000,
                          120)  # fmt: skip
        time.sleep(3)
        _publish(broker.port, f"shelfcast/{STORE}/events/pos", events[2_000:])
        n = n0 + len(events)
        ok = ok and _wait(lambda: _read(ledger, "SELECT count(*) FROM events")[0][0] >= n, 300)
        gw.send_signal(signal.SIGKILL)
        gw.wait(30)
        if not ok:
            raise SystemExit(f"preparing the state failed; see {work / 'gateway.log'}")
    finally:
        broker.stop()
    (prep / "done").write_text(str(len(events)))
    shutil.rmtree(work, ignore_errors=True)
    return prep, len(events)


RESAVE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from edge_runtime.forecast.derived_snapshot import load_derived, save_derived\n"
    "from edge_runtime.store.ledger import Ledger\n"
    "state = Path(sys.argv[1])\n"
    "with Ledger(state / 'ledger.sqlite', sys.argv[2]) as ledger:\n"
    "    snap = load_derived(state / 'derived.pickle', ledger.ledger_id)\n"
    "assert snap is not None, 'the snapshot does not load'\n"
    "save_derived(state / 'derived.pickle', snap)\n"
)


def side_state(code_root: Path, prep: Path, out: Path) -> Path:
    """``prep`` with its derived snapshot saved again by the code at ``code_root`` (same log
    position, same content, in that code's format): each side restarts from the snapshot it
    would have written itself."""
    shutil.copytree(prep, out, ignore=shutil.ignore_patterns("done", "*.lock"))
    env = {**os.environ, "PYTHONPATH": f"{code_root}{os.pathsep}{ROOT}"}
    subprocess.run([sys.executable, "-c", RESAVE, str(out), STORE], cwd=code_root, env=env,
                   check=True)  # fmt: skip
    return out


def one_restart(code_root: Path, prep: Path, events: list[dict], model_env: dict, work: Path,
                profile: Path | None) -> dict:  # fmt: skip
    """Copy the state, queue ``events`` in a fresh broker, start the gateway: its figures."""
    from tests.mosquitto import Mosquitto

    shutil.rmtree(work, ignore_errors=True)
    state = work / "state"
    shutil.copytree(prep, state, ignore=shutil.ignore_patterns("done", "*.lock"))
    ledger = state / "ledger.sqlite"
    upto, n0 = _read(ledger, "SELECT max(seq), count(*) FROM events")[0]
    outbox_from = _read(ledger, "SELECT coalesce(max(seq), 0) FROM outbox")[0][0]
    broker = Mosquitto(work / "broker").start()
    log_file = work / "gateway.log"
    try:
        _provision(broker.port)
        _publish(broker.port, f"shelfcast/{STORE}/events/pos", events)
        load = os.getloadavg()[0]
        born = time.time()
        gw = _spawn(code_root, state, broker.port, model_env, log_file, profile)
        n = n0 + len(events)
        done = _wait(lambda: _read(ledger, "SELECT count(*) FROM events")[0][0] >= n, 120, step=0.1)
        gw.send_signal(signal.SIGINT if profile else signal.SIGKILL)  # py-spy writes on SIGINT
        gw.wait(60)
    finally:
        broker.stop()
    first = _read(ledger, "SELECT min(received_us) FROM events WHERE seq > ?", (upto,))[0][0]
    lines = [m for m in PHASES.findall(log_file.read_text()) if "first commit" in m]
    phases = lines[-1] if lines else None
    cpu = None
    if phases:
        cpu = sum(float(p.rsplit(" ", 1)[1].split("/")[1]) for p in phases.split(", "))
    return {
        "wall_s": None if first is None else round(first / 1e6 - born, 3),
        "cpu_s": None if cpu is None else round(cpu, 3),
        "all_committed": done,
        "loadavg_1m": round(load, 2),
        "decisions_digest": _decisions_digest(str(state), outbox_from),
        "phases": phases,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="events of history")
    parser.add_argument("--tail", type=int, default=12_000, help="events after the snapshots")
    parser.add_argument("--queued", type=int, default=2_400, help="events waiting in the broker")
    parser.add_argument("--restarts", type=int, default=4, help="restarts per side")
    parser.add_argument("--compare", metavar="REF", help="alternate with the gateway of REF")
    parser.add_argument("--profile", help="py-spy raw stacks of the new side's restarts here")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="start from source, as before the image's compiled bytecode")  # fmt: skip
    parser.add_argument("--old-from-source", action="store_true",
                        help="with --compare: only the old side starts from source")  # fmt: skip
    args = parser.parse_args(argv)

    model_env = _model_env()
    work = Path(tempfile.mkdtemp(prefix="shelfcast-restart-"))
    roots = {"new": ROOT}
    if args.compare:
        roots["old"] = _old_code(args.compare, work / "code-old")
    sides = list(roots)
    for side, root in roots.items():
        from_source = args.no_bytecode or (side == "old" and args.old_from_source)
        remove_bytecode(root) if from_source else compile_gateway(root)
    # The older side prepares the state: a gateway reads older snapshots, not newer ones.
    label = _commit(args.compare) if args.compare else "head"
    prep, n_tail = prepared_state(args.history, args.tail, model_env, roots.get("old", ROOT), label)
    queued = live_events(args.history, n_tail + args.queued)[n_tail:]
    preps = {side: side_state(root, prep, work / f"state-{side}") for side, root in roots.items()}
    profile = Path(args.profile) if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    try:
        for r in range(args.restarts):
            for side in sides if r % 2 == 0 else sides[::-1]:
                spy = profile / f"restart-{r}.txt" if profile and side == "new" else None
                res = one_restart(roots[side], preps[side], queued, model_env,
                                  work / f"run-{side}", spy)  # fmt: skip
                runs[side].append(res)
                print(f"restart {r + 1} {side}: {json.dumps(res)}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict = {"history": args.history, "tail": args.tail, "queued": args.queued,
                    "bytecode": not args.no_bytecode, "old_from_source": args.old_from_source,
                    "nproc": os.cpu_count(),
                    "runs": runs}  # fmt: skip
    for side in sides:
        for key in ("wall_s", "cpu_s"):
            values = [r[key] for r in runs[side] if r[key] is not None]
            result[f"median_{key}_{side}"] = statistics.median(values) if values else None
            result[f"max_{key}_{side}"] = max(values) if values else None
    if args.compare:
        result["same_decisions"] = all(
            a["decisions_digest"] == b["decisions_digest"]
            for a, b in zip(runs["new"], runs["old"], strict=True)
        )
    show_figures(result, args.json, unprinted=("runs",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
