"""shelfcast: edge-AI demand forecasting and replenishment for retail stores.

This package holds the command line (`shelfcast ...`) and the settings every part shares;
the work itself lives in `feature_store`, `models`, `training`, `edge_runtime` and `api`.
"""

__version__ = "0.1.0"
