"""benchmarks/accuracy.py writes every figure the issue asks for, with the machine."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

FIGURES = {
    "rmsse_model",
    "rmsse_best_baseline",
    "rmsse_ratio",
    "mase_model",
    "mase_best_baseline",
    "p90_coverage",
    "onnx_max_abs_diff",
    "train_seconds",
    "onnx_ms_per_10k_rows",
    "native_ms_per_10k_rows",
}


def _bench():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "accuracy.py"
    spec = importlib.util.spec_from_file_location("bench_accuracy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_machine_figures():
    m = _bench().machine()
    assert m["nproc"] >= 1 and m["memory_gib"] > 0


@pytest.mark.realdata
@pytest.mark.slow
def test_tiny_run_writes_all_figures(real_data_dir, tmp_path, capsys):
    out = tmp_path / "acc.json"
    assert (
        _bench().main(["--json", str(out), "--skus", "5", "--train-skus", "12", "--trees", "20"])
        == 0
    )
    data = json.loads(out.read_text())
    assert set(data["figures"]) >= FIGURES
    assert data["figures"]["onnx_max_abs_diff"] < 1e-2
    assert data["figures"]["rmsse_ratio"] == pytest.approx(
        data["figures"]["rmsse_model"] / data["figures"]["rmsse_best_baseline"]
    )
    assert {"nproc", "memory_gib"} <= set(data["machine"])
    table = capsys.readouterr().out
    assert "| rmsse_ratio |" in table and "| nproc |" in table
