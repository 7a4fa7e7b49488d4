"""benchmarks/accuracy.py writes every figure the issue asks for, with the machine."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

FIGURES = {
    "max_rmsse_ratio_vs_best_peer",
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
    args = ["--json", str(out), "--skus", "5", "--train-skus", "12", "--trees", "20"]
    args += ["--datasets", "online_retail", "walmart_weekly", "--series", "12", "--folds", "1"]
    assert _bench().main(args) == 0
    data = json.loads(out.read_text())
    assert set(data["figures"]) >= FIGURES
    per = data["per_dataset"]
    assert set(per) == {"online_retail", "walmart_weekly"}
    assert data["setup"]["datasets"]["walmart_weekly"]["grain"] == "week"
    # The worst data set's ratio against its best peer, statsforecast or mlforecast alike.
    ratios = [p["rmsse_ratio_vs_best_peer"] for p in per.values()]
    assert data["figures"]["max_rmsse_ratio_vs_best_peer"] == max(ratios)
    for p in per.values():
        assert p["rmsse_ratio_vs_best_peer"] == pytest.approx(
            p["rmsse_model"] / p["rmsse_best_baseline"]
        )
        assert "rmsse_mlf_lgbm_l2" in p and "rmsse_mlf_lgbm_tweedie" in p
        assert p["fit_seconds_per_1000_series_years"] > 0
        assert p["mlf_lgbm_l2_fit_seconds_per_1000_series_years"] > 0
        # What each fold's P90 was raised by to cover the steps before its cutoff (never lowered).
        assert len(p["p90_lift_by_fold"]) == 1 and p["p90_lift_by_fold"][0] >= 1.0
    assert data["figures"]["onnx_max_abs_diff_over_scale"] < 1e-4
    assert data["figures"]["rmsse_ratio"] == pytest.approx(
        data["figures"]["rmsse_model"] / data["figures"]["rmsse_best_baseline"]
    )
    assert {"nproc", "memory_gib"} <= set(data["machine"])
    table = capsys.readouterr().out
    assert "| max_rmsse_ratio_vs_best_peer |" in table and "| nproc |" in table
    assert "| walmart_weekly |" in table


def test_validation_skips_a_data_set_too_short_for_the_windows_before_the_scored_ones():
    import numpy as np

    from feature_store.batch import Panel

    bench = _bench()
    units = np.ones((2, 76))  # FreshRetailNet's 76 days: 2 folds of 7 need 56 days before
    panel = Panel(keys=[("S", "A"), ("S", "B")], start=np.datetime64("2024-03-01"), units=units)
    setup = bench.SETUPS["freshretailnet"]
    assert bench.too_short(panel, setup, folds=2, holdout=0) is None
    assert "fewer than the 56" in bench.too_short(panel, setup, folds=2, holdout=14)
    assert "too few" in bench.too_short(panel, setup, folds=12, holdout=0)


def test_engine_option_runs_the_peers_on_the_engine_it_starts_and_stops_it(monkeypatch, tmp_path):
    import numpy as np

    from feature_store.batch import Panel

    bench = _bench()
    started, seen = [], {}

    class Engine:
        workers = 2
        closed = False

        def close(self):
            self.closed = True

    class Stop(Exception):
        pass

    def engine_for(name, workers, address):
        started.append((name, workers, address))
        return Engine()

    def backtest(panel, **kw):
        seen["engine"] = kw.get("engine")
        raise Stop

    panel = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=np.ones((1, 400)))
    monkeypatch.setattr(bench, "engine_for", engine_for)
    monkeypatch.setattr(bench, "backtest", backtest)
    monkeypatch.setattr(bench, "load_panel", lambda *a, **k: (panel, None, None))
    args = ["--json", str(tmp_path / "a.json"), "--datasets", "favorita", "--quick"]
    with pytest.raises(Stop):
        bench.main([*args, "--engine", "dask", "--workers", "2"])
    assert started == [("dask", 2, None)]
    assert isinstance(seen["engine"], Engine) and seen["engine"].closed
