"""The omnichannel API: network availability, online reservations routed to stores, the fleet.

Every route but ``/v1/health`` needs the hub's bearer token (compared in constant time, as the
gateway's API does). A reservation goes to one store as an ordinary ``reservation`` event on
``shelfcast.<store>.reservation`` (a JetStream stream the store's gateway consumes durably);
that store's ledger applies its last-unit rule and its ``ReservationResult`` comes back on
``shelfcast.<store>.reservation_result``: 201 when granted in full, 409 with the store's
conflict when cut short, 503 when the store is offline (never routed blind), 504 when the store
did not answer in time (the event stays queued; the store decides when it reads it).

>>> app = create_app(HubSettings(nats_url="nats://127.0.0.1:4222", token="t"))
>>> sorted({r.path for r in app.routes if r.path.startswith("/v1")})[:5]
['/v1/availability/{sku}', '/v1/fleet', '/v1/health', '/v1/orders', '/v1/reservations']
>>> sorted({r.path for r in app.routes if r.path.startswith("/v1/rollouts")})
['/v1/rollouts', '/v1/rollouts/{rollout_id}']
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from edge_runtime.messages import RESERVATION, RESERVATION_RESULT, hub_subject
from hub.live_view import LiveView, read_cursors
from hub.network_map import NetworkMap
from hub.order_book import OrderBook, OrderIdReused
from hub.orders import MAX_ATTEMPTS, OrderDecision, OrderDesk, OrderRequest
from hub.rollout import Thresholds
from hub.rollout_desk import (
    RolloutBusy,
    RolloutDesk,
    archive_metadata,
    bundle_archive,
    bundle_metadata,
)
from hub.streams import (
    FLEET_BUCKET,
    STOCK_BUCKET,
    decision_subject,
    ensure,
    until_ready,
)

bearer = HTTPBearer(auto_error=False, description="the hub's API token (SHELFCAST_HUB_TOKEN)")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class HubSettings:
    """Where JetStream is, the API token, and how long to wait for a store's decision."""

    nats_url: str
    token: str | None
    reservation_timeout_s: float = 5.0
    stale_after_s: float = 15.0
    replicas: int = 1
    prefix: str = "shelfcast"
    network: NetworkMap | None = None  # where stores and DCs are: needed to route orders


def require_token(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    token = request.app.state.settings.token
    if token is None:
        raise HTTPException(403, "the hub has no API token configured (SHELFCAST_HUB_TOKEN)")
    if creds is None:
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)", _CHALLENGE)
    if not hmac.compare_digest(creds.credentials.encode(), token.encode()):
        raise HTTPException(401, "invalid bearer token", _CHALLENGE)


class ReservationRequest(BaseModel):
    """An online order's reservation of ``qty`` units of ``sku``, optionally at one store.

    >>> from pydantic import ValidationError
    >>> ReservationRequest(order_id="web-1", sku="A", qty=2).store_id is None  # the hub picks one
    True
    >>> try:
    ...     ReservationRequest(order_id="web 1", sku="A", qty=2)
    ... except ValidationError as err:
    ...     print(err.errors()[0]["loc"], err.errors()[0]["type"])
    ('order_id',) string_pattern_mismatch
    """

    order_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    sku: str = Field(min_length=1, max_length=128)
    qty: int = Field(gt=0, le=10_000)
    store_id: str | None = Field(
        None, description="reserve here; else the online store with the most available units"
    )


