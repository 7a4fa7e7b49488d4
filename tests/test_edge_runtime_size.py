"""Every module of the edge runtime stays short enough to read at once: a file that grows past the
bound is a room that should be split, not a place to add one more job."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "edge_runtime"
MAX_LINES = 450


def test_no_edge_runtime_module_is_over_the_bound():
    long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
