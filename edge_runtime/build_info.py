"""What build of shelfcast is running: its version and source revision.

The version is the installed package's; the revision (a git commit) comes from the image
(``SHELFCAST_REVISION``, set from the ``REVISION`` build argument) or, in a checkout, is
unknown. Both go on the retained gateway state and the ``shelfcast_build_info`` metric, so an
operator can tell which build each store runs.

>>> VERSION != ""
True
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version


def _package_version() -> str:
    try:
        return version("shelfcast")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


VERSION = _package_version()
REVISION = os.environ.get("SHELFCAST_REVISION") or "unknown"
