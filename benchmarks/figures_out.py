"""A benchmark's figures as it hands them over: printed, and written where ``--json`` says.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "out.json"
>>> show_figures({"lost": 0}, str(path))
{
  "lost": 0
}
>>> json.loads(path.read_text())
{'lost': 0}
"""

from __future__ import annotations

import json
from pathlib import Path


def show_figures(figures: dict, json_path: str | Path | None) -> None:
    """Print ``figures`` as indented JSON and, when ``json_path`` is given, write them there
    (its folder made if missing)."""
    text = json.dumps(figures, indent=2)
    print(text)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")