class RolloutRequest(BaseModel):
    """A bundle to roll out (a directory on the hub's host, or a base64 tar.gz of one), the
    canary stores that get it first, and when to halt.

    >>> for request in (RolloutRequest(canaries=["S1"]),
    ...                 RolloutRequest(canaries=["S1"], bundle_tar_gz_b64="@@")):
    ...     try:
    ...         request.archive()
    ...     except ValueError as err:
    ...         print(err)
    give exactly one of bundle_path and bundle_tar_gz_b64
    bundle_tar_gz_b64 is not base64: Only base64 data is allowed
    """

    bundle_path: str | None = Field(None, description="a bundle directory on the hub's host")
    bundle_tar_gz_b64: str | None = Field(None, description="or the bundle's files, tar.gz, base64")
    canaries: list[str] = Field(min_length=1, description="stores that get the bundle first")
    thresholds: Thresholds = Thresholds()

    def archive(self) -> tuple[bytes, dict[str, Any]]:
        """(the bundle as tar.gz, its metadata); ValueError says what is wrong."""
        if (self.bundle_path is None) == (self.bundle_tar_gz_b64 is None):
            raise ValueError("give exactly one of bundle_path and bundle_tar_gz_b64")
        if self.bundle_path is not None:
            path = Path(self.bundle_path)
            return bundle_archive(path), bundle_metadata(path)
        try:
            data = base64.b64decode(self.bundle_tar_gz_b64 or "", validate=True)
        except binascii.Error as err:
            raise ValueError(f"bundle_tar_gz_b64 is not base64: {err}") from None
        try:
            return data, archive_metadata(data)
        except (OSError, EOFError) as err:  # tarfile's errors derive from these
            raise ValueError(f"bundle_tar_gz_b64 is not a tar.gz: {err}") from None


