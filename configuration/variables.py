"""``SHELFCAST_*`` environment variables that are no key of a settings file: each is read by the
one place named here. Settings loaders accept these alongside their own keys' variables, and
refuse any other ``SHELFCAST_*`` name as a misspelling.

>>> "SHELFCAST_DATA_DIR" in OTHER_VARIABLES
True
"""

from __future__ import annotations

ENV_PREFIX = "SHELFCAST_"

# name -> what reads it and why (the configuration reference prints this table).
OTHER_VARIABLES: dict[str, str] = {
    "SHELFCAST_CONFIG": "the settings file every long-running command reads (`--config`)",
    "SHELFCAST_DATA_DIR": "the real data directory (`--data-dir`; configuration.data_dir)",
    "SHELFCAST_LOG_FORMAT": "log lines as `text` or `json` (`--log-format`)",
    "SHELFCAST_REVISION": "the image's git commit, shown on /metrics (set by the image build)",
    "SHELFCAST_HEALTH_PATH": "the path the image's health check requests (default /health)",
    "SHELFCAST_SIGNING_KEY": "the Ed25519 private key training signs bundles with",
    "SHELFCAST_PROGRESS": "training's progress bars: 1 forces them on, 0 off",
    "SHELFCAST_VERBOSE": "training: let libraries' own log lines through",
    "SHELFCAST_NATS_GOMAXPROCS": "Go scheduler threads of the nats-server shelfcast starts "
    "(demo, tests, benchmarks): a number, or `auto`, Go's choice, the default "
    "(shelfcast.nats_go_runtime)",
}
