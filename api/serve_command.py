"""``shelfcast serve``: the HTTP API and the edge runtime in one process, or the API alone
over the state directory of a gateway running elsewhere (read-only).

Configuration is one model (``api.settings.ServeSettings``): the gateway's sections plus
``[api]``, from ``--config`` / ``SHELFCAST_CONFIG``, ``SHELFCAST_*`` variables and the options
below; e.g. ``SHELFCAST_API_HOST`` (default 127.0.0.1), ``SHELFCAST_API_PORT`` (8080),
``SHELFCAST_API_TOKEN`` (writes need it; without it writes are refused) and
``SHELFCAST_API_READS_OPEN`` (default true). The token is read from the environment, the file or
``--token-file``, never from the command line, where other users of the box could read it in
``ps``. ``docs/configuration.md`` lists every key.

    $ SHELFCAST_STORE_ID=S1 SHELFCAST_API_TOKEN=... shelfcast serve --port 8080
    $ shelfcast serve --attach var/gateway        # read-only, beside a running `shelfcast run`
"""

from __future__ import annotations

import argparse
import contextlib
import logging
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
        help="concurrent connections before new ones get 503 (env SHELFCAST_API_MAX_CONNECTIONS; "
        "default 256): a flood cannot exhaust the gateway's memory",
    )
    add_log_options(parser)
    parser.add_argument(
        "--access-log",
        choices=("on", "off"),
        default=None,
        help="one INFO line per HTTP request: client, method, path, status (env "
        "SHELFCAST_API_ACCESS_LOG; default on)",
    )


def _settings(args: argparse.Namespace):
    """The process's settings (``api.settings``): file, then ``SHELFCAST_*``, then options."""
    from api.settings import load_serve_settings

    token = None
    if args.token_file:
        token = Path(args.token_file).read_text().strip() or None
    flag = {None: None, "open": True, "closed": False, "on": True, "off": False}
    return load_serve_settings(
        args.config,
        attach=bool(args.attach),
        gateway__store_id=args.store_id,
        gateway__state_dir=args.state_dir,
        mqtt__enabled=False if args.no_mqtt else None,
        api__host=args.host,
        api__port=args.port,
        api__token=token,
        api__reads_open=flag[args.reads],
        api__access_log=flag[args.access_log],
        api__max_connections=args.max_connections,
    )


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
    from configuration.layered_settings import ConfigError
    from edge_runtime.forecast.online import import_river
    from edge_runtime.gateway import Gateway
    from edge_runtime.heap import freeze_startup_heap
    from edge_runtime.log_output import configure_logging
    from edge_runtime.store.ledger import LedgerError
    from models.bundle import BundleError

    log = logging.getLogger("shelfcast.serve")
    try:
        configure_logging(args.log_level, args.log_format)
        process = _settings(args)
        target = StateDirRuntime(args.attach) if args.attach else Gateway(process).start()
    except (ConfigError, ValueError, OSError, LedgerError, BundleError, sqlite3.Error) as err:
        # One line, no traceback: a bad setting, or a state directory that is unusable, held
        # by another gateway, or holds another store's ledger.
        for line in str(err).splitlines():
            print(f"shelfcast serve: {line}", file=sys.stderr)
        return 2
    settings = process.api
    app = create_app(target, settings)
    runtime = app.state.runtime
    import_river()  # frozen with the start-up heap (edge_runtime/forecast/online.py)
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
        limit_concurrency=settings.max_connections,
        log_level="warning",
        lifespan="off",
        # Live views (/v1/alerts/stream) never end by themselves: without a limit one open
        # dashboard would hold the shutdown until the container is killed, gateway unclosed.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        access_log=settings.access_log,
        log_config=None,  # uvicorn's records go through our handler: one format, levels on
    )
    # Config set uvicorn's loggers to WARNING; the access log writes at INFO when on.
    access = logging.INFO if settings.access_log else logging.WARNING
    logging.getLogger("uvicorn.access").setLevel(access)
    server = _server_class(uvicorn)(config)
    try:
        server.run()
    finally:
        runtime.close()
        if not args.attach:
            target.close()
    return 0
