"""End to end: `shelfcast train` on a canonical file cut from real data, into a real MLflow
SQLite store; the bundle loads, its ONNX models run, the run carries its lineage (name,
description, dataset input with digest, source commit, backtest tables and figures, input
examples), and `champion` moves only to a better run on the same data and backtest design."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feature_store.spec import FEATURE_STORE_VERSION, names
from models.bundle import load_bundle
from models.onnx_export import run_onnx
from shelfcast.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_train_writes_bundle_and_tracks_champion(real_data_dir, tmp_path, tracking, capsys):
    from mlflow import MlflowClient

    from training.datasets import m5_sample
    from training.lineage import RunLineage
    from training.tracking import (
        ANOMALY_MODEL,
        CHAMPION,
        DECISION_TAG,
        DEMAND_MODEL,
        log_training_run,
        source_commit,
    )

    history = m5_sample()
    data = tmp_path / "sales.parquet"
    history.to_parquet(data)
    out = tmp_path / "bundle"
    key = tmp_path / "keys" / "signing.key"
    assert main(["keygen", "--out", str(key)]) == 0
    signed = ["--signing-key", str(key)]
    assert main(["train", "--data", str(data), "--out", str(out), "--quick", *signed]) == 0
    err = capsys.readouterr().err
    assert "backtest: 1 fold(s)" in err and "bundle written" in err  # progress was shown
    # Only our own lines: no library warnings, MLflow INFO logs, registry chatter or bars.
    noise = [line for line in err.splitlines() if not line.startswith("[")]
    assert noise == [], noise
    # A gateway trusting the key accepts it: signature and held-out reference rows check out.
    from edge_runtime.bundles import BundleTrust, verify

    assert verify(out, BundleTrust(public_key=str(key.with_suffix(".pub")))).model_version == "1"

    bundle = load_bundle(out, FEATURE_STORE_VERSION)
    meta = bundle.metadata
    assert meta["model_version"] == "1" and meta["mlflow_run_id"]
    assert meta["training_data"] == {"start": "2011-01-29", "end": "2016-04-24", "series": 10}
    assert meta["backtest"]["rmsse_model"] > 0
    assert [f["name"] for f in bundle.feature_spec["features"]] == names()
    X = np.random.default_rng(0).random((5, len(names())), dtype=np.float32) * 5
    X[:, names().index("horizon")] = 3
    out_demand = run_onnx(bundle.model_bytes("demand"), X)
    assert set(out_demand) == {"mean", "p50", "p90"}

    client = MlflowClient(tracking)
    assert str(client.get_model_version_by_alias(DEMAND_MODEL, CHAMPION).version) == "1"
    assert str(client.get_model_version_by_alias(ANOMALY_MODEL, CHAMPION).version) == "1"
    run = client.get_run(meta["mlflow_run_id"])
    assert "rmsse_model" in run.data.metrics and "onnx_max_abs_diff" in run.data.metrics
    assert run.data.params["n_estimators"] == "60"

    # Lineage a data scientist sees on the run page.
    lineage = RunLineage.of(history, str(data.resolve()), folds=1, horizon=28, quick=True)
    tags = run.data.tags
    assert run.info.run_name == (
        "sales.parquet · 10 SKUs · 2011-01-29..2016-04-24 · quick · backtest 1x28d"
    )
    assert lineage.digest in tags["mlflow.note.content"]  # the run's description
    commit, _dirty = source_commit()
    if commit is None:  # an unpacked source tree: said so, not guessed
        assert tags["shelfcast.source"] == "no git checkout: commit unknown"
    else:
        assert tags["mlflow.source.git.commit"] == commit and len(commit) == 40
    assert tags[DECISION_TAG].startswith("first champion")
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == lineage.digest
    assert dataset_input.dataset.name == "sales.parquet"
    assert dataset_input.dataset.source == json.dumps({"uri": data.resolve().as_uri()})
    files = {
        f.path for d in ("backtest", "figures") for f in client.list_artifacts(run.info.run_id, d)
    }
    assert {
        "backtest/summary_by_method.csv",
        "backtest/summary_by_method.md",
        "backtest/summary_by_method.html",
        "backtest/series_folds.csv",
        "figures/forecast_vs_actual.png",
        "figures/rmsse_by_method.png",
    } <= files
    table = client.download_artifacts(run.info.run_id, "backtest/summary_by_method.md")
    assert Path(table).read_text().startswith("| method | series-folds | RMSSE |")
    png = client.download_artifacts(run.info.run_id, "figures/forecast_vs_actual.png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in (DEMAND_MODEL, ANOMALY_MODEL):  # an input example stored with each model
        local = Path(mlflow_artifacts(f"models:/{name}/1", tmp_path / name))
        assert (local / "input_example.json").exists(), sorted(p.name for p in local.iterdir())

    # The same training again is not better: version 2 is registered, champion stays at 1.
    assert main(["train", "--data", str(data), "--out", str(out), "--quick", *signed]) == 0
    assert load_bundle(out, FEATURE_STORE_VERSION).model_version == "2"
    assert str(client.get_model_version_by_alias(DEMAND_MODEL, CHAMPION).version) == "1"

    # A run with a lower backtest RMSSE takes the alias.
    champion_rmsse = run.data.metrics["rmsse_model"]
    spec = json.loads((out / "feature_spec.json").read_text())
    better = {
        "params": {"note": "better"},
        "metrics": {"rmsse_model": champion_rmsse * 0.5},
        "onnx_models": {"demand": bundle.model_bytes("demand")},
        "n_features": {"demand": len(names())},
        "feature_spec": spec,
    }

    # ... but never across data sets or backtest designs, however low its figure.
    other_data = RunLineage.of(
        history[history["sku"] != history["sku"].iloc[0]], "other.parquet", 1, 28, True
    )
    logged = log_training_run(**better, lineage=other_data)
    assert not logged.champion_moved and "other data" in logged.reason
    more_folds = RunLineage.of(history, str(data.resolve()), folds=3, horizon=28, quick=False)
    logged = log_training_run(**better, lineage=more_folds)
    assert not logged.champion_moved
    assert "its backtest was 1 fold(s) x 28 days, this run's 3 fold(s) x 28 days" in logged.reason
    assert client.get_run(logged.run_id).data.tags[DECISION_TAG] == logged.reason
    assert str(client.get_model_version_by_alias(DEMAND_MODEL, CHAMPION).version) == "1"

    logged = log_training_run(**better, lineage=lineage)
    assert logged.champion_moved and logged.previous_champion == "1"
    assert logged.reason.startswith("better than champion v1")
    assert (
        str(client.get_model_version_by_alias(DEMAND_MODEL, CHAMPION).version)
        == logged.versions["demand"]
        == "5"
    )


def mlflow_artifacts(uri: str, dst) -> str:
    import mlflow

    return mlflow.artifacts.download_artifacts(uri, dst_path=str(dst))


def test_source_commit_outside_git_is_unknown(tmp_path):
    from training.tracking import source_commit

    assert source_commit(tmp_path) == (None, False)


def test_train_reports_bad_input_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("store_id,sku,date,units\nS,A,2024-01-01,-3\n")
    assert main(["train", "--data", str(bad), "--out", str(tmp_path / "b"), "--no-mlflow"]) == 1
    err = capsys.readouterr().err
    assert "bad.csv: column units is negative" in err and "Traceback" not in err


def test_train_names_the_known_data_sets_for_an_unknown_name(tmp_path, capsys):
    assert (
        main(["train", "--data", "no_such_set", "--out", str(tmp_path / "b"), "--no-mlflow"]) == 1
    )
    assert (
        "neither a file nor a data set name; data sets: dunnhumby_batf, favorita"
        in capsys.readouterr().err
    )
