"""Bundles as a gateway accepts them, for tests, benchmarks and the image smoke test: signed with
a fixed test key pair and carrying a reference set scored from seeded feature rows.

The key pair is derived from a fixed seed so every process (a test, a served API subprocess,
the chrooted image) trusts the same key; it is a test key, never a product one.

>>> priv, pub = key_pair()
>>> priv.exists() and pub.exists()
True
>>> sorted(public_key_env())
['SHELFCAST_MODEL_PUBLIC_KEY']
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper

from feature_store.spec import ANOMALY_FEATURES, names, spec_dict
from models.bundle import write_bundle
from models.bundle_reference import build_reference
from models.bundle_signing import Signer
from models.onnx_session import open_session

_SEED = hashlib.sha256(b"shelfcast test bundle signing key").digest()


@functools.cache
def key_pair() -> tuple[Path, Path]:
    """(private, public) PEM files of the test key, written once per process."""
    key = Ed25519PrivateKey.from_private_bytes(_SEED)
    out = Path(tempfile.mkdtemp(prefix="shelfcast-test-key-"))
    atexit.register(shutil.rmtree, out, True)  # every test process would leave one behind
    private, public = out / "bundle-signing.key", out / "bundle-signing.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def signer() -> Signer:
    return Signer.from_file(key_pair()[0])


def public_key_env() -> dict[str, str]:
    """The gateway setting that makes it trust the test key."""
    return {"SHELFCAST_MODEL_PUBLIC_KEY": str(key_pair()[1])}


def reference_rows(onnx_models: dict[str, bytes], n: int = 16) -> dict[str, np.ndarray]:
    """Seeded non-negative feature rows of each model's input width."""
    rng = np.random.default_rng(7)
    rows = {}
    for name, data in onnx_models.items():
        width = open_session(data).get_inputs()[0].shape[-1]
        rows[name] = rng.uniform(0, 5, size=(n, int(width))).astype(np.float32)
    return rows


def signed_bundle(
    out: Path,
    onnx_models: dict[str, bytes],
    feature_spec: dict,
    metadata: dict,
    reference: dict | None = None,
    sign: Signer | None = None,
) -> Path:
    """``write_bundle`` with a reference set scored from these very models and the test key's
    signature (``reference`` / ``sign`` override either, e.g. for a bundle meant to be refused)."""
    reference = reference or build_reference(onnx_models, reference_rows(onnx_models))
    return write_bundle(
        out, onnx_models, feature_spec, metadata, reference=reference, sign=sign or signer()
    )


def onnx_model(width: int, outputs: list[str]) -> bytes:
    """A real (tiny) ONNX model: the row mean of a float32 [N, width] matrix under each output."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])
    nodes = [helper.make_node("ReduceMean", ["X"], ["m"], axes=[1], keepdims=0)]
    nodes += [helper.make_node("Identity", ["m"], [name]) for name in outputs]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in outputs]
    graph = helper.make_graph(nodes, "tiny", [x], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_bundle(out: Path, spec: dict | None = None, demand_width: int | None = None) -> Path:
    """A signed bundle of two tiny row-mean models for this checkout's feature spec."""
    models = {
        "demand": onnx_model(demand_width or len(names()), ["mean", "p50", "p90"]),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
    }
    return signed_bundle(out, models, spec or spec_dict(), {"model_version": out.name})
