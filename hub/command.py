"""``shelfcast hub``: hub workers and the omnichannel API in one process (either can be off).

Scale out by starting more processes with ``--no-api``: the workers share the partitions.

    shelfcast hub --nats nats://127.0.0.1:4222 --port 8090          # one worker + the API
    shelfcast hub --nats nats://127.0.0.1:4222 --no-api --workers 1 # one more worker

>>> import argparse; p = argparse.ArgumentParser(); add_arguments(p)
>>> p.parse_args(["--no-api"]).api
False
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from configuration.command_options import non_negative_int, port_number
from configuration.hub_section import HubSection


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file with a [hub] section (env SHELFCAST_CONFIG)")
    parser.add_argument(
        "--nats", help="JetStream server(s), comma-separated (env SHELFCAST_HUB_URL)"
    )
    parser.add_argument(
        "--workers", type=non_negative_int, help="workers in this process (0: none; default 1)"
    )
    parser.add_argument(
        "--api",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve the omnichannel API (env SHELFCAST_HUB_API; default on)",
    )
    parser.add_argument("--host", help="API address (env SHELFCAST_HUB_HOST; default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, help="API port (env SHELFCAST_HUB_PORT; default 8090)"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        choices=(1, 3, 5),
        help="JetStream replicas of the hub's streams and buckets (default 1)",
    )
    parser.add_argument(
        "--reservation-timeout",
        type=float,
        help="seconds to wait for a store's answer to a reservation before routing around it "
        "(env SHELFCAST_HUB_RESERVATION_TIMEOUT_S; default 5)",
    )
    parser.add_argument("--name", default=f"pid{os.getpid()}", help="this process's worker name")
    parser.add_argument(
        "--network",
        help="JSON map of stores' and DCs' locations, for POST /v1/orders "
        "(env SHELFCAST_HUB_NETWORK)",
    )


def run(args: argparse.Namespace) -> int:
    from configuration.layered_settings import ConfigError
    from hub.settings import load_hub_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load_hub_settings(
            args.config,
            url=args.nats,
            workers=args.workers,
            api=args.api,
            host=args.host,
            port=args.port,
            replicas=args.replicas,
            network=args.network,
            reservation_timeout_s=args.reservation_timeout,
        ).hub
    except ConfigError as err:
        for line in err.problems:
            print(f"shelfcast hub: {line}", file=sys.stderr)
        return 2
    if settings.api and not settings.token:
        print("shelfcast hub: set SHELFCAST_HUB_TOKEN: the API serves no request without a token")
        return 2
    asyncio.run(_serve(args.name, settings))
    return 0


async def _serve(name: str, settings: HubSection) -> None:
    from hub.worker import HubWorker

    nats = settings.nats_servers
    workers = [
        HubWorker(nats, f"{name}-{i}", replicas=settings.replicas) for i in range(settings.workers)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    server = None
    if settings.api:
        import uvicorn

        from hub.api import HubSettings, create_app
        from hub.network_map import NetworkMap

        app_settings = HubSettings(
            network=NetworkMap.load(settings.network) if settings.network else None,
            nats_url=nats,
            token=settings.token,
            reservation_timeout_s=settings.reservation_timeout_s,
            stale_after_s=settings.stale_after_s,
            replicas=settings.replicas,
        )
        config = uvicorn.Config(
            create_app(app_settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            lifespan="on",
        )
        server = uvicorn.Server(config)
        tasks.append(asyncio.create_task(server.serve()))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    done, _ = await asyncio.wait(
        [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    for t in done:
        if t.exception() is not None:
            raise t.exception()
    for w in workers:
        w.stop()
    if server is not None:
        server.should_exit = True
    await asyncio.wait(tasks, timeout=5)
