"""Where the network's stores and distribution centres are: what the router measures from.

A JSON file given to ``shelfcast hub --network FILE`` (or ``SHELFCAST_HUB_NETWORK``)::

    {"stores": {"CA_1": {"lat": 34.05, "lon": -118.24}, ...},
     "dcs": {"DC_CA": {"lat": 34.0, "lon": -117.52}}}

A store the map does not place is never routed an order (its distance is unknown); the hub has
no DC stock feed, so a DC is taken to hold every line.

>>> m = NetworkMap.from_dict({"stores": {"S1": {"lat": 1, "lon": 2}}, "dcs": {}})
>>> m.stores["S1"].lat, m.dcs
(1.0, {})
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Site:
    """A located store or DC.

    >>> NetworkMap.from_dict({"dcs": {"DC1": {"lat": 34.0, "lon": -117.4}}}).dcs["DC1"]
    Site(site_id='DC1', lat=34.0, lon=-117.4)
    """

    site_id: str
    lat: float
    lon: float


@dataclass(frozen=True)
class NetworkMap:
    """Stores and DCs by id.

    >>> try:
    ...     NetworkMap.from_dict({"stores": {"S1": {"lat": 95, "lon": 2}}})
    ... except ValueError as err:
    ...     print(err)  # the wrong entry, named by its place in the map
    network map: stores.S1: lat 95.0 / lon 2.0 out of range
    """

    stores: dict[str, Site]
    dcs: dict[str, Site]

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "network map") -> NetworkMap:
        """Parse and check the map; a wrong entry is named with its place in the file."""
        out: dict[str, dict[str, Site]] = {}
        for group in ("stores", "dcs"):
            sites = raw.get(group, {})
            if not isinstance(sites, dict):
                raise ValueError(f"{where}: {group} must be an object of id -> {{lat, lon}}")
            out[group] = {sid: _site(sid, v, f"{where}: {group}.{sid}") for sid, v in sites.items()}
        return cls(out["stores"], out["dcs"])

    @classmethod
    def load(cls, path: str | Path) -> NetworkMap:
        return cls.from_dict(json.loads(Path(path).read_text()), str(path))


def _site(sid: str, value: Any, where: str) -> Site:
    try:
        lat, lon = float(value["lat"]), float(value["lon"])
    except (TypeError, KeyError, ValueError) as err:
        raise ValueError(f"{where}: needs numeric lat and lon ({err!r})") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"{where}: lat {lat} / lon {lon} out of range")
    return Site(sid, lat, lon)
