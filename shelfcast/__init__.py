"""shelfcast: edge-AI demand forecasting and replenishment for retail stores.

This package holds the command line (`shelfcast ...`) and the demo; the settings every part
shares live in `configuration`, the work itself in `feature_store`, `models`, `training`,
`edge_runtime`, `api` and `hub`.
"""

__version__ = "0.1.0"
