"""MLflow tracking: runs, ONNX models with signatures, the registry and the ``champion`` alias.

The default store is embedded: ``sqlite:///var/mlflow/mlflow.db`` from the working directory
(where ``mlflow ui`` is run too), with artifacts under ``var/mlflow/artifacts``; ``MLFLOW_TRACKING_URI`` overrides it (artifacts then go beside a SQLite
file, or wherever the server puts them).

>>> default_tracking_uri().startswith("sqlite:///")
True
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.lineage import RunLineage

EXPERIMENT = "shelfcast"
DEMAND_MODEL = "shelfcast-demand"
ANOMALY_MODEL = "shelfcast-anomaly"
CHAMPION = "champion"
# The backtest metric that decides promotion: lower is better.
PROMOTION_METRIC = "rmsse_model"


def default_tracking_uri() -> str:
    db = Path.cwd() / "var" / "mlflow" / "mlflow.db"
    return f"sqlite:///{db}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def _artifact_root(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        return (db.parent / "artifacts").resolve().as_uri()
    return None


DIGEST_TAG = "shelfcast.dataset.digest"
BACKTEST_TAG = "shelfcast.backtest"
DECISION_TAG = "shelfcast.champion_decision"


@dataclass
class LoggedRun:
    """What a tracked training run produced in MLflow, and why ``champion`` moved or not."""

    run_id: str
    versions: dict[str, str]
    champion_moved: bool
    previous_champion: str | None
    previous_metric: float | None
    reason: str = ""


def _signature(n_features: int, outputs: dict[str, tuple[int, ...]]):
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, n_features), "features")])
    outs = Schema([TensorSpec(np.dtype(dt), shape, name) for name, (dt, shape) in outputs.items()])
    return ModelSignature(inputs=inputs, outputs=outs)


SIGNATURES = {
    "demand": {
        "mean": ("float32", (-1, 1)),
        "p50": ("float32", (-1, 1)),
        "p90": ("float32", (-1, 1)),
    },
    "anomaly": {"label": ("int64", (-1, 1)), "scores": ("float32", (-1, 1))},
}
REGISTERED = {"demand": DEMAND_MODEL, "anomaly": ANOMALY_MODEL}


def onnx_requirements() -> list[str]:
    """The pinned packages a logged raw ONNX graph needs: what MLflow would infer, named here.

    Why named: left to infer them, MLflow starts a Python process per logged model that loads
    the model and records its imports, several seconds per training for the same four lines."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "numpy", "onnx", "onnxruntime")]


