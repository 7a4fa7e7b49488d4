"""``shelfcast run``: the store gateway as a process, until SIGINT or SIGTERM.

A bad configuration, a refused bundle or an unusable state directory ends it with one line on
stderr per problem and exit status 2, no traceback.

>>> import argparse
>>> p = argparse.ArgumentParser(); add_arguments(p)
>>> p.parse_args(["--store-id", "S1", "--mqtt-port", "1884"]).mqtt_port
1884
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

from configuration.command_options import add_log_options, port_number
from edge_runtime.config import ConfigError, load_config
from edge_runtime.forecast.online import import_river
from edge_runtime.gateway import Gateway
from edge_runtime.heap import freeze_startup_heap, pause_collector, resume_collector
from edge_runtime.log_output import configure_logging
from edge_runtime.store.ledger import LedgerError
from models.bundle import BundleError

log = logging.getLogger("edge_runtime.gateway")  # the gateway's log, as operators know it

# The start-up heap is frozen after the first commit, or after this long without one (a store
# with no traffic): the collector stays paused until then (edge_runtime/heap.py).
FREEZE_AT_THE_LATEST_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="gateway TOML file (env SHELFCAST_CONFIG); env overrides")
    parser.add_argument("--store-id", help="store id (env SHELFCAST_STORE_ID)")
    parser.add_argument("--state-dir", help="ledger/outbox directory (default var/gateway)")
    parser.add_argument("--mqtt-host", help="broker host (env SHELFCAST_MQTT_HOST)")
    parser.add_argument(
        "--mqtt-port", type=port_number, help="broker port, 1..65535 (env SHELFCAST_MQTT_PORT)"
    )
    parser.add_argument(
        "--bundle", help="model bundle directory (env SHELFCAST_BUNDLE); none: the rules decide"
    )
    add_log_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run the gateway against the configured broker until SIGINT/SIGTERM."""
    pause_collector()
    try:
        configure_logging(args.log_level, args.log_format)
        cfg = load_config(
            args.config,
            gateway__store_id=args.store_id,
            gateway__state_dir=args.state_dir,
            mqtt__host=args.mqtt_host,
            mqtt__port=args.mqtt_port,
            model__bundle=args.bundle,
        )
        gw = Gateway(cfg).start()
    except (ConfigError, BundleError, LedgerError, OSError) as err:
        # One line on stderr, no traceback: a bad config, a refused bundle, or a state
        # directory that is unusable, held by another gateway or holds another store's ledger.
        for line in str(err).splitlines():  # a bad configuration: one line per problem
            print(f"shelfcast run: {line}", file=sys.stderr, flush=True)
        resume_collector()
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "gateway %s: ledger %s, policy %s, broker %s:%s, topics %s/%s/...",
        cfg.gateway.store_id,
        cfg.ledger_path,
        gw.model_version,
        cfg.mqtt.host,
        cfg.mqtt.port,
        cfg.mqtt.topic_prefix,
        cfg.gateway.store_id,
    )
    deadline = time.monotonic() + FREEZE_AT_THE_LATEST_S
    while not (gw.first_commit.wait(0.05) or stop.is_set() or time.monotonic() > deadline):
        pass
    import_river()  # not needed before the first commit (edge_runtime/forecast/online.py)
    freeze_startup_heap()
    while not stop.wait(1.0):
        pass
    gw.close()
    return 0
