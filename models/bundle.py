"""The model bundle: what crosses from central training to a store gateway.

A bundle is a directory with one ``<name>.onnx`` per model, ``feature_spec.json``,
``metadata.json``, ``reference.json`` (a few feature rows per model and the outputs training got
for them: ``models.bundle_reference``) and ``manifest.json`` (SHA-256 and size of every other
file), signed in ``signature.json`` (``models.bundle_signing``). Only ONNX crosses to the edge, no
pickles. This module uses the standard library only; signing is a callable handed in.

Refusals name files inside the bundle, never the directory it sits in: a bundle under check may
live in a temporary directory nobody should see (an upload), and callers add the context.

>>> import tempfile
>>> out = write_bundle(tempfile.mkdtemp() + "/b", {"demand": b"onnx-bytes"},
...                    {"version": "1.0", "features": []}, {"model_version": "7"})
>>> b = load_bundle(out, expected_feature_store_version="1.0")
>>> b.model_version, b.model_bytes("demand")
('7', b'onnx-bytes')
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
FEATURE_SPEC = "feature_spec.json"
METADATA = "metadata.json"
REFERENCE = "reference.json"
SIGNATURE = "signature.json"  # signs manifest.json's bytes, so it is not listed in it
BUNDLE_FORMAT = 1


class BundleError(ValueError):
    """A bundle is incomplete, altered or built for another feature-store version.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = write_bundle(f"{tmp}/b", {"demand": b"onnx-bytes"}, {"version": "1.0"}, {})
    ...     _ = (out / "demand.onnx").write_bytes(b"altered")
    ...     try:
    ...         load_bundle(out, expected_feature_store_version="1.0")
    ...     except BundleError as err:
    ...         print(str(err).split("; ")[1])
    the file was altered or truncated
    """


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_bundle(
    out_dir: str | os.PathLike[str],
    onnx_models: dict[str, bytes],
    feature_spec: dict,
    metadata: dict,
    *,
    reference: dict | None = None,
    sign: Callable[[bytes], dict] | None = None,
) -> Path:
    """Write a bundle directory and return its path.

    ``reference`` is the reference set (``models.bundle_reference.build_reference``), ``sign``
    signs the manifest's bytes (``models.bundle_signing.Signer``); gateways refuse bundles
    without either. The files are written into a fresh sibling directory first and renamed into
    place, so a reader never sees half a bundle. An existing ``out_dir`` is replaced.
    """
    out = Path(out_dir).resolve()
    if not onnx_models:
        raise BundleError("a bundle needs at least one ONNX model")
    for name in onnx_models:
        if not name.isidentifier():
            raise BundleError(f"model name {name!r} must be a plain identifier (it names a file)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    for name, data in onnx_models.items():
        (tmp / f"{name}.onnx").write_bytes(data)
    _write_json(tmp / FEATURE_SPEC, feature_spec)
    meta = {"bundle_format": BUNDLE_FORMAT, "models": sorted(onnx_models), **metadata}
    _write_json(tmp / METADATA, meta)
    if reference is not None:
        _write_json(tmp / REFERENCE, reference)
    files = sorted(p.name for p in tmp.iterdir())
    manifest = {
        "algorithm": "sha256",
        "files": {
            f: {"sha256": _sha256(tmp / f), "bytes": (tmp / f).stat().st_size} for f in files
        },
    }
    _write_json(tmp / MANIFEST, manifest)
    if sign is not None:
        _write_json(tmp / SIGNATURE, sign((tmp / MANIFEST).read_bytes()))
    if out.exists():
        old = out.with_name(f".{out.name}-old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        for p in old.iterdir():
            p.unlink()
        old.rmdir()
    else:
        tmp.rename(out)
    return out


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk: its metadata, feature spec and model bytes.

    >>> Bundle(Path("."), {"model_version": "3"}, {}).model_version
    '3'
    """

    path: Path
    metadata: dict
    feature_spec: dict

    @property
    def model_version(self) -> str:
        return str(self.metadata.get("model_version", "unknown"))

    @property
    def models(self) -> list[str]:
        return list(self.metadata.get("models", []))

    def model_bytes(self, name: str) -> bytes:
        """Serialized ONNX model ``name`` (e.g. ``demand``, ``anomaly``)."""
        path = self.path / f"{name}.onnx"
        if name not in self.models or not path.exists():
            raise BundleError(f"bundle has no model {name!r}; it has {', '.join(self.models)}")
        return path.read_bytes()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path.name} missing from the bundle") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path.name} is not valid JSON: {exc}") from None


def verify(path: str | os.PathLike[str]) -> dict:
    """Check every digest in the manifest and that no file is missing or extra; return it.

    The signature file is the one file the manifest cannot list (it signs the manifest).
    """
    root = Path(path)
    if not root.is_dir():
        raise BundleError("the bundle is not a directory")
    manifest = _read_json(root / MANIFEST)
    listed = manifest.get("files", {})
    if not isinstance(listed, dict):
        raise BundleError(f"{MANIFEST}: 'files' is not a mapping of file name to digest")
    unlisted = {MANIFEST, SIGNATURE}
    present = {p.name for p in root.iterdir() if p.is_file() and p.name not in unlisted}
    extra, missing = present - set(listed), set(listed) - present
    if missing:
        raise BundleError(f"file(s) in the manifest are missing: {', '.join(sorted(missing))}")
    if extra:
        raise BundleError(f"file(s) not in the manifest: {', '.join(sorted(extra))}")
    for name, entry in listed.items():
        digest = _sha256(root / name)
        want = entry.get("sha256") if isinstance(entry, dict) else None
        if digest != want:
            raise BundleError(
                f"{name} has SHA-256 {digest[:12]}..., manifest says "
                f"{str(want)[:12]}...; the file was altered or truncated"
            )
    return manifest


def load_bundle(path: str | os.PathLike[str], expected_feature_store_version: str) -> Bundle:
    """Verify and open a bundle; ``BundleError`` says why a bundle is refused."""
    root = Path(path).resolve()
    verify(root)
    spec = _read_json(root / FEATURE_SPEC)
    meta = _read_json(root / METADATA)
    version = str(spec.get("version"))
    if version != str(expected_feature_store_version):
        raise BundleError(
            f"the bundle was built for feature-store version {version}, this runtime computes "
            f"version {expected_feature_store_version}; retrain or upgrade the gateway"
        )
    for name in meta.get("models", []):
        if not (root / f"{name}.onnx").exists():
            raise BundleError(f"metadata lists model {name!r} but {name}.onnx is absent")
    return Bundle(path=root, metadata=meta, feature_spec=spec)