def _champion(client, name: str):
    """The model version holding ``champion`` (or ``None``) and its run."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    return mv, client.get_run(mv.run_id)


def champion_decision(
    new_metric: float | None, lineage: RunLineage, champion_version, champion_run
) -> tuple[bool, str]:
    """Whether the new run takes ``champion``, and why (or why not), in one line.

    Backtest RMSSE is comparable only on the same data (digest) with the same folds and
    horizon: a lower figure from other data or another backtest design never takes the alias
    (moving it across data sets is a person's call: set the alias by hand).

    >>> lin = RunLineage("d", "abc", 3, 3, "2024-01-01", "2024-03-01", 3, 28, False)
    >>> champion_decision(0.8, lin, None, None)
    (True, 'first champion: RMSSE 0.8000')
    >>> from dataclasses import replace
    >>> champion_decision(None, replace(lin, folds=0), None, None)[0]
    False
    """
    if new_metric is None and lineage.folds == 0:
        return False, (
            "backtest skipped (--no-backtest): without backtest metrics the champion cannot "
            "move; retrain with folds to compare"
        )
    if new_metric is None:
        return False, f"no {PROMOTION_METRIC} metric: not a candidate"
    if champion_version is None:
        return True, f"first champion: RMSSE {new_metric:.4f}"
    v = f"v{champion_version.version}"
    tags = champion_run.data.tags
    other = tags.get(DIGEST_TAG)
    if other != lineage.digest:
        return False, (
            f"not comparable with champion {v}: backtested on other data "
            f"(dataset digest {other or 'not recorded'}, this run {lineage.digest})"
        )
    theirs, ours = tags.get(BACKTEST_TAG), lineage.backtest_design
    if theirs != ours:
        return False, (
            f"not comparable with champion {v}: its backtest was {theirs or 'not recorded'}, "
            f"this run's {ours}"
        )
    old = champion_run.data.metrics.get(PROMOTION_METRIC)
    if old is None:
        return True, f"champion {v} has no RMSSE: RMSSE {new_metric:.4f} takes over"
    if new_metric >= old:
        return False, f"not better than champion {v}: RMSSE {new_metric:.4f} >= {old:.4f}"
    return True, f"better than champion {v}: RMSSE {new_metric:.4f} < {old:.4f}"


def source_commit(root: Path | None = None) -> tuple[str | None, bool]:
    """The git commit of the source tree (``root``, else the checkout holding this code) and
    whether it has uncommitted changes; ``(None, False)`` outside a git checkout or without git
    (an installed package, an image)."""
    import subprocess

    # The code's own location is the question here (which commit trained), not a data path.
    root = root or Path(__file__).resolve().parent.parent

    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, False
    return head or None, bool(status.strip())


def _source_tags() -> dict[str, str]:
    commit, dirty = source_commit()
    if commit is None:
        return {"shelfcast.source": "no git checkout: commit unknown"}
    return {"mlflow.source.git.commit": commit, "shelfcast.source.dirty": str(dirty).lower()}


def _log_dataset(history, lineage: RunLineage) -> None:
    import warnings

    import mlflow

    with warnings.catch_warnings():
        # A local path resolves to two equivalent source classes; MLflow warns and picks one.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        dataset = mlflow.data.from_pandas(
            history,
            source=lineage.source_uri,
            name=lineage.dataset,
            digest=lineage.digest,
            targets="units" if "units" in history.columns else None,
        )
    mlflow.log_input(dataset, context="training")


def _log_backtest(rows, figures: dict) -> None:
    """The backtest as tables (per method, per fold, every series-fold row) and its figures."""
    import mlflow

    from training.backtest_table import html_page, markdown_table, method_table

    summary = method_table(rows)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary.to_csv(out / "summary_by_method.csv", index=False)
        (out / "summary_by_method.md").write_text(markdown_table(summary))
        (out / "summary_by_method.html").write_text(
            html_page(summary, "Backtest by method (mean over series-folds)")
        )
        method_table(rows, by_fold=True).to_csv(out / "summary_by_fold.csv", index=False)
        rows.to_csv(out / "series_folds.csv", index=False)
        mlflow.log_artifacts(str(out), "backtest")
    mlflow.log_table(summary, "backtest/summary_by_method.json")
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"figures/{name}.png")


def log_training_run(
    params: dict,
    metrics: dict[str, float],
    onnx_models: dict[str, bytes],
    n_features: dict[str, int],
    feature_spec: dict,
    lineage: RunLineage,
    history=None,
    backtest_rows=None,
    figures: dict | None = None,
    examples: dict | None = None,
    tags: dict[str, str] | None = None,
) -> LoggedRun:
    """Log one training run (named and described from ``lineage``, with its data set as an
    MLflow input, the source commit, the backtest tables and figures), register its models,
    and move ``champion`` only to a comparable, better run (:func:`champion_decision`).

    ``history`` is the training frame (logged as the dataset input; its last rows of one series
    become the pyfunc's input example); ``examples`` are feature rows per ONNX model."""
    import mlflow
    import onnx
    from mlflow import MlflowClient

    from training.library_noise import mlflow_console_quiet

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    examples = examples or {}
    with mlflow_console_quiet():
        if client.get_experiment_by_name(EXPERIMENT) is None:
            client.create_experiment(EXPERIMENT, artifact_location=_artifact_root(uri))
        mlflow.set_experiment(EXPERIMENT)
        run_tags = {**_source_tags(), **lineage.tags(), **(tags or {})}
        with mlflow.start_run(
            run_name=lineage.run_name(), description=lineage.description(), tags=run_tags
        ) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics(
                {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
            )
            mlflow.log_dict(feature_spec, "feature_spec.json")
            if history is not None:
                _log_dataset(history, lineage)
            if backtest_rows is not None:
                _log_backtest(backtest_rows, figures or {})
            versions = {}
            for name, data in onnx_models.items():
                if name == "demand":
                    # `shelfcast-demand` versions are the forecast pyfunc (history in, forecasts
                    # out, this ONNX inside); the raw graph is logged beside it (training/pyfunc.py).
                    from training.pyfunc import history_example, log_forecast_model

                    versions[name] = log_forecast_model(
                        data,
                        feature_spec,
                        n_features[name],
                        REGISTERED[name],
                        history_example=None if history is None else history_example(history),
                        onnx_example=examples.get(name),
                    )
                    continue
                info = mlflow.onnx.log_model(
                    onnx.load_from_string(data),
                    name=name,
                    signature=_signature(n_features[name], SIGNATURES[name]),
                    input_example=examples.get(name),
                    pip_requirements=onnx_requirements(),
                    registered_model_name=REGISTERED[name],
                )
                versions[name] = str(info.registered_model_version)
            run_id = run.info.run_id
        prev_version, prev_run = _champion(client, DEMAND_MODEL)
        moved, reason = champion_decision(
            metrics.get(PROMOTION_METRIC), lineage, prev_version, prev_run
        )
        client.set_tag(run_id, DECISION_TAG, reason)
        if moved:
            for name, version in versions.items():
                client.set_registered_model_alias(REGISTERED[name], CHAMPION, version)
    return LoggedRun(
        run_id,
        versions,
        moved,
        None if prev_version is None else str(prev_version.version),
        None if prev_run is None else prev_run.data.metrics.get(PROMOTION_METRIC),
        reason,
    )