class HubRuntime:
    """The API process's NATS connection, live view and reservations awaiting their answer."""

    def __init__(self, settings: HubSettings):
        self.settings = settings
        self.view = LiveView(settings.stale_after_s)
        self.waiting: dict[str, asyncio.Future] = {}
        # reservation event id -> order id, for order lines given up on when the store did
        # not answer in time: a late grant is released (the order was routed elsewhere)
        self.abandoned: dict[str, str] = {}
        self.orders: OrderBook | None = None
        self.rollouts: RolloutDesk | None = None
        self.nc: Any = None
        self.js: Any = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        import nats

        s = self.settings
        self.nc = await nats.connect(
            servers=s.nats_url.split(","),
            name="hub-api",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            reconnected_cb=self._rewatch,
        )
        self.js = self.nc.jetstream()
        await until_ready(lambda: ensure(self.js, s.replicas, s.prefix), "hub API")
        # a claim outlives every attempt of its order before a resend may take it over
        lease = MAX_ATTEMPTS * s.reservation_timeout_s + 10.0
        self.orders = await OrderBook.open(self.js, lease, s.replicas)
        await self.nc.subscribe(f"{s.prefix}.*.{RESERVATION_RESULT}", cb=self._on_result)
        await asyncio.wait_for(self._watch(), 30)
        stores = lambda: [f["store_id"] for f in self.view.fleet_report()]  # noqa: E731
        self.rollouts = RolloutDesk(self.js, self.nc, stores, s.prefix)
        await self.rollouts.start()

    async def _watch(self) -> None:
        """Follow the view's buckets; returns once their current values are loaded."""
        ready = []
        for bucket in (STOCK_BUCKET, FLEET_BUCKET):  # cursors: read for /v1/fleet only
            ready.append(asyncio.Event())
            self._tasks.append(asyncio.create_task(self.view.watch(self.js, bucket, ready[-1])))
        await asyncio.gather(*(r.wait() for r in ready))

    async def _rewatch(self) -> None:
        """Back from a lost connection: the watches' consumers may be gone with a restarted
        server (the client would notice only after missed heartbeats, 10 s): start afresh.

        The old watches are stopped (their subscriptions dropped) before the new ones start:
        a new watch first delivers every key's latest value, so no update is lost in between,
        while an old watch still running could put a value older than the new one's."""
        await self._stop_watches()
        self._tasks = [asyncio.get_running_loop().create_task(self._watch())]

    async def _stop_watches(self) -> None:
        """Cancel the watch tasks and wait until each has dropped its subscription."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _on_result(self, msg: Any) -> None:
        result = json.loads(msg.data)
        fut = self.waiting.get(result["event_id"])
        if fut is not None and not fut.done():
            fut.set_result(result)
        elif result["event_id"] in self.abandoned:
            order_id = self.abandoned.pop(result["event_id"])
            if result.get("granted"):  # the store said yes after the order moved on
                await self.release_at(
                    order_id, result["store_id"], result["sku"], result["granted"], None,
                    event_id=f"{result['event_id']}-release",
                )  # fmt: skip

    async def stop(self) -> None:
        if self.rollouts is not None:
            await self.rollouts.stop()
        await self._stop_watches()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    def route(self, req: ReservationRequest) -> str:
        """The store to ask: the one named (if online), else the online one with most ATP."""
        if req.store_id is not None:
            if not self.view.online(req.store_id):
                raise HTTPException(
                    503,
                    f"store {req.store_id} is offline: its figure cannot be "
                    "promised; try another store",
                )
            return req.store_id
        stores = [s for s in self.view.availability(req.sku)["stores"] if s["online"]]
        if not stores or max(s["atp"] for s in stores) <= 0:
            raise HTTPException(409, f"no online store has {req.sku} available")
        return max(stores, key=lambda s: (s["atp"], s["store_id"]))["store_id"]

    async def ask(
        self, store: str, event: dict[str, Any], keep_late: bool = True
    ) -> dict[str, Any] | None:
        """Send ``event`` to ``store`` and wait for its result; None if it did not answer in
        time (the event stays queued; the store decides when it reads it). With ``keep_late``
        off, what the store grants after that is released again."""
        event_id = event["event_id"]
        fut = self.waiting.setdefault(event_id, asyncio.get_running_loop().create_future())
        try:
            await self.js.publish(
                hub_subject(store, RESERVATION, self.settings.prefix),
                json.dumps(event).encode(),
                headers={"Nats-Msg-Id": event_id},
            )
            return await asyncio.wait_for(asyncio.shield(fut), self.settings.reservation_timeout_s)
        except TimeoutError:
            if fut.done():  # the answer came as the wait ended
                return fut.result()
            if not keep_late:
                self.abandoned[event_id] = event["order_id"]
            return None
        finally:
            self.waiting.pop(event_id, None)

    async def reserve(self, req: ReservationRequest) -> tuple[int, dict[str, Any]]:
        store = self.route(req)
        event = _order_event(
            store, f"ecom-{req.order_id}-{req.sku}", req.order_id, req.sku, req.qty
        )
        result = await self.ask(store, event)
        if result is None:
            return 504, {
                "detail": f"store {store} did not answer within "
                f"{self.settings.reservation_timeout_s}s; the reservation is queued "
                "and the store decides when it reads it",
                "event_id": event["event_id"],
                "store_id": store,
            }
        if result.get("rejected"):
            return 422, {
                "detail": f"store {store} refused the event: {result['rejected']}",
                "result": result,
            }
        if result.get("granted") is not None and result["granted"] < result["requested"]:
            return 409, {"detail": "the store could not promise every unit", "result": result}
        return 201, {"result": result}

    async def reserve_at(
        self, order_id: str, store: str, sku: str, qty: float, tag: str
    ) -> tuple[float | None, dict[str, Any] | None]:
        """Units ``store`` granted for one line of an order (None: offline, no answer, refused
        the event, or a duplicate whose grant is unknown), and the store's conflict if any."""
        if not self.view.online(store):
            return None, None
        event = _order_event(store, f"ecom-{order_id}-{sku}-{tag}", order_id, sku, qty)
        result = await self.ask(store, event, keep_late=False)
        if result is None or result.get("rejected") or result.get("granted") is None:
            return None, None
        return float(result["granted"]), result.get("conflict")

    async def release_at(
        self,
        order_id: str,
        store: str,
        sku: str,
        qty: float,
        tag: str | None,
        event_id: str | None = None,
    ) -> None:
        """Give back units a re-routed order no longer needs (queued durably; not awaited)."""
        event_id = event_id or f"ecom-{order_id}-{sku}-{tag}-release"
        event = _order_event(store, event_id, order_id, sku, qty, "reservation_release")
        await self.js.publish(
            hub_subject(store, RESERVATION, self.settings.prefix),
            json.dumps(event).encode(),
            headers={"Nats-Msg-Id": event["event_id"]},
        )

    async def publish_decision(self, decision: OrderDecision) -> None:
        """The decision as a JetStream message (de-duplicated on its message id)."""
        await self.js.publish(
            decision_subject(self.settings.prefix),
            decision.model_dump_json(by_alias=True).encode(),
            headers={"Nats-Msg-Id": decision.message_id},
        )


