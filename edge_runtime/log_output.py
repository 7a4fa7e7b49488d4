"""Where the gateway's and the API's log records go, and in what form: text or JSON lines.

Every line carries its level. ``text`` (the default) is for a person at a terminal;
``json`` (``--log-format json`` or ``SHELFCAST_LOG_FORMAT=json``) is one JSON object per line,
for a log shipper: ``time`` (UTC, ``+00:00``), ``level``, ``logger``, ``message``, an
``exception`` when there is one, and for the API's access log (logger ``uvicorn.access``) the
request's ``client``, ``method``, ``path`` and ``status`` as fields of their own.

>>> record = logging.LogRecord("shelfcast", logging.WARNING, __file__, 1, "disk %s", ("full",), None)
>>> line = json.loads(JsonLines().format(record))
>>> line["level"], line["logger"], line["message"]
('WARNING', 'shelfcast', 'disk full')
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime

from configuration.command_options import LOG_FORMATS, log_format
from configuration.layered_settings import ConfigError

ENV_VAR = "SHELFCAST_LOG_FORMAT"
TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonLines(logging.Formatter):
    """One JSON object per record (see the module's docstring).

    >>> access = ("10.0.0.7:5123", "GET", "/health", "1.1", 200)
    >>> record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
    ...                            '%s - "%s %s HTTP/%s" %d', access, None)
    >>> record.created = 0.0
    >>> line = json.loads(JsonLines().format(record))
    >>> line["time"], line["method"], line["path"], line["status"]  # the access log's own fields
    ('1970-01-01T00:00:00.000+00:00', 'GET', '/health', 200)
    """

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, object] = {
            "time": when,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            out.update(zip(_ACCESS_FIELDS, args, strict=True))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(
    level: str, fmt: str | None = None, env: Mapping[str, str] = os.environ
) -> str:
    """Send every record at ``level`` or above to stderr in ``fmt`` (``text`` or ``json``; None:
    ``SHELFCAST_LOG_FORMAT``, else text). Returns the format used. A bad value of the variable
    raises ``ConfigError`` naming it."""
    if fmt is None:
        try:
            fmt = log_format(env.get(ENV_VAR) or "text")
        except argparse.ArgumentTypeError as err:
            raise ConfigError([f"{ENV_VAR}: {err}"]) from None
    assert fmt in LOG_FORMATS
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return fmt
