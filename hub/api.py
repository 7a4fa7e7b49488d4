"""The omnichannel API: network availability, online reservations routed to stores, the fleet.

Every route but ``/v1/health`` needs the hub's bearer token (compared in constant time, as the
gateway's API does). A reservation goes to one store as an ordinary ``reservation`` event on
``shelfcast.<store>.reservation`` (a JetStream stream the store's gateway consumes durably);
that store's ledger applies its last-unit rule and its ``ReservationResult`` comes back on
``shelfcast.<store>.reservation_result``: 201 when granted in full, 409 with the store's
conflict when cut short, 503 when the store is offline (never routed blind), 504 when the store
did not answer in time (the event stays queued; the store decides when it reads it).

>>> app = create_app(HubSettings(nats_url="nats://127.0.0.1:4222", token="t"))
>>> sorted(r.path for r in app.routes if r.path.startswith("/v1"))
['/v1/availability/{sku}', '/v1/fleet', '/v1/health', '/v1/reservations']
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from edge_runtime.messages import RESERVATION, RESERVATION_RESULT, hub_subject
from hub.live_view import LiveView
from hub.streams import CURSOR_BUCKET, FLEET_BUCKET, STOCK_BUCKET, ensure

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
    """An online order's reservation of ``qty`` units of ``sku``, optionally at one store."""

    order_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    sku: str = Field(min_length=1, max_length=128)
    qty: int = Field(gt=0, le=10_000)
    store_id: str | None = Field(
        None, description="reserve here; else the online store with the most available units"
    )


class HubRuntime:
    """The API process's NATS connection, live view and reservations awaiting their answer."""

    def __init__(self, settings: HubSettings):
        self.settings = settings
        self.view = LiveView(settings.stale_after_s)
        self.waiting: dict[str, asyncio.Future] = {}
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
        await ensure(self.js, s.replicas, s.prefix)
        await self.nc.subscribe(f"{s.prefix}.*.{RESERVATION_RESULT}", cb=self._on_result)
        await asyncio.wait_for(self._watch(), 30)

    async def _watch(self) -> None:
        """Follow the view's buckets; returns once their current values are loaded."""
        ready = []
        for bucket in (STOCK_BUCKET, CURSOR_BUCKET, FLEET_BUCKET):
            ready.append(asyncio.Event())
            self._tasks.append(asyncio.create_task(self.view.watch(self.js, bucket, ready[-1])))
        await asyncio.gather(*(r.wait() for r in ready))

    async def _rewatch(self) -> None:
        """Back from a lost connection: the watches' consumers may be gone with a restarted
        server (the client would notice only after missed heartbeats, 10 s): start afresh."""
        for t in self._tasks:
            t.cancel()
        self._tasks = [asyncio.get_running_loop().create_task(self._watch())]

    async def _on_result(self, msg: Any) -> None:
        result = json.loads(msg.data)
        fut = self.waiting.get(result["event_id"])
        if fut is not None and not fut.done():
            fut.set_result(result)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
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

    async def reserve(self, req: ReservationRequest) -> tuple[int, dict[str, Any]]:
        store = self.route(req)
        event_id = f"ecom-{req.order_id}-{req.sku}"
        event = {
            "event_id": event_id,
            "store_id": store,
            "sku": req.sku,
            "type": "reservation",
            "qty": req.qty,
            "event_time": datetime.now(UTC).isoformat(),
            "source": "ecom",
            "order_id": req.order_id,
        }
        fut = self.waiting.setdefault(event_id, asyncio.get_running_loop().create_future())
        try:
            await self.js.publish(
                hub_subject(store, RESERVATION, self.settings.prefix),
                json.dumps(event).encode(),
                headers={"Nats-Msg-Id": event_id},
            )
            result = await asyncio.wait_for(
                asyncio.shield(fut), self.settings.reservation_timeout_s
            )
        except TimeoutError:
            return 504, {
                "detail": f"store {store} did not answer within "
                f"{self.settings.reservation_timeout_s}s; the reservation is queued "
                "and the store decides when it reads it",
                "event_id": event_id,
                "store_id": store,
            }
        finally:
            self.waiting.pop(event_id, None)
        if result.get("rejected"):
            return 422, {
                "detail": f"store {store} refused the event: {result['rejected']}",
                "result": result,
            }
        if result.get("granted") is not None and result["granted"] < result["requested"]:
            return 409, {"detail": "the store could not promise every unit", "result": result}
        return 201, {"result": result}


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

    @app.get("/v1/fleet", dependencies=guarded)
    async def fleet() -> dict[str, Any]:
        return {"stale_after_s": settings.stale_after_s, "stores": rt.view.fleet_report()}

    return app
