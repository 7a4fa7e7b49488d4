"""Which installed bundle's models this gateway has already checked in ONNX Runtime.

Why: a start verifies the installed bundle in full, and the model checks (each model opened in
ONNX Runtime and run on its reference set) are the costly part: opening a tree ensemble's
session takes a large share of a restart's CPU, and every restart after a crash repeated it for
the very same files, before the first event could be committed. The outcome of those checks is
a function of the model bytes, the trust settings (key, ``allow_unsigned``, the demand ceiling)
and the ONNX Runtime and gateway versions; the bytes are pinned by the signed manifest, whose
every digest is still checked at each start. So once the checks passed, the state directory
keeps one line, the digest of all of that, and a start that finds the same digest skips them:
its sessions open when a model is first used (``edge_runtime.forecast.scoring``). Any change
(another bundle, an edited or re-signed manifest, another key or ceiling, an upgrade) gives
another digest and the full checks again.

>>> import tempfile
>>> from pathlib import Path
>>> from edge_runtime.bundles import BundleTrust
>>> tmp = tempfile.TemporaryDirectory()
>>> state = Path(tmp.name)
>>> bundle = state / "bundle"
>>> bundle.mkdir()
>>> _ = (bundle / "manifest.json").write_text('{"files": {}}')
>>> checked = CheckedModels(state / "bundle.checked")
>>> trust = BundleTrust(allow_unsigned=True)
>>> checked.covers(bundle, trust)
False
>>> checked.remember(bundle, trust); checked.covers(bundle, trust)
True
>>> checked.covers(bundle, BundleTrust(allow_unsigned=True, max_daily_units=5.0))
False
>>> tmp.cleanup()
"""

from __future__ import annotations

import hashlib
import logging
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from edge_runtime.build_info import VERSION
from feature_store.spec import FEATURE_STORE_VERSION
from models.bundle import MANIFEST, SIGNATURE

if TYPE_CHECKING:
    from edge_runtime.bundles import BundleTrust

log = logging.getLogger(__name__)


def _runtime_version() -> str:
    try:
        return version("onnxruntime")  # the distribution's metadata: no import of the library
    except PackageNotFoundError:
        return "none"


def _read(path: Path | str | None) -> bytes:
    """The file's bytes; b"" for none or an absent file (an unsigned bundle)."""
    if not path:
        return b""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""


class CheckedModels:
    """The record, at ``path``, of the last bundle whose models passed their checks.

    >>> import tempfile
    >>> from edge_runtime.bundles import BundleTrust
    >>> trust = BundleTrust(allow_unsigned=True)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     bundle = Path(tmp, "bundle")
    ...     bundle.mkdir()
    ...     _ = (bundle / "manifest.json").write_text('{"files": {}}')
    ...     checked = CheckedModels(Path(tmp, "bundle.checked"))
    ...     checked.remember(bundle, trust)
    ...     _ = (bundle / "manifest.json").write_text('{"files": {"x": "0"}}')  # another manifest
    ...     checked.covers(bundle, trust)  # another digest: the models are checked again
    False
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def key(self, bundle: Path, trust: BundleTrust) -> str:
        """What the model checks of the bundle at ``bundle`` depend on, as one digest."""
        h = hashlib.sha256()
        for part in (
            _read(bundle / MANIFEST),
            _read(bundle / SIGNATURE),
            _read(trust.public_key),
            repr((trust.allow_unsigned, float(trust.max_daily_units))).encode(),
            f"{_runtime_version()}|{VERSION}|{FEATURE_STORE_VERSION}".encode(),
        ):
            h.update(hashlib.sha256(part).digest())
        return h.hexdigest()

    def covers(self, bundle: Path, trust: BundleTrust) -> bool:
        """Whether the models of the bundle at ``bundle`` passed their checks under ``trust``."""
        try:
            return self.path.read_text(encoding="ascii").strip() == self.key(bundle, trust)
        except (OSError, UnicodeDecodeError):
            return False

    def remember(self, bundle: Path, trust: BundleTrust) -> None:
        """The models of the bundle at ``bundle`` just passed their checks under ``trust``.
        Written atomically; a failure (a full disk) costs only the checks at the next start."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(self.key(bundle, trust) + "\n", encoding="ascii")
            os.replace(tmp, self.path)
        except OSError as err:
            log.warning("bundle check record %s not written (%s)", self.path, err)
