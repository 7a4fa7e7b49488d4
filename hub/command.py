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

TOKEN_ENV = "SHELFCAST_HUB_TOKEN"
NATS_ENV = "SHELFCAST_HUB_URL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats",
        default=os.environ.get(NATS_ENV, "nats://127.0.0.1:4222"),
        help=f"JetStream server(s), comma-separated (env {NATS_ENV})",
    )
    parser.add_argument("--workers", type=int, default=1, help="workers in this process (0: none)")
    parser.add_argument(
        "--api",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve the omnichannel API",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="API port")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        choices=(1, 3, 5),
        help="JetStream replicas of the hub's streams and buckets",
    )
    parser.add_argument("--name", default=f"pid{os.getpid()}", help="this process's worker name")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    token = os.environ.get(TOKEN_ENV)
    if args.api and not token:
        print(f"shelfcast hub: set {TOKEN_ENV}: the API serves no request without a token")
        return 2
    asyncio.run(_serve(args, token))
    return 0


async def _serve(args: argparse.Namespace, token: str | None) -> None:
    from hub.worker import HubWorker

    workers = [
        HubWorker(args.nats, f"{args.name}-{i}", replicas=args.replicas)
        for i in range(args.workers)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    server = None
    if args.api:
        import uvicorn

        from hub.api import HubSettings, create_app

        settings = HubSettings(nats_url=args.nats, token=token, replicas=args.replicas)
        config = uvicorn.Config(
            create_app(settings), host=args.host, port=args.port, log_level="warning", lifespan="on"
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
