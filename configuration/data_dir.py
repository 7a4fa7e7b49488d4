"""Where the real retail data lives: one setting, read by every part that loads data.

The setting is the environment variable ``SHELFCAST_DATA_DIR`` (the CLI option ``--data-dir``
sets it). Without it the data is looked for in ``../shared/data`` from the working directory:
a path relative to where the command runs, never to where the code is installed, so an
installed wheel and a checkout read the same place.

>>> str(data_dir(env={"SHELFCAST_DATA_DIR": "/tmp"}))
'/tmp'
>>> data_dir(env={}) == Path.cwd().parent / "shared" / "data"
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "SHELFCAST_DATA_DIR"
DEFAULT_DATA_DIR = Path("..") / "shared" / "data"  # relative to the working directory

CANONICAL_HINT = (
    "Point shelfcast at the data with SHELFCAST_DATA_DIR=/path/to/data (or --data-dir), "
    "or train on your own file in the canonical format: a Parquet or CSV long table with "
    "columns store_id, sku, date, units (optional price, promo and calendar columns), "
    "e.g. `shelfcast train --data sales.parquet --out bundle/`."
)

# The real data sets the project knows (see the data directory's README.md for provenance).
KNOWN_SETS = (
    "online_retail",
    "m5_store_days",
    "m5_sample",
    "walmart_weekly",
    "favorita",
    "freshretailnet",
)


class DataMissingError(FileNotFoundError):
    """The real data (or one file of it) is not where the setting says.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     try:
    ...         require("freshretailnet/train.parquet", override=tmp)
    ...     except DataMissingError as err:
    ...         print(str(err).startswith("real data not found"))
    True
    """


def data_dir(
    override: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The data directory: ``override``, else ``$SHELFCAST_DATA_DIR``, else the default."""
    chosen = override or (os.environ if env is None else env).get(ENV_VAR)
    if chosen:
        return Path(chosen).expanduser().resolve()
    return (Path.cwd() / DEFAULT_DATA_DIR).resolve()


def require(relative: str, override: str | os.PathLike[str] | None = None) -> Path:
    """Return ``data_dir()/relative``, or raise a DataMissingError that says how to fix it."""
    root = data_dir(override)
    path = root / relative
    if not path.exists():
        raise DataMissingError(
            f"real data not found: {path} does not exist (data dir {root}, "
            f"set by {ENV_VAR} or --data-dir, default {DEFAULT_DATA_DIR} from the working "
            f"directory). {CANONICAL_HINT}"
        )
    return path


def available(relative: str = "", override: str | os.PathLike[str] | None = None) -> bool:
    """True when ``data_dir()/relative`` exists (tests use it to skip with a stated reason)."""
    return (data_dir(override) / relative).exists()
