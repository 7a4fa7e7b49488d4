"""MLflow tracking: runs, ONNX models with signatures, the registry and the ``champion`` alias.

The default store is embedded: ``sqlite:///<project>/var/mlflow/mlflow.db`` with artifacts under
``var/mlflow/artifacts``; ``MLFLOW_TRACKING_URI`` overrides it (artifacts then go beside a SQLite
file, or wherever the server puts them).

>>> default_tracking_uri().startswith("sqlite:///")
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shelfcast.data_dir import PROJECT_ROOT

EXPERIMENT = "shelfcast"
DEMAND_MODEL = "shelfcast-demand"
ANOMALY_MODEL = "shelfcast-anomaly"
CHAMPION = "champion"
# The backtest metric that decides promotion: lower is better.
PROMOTION_METRIC = "rmsse_model"


def default_tracking_uri() -> str:
    db = PROJECT_ROOT / "var" / "mlflow" / "mlflow.db"
    return f"sqlite:///{db}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def _artifact_root(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        return (db.parent / "artifacts").resolve().as_uri()
    return None


@dataclass
class LoggedRun:
    """What a tracked training run produced in MLflow."""

    run_id: str
    versions: dict[str, str]
    champion_moved: bool
    previous_champion: str | None
    previous_metric: float | None


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


def _champion(client, name: str) -> tuple[str | None, float | None]:
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    metric = client.get_run(mv.run_id).data.metrics.get(PROMOTION_METRIC)
    return str(mv.version), metric


def log_training_run(
    params: dict,
    metrics: dict[str, float],
    onnx_models: dict[str, bytes],
    n_features: dict[str, int],
    feature_spec: dict,
    tags: dict[str, str] | None = None,
) -> LoggedRun:
    """Log one training run, register its models, and move ``champion`` to the new demand
    version only when it beats the current champion's backtest RMSSE (lower is better)."""
    import mlflow
    import onnx
    from mlflow import MlflowClient

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=_artifact_root(uri))
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run() as run:
        mlflow.set_tags(tags or {})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
        mlflow.log_dict(feature_spec, "feature_spec.json")
        versions = {}
        for name, data in onnx_models.items():
            if name == "demand":
                # `shelfcast-demand` versions are the forecast pyfunc (history in, forecasts
                # out, this ONNX inside); the raw graph is logged beside it (training/pyfunc.py).
                from training.pyfunc import log_forecast_model

                versions[name] = log_forecast_model(
                    data, feature_spec, n_features[name], REGISTERED[name]
                )
                continue
            info = mlflow.onnx.log_model(
                onnx.load_from_string(data),
                name=name,
                signature=_signature(n_features[name], SIGNATURES[name]),
                registered_model_name=REGISTERED[name],
            )
            versions[name] = str(info.registered_model_version)
        run_id = run.info.run_id
    new_metric = metrics.get(PROMOTION_METRIC)
    prev_version, prev_metric = _champion(client, DEMAND_MODEL)
    better = new_metric is not None and (prev_metric is None or new_metric < prev_metric)
    if better:
        for name, version in versions.items():
            client.set_registered_model_alias(REGISTERED[name], CHAMPION, version)
    return LoggedRun(run_id, versions, better, prev_version, prev_metric)
