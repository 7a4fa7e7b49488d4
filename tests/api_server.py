"""A real uvicorn server on a free loopback port, serving an app in a background thread.

>>> server = ApiServer(app).start()      # doctest: +SKIP
>>> httpx.get(server.url + "/health")    # doctest: +SKIP
>>> server.stop()                        # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time

import uvicorn

from tests.mosquitto import free_port


class ApiServer:
    """uvicorn in a thread; ``url`` is its base URL once ``start()`` returns."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ApiServer:
        if self.thread.is_alive():
            return self
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
