"""One JSON error body for every failure, naming what was wrong and where.

FastAPI's defaults answer some errors as ``{"detail": ...}`` with varying shapes; clients of a
gateway get one shape instead: ``{"error": code, "message": text, "where": [...]}``.

>>> ErrorBody(error="not_found", message="no stock record for SKU 'X'").model_dump()["where"]
[]
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ApiModel
from edge_runtime.store.store_failure import StoreError

log = logging.getLogger("shelfcast.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    503: "unavailable",
}


class ErrorBody(ApiModel):
    """What went wrong: a stable code, a sentence, and the locations at fault.

    >>> ErrorBody(error="not_found", message="no SKU 'X'").where
    []
    """

    error: str = Field(description="machine-readable error code, e.g. invalid_input")
    message: str = Field(description="what was wrong, in words")
    where: list[str] = Field(
        default_factory=list, description="locations at fault, e.g. query.limit or body.qty"
    )


class Unavailable(RuntimeError):
    """The runtime cannot do this now (no bundle loaded, read-only mode); answered 503.

    >>> isinstance(Unavailable("no bundle loaded"), RuntimeError)
    True
    """


class BodyTooLarge(Exception):
    """A request body went over its limit while being read.

    >>> BodyTooLarge(limit=10, seen=12).limit
    10
    """

    def __init__(self, limit: int, seen: int, head: bytes = b"", declared: bool = False):
        what = f"declares {seen} bytes" if declared else f"read {seen} bytes"
        super().__init__(f"request body exceeds the {limit}-byte limit ({what})")
        self.limit = limit
        self.seen = seen
        self.head = head  # what was read before stopping (event ingest dead-letters it)


def error_response(status: int, message: str, where: list[str] | None = None, headers=None):
    """A JSONResponse with the project's error body."""
    body = ErrorBody(error=_CODES.get(status, f"http_{status}"), message=message, where=where or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries documenting the error body for these statuses."""
    return {s: {"model": ErrorBody, "description": _CODES.get(s, "error")} for s in statuses}


def _location(loc: tuple | list) -> str:
    return ".".join(str(part) for part in loc)


async def _validation(request: Request, exc: RequestValidationError):
    errors = exc.errors()
    where = [_location(e.get("loc", ())) for e in errors]
    parts = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:10]]
    return error_response(422, "; ".join(parts) or "invalid request", where)


async def _http(request: Request, exc: StarletteHTTPException):
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; a path served by several
        # routes (GET and PUT /v1/bundle) must list them all.
        allowed = _allowed_methods(request)
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        message = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
    return error_response(exc.status_code, message, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Methods the published schema documents for this path (the one source of truth)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


async def _too_large(request: Request, exc: BodyTooLarge):
    return error_response(413, str(exc), ["body"])


async def _unavailable(request: Request, exc: Unavailable):
    return error_response(503, str(exc))


STORE_RETRY_AFTER_S = 5


async def _store_failed(request: Request, exc: StoreError):
    # The store failed (full disk, I/O), not the request: nothing of it was stored; the same
    # body sent again later is applied once (idempotent on event_id).
    message = f"the ledger cannot store events now ({exc}); nothing was stored, retry later"
    return error_response(503, message, headers={"Retry-After": str(STORE_RETRY_AFTER_S)})


async def _unexpected(request: Request, exc: Exception):
    # A bug must not leak internals to an outsider; the log has the traceback.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); see the gateway log")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through :class:`ErrorBody`."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(StoreError, _store_failed)
    app.add_exception_handler(Exception, _unexpected)
