"""``shelfcast data``: where the real data is read from and which known sets are there."""

from __future__ import annotations

import argparse

from configuration.data_dir import CANONICAL_HINT, DEFAULT_DATA_DIR, ENV_VAR, KNOWN_SETS, data_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options beyond the common --data-dir."""


def run(args: argparse.Namespace) -> int:
    root = data_dir()
    print(f"data dir: {root}  ({ENV_VAR} or --data-dir; default {DEFAULT_DATA_DIR})")
    if not root.exists():
        print(f"  missing. {CANONICAL_HINT}")
        return 1
    for name in KNOWN_SETS:
        files = sorted(p.name for p in (root / name).glob("*")) if (root / name).exists() else []
        print(f"  {name:<15} {'ok' if files else 'MISSING'}  {' '.join(files)}")
    return 0
