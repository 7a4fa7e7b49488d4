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


def show_figures(figures: dict, json_path: str | None) -> None:
    """Print ``figures`` as indented JSON and, when ``json_path`` is given, write them there."""
    text = json.dumps(figures, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")
