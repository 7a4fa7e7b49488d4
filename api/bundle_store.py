"""What the API says about a model bundle; verifying and installing is the gateway's
(``edge_runtime.bundles``: digests, signature, feature spec, reference set in ONNX Runtime, atomic
install), re-exported here for the API's runtimes.

>>> info(None)
{'loaded': False}
"""

from __future__ import annotations

from typing import Any

from edge_runtime.bundles import BundleTrust, install, verify
from models.bundle import Bundle

__all__ = ["BundleTrust", "info", "install", "verify"]


def info(bundle: Bundle | None) -> dict[str, Any]:
    """What ``GET /v1/bundle`` says about ``bundle``."""
    if bundle is None:
        return {"loaded": False}
    return {
        "loaded": True,
        "model_version": bundle.model_version,
        "path": str(bundle.path),
        "models": bundle.models,
        "feature_store_version": str(bundle.feature_spec.get("version")),
        "metadata": bundle.metadata,
    }
