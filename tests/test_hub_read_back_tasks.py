"""A worker that reads a store's predecessors back many times over hours keeps no finished
read among the tasks it cancels at stop (they would pile up for the life of the worker)."""

from __future__ import annotations

import asyncio

import hub.worker as worker_module
from hub.worker import HubWorker


class _Msg:
    def __init__(self) -> None:
        self.headers = {"Shelfcast-Seq": "7"}


def test_finished_read_backs_leave_no_task_behind(monkeypatch):
    async def found_nothing(js, msg):
        return []

    monkeypatch.setattr(worker_module, "read_predecessors", found_nothing)
    monkeypatch.setattr(worker_module, "READ_AGAIN_S", 0.0)

    async def read_back_often() -> int:
        w = HubWorker("nats://127.0.0.1:1", name="w")
        w._queues["S1"] = asyncio.Queue()
        for _ in range(50):
            w._read_predecessors("S1", _Msg())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return len(w._tasks)

    assert asyncio.run(read_back_often()) == 0
