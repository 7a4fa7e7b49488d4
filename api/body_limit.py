"""Request body limits, enforced while the body streams in (a huge upload is never buffered).

:class:`BodyLimit` is pure ASGI middleware: it refuses a declared ``Content-Length`` over the
path's limit up front, and counts bytes of chunked bodies, raising :class:`BodyTooLarge` (answered
413 with a JSON reason) when they go over. Event ingest reads its own body through
:func:`read_capped` so an oversized payload can still be dead-lettered with its reason; a bundle
upload streams to a file through :func:`stream_to_file` (never held in memory).

>>> limit = BodyLimit(app=None, limit_for=lambda path: 10)
>>> limit.limit_for("/anything")
10
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import BodyTooLarge, error_response


class BodyLimit:
    """ASGI middleware capping request bodies; ``limit_for(path)`` returns bytes or None (own).

    >>> BodyLimit(app=None, limit_for=lambda path: 1024).limit_for("/v1/predictions")
    1024
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int | None]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if limit is None:  # the endpoint enforces its own limit
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            msg = f"request body of {declared} bytes exceeds the {limit}-byte limit"
            await error_response(413, msg, ["body"])(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit, seen)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, or :class:`BodyTooLarge` carrying what was read past ``limit``.

    Reading stops at the first chunk beyond the limit, whatever ``Content-Length`` claims.
    """
    chunks: list[bytes] = []
    seen = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge(limit, seen, b"".join(chunks))
    return b"".join(chunks)


async def stream_to_file(request: Request, limit: int, target: Path) -> int:
    """Write the request body to ``target`` chunk by chunk; returns its size.

    A ``Content-Length`` over ``limit`` is refused before one byte is read; a chunked body is
    counted as it arrives and refused at the first chunk past the limit. Either way
    :class:`BodyTooLarge` (413); memory holds one chunk at a time.
    """
    declared = _content_length(request.scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared, declared=True)
    seen = 0
    with Path(target).open("wb") as f:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise BodyTooLarge(limit, seen)
            f.write(chunk)
    return seen
