"""The gateway's packages compiled to bytecode, as the edge image ships them.

Why a benchmark needs this: ``Dockerfile.edge`` compiles every module at build, so a gateway
start reads bytecode. A benchmark spawning ``shelfcast run`` from a source tree where Python may
not write bytecode (``PYTHONDONTWRITEBYTECODE=1``, as on the shared box) compiles about 120 of
our modules from source at every start instead, about 0.2 CPU-s of a restart that a store never
spends. Compiled here with the default timestamp check (the image uses unchecked hashes: it is
immutable; a source tree is not): a module edited since is compiled from source again, in
memory, so a stale file never runs.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp()); (root / "shelfcast").mkdir()
>>> _ = (root / "shelfcast" / "x.py").write_text("X = 1\\n")
>>> compile_gateway(root)
['shelfcast']
>>> [p.suffix for p in (root / "shelfcast" / "__pycache__").iterdir()]
['.pyc']
"""

from __future__ import annotations

import compileall
import shutil
from pathlib import Path

# What ``shelfcast run`` imports of the repository (the image copies these and no others).
PACKAGES = ("shelfcast", "configuration", "feature_store", "models", "edge_runtime", "api")


def compile_gateway(code_root: Path) -> list[str]:
    """Write the bytecode of the gateway's packages under ``code_root``; the packages done."""
    done = []
    for name in PACKAGES:
        if (code_root / name).is_dir():
            compileall.compile_dir(code_root / name, quiet=1, workers=1)
            done.append(name)
    return done


def remove_bytecode(code_root: Path) -> None:
    """No bytecode of the gateway's packages under ``code_root``: starts compile from source."""
    for name in PACKAGES:
        for cache in (code_root / name).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
