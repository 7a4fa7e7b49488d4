"""The store staff's dashboard at ``GET /``: one HTML page, its stylesheet and scripts.

Everything it needs is served from ``api/static`` under ``/ui`` (plain HTML, CSS and JavaScript:
no build step, no CDN, since store networks are often offline). The page itself holds no data and
is open; it reads the API like any client, with the bearer token when reads are closed, and
follows ``/v1/alerts/stream`` for live updates.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.settings import ApiSettings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS_URL = "/ui"

router = APIRouter(include_in_schema=False)


def mount_assets(app: FastAPI) -> None:
    """Serve ``api/static`` under ``ASSETS_URL`` (mounted last: more specific ``/ui/...``
    mounts and routes come first)."""
    app.mount(ASSETS_URL, StaticFiles(directory=STATIC_DIR), name="ui-assets")


@router.get("/")
def dashboard() -> FileResponse:
    # no-cache: a tablet revalidates, so it never keeps a page older than the gateway's API
    return FileResponse(
        STATIC_DIR / "dashboard" / "index.html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/ui/config.json")
def page_config(request: Request) -> dict[str, object]:
    """What the page must know before its first read: whether reads need the token (so it
    asks for one up front instead of provoking a 401), and whether this API serves forecasts
    (an API attached read-only to a state directory does not)."""
    settings: ApiSettings = request.app.state.settings
    runtime = request.app.state.runtime
    return {
        "store_id": runtime.store_id,
        "reads_open": settings.reads_open,
        "forecasts": runtime.can_forecast,
    }
