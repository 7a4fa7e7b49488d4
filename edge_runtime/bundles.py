"""Verifying a model bundle and installing it as the gateway's current one.

Checks, in order, each refusal naming what was wrong:

1. only data that may cross to the edge: ``*.onnx``, ``feature_spec.json``, ``metadata.json``,
   ``manifest.json`` (no pickles, no code, no links);
2. every SHA-256 digest and size in the manifest (``models.bundle.load_bundle``): one changed
   byte anywhere refuses the bundle;
3. the feature spec equals the one this gateway computes (``feature_store.spec``), field for field
   (version, feature names, order, dtypes, windows);
4. every model opens in ONNX Runtime and takes as many inputs as its feature list has columns.

Installing copies the verified directory next to the current one and renames it into place, so
readers see the old bundle or the new one, never half of one. The gateway
(``Gateway.swap_bundle``, start-up) and the API (``api.bundle_store``) both go through here.

>>> sorted(ALLOWED_SUFFIXES)
['.json', '.onnx']
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from feature_store.spec import ANOMALY_FEATURES, FEATURE_STORE_VERSION, names, spec_dict
from models.bundle import Bundle, BundleError, load_bundle

ALLOWED_SUFFIXES = {".onnx", ".json"}
ALLOWED_JSON = {"feature_spec.json", "metadata.json", "manifest.json"}
_INPUT_WIDTH = {"demand": len(names()), "anomaly": len(ANOMALY_FEATURES)}


def _check_files(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BundleError(f"{name} is not a regular file")
        if path.is_dir():
            raise BundleError(f"{name}/ : a bundle is a flat directory")
        if path.suffix not in ALLOWED_SUFFIXES or (
            path.suffix == ".json" and path.name not in ALLOWED_JSON
        ):
            raise BundleError(f"{name}: only ONNX models and the bundle's JSON files may cross")


def _first_difference(got: Any, want: Any, where: str = "") -> str | None:
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            found = _first_difference(got.get(key), want.get(key), f"{where}.{key}".lstrip("."))
            if found:
                return found
        return None
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            found = _first_difference(g, w, f"{where}[{i}]")
            if found:
                return found
        return None
    if got != want:
        return f"{where or 'spec'}: bundle has {json.dumps(got)[:80]}, gateway has {json.dumps(want)[:80]}"
    return None


def _check_spec(bundle: Bundle) -> None:
    want = json.loads(json.dumps(spec_dict()))
    diff = _first_difference(bundle.feature_spec, want)
    if diff:
        raise BundleError(f"feature spec does not match this gateway's feature store ({diff})")


def _check_models(bundle: Bundle) -> None:
    import onnxruntime as ort

    for name in bundle.models:
        try:
            session = ort.InferenceSession(
                bundle.model_bytes(name), providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # ORT raises its own exception types
            raise BundleError(f"{name}.onnx does not open in ONNX Runtime: {err}") from None
        width = session.get_inputs()[0].shape[-1]
        want = _INPUT_WIDTH.get(name)
        if want is not None and isinstance(width, int) and width != want:
            raise BundleError(f"{name}.onnx takes {width} features, the feature spec has {want}")


def verify(path: str | os.PathLike[str]) -> Bundle:
    """A verified bundle, or ``BundleError`` saying why it is refused."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"bundle {root} is not a directory")
    _check_files(root)
    bundle = load_bundle(root, FEATURE_STORE_VERSION)
    _check_spec(bundle)
    _check_models(bundle)
    return bundle


def install(bundle: Bundle, current: Path) -> Bundle:
    """Copy a verified bundle to ``current`` atomically and verify the copy; returns it."""
    current = Path(current)
    current.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-new-", dir=current.parent))
    shutil.copytree(bundle.path, staging, dirs_exist_ok=True)
    installed = verify(staging)
    if current.exists():
        old = Path(tempfile.mkdtemp(prefix=".bundle-old-", dir=current.parent))
        old.rmdir()
        current.rename(old)
        staging.rename(current)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(current)
    return Bundle(
        path=current.resolve(), metadata=installed.metadata, feature_spec=installed.feature_spec
    )
