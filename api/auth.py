"""Bearer-token access: writes always need the configured token, reads only when closed.

The token is compared in constant time so response timing does not leak how much of a guessed
token was right.

>>> from api.settings import ApiSettings
>>> check_token(ApiSettings(token="correct-horse"), "correct-horse")
>>> check_token(ApiSettings(token="correct-horse"), "wrong-token")
Traceback (most recent call last):
...
fastapi.exceptions.HTTPException: 401: invalid bearer token
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.settings import ApiSettings

# auto_error=False: we answer 401 ourselves with the project's JSON error body.
bearer = HTTPBearer(auto_error=False, description="the gateway's API token (SHELFCAST_API_TOKEN)")

# Operations guarded by require_writer carry this OpenAPI extension ("write"), so the published
# schema can state which operations need the token whatever the read configuration is.
WRITE_MARK = "x-shelfcast-access"
WRITE = {WRITE_MARK: "write"}

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def check_token(settings: ApiSettings, presented: str | None) -> None:
    """Raise 401/403 unless ``presented`` is the configured token."""
    if settings.token is None:
        raise HTTPException(403, "writes are disabled: no API token is configured on this gateway")
    if presented is None:
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)", _CHALLENGE)
    if not hmac.compare_digest(presented.encode(), settings.token.encode()):
        raise HTTPException(401, "invalid bearer token", _CHALLENGE)


def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def require_writer(request: Request, creds: Credentials) -> None:
    """Dependency of every write endpoint."""
    check_token(_settings(request), creds.credentials if creds else None)


def require_reader(request: Request, creds: Credentials) -> None:
    """Dependency of every read endpoint: open unless the configuration closes reads."""
    settings = _settings(request)
    if settings.reads_open:
        return
    if settings.token is None:  # closed reads with no token: nobody may read
        raise HTTPException(403, "reads are closed and no API token is configured")
    check_token(settings, creds.credentials if creds else None)
