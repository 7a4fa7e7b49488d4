#!/usr/bin/env python3
"""Container HEALTHCHECK: exit 0 when the gateway's API answers its health endpoint, else 1.

Standard library only and no import of shelfcast, so a check costs a few milliseconds of CPU on
the gateway box instead of loading the runtime's dependencies every 30 seconds.

    $ SHELFCAST_API_PORT=8080 python3 docker/healthcheck.py
    healthy: http://127.0.0.1:8080/health -> 200
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def health_url() -> str:
    """The URL to probe, from the same environment the gateway reads."""
    port = os.environ.get("SHELFCAST_API_PORT", "8080")
    path = os.environ.get("SHELFCAST_HEALTH_PATH", "/health")
    return f"http://127.0.0.1:{port}{path}"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url} -> {exc}", file=sys.stderr)
        return 1
    print(f"healthy: {url} -> {status}")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    raise SystemExit(main())
