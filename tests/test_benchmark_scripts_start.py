"""Every benchmark that imports a package one of its sibling scripts shadows starts as
``make bench`` starts it: ``python benchmarks/<name>.py``, so the script's folder is first on
the path and ``twin.py``, ``hub.py`` or ``api.py`` there would be imported in place of the
``twin``, ``hub`` or ``api`` package unless the script puts the project root first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SHADOWED = sorted(p.stem for p in BENCHMARKS.glob("*.py") if (ROOT / p.stem).is_dir())
_IMPORTS = re.compile(rf"^\s*(from|import) ({'|'.join(SHADOWED)})\b", re.MULTILINE)
SCRIPTS = sorted(
    p.name
    for p in BENCHMARKS.glob("*.py")
    if not p.stem.endswith("_worker") and _IMPORTS.search(p.read_text())
)


def test_the_shadowing_is_there_to_guard_against():
    assert {"twin", "hub", "api"} <= set(SHADOWED)
    assert "decisions.py" in SCRIPTS and "twin_screen.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_starts_as_make_bench_starts_it(script):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--help"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout
