"""The benchmarks' docstring examples run with the suite.

The benchmarks are scripts, not a package on the test paths: collecting them with
``--doctest-modules`` would import ``benchmarks/hub.py`` as ``hub`` and shadow the hub package.
So each script with an example is imported as ``benchmarks.<name>`` and its examples run here.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
WITH_EXAMPLES = sorted(p.stem for p in BENCHMARKS.glob("*.py") if ">>> " in p.read_text())


def test_some_benchmarks_carry_examples():
    assert "machine" in WITH_EXAMPLES and "twin_screen" in WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_benchmark_examples_run(name):
    module = importlib.import_module(f"benchmarks.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
