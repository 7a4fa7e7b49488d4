"""``/docs`` (Swagger UI) and ``/redoc`` that work without internet.

FastAPI's own pages load their scripts, styles and favicon from CDNs, so on a store network
that is offline they stay blank. The same pages are built here with every asset served by the
gateway from the ``fastapi-offline`` package (Swagger UI, ReDoc and a favicon, ~3 MB, in the
``edge`` extra); Swagger UI's online validator and ReDoc's web fonts are switched off, and
ReDoc's one remaining outside request (its credit's logo) is pointed at a local icon by
``api/static/api-docs/redoc-offline.js``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/ui/vendor/api-docs"
REDOC_SHIM = "/ui/api-docs/redoc-offline.js"  # served with the dashboard's assets (api/static)
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    """Where the installed ``fastapi_offline`` keeps Swagger UI's and ReDoc's files."""
    return Path(str(files("fastapi_offline") / "static"))


def mount_assets(app: FastAPI) -> None:
    """Serve the documentation assets under ``ASSETS_URL`` (before any mount of ``/ui``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="api-docs-assets")


def _root(request: Request) -> str:
    return request.scope.get("root_path", "")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title}: Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        swagger_ui_parameters={"validatorUrl": None},  # the default validator is online
    )


@router.get(OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title}: ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    shim = f'<body>\n    <script src="{root}{REDOC_SHIM}"></script>'
    html = bytes(page.body).decode().replace("<body>", shim, 1)
    return HTMLResponse(html)
