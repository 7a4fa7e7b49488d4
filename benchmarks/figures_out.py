"""A benchmark's figures as it hands them over: printed, and written where ``--json`` says.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "out.json"
>>> show_figures({"lost": 0}, str(path))
{
  "lost": 0
}
>>> json.loads(path.read_text())
{'lost': 0}
>>> show_figures({"lost": 0, "runs": [1, 2]}, None, unprinted=("runs",))
{
  "lost": 0
}
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path


def show_figures(
    figures: dict, json_path: str | Path | None, unprinted: Sequence[str] = ()
) -> None:
    """Print ``figures`` as indented JSON and, when ``json_path`` is given, write them there
    (its folder made if missing). Keys in ``unprinted`` (per-run detail) go to the file only."""
    print(json.dumps({k: v for k, v in figures.items() if k not in unprinted}, indent=2))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")


def child_figures(cmd: list[str], env: dict[str, str], timeout: float, what: str) -> dict:
    """Run a benchmark's child process and read the figures it hands over: the last line of
    its output that is a JSON object. A failed child raises with ``what`` and its stderr's end."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited with {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
