"""Server processes on loopback for the demo, the benchmarks and the tests (Mosquitto, NATS
JetStream): a free port, a start that returns once the port listens (or says why the server
died), and a stop that lets the server save its state before it is killed.

>>> import sys
>>> proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
>>> wait_listening(proc, free_port(), 5, "demo server", lambda: "it exits at once")
Traceback (most recent call last):
...
RuntimeError: demo server exited (code 3): it exits at once
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(
    proc: subprocess.Popen,
    port: int,
    timeout: float,
    name: str,
    why: Callable[[], str] = lambda: "",
) -> None:
    """Return once ``127.0.0.1:port`` accepts connections; ``RuntimeError`` if ``proc`` exits
    first, ``TimeoutError`` (after stopping it) if ``timeout`` seconds pass. ``why`` gives what
    to add to the error (a log's tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited (code {proc.returncode}): {why()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    stop_process(proc)
    raise TimeoutError(f"{name} did not listen on 127.0.0.1:{port} within {timeout} s: {why()}")


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM (brokers save their persistence on it), then wait; SIGKILL if it hangs."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_serving(proc: subprocess.Popen, health_url: str, timeout: float, name: str) -> None:
    """Return once ``health_url`` answers 200; ``RuntimeError`` if ``proc`` exits first,
    ``TimeoutError`` if ``timeout`` seconds pass (an HTTP server listens before it serves)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            if httpx.get(health_url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not serve {health_url} within {timeout} s")