def _order_event(
    store: str, event_id: str, order_id: str, sku: str, qty: float, kind: str = "reservation"
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "store_id": store,
        "sku": sku,
        "type": kind,
        "qty": qty,
        "event_time": datetime.now(UTC).isoformat(),
        "source": "ecom",
        "order_id": order_id,
    }


def create_app(settings: HubSettings, runtime: HubRuntime | None = None) -> FastAPI:
    """The hub's FastAPI app; it connects to JetStream when it starts serving."""
    rt = runtime or HubRuntime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await rt.start()
        yield
        await rt.stop()

    app = FastAPI(title="shelfcast hub", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = rt
    guarded = [Depends(require_token)]

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "connected": bool(rt.nc and rt.nc.is_connected)}

    @app.get("/v1/availability/{sku}", dependencies=guarded)
    async def availability(sku: str) -> dict[str, Any]:
        return rt.view.availability(sku)

    @app.post("/v1/reservations", dependencies=guarded)
    async def reserve(req: ReservationRequest) -> JSONResponse:
        status, body = await rt.reserve(req)
        return JSONResponse(body, status_code=status)

    @app.post(
        "/v1/orders",
        dependencies=guarded,
        response_model=OrderDecision,
        responses={409: {"model": OrderDecision}, 503: {"description": "no network map"}},
    )
    async def order(req: OrderRequest) -> JSONResponse:
        if settings.network is None:
            raise HTTPException(
                503, "the hub has no network map (shelfcast hub --network FILE): cannot route"
            )
        try:
            body, replayed = await OrderDesk(rt, settings.network).take(req)
        except OrderIdReused as err:
            raise HTTPException(422, str(err)) from None
        status = 201 if body["status"] == "reserved" else 409
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/v1/fleet", dependencies=guarded)
    async def fleet() -> dict[str, Any]:
        latest = list(rt.rollouts.rollouts.values())[-1:] if rt.rollouts else []
        return {
            "stale_after_s": settings.stale_after_s,
            "stores": rt.view.fleet_report(cursors=await read_cursors(rt.js)),
            "rollout": latest[0].status() if latest else None,  # the last one started
        }

    @app.post("/v1/rollouts", dependencies=guarded, status_code=201)
    async def start_rollout(req: RolloutRequest) -> dict[str, Any]:
        assert rt.rollouts is not None
        try:
            archive, meta = req.archive()
            rollout = await rt.rollouts.begin(archive, meta, req.canaries, req.thresholds)
        except ValueError as err:  # the bundle, or a canary it does not serve
            raise HTTPException(422, str(err)) from None
        except RolloutBusy as err:
            raise HTTPException(409, str(err)) from None
        return rollout.status()

    @app.get("/v1/rollouts", dependencies=guarded)
    async def rollouts() -> dict[str, Any]:
        assert rt.rollouts is not None
        return {"rollouts": [r.status() for r in rt.rollouts.rollouts.values()]}

    @app.get("/v1/rollouts/{rollout_id}", dependencies=guarded)
    async def rollout(rollout_id: str) -> dict[str, Any]:
        found = rt.rollouts.rollouts.get(rollout_id) if rt.rollouts else None
        if found is None:
            raise HTTPException(404, f"no rollout {rollout_id} (this API process's memory)")
        return found.status()

    return app
