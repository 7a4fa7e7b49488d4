"""Bundles a gateway must refuse although every digest in their manifest is right: the cases the
tests and ``benchmarks/api.py`` (``tampered_bundles_accepted``) count.

- ``edited_metadata_*``: a signed bundle whose ``metadata.json`` was edited and whose manifest
  was recomputed to match: with the old signature kept, with the signature removed, and re-signed
  by a key the gateway does not trust;
- ``outputs_nan`` / ``outputs_1e30`` / ``outputs_negative``: real ONNX graphs (``onnx.helper``)
  whose demand outputs are NaN, 1e30 or negative, signed by the trusted key with a reference set
  that matches them (a training run that checked nothing);
- ``off_reference``: a plausible model signed with the reference set of another model.

>>> sorted(CASES)[:2]
['edited_metadata_old_signature', 'edited_metadata_other_key']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper, numpy_helper

from feature_store.spec import ANOMALY_FEATURES, names, spec_dict
from models.bundle import MANIFEST, SIGNATURE
from models.bundle_reference import score_rows
from models.bundle_signing import Signer
from models.onnx_session import open_session
from tests.signed_bundles import make_bundle, onnx_model, reference_rows, signed_bundle, signer


def constant_demand_model(width: int, value: float) -> bytes:
    """A real ONNX demand model whose mean, P50 and P90 are ``value`` for every row."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])
    outs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in ("mean", "p50", "p90")
    ]
    inits = [
        numpy_helper.from_array(np.array([0.0], dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array([value], dtype=np.float32), "value"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["X"], ["m"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "value"], ["mean"]),
        helper.make_node("Identity", ["mean"], ["p50"]),
        helper.make_node("Identity", ["mean"], ["p90"]),
    ]
    graph = helper.make_graph(nodes, "constant", [x], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def unchecked_reference(models: dict[str, bytes]) -> dict:
    """A reference set scored from ``models`` without the output rules (NaN stays NaN)."""
    rows = reference_rows(models)
    return {
        "format": 1,
        "models": {
            name: {
                "inputs": rows[name].astype(float).tolist(),
                "outputs": {
                    k: v.tolist() for k, v in score_rows(open_session(data), rows[name]).items()
                },
            }
            for name, data in models.items()
        },
    }


def _recompute_manifest(root: Path) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    for name in manifest["files"]:
        data = (root / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _edited(out: Path, signature: str) -> Path:
    root = make_bundle(out)
    meta = json.loads((root / "metadata.json").read_text())
    meta["model_version"] = "edited-by-hand"
    (root / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    _recompute_manifest(root)
    if signature == "none":
        (root / SIGNATURE).unlink()
    elif signature == "other-key":
        other = Signer(Ed25519PrivateKey.generate())
        (root / SIGNATURE).write_text(json.dumps(other((root / MANIFEST).read_bytes())))
    return root


def _bad_outputs(out: Path, value: float) -> Path:
    models = {
        "demand": constant_demand_model(len(names()), value),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
    }
    meta = {"model_version": out.name}
    return signed_bundle(out, models, spec_dict(), meta, reference=unchecked_reference(models))


def _off_reference(out: Path) -> Path:
    width = len(names())
    trained = {"demand": constant_demand_model(width, 2.0), "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"])}  # fmt: skip
    shipped = {**trained, "demand": constant_demand_model(width, 3.0)}
    reference = unchecked_reference(trained)
    return signed_bundle(
        out, shipped, spec_dict(), {"model_version": out.name}, reference, signer()
    )


CASES: dict[str, Callable[[Path], Path]] = {
    "edited_metadata_old_signature": lambda out: _edited(out, "kept"),
    "edited_metadata_unsigned": lambda out: _edited(out, "none"),
    "edited_metadata_other_key": lambda out: _edited(out, "other-key"),
    "outputs_nan": lambda out: _bad_outputs(out, float("nan")),
    "outputs_1e30": lambda out: _bad_outputs(out, 1e30),
    "outputs_negative": lambda out: _bad_outputs(out, -3.0),
    "off_reference": _off_reference,
}

# What each refusal says (a fragment of the one-line reason).
REASONS = {
    "edited_metadata_old_signature": "does not verify",
    "edited_metadata_unsigned": "unsigned",
    "edited_metadata_other_key": "does not verify",
    "outputs_nan": "must be finite",
    "outputs_1e30": "plausible ceiling",
    "outputs_negative": "cannot be negative",
    "off_reference": "training got",
}
