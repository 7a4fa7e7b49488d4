"""Where the M5 network's stores, distribution centres and online customers are.

M5 does not say where its ten stores stand, only their state: the twin places them in large
cities of their state (a stated assumption, chosen so that some stores share a metro area, as a
retailer's do), one regional distribution centre per state at a known retail-DC town, and
online customers in the state's ten largest cities, weighted by population (2020 census, city
proper, thousands).

>>> sorted(STORES)[:2], STORES["WI_3"].city
(['CA_1', 'CA_2'], 'Waukesha')
>>> round(sum(c.population for c in CITIES["TX"]))
8852
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    """A named point.

    >>> STORES["WI_3"].city, STORES["WI_3"].state, (STORES["WI_3"].lat, STORES["WI_3"].lon)
    ('Waukesha', 'WI', (43.01, -88.23))
    """

    city: str
    state: str
    lat: float
    lon: float
    population: float = 0.0


CITIES: dict[str, list[Place]] = {
    "CA": [
        Place("Los Angeles", "CA", 34.05, -118.24, 3899),
        Place("San Diego", "CA", 32.72, -117.16, 1386),
        Place("San Jose", "CA", 37.34, -121.89, 1013),
        Place("San Francisco", "CA", 37.77, -122.42, 873),
        Place("Fresno", "CA", 36.74, -119.79, 542),
        Place("Sacramento", "CA", 38.58, -121.49, 524),
        Place("Long Beach", "CA", 33.77, -118.19, 466),
        Place("Oakland", "CA", 37.80, -122.27, 440),
        Place("Bakersfield", "CA", 35.37, -119.02, 403),
        Place("Anaheim", "CA", 33.84, -117.91, 346),
    ],
    "TX": [
        Place("Houston", "TX", 29.76, -95.37, 2304),
        Place("San Antonio", "TX", 29.42, -98.49, 1434),
        Place("Dallas", "TX", 32.78, -96.80, 1304),
        Place("Austin", "TX", 30.27, -97.74, 961),
        Place("Fort Worth", "TX", 32.76, -97.33, 918),
        Place("El Paso", "TX", 31.76, -106.49, 678),
        Place("Arlington", "TX", 32.74, -97.11, 394),
        Place("Corpus Christi", "TX", 27.80, -97.40, 317),
        Place("Plano", "TX", 33.02, -96.70, 285),
        Place("Lubbock", "TX", 33.58, -101.86, 257),
    ],
    "WI": [
        Place("Milwaukee", "WI", 43.04, -87.91, 577),
        Place("Madison", "WI", 43.07, -89.40, 269),
        Place("Green Bay", "WI", 44.51, -88.02, 107),
        Place("Kenosha", "WI", 42.58, -87.82, 99),
        Place("Racine", "WI", 42.73, -87.78, 77),
        Place("Appleton", "WI", 44.26, -88.42, 75),
        Place("Waukesha", "WI", 43.01, -88.23, 71),
        Place("Eau Claire", "WI", 44.81, -91.50, 69),
        Place("Oshkosh", "WI", 44.02, -88.54, 66),
        Place("Janesville", "WI", 42.68, -89.02, 65),
    ],
}

_BY_NAME = {p.city: p for places in CITIES.values() for p in places}

STORES: dict[str, Place] = {
    "CA_1": _BY_NAME["Los Angeles"],
    "CA_2": _BY_NAME["Anaheim"],
    "CA_3": _BY_NAME["San Diego"],
    "CA_4": _BY_NAME["San Jose"],
    "TX_1": _BY_NAME["Houston"],
    "TX_2": _BY_NAME["Dallas"],
    "TX_3": _BY_NAME["Fort Worth"],
    "WI_1": _BY_NAME["Milwaukee"],
    "WI_2": _BY_NAME["Madison"],
    "WI_3": _BY_NAME["Waukesha"],
}

DCS: dict[str, Place] = {
    "DC_CA": Place("Mira Loma", "CA", 34.00, -117.52),
    "DC_TX": Place("Temple", "TX", 31.10, -97.34),
    "DC_WI": Place("Beaver Dam", "WI", 43.46, -88.84),
}
