"""The results page is generated from benchmark JSON, never written by hand."""

from __future__ import annotations

import json

from benchmarks.results_page import main


def test_results_page_lists_each_benchmark_and_its_figures(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "e2e_crash.json").write_text(
        json.dumps(
            {
                "machine": {"nproc": 2},
                "lost": 0,
                "restart_to_first_ack_s": 1.25,
                "runs": [],
                "restart_cpu_s": {"median": 0.5, "all": [0.5]},
            }
        )
    )
    (bench / "crash_events_100000.json").write_text(json.dumps({"events": 100000}))  # a cache
    out = tmp_path / "results.md"
    assert main(["--bench-dir", str(bench), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## e2e_crash" in text and "Machine: nproc 2." in text
    assert "| `lost` | 0 |" in text and "| `restart_to_first_ack_s` | 1.25 |" in text
    assert "runs" not in text.split("## e2e_crash")[1]
    assert "| `restart_cpu_s.median` | 0.5 |" in text and "restart_cpu_s.all" not in text
    assert "crash_events" not in text


def test_a_section_without_json_in_this_run_is_kept_as_it_was(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "twin.json").write_text(json.dumps({"lost": 3}))
    out = tmp_path / "results.md"
    out.write_text("# Results\n\n## crash\n\n| `lost` | 0 |\n\n## twin\n\n| `lost` | 9 |\n")
    assert main(["--bench-dir", str(bench), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## crash\n\n| `lost` | 0 |" in text
    assert "| `lost` | 3 |" in text and "| `lost` | 9 |" not in text
    assert text.index("## crash") < text.index("## twin")
