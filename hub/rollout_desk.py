"""The hub's side of rollouts on JetStream: stores a bundle in the object store, sends the
``Rollout``'s commands to stores (``shelfcast.<store>.install``, stream ``SHELFCAST_ROLLOUT``,
de-duplicated on ``<rollout>-<store>-<action>``), feeds it the stores' ``rollout_report``
messages and the fleet's stores, and keeps the rollouts for ``GET /v1/rollouts/{id}``.

One rollout decides at a time (a promoted one may still be reaching offline stores). Rollouts
live in the API process's memory: a restarted API forgets them (the commands already sent stay
queued and the stores still follow them). A command JetStream does not acknowledge is published
again for ``SEND_TRIES`` attempts (the stream drops a repeat by its id); after that it is logged,
not sent again.

>>> bundle_metadata(Path("no-such-bundle"))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ValueError: bundle no-such-bundle has no metadata.json
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_runtime.messages import BUNDLE_STORE, INSTALL, ROLLOUT_REPORT, hub_subject
from hub.rollout import Command, Rollout, Thresholds, check_canaries
from models.bundle import METADATA

log = logging.getLogger(__name__)

TICK_S = 0.2  # how often time-based moves (observation over, install timeout) are checked
SEND_TRIES = 10  # a command's publications, 0.5 s apart: a node's failover fits in them


class RolloutBusy(Exception):
    """Another rollout is under way."""


def bundle_metadata(bundle_dir: Path) -> dict[str, Any]:
    """A bundle directory's ``metadata.json``."""
    meta = bundle_dir / METADATA
    if not meta.is_file():
        raise ValueError(f"bundle {bundle_dir} has no {METADATA}")
    return json.loads(meta.read_text())


def bundle_archive(bundle_dir: Path) -> bytes:
    """The bundle directory's files as a tar.gz (what a gateway unpacks and verifies)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for f in sorted(bundle_dir.rglob("*")):
            if f.is_file():
                tar.add(f, arcname=str(f.relative_to(bundle_dir)))
    return out.getvalue()


def archive_metadata(data: bytes) -> dict[str, Any]:
    """The ``metadata.json`` of an uploaded tar.gz."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        try:
            meta = tar.extractfile(METADATA)
        except KeyError:
            meta = None
        if meta is None:
            raise ValueError(f"the uploaded bundle archive has no {METADATA} at its root")
        return json.loads(meta.read())


def metadata_version(meta: dict[str, Any]) -> str:
    """The ``model_version`` in a bundle's metadata (the version stores will show)."""
    return str(meta.get("model_version", "unknown"))


def served_stores(meta: dict[str, Any]) -> list[str] | None:
    """The stores a bundle serves (``stores`` in its metadata, written by training), or
    ``None`` for a bundle that names none: it may go to every store.

    >>> served_stores({"stores": ["S2", "S1"]}), served_stores({})
    (['S1', 'S2'], None)
    """
    stores = meta.get("stores")
    return sorted(str(s) for s in stores) if stores else None


class RolloutDesk:
    """Runs rollouts for the API process (``start`` once connected, ``stop`` at the end)."""

    def __init__(self, js: Any, nc: Any, fleet: Callable[[], list[str]], prefix: str):
        self.js, self.nc, self.fleet, self.prefix = js, nc, fleet, prefix
        self.rollouts: dict[str, Rollout] = {}
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self.nc.subscribe(f"{self.prefix}.*.{ROLLOUT_REPORT}", cb=self._on_report)
        self._task = asyncio.create_task(self._ticker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def current(self) -> Rollout | None:
        """The rollout still deciding (canaries, observation, rollback), if any."""
        return next((r for r in self.rollouts.values() if r.deciding), None)

    async def begin(
        self, archive: bytes, meta: dict[str, Any], canaries: list[str], thresholds: Thresholds
    ) -> Rollout:
        """Store the bundle and send it to the canaries. ``meta``, its metadata, gives the
        version and the only stores it may go to (``served_stores``); ``ValueError`` names a
        canary outside them."""
        serves = served_stores(meta)
        check_canaries(canaries, serves)
        async with self._lock:
            busy = self.current()
            if busy is not None:
                raise RolloutBusy(f"rollout {busy.id} is {busy.phase}; wait for it to end")
            rid = f"r-{uuid.uuid4().hex[:12]}"
            rollout = Rollout(rid, metadata_version(meta), canaries, thresholds, serves=serves)
            obs = await self.js.object_store(BUNDLE_STORE)
            await obs.put(rollout.id, archive)
            self.rollouts[rollout.id] = rollout
            await self._send(rollout, rollout.start(time.time()))
        return rollout

    async def _send(self, rollout: Rollout, commands: list[Command]) -> None:
        for c in commands:
            body = {"rollout_id": rollout.id, "action": c.action, "version": rollout.version}
            if c.action == "install":
                body["bundle"] = rollout.id
            for attempt in range(SEND_TRIES):
                try:
                    await self.js.publish(
                        hub_subject(c.store, INSTALL, self.prefix),
                        json.dumps(body).encode(),
                        headers={"Nats-Msg-Id": f"{rollout.id}-{c.store}-{c.action}"},
                    )
                    break
                except Exception:
                    if attempt == SEND_TRIES - 1:
                        raise
                    await asyncio.sleep(0.5)
        if commands:
            log.info("rollout %s (%s): %s", rollout.id, rollout.phase, commands)

    async def _on_report(self, msg: Any) -> None:
        report = json.loads(msg.data)
        rollout = self.rollouts.get(report.get("rollout_id", ""))
        if rollout is None:
            return
        async with self._lock:
            store = msg.subject.rsplit(".", 2)[1]
            try:
                await self._send(rollout, rollout.report(store, report, time.time()))
            except Exception:  # no ack after every try: logged, see the docstring
                log.exception("rollout %s: could not send its commands", rollout.id)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            for rollout in [r for r in self.rollouts.values() if r.active]:
                async with self._lock:
                    try:
                        await self._send(rollout, rollout.tick(time.time(), self.fleet()))
                    except Exception:  # no ack after every try: logged, see the docstring
                        log.exception("rollout %s: could not send its commands", rollout.id)
