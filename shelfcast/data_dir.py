"""Where the real retail data lives: one setting, read by every part.

The setting is the environment variable ``SHELFCAST_DATA_DIR`` (or the CLI option
``--data-dir``, which sets it); its default is ``../shared/data/`` beside the project root.

>>> import os
>>> os.environ["SHELFCAST_DATA_DIR"] = "/tmp"
>>> str(data_dir())
'/tmp'
>>> del os.environ["SHELFCAST_DATA_DIR"]
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SHELFCAST_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"

CANONICAL_HINT = (
    "Point shelfcast at the data with SHELFCAST_DATA_DIR=/path/to/data (or --data-dir), "
    "or train on your own file in the canonical format: a Parquet or CSV long table with "
    "columns store_id, sku, date, units (optional price, promo and calendar columns), "
    "e.g. `shelfcast train --data sales.parquet --out bundle/`."
)


class DataMissingError(FileNotFoundError):
    """The real data (or one file of it) is not where the setting says."""


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory: ``override``, else ``$SHELFCAST_DATA_DIR``, else the default."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_DATA_DIR


def require(relative: str, override: str | os.PathLike[str] | None = None) -> Path:
    """Return ``data_dir()/relative``, or raise a DataMissingError that says how to fix it."""
    root = data_dir(override)
    path = root / relative
    if not path.exists():
        raise DataMissingError(
            f"real data not found: {path} does not exist (data dir {root}, "
            f"set by {ENV_VAR} or --data-dir, default {DEFAULT_DATA_DIR}). {CANONICAL_HINT}"
        )
    return path


def available(relative: str = "", override: str | os.PathLike[str] | None = None) -> bool:
    """True when ``data_dir()/relative`` exists (tests use it to skip with a stated reason)."""
    return (data_dir(override) / relative).exists()


# The real data sets the project knows (see ../shared/data/README.md for provenance).
KNOWN_SETS = (
    "online_retail",
    "m5_store_days",
    "m5_sample",
    "walmart_weekly",
    "favorita",
    "freshretailnet",
)


def add_arguments(parser) -> None:  # `shelfcast data`
    """No options beyond the common --data-dir."""


def run(args) -> int:
    root = data_dir()
    print(f"data dir: {root}  ({ENV_VAR} or --data-dir; default {DEFAULT_DATA_DIR})")
    if not root.exists():
        print(f"  missing. {CANONICAL_HINT}")
        return 1
    for name in KNOWN_SETS:
        files = sorted(p.name for p in (root / name).glob("*")) if (root / name).exists() else []
        print(f"  {name:<15} {'ok' if files else 'MISSING'}  {' '.join(files)}")
    return 0
