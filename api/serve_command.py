"""``shelfcast serve``: the HTTP API and the edge runtime in one process, or the API alone
over the state directory of a gateway running elsewhere (read-only).

Configuration is the gateway's (``--config`` / ``SHELFCAST_*``) plus the API's own settings:
``SHELFCAST_API_HOST`` (default 127.0.0.1), ``SHELFCAST_API_PORT`` (8080),
``SHELFCAST_API_TOKEN`` (writes need it; without it writes are refused) and
``SHELFCAST_API_READS_OPEN`` (default true). The token is read from the environment or a file,
never from the command line, where other users of the box could read it in ``ps``.

    $ SHELFCAST_STORE_ID=S1 SHELFCAST_API_TOKEN=... shelfcast serve --port 8080
    $ shelfcast serve --attach var/gateway        # read-only, beside a running `shelfcast run`
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

from configuration.command_options import add_log_options, port_number, positive_int

GRACEFUL_SHUTDOWN_S = 2  # requests in flight get this long to finish at SIGTERM


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="gateway TOML file (env SHELFCAST_CONFIG); env overrides")
    parser.add_argument("--store-id", help="store id (env SHELFCAST_STORE_ID)")
    parser.add_argument("--state-dir", help="ledger/outbox directory (env SHELFCAST_STATE_DIR)")
    parser.add_argument("--no-mqtt", action="store_true", help="run without the MQTT transport")
    parser.add_argument(
        "--attach",
        metavar="STATE_DIR",
        help="serve read-only over the state directory of a gateway running in another process",
    )
    parser.add_argument(
        "--host", help="address to listen on (env SHELFCAST_API_HOST; default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=port_number, help="port, 1..65535 (env SHELFCAST_API_PORT; default 8080)"
    )
    parser.add_argument(
        "--token-file", help="file holding the API token (else env SHELFCAST_API_TOKEN)"
    )
    parser.add_argument(
        "--reads",
        choices=("open", "closed"),
        help="whether reads need the token too (env SHELFCAST_API_READS_OPEN; default open)",
    )
    parser.add_argument(
        "--max-connections",
        type=positive_int,
        default=256,
        help="concurrent connections before new ones get 503 (default 256): a flood cannot "
        "exhaust the gateway's memory",
    )
    add_log_options(parser)
    parser.add_argument(
        "--access-log",
        choices=("on", "off"),
        default=None,
        help="one INFO line per HTTP request: client, method, path, status (env "
        "SHELFCAST_API_ACCESS_LOG; default on)",
    )


def _access_log(choice: str | None, env: dict[str, str] | None = None) -> bool:
    """Whether to write the access log: ``--access-log``, else ``SHELFCAST_API_ACCESS_LOG``
    (on/off, true/false, 1/0), else on."""
    if choice is not None:
        return choice == "on"
    text = (os.environ if env is None else env).get("SHELFCAST_API_ACCESS_LOG", "on")
    value = text.strip().lower()
    if value not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"SHELFCAST_API_ACCESS_LOG: expected on or off, got {text!r}")
    return value in ("on", "true", "1", "yes")


def _settings(args: argparse.Namespace):
    from api.settings import ApiSettings

    token = None
    if args.token_file:
        token = Path(args.token_file).read_text().strip() or None
    reads_open = None if args.reads is None else args.reads == "open"
    return ApiSettings.from_env(token=token, reads_open=reads_open, host=args.host, port=args.port)


def _gateway(args: argparse.Namespace):
    from edge_runtime.config import load_config
    from edge_runtime.gateway import Gateway

    cfg = load_config(
        args.config,
        gateway__store_id=args.store_id,
        gateway__state_dir=args.state_dir,
        mqtt__enabled=False if args.no_mqtt else None,
    )
    return Gateway(cfg).start()


def _server_class(uvicorn):
    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its shutdown, killing the process before the gateway
        is closed; here the signal only stops the server and ``run`` closes the runtime."""

        @contextlib.contextmanager
        def capture_signals(self):
            previous = {
                s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def run(args: argparse.Namespace) -> int:
    """Start the runtime (unless attaching), serve the API until SIGINT/SIGTERM, then close."""
    import uvicorn

    from api.app import create_app
    from api.runtime import StateDirRuntime
    from edge_runtime.config import ConfigError
    from edge_runtime.heap import freeze_startup_heap
    from edge_runtime.ledger import LedgerError
    from edge_runtime.log_output import configure_logging
    from models.bundle import BundleError

    log = logging.getLogger("shelfcast.serve")
    try:
        configure_logging(args.log_level, args.log_format)
        access_log = _access_log(args.access_log)
        settings = _settings(args)
        target = StateDirRuntime(args.attach) if args.attach else _gateway(args)
    except (ConfigError, ValueError, OSError, LedgerError, BundleError, sqlite3.Error) as err:
        # One line, no traceback: a bad setting, or a state directory that is unusable, held
        # by another gateway, or holds another store's ledger.
        print(f"shelfcast serve: {err}", file=sys.stderr)
        return 2
    app = create_app(target, settings)
    runtime = app.state.runtime
    freeze_startup_heap()  # why: edge_runtime/heap.py
    if not settings.writes_enabled:
        log.warning("no API token configured (SHELFCAST_API_TOKEN): writes are refused")
    mode = "read-only over " + args.attach if args.attach else "with the edge runtime"
    log.info(
        "API of store %s on http://%s:%d (%s)", runtime.store_id, settings.host, settings.port, mode
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        limit_concurrency=args.max_connections,
        log_level="warning",
        lifespan="off",
        # Live views (/v1/alerts/stream) never end by themselves: without a limit one open
        # dashboard would hold the shutdown until the container is killed, gateway unclosed.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        access_log=access_log,
        log_config=None,  # uvicorn's records go through our handler: one format, levels on
    )
    # Config set uvicorn's loggers to WARNING; the access log writes at INFO when on.
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if access_log else logging.WARNING)
    server = _server_class(uvicorn)(config)
    try:
        server.run()
    finally:
        runtime.close()
        if not args.attach:
            target.close()
    return 0
