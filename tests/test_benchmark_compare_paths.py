"""A benchmark's ``--compare`` side runs the old packages: importing the benchmark modules a
child imports does not put the repository's own packages back ahead of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_modules_keep_the_old_packages_first(tmp_path):
    old = tmp_path / "old"  # where --compare exports the old packages
    old.mkdir()
    probe = (
        "import sys\n"
        "import benchmarks.history, benchmarks.latency, benchmarks.full_path\n"
        f"print(sys.path.index({str(old)!r}) < sys.path.index({str(ROOT)!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{old}:{ROOT}"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, cwd=tmp_path, check=True).stdout  # fmt: skip
    assert out.split() == ["True"]


def test_a_benchmark_run_as_a_script_imports_the_packages_not_its_siblings(tmp_path):
    """``python benchmarks/history.py`` with the repository on PYTHONPATH (as the docs set it):
    ``benchmarks/`` comes first on the path, and its ``twin.py`` must not stand in for the
    ``twin`` package the script imports."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import runpy, sys\n"
        f"sys.path[0] = {str(ROOT / 'benchmarks')!r}  # as Python sets it for the script\n"
        f"runpy.run_path({str(ROOT / 'benchmarks' / 'history.py')!r}, run_name='probe')\n"
        "import twin.replay\n"
        "print(twin.__path__[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, check=True).stdout  # fmt: skip
    assert out.split() == [str(ROOT / "twin")]
