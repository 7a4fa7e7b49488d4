"""The model bundle: round trip, and every way a bundle is refused."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from models.bundle import BundleError, load_bundle, verify, write_bundle

SPEC = {"version": "1.0", "features": [{"name": "lag_1"}]}


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_bundle(
        tmp_path / "bundle",
        {"demand": b"demand-onnx", "anomaly": b"anomaly-onnx"},
        SPEC,
        {"model_version": "3", "backtest": {"rmsse_model": 0.5}},
    )


def test_round_trip(bundle):
    b = load_bundle(bundle, expected_feature_store_version="1.0")
    assert b.model_version == "3"
    assert sorted(b.models) == ["anomaly", "demand"]
    assert b.model_bytes("demand") == b"demand-onnx"
    assert b.feature_spec == SPEC
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "demand.onnx",
        "anomaly.onnx",
        "feature_spec.json",
        "metadata.json",
    }
    assert all(len(e["sha256"]) == 64 for e in manifest["files"].values())


def test_altered_model_is_refused(bundle):
    (bundle / "demand.onnx").write_bytes(b"tampered")
    with pytest.raises(BundleError, match=r"demand\.onnx has SHA-256 .* altered or truncated"):
        load_bundle(bundle, "1.0")


def test_other_feature_store_version_is_refused(bundle):
    with pytest.raises(
        BundleError, match=r"feature-store version 1\.0, this runtime computes version 2\.0"
    ):
        load_bundle(bundle, "2.0")


def test_missing_and_extra_files_are_refused(bundle):
    (bundle / "extra.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"not in the manifest: extra\.onnx"):
        verify(bundle)
    (bundle / "extra.onnx").unlink()
    (bundle / "anomaly.onnx").unlink()
    with pytest.raises(BundleError, match=r"missing: anomaly\.onnx"):
        verify(bundle)


def test_unknown_model_name_and_no_manifest(bundle, tmp_path):
    b = load_bundle(bundle, "1.0")
    with pytest.raises(BundleError, match="has no model 'stockout'"):
        b.model_bytes("stockout")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match=r"manifest\.json missing"):
        load_bundle(empty, "1.0")


def test_rewrite_replaces_the_old_bundle(bundle):
    write_bundle(bundle, {"demand": b"v2"}, SPEC, {"model_version": "4"})
    b = load_bundle(bundle, "1.0")
    assert b.model_version == "4" and b.models == ["demand"]
    assert not (bundle / "anomaly.onnx").exists()
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".")]


def test_bundle_module_uses_only_the_standard_library():
    """The gateway imports this module: it must not pull in onnx, lightgbm or pandas."""
    import sys

    tree = ast.parse(Path("models/bundle.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots - {"__future__"} <= set(sys.stdlib_module_names), roots
