"""The hub process's settings (``shelfcast hub``): the ``[hub]`` section, from a TOML file
(``--config``), ``SHELFCAST_HUB_*`` variables and options, like every other process.

The gateway's sections may share the environment on a development box; they are that
process's to check (the hub never imports the gateway: they are named here, and a test keeps
the names in step with the gateway's model).

>>> s = load_hub_settings(None, env={"SHELFCAST_HUB_WORKERS": "0", "SHELFCAST_HUB_API": "no"})
>>> (s.hub.workers, s.hub.api, s.hub.nats_servers)
(0, False, 'nats://127.0.0.1:4222')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from configuration.hub_section import HubSection
from configuration.layered_settings import LayeredSettings, load_settings


class HubProcessSettings(LayeredSettings):
    """``shelfcast hub``: the ``[hub]`` section.

    >>> env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_HUB_PORT": "9000"}  # a gateway's too
    >>> load_settings(HubProcessSettings, env=env).hub.port
    9000
    """

    foreign_sections: ClassVar[frozenset[str]] = frozenset(
        {"gateway", "mqtt", "policy", "uplink", "model", "ingest", "retention", "api"}
    )
    foreign_variables: ClassVar[frozenset[str]] = frozenset(
        {"SHELFCAST_STORE_ID", "SHELFCAST_STATE_DIR", "SHELFCAST_BUNDLE"}
    )

    hub: HubSection = HubSection()


def load_hub_settings(
    path: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> HubProcessSettings:
    """File, then variables, then ``options`` (``[hub]`` keys; None: not given)."""
    return load_settings(HubProcessSettings, path, env, {"hub": options})
