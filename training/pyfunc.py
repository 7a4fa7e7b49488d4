"""The MLflow pyfunc of the demand model: sales history in, forecast table out.

Every training run registers it as the new version of ``shelfcast-demand`` (the registered
model's versions *are* this pyfunc), so a data scientist or planning system writes::

    model = mlflow.pyfunc.load_model("models:/shelfcast-demand@champion")
    table = model.predict(history_frame, params={"horizon": 28})

and gets the long table ``store_id, sku, date, p50, p90, mean`` that ``shelfcast forecast``
writes for the same bundle and data: both call :meth:`training.forecast.Forecaster.forecast`.
The model carries a verified bundle (``demand.onnx``, ``feature_spec.json``, metadata, SHA-256
manifest) as its ``bundle`` artifact and scores it with ONNX Runtime. Nothing is pickled: the
model is logged "from code" (MLflow keeps this file and runs it to load the model), and loading
needs this package (``shelfcast``) importable for the feature store and the forecaster. The raw ONNX graph is logged beside it in the run
as ``demand_onnx`` (onnx flavour, tensor signature) for tools that want the graph itself.

>>> sig = signature()
>>> [c.name for c in sig.inputs.inputs]
['store_id', 'sku', 'date', 'units', 'price', 'promo', 'event']
>>> [c.name for c in sig.outputs.inputs]
['store_id', 'sku', 'date', 'p50', 'p90', 'mean']
>>> sig.params.params[0].name, sig.params.params[0].default
('horizon', 28)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow.models
import mlflow.pyfunc
import pandas as pd

BUNDLE_ARTIFACT = "bundle"


class ForecastModel(mlflow.pyfunc.PythonModel):
    """``predict(history_frame, params={"horizon": H, "start": "YYYY-MM-DD"})`` -> forecasts.

    >>> ForecastModel().forecaster is None  # the bundle is opened by MLflow's load_context
    True
    """

    def __init__(self) -> None:
        self.forecaster = None

    def load_context(self, context) -> None:
        from training.forecast import Forecaster

        self.forecaster = Forecaster.from_bundle(context.artifacts[BUNDLE_ARTIFACT])

    # The hint MLflow accepts for a frame (a hint-less predict makes it warn on every log and
    # load); the signature below still describes the columns.
    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        params = params or {}
        events = params.get("calendar_events") or None
        return self.forecaster.forecast(
            model_input,
            horizon=int(params.get("horizon", 28)),
            start=params.get("start") or None,
            calendar_events=[e for e in events.split(",") if e] if events else None,
        )


def signature():
    """Input columns (the canonical history), output columns and the ``predict`` params."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "store_id"),
            ColSpec("string", "sku"),
            ColSpec("datetime", "date"),
            ColSpec("double", "units"),
            ColSpec("double", "price", required=False),
            ColSpec("double", "promo", required=False),
            ColSpec("double", "event", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "store_id"),
            ColSpec("string", "sku"),
            ColSpec("datetime", "date"),
            ColSpec("double", "p50"),
            ColSpec("double", "p90"),
            ColSpec("double", "mean"),
        ]
    )
    params = ParamSchema(
        [
            ParamSpec("horizon", "long", 28),
            ParamSpec("start", "string", ""),
            # Known future calendar-event dates, comma-separated ISO dates.
            ParamSpec("calendar_events", "string", ""),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("numpy", "pandas", "pyarrow", "onnxruntime", "mlflow")]


EXAMPLE_DAYS = 120  # the features look back 91 days; the forecaster refuses under 28


def history_example(history):
    """The pyfunc's input example: the last ``EXAMPLE_DAYS`` days of the series with the most
    units, in the signature's column order (what ``predict`` takes, small enough to read)."""
    totals = history.groupby(["store_id", "sku"])["units"].sum()
    store, sku = totals.idxmax()
    one = history[(history["store_id"] == store) & (history["sku"] == sku)]
    cols = [c.name for c in signature().inputs.inputs if c.name in one.columns]
    return one.sort_values("date").tail(EXAMPLE_DAYS)[cols].reset_index(drop=True)


def log_forecast_model(
    demand_onnx: bytes,
    feature_spec: dict,
    n_features: int,
    registered_model_name: str | None,
    history_example=None,
    onnx_example=None,
) -> str | None:
    """Inside an active MLflow run: log the pyfunc (with the ONNX bundle as its artifact) and
    the raw ONNX graph; register the pyfunc under ``registered_model_name``. Returns the new
    registered version (``None`` when not registered). The examples (a history frame, feature
    rows) are stored with each model and checked against its signature by MLflow."""
    import mlflow
    import onnx

    from models.bundle import write_bundle
    from training.tracking import SIGNATURES, _signature, onnx_requirements

    mlflow.onnx.log_model(
        onnx.load_from_string(demand_onnx),
        name="demand_onnx",
        signature=_signature(n_features, SIGNATURES["demand"]),
        input_example=onnx_example,
        pip_requirements=onnx_requirements(),
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle = write_bundle(
            Path(tmp) / BUNDLE_ARTIFACT,
            {"demand": demand_onnx},
            feature_spec,
            {"model_version": "pyfunc", "mlflow_run_id": mlflow.active_run().info.run_id},
        )
        info = mlflow.pyfunc.log_model(
            name="demand",
            # Models from code: MLflow stores this file, not a pickle, and runs it to load.
            python_model=str(Path(__file__).resolve()),
            artifacts={BUNDLE_ARTIFACT: str(bundle)},
            signature=signature(),
            input_example=history_example,
            pip_requirements=_requirements(),
            registered_model_name=registered_model_name,
        )
    version = info.registered_model_version
    return None if version is None else str(version)


# MLflow runs this file to load a logged model ("models from code"); this names the model.
mlflow.models.set_model(ForecastModel())
