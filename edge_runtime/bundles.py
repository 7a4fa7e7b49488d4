"""Verifying a model bundle and installing it as the gateway's current one.

Checks, in order, each refusal one line naming what was wrong (never the directory the bundle
sits in, which may be an upload's temporary one):

1. only data that may cross to the edge: ``*.onnx``, ``feature_spec.json``, ``metadata.json``,
   ``reference.json``, ``manifest.json``, ``signature.json`` (no pickles, no code, no links);
2. every SHA-256 digest and size in the manifest (``models.bundle.load_bundle``): one changed
   byte anywhere refuses the bundle;
3. the manifest's Ed25519 signature against the public key the gateway trusts
   (:class:`BundleTrust`, ``models.bundle_signing``): an edited file with a recomputed manifest,
   an unsigned bundle or one signed by another key is refused. Without a public key every bundle
   is refused unless ``[model] allow_unsigned`` is set (development only: the reason says so);
4. the feature spec equals the one this gateway computes (``feature_store.spec``), field for field
   (version, feature names, order, dtypes, windows);
5. every model opens in ONNX Runtime, takes as many inputs as its feature list has columns, and
   reproduces the bundle's reference set (``models.bundle_reference``): finite outputs, demand
   neither negative nor above ``[model] max_daily_units``, within tolerance of training's. A
   gateway does this once per bundle and trust (``edge_runtime.checked_models``): its restarts
   check 1 to 4 and open the sessions when the models are first used.

Installing copies the verified directory into ``bundle.versions/`` beside the current one,
verifies the copy, and points ``bundle`` (a symlink) at it with one ``os.replace`` of a new
symlink: there is always a current bundle, the old one or the new one, never half of one. The
previous version is kept (to roll back by hand); older ones are pruned. The gateway
(``Gateway.swap_bundle``, start-up) and the API (``api.bundle_store``) both go through here.

>>> sorted(ALLOWED_SUFFIXES)
['.json', '.onnx']
>>> BundleTrust().public_key is None, BundleTrust().allow_unsigned
(True, False)
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runtime.checked_models import CheckedModels
from edge_runtime.config import ModelSection
from feature_store.spec import (
    ANOMALY_FEATURES,
    FEATURE_STORE_VERSION,
    INTRADAY_FEATURES,
    names,
    spec_dict,
)
from models.bundle import MANIFEST, REFERENCE, SIGNATURE, Bundle, BundleError, load_bundle
from models.bundle_reference import DEFAULT_MAX_DAILY_UNITS, check_reference
from models.bundle_signing import check_signature, load_public_key
from models.onnx_session import open_session

log = logging.getLogger(__name__)

ALLOWED_SUFFIXES = {".onnx", ".json"}
ALLOWED_JSON = {"feature_spec.json", "metadata.json", REFERENCE, MANIFEST, SIGNATURE}
_INPUT_WIDTH = {
    "demand": len(names()),
    "anomaly": len(ANOMALY_FEATURES),
    "stockout_4h": len(INTRADAY_FEATURES),
}
KEEP_VERSIONS = 2  # the current bundle and the one before it
_install_lock = threading.Lock()  # one install at a time: pruning must not meet a copy


@dataclass(frozen=True)
class BundleTrust:
    """Whose bundles the gateway runs and what their models may output (``[model]`` settings).

    ``public_key``: PEM file of the trainer's Ed25519 key (``shelfcast keygen``); bundles must
    carry a signature by it. ``allow_unsigned``: accept bundles without a signature (development
    only; a present but wrong signature is still refused when a key is configured); without a key
    and without this, every bundle is refused. ``max_daily_units``: the demand outputs' ceiling.

    >>> BundleTrust(allow_unsigned=True).describe()
    'unsigned bundles allowed (development), no public key'
    """

    public_key: str | None = None
    allow_unsigned: bool = False
    max_daily_units: float = DEFAULT_MAX_DAILY_UNITS

    @classmethod
    def from_config(cls, m: ModelSection) -> BundleTrust:
        trust = cls(m.public_key, m.allow_unsigned, m.max_daily_units)
        trust.check_key()
        return trust

    def check_key(self) -> None:
        """``BundleError`` now (at start) when the configured key file is not a usable key."""
        if self.public_key:
            load_public_key(self.public_key)

    def describe(self) -> str:
        key = f"public key {self.public_key}" if self.public_key else "no public key"
        return ("unsigned bundles allowed (development), " if self.allow_unsigned else "") + key


def _check_signature(root: Path, trust: BundleTrust) -> None:
    signed = (root / SIGNATURE).is_file()
    if not trust.public_key:
        if trust.allow_unsigned:
            return
        raise BundleError(
            "no public key to check the bundle's signature: set [model] public_key "
            "(SHELFCAST_MODEL_PUBLIC_KEY) to the trainer's public key, or [model] allow_unsigned "
            "= true (SHELFCAST_MODEL_ALLOW_UNSIGNED) for development"
        )
    if not signed:
        if trust.allow_unsigned:
            return
        raise BundleError(
            f"the bundle is unsigned ({SIGNATURE} missing); build it with `shelfcast train` "
            "and the signing key that matches the gateway's [model] public_key"
        )
    try:
        signature = json.loads((root / SIGNATURE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{SIGNATURE} is not valid JSON") from None
    if not isinstance(signature, dict):
        raise BundleError(f"{SIGNATURE} is not a JSON object")
    check_signature((root / MANIFEST).read_bytes(), signature, load_public_key(trust.public_key))


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


def _reference(bundle: Bundle) -> dict:
    path = bundle.path / REFERENCE
    if not path.is_file():
        raise BundleError(
            f"the bundle has no reference set ({REFERENCE}); retrain it with this version of "
            "`shelfcast train`"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{REFERENCE} is not valid JSON") from None


def _check_models(bundle: Bundle, trust: BundleTrust, sessions: dict[str, Any]) -> None:
    reference = _reference(bundle)
    for name in bundle.models:
        try:
            sess = open_session(bundle.model_bytes(name))
        except BundleError:
            raise
        except Exception as err:  # ORT raises its own exception types
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise BundleError(f"{name}.onnx does not open in ONNX Runtime: {first}") from None
        width = sess.get_inputs()[0].shape[-1]
        want = _INPUT_WIDTH.get(name)
        if want is not None and isinstance(width, int) and width != want:
            raise BundleError(f"{name}.onnx takes {width} features, the feature spec has {want}")
        try:
            check_reference(name, sess, reference, trust.max_daily_units)
        except BundleError:
            raise
        except Exception as err:  # a graph that fails on real rows (bad shapes, ops)
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise BundleError(f"{name}.onnx fails on its reference rows: {first}") from None
        sessions[name] = sess


def verify(
    path: str | os.PathLike[str],
    trust: BundleTrust,
    sessions: dict[str, Any] | None = None,
    checked: CheckedModels | None = None,
) -> Bundle:
    """A verified bundle, or ``BundleError`` saying (in one line) why it is refused.

    ``sessions``, when given, receives the ONNX Runtime session (one thread) each model was
    checked with, for the caller to score with instead of opening it again. ``checked``: the
    record of models already checked (``edge_runtime.checked_models``); when it covers these
    files under ``trust``, checks 1 to 4 run and the model checks are skipped (no session is
    opened), else they run and the record is updated.
    """
    root = Path(path)
    if not root.is_dir():
        raise BundleError("the bundle is not a directory")
    _check_files(root)
    bundle = load_bundle(root, FEATURE_STORE_VERSION)
    _check_signature(root, trust)
    _check_spec(bundle)
    if checked is not None and checked.covers(root, trust):
        return bundle
    _check_models(bundle, trust, {} if sessions is None else sessions)
    if checked is not None:
        checked.remember(root, trust)
    return bundle


def is_installed(path: str | os.PathLike[str], current: Path) -> bool:
    """Whether the bundle at ``path`` is the one installed at ``current``: the same manifest
    (every file's SHA-256 digest and size) and the same signature, byte for byte. Only a cheap
    comparison: the caller still verifies the installed copy in full, so a restart with the
    bundle it installed before need not copy and verify it a second time."""
    ours, theirs = Path(path), Path(current)
    try:
        return all(
            (ours / name).read_bytes() == (theirs / name).read_bytes()
            for name in (MANIFEST, SIGNATURE)
        )
    except OSError:  # none installed, or either side unreadable: install as usual
        return False


def versions_dir(current: Path) -> Path:
    """Where installed versions live: ``bundle.versions/`` beside the ``bundle`` symlink."""
    return current.with_name(current.name + ".versions")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:40] or "bundle"


def _point(current: Path, target: Path) -> Path | None:
    """Make ``current`` a symlink to ``target`` in one atomic ``os.replace``; returns where a
    directory that was ``current`` went (an earlier gateway's layout), else None."""
    link = current.with_name(f".{current.name}.link-{os.getpid()}-{threading.get_ident()}")
    link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, current.parent), link)
    moved = None
    if current.is_dir() and not current.is_symlink():
        # A directory installed by an earlier gateway: moved aside once (the one moment without
        # a current bundle, at the first install after an upgrade), kept as the previous one.
        moved = Path(tempfile.mkdtemp(prefix="earlier-", dir=target.parent)) / "bundle"
        current.rename(moved)
    os.replace(link, current)
    fd = os.open(current.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the flip survives a power cut
    finally:
        os.close(fd)
    return moved


def _prune(versions: Path, keep: set[Path]) -> None:
    for entry in versions.iterdir():
        if entry.resolve() not in keep and not any(k.is_relative_to(entry.resolve()) for k in keep):
            shutil.rmtree(entry, ignore_errors=True)


def install(
    bundle: Bundle, current: Path, trust: BundleTrust, sessions: dict[str, Any] | None = None
) -> Bundle:
    """Copy a verified bundle into a new version directory, verify the copy, and flip the
    ``current`` symlink to it; returns the installed bundle. A refused copy changes nothing.
    ``sessions``: as for :func:`verify`, the copy's."""
    current = Path(current)
    versions = versions_dir(current)
    with _install_lock:
        versions.mkdir(parents=True, exist_ok=True)
        previous = current.resolve() if current.exists() else None
        target = Path(tempfile.mkdtemp(prefix=f"{_slug(bundle.model_version)}-", dir=versions))
        try:
            shutil.copytree(bundle.path, target, dirs_exist_ok=True)
            installed = verify(target, trust, sessions)
            moved = _point(current, target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        previous = moved.resolve() if moved is not None else previous
        keep = {target.resolve()} | ({previous} if previous else set())
        _prune(versions, keep)
    log.info("bundle %s installed: %s -> %s", bundle.model_version, current, target.name)
    return Bundle(
        path=target.resolve(), metadata=installed.metadata, feature_spec=installed.feature_spec
    )
