"""``shelfcast train``: backtest, fit on all history, export to ONNX, check parity, track in
MLflow and write a model bundle.

    shelfcast train --data sales.parquet --out var/bundle          # any canonical file
    shelfcast train --data online_retail --out var/bundle --quick  # a real data set by name

>>> cfg = TrainConfig.quick_config()
>>> cfg.folds, cfg.baselines
(1, False)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from configuration.command_options import non_negative_int, positive_int
from training.engine import add_engine_arguments, engine_for
from training.progress import progress_bar, say

PARITY_TOLERANCE = 1e-4  # max abs diff allowed, relative to the outputs' scale


@dataclass
class TrainConfig:
    """Everything that shapes a training run; logged as MLflow parameters.

    >>> cfg = TrainConfig(n_estimators=50)
    >>> cfg.model_params()  # what the demand model is built with
    {'n_estimators': 50, 'num_leaves': 31, 'learning_rate': 0.05, 'seed': 0}
    """

    folds: int = 3
    horizon: int = 28
    n_estimators: int = 200
    num_leaves: int = 31
    learning_rate: float = 0.05
    stride: int = 7
    baselines: bool = True
    anomaly_rows: int = 100_000
    # Its ONNX export takes most of a small run (skl2onnx's cost grows faster than the trees).
    anomaly_trees: int = 100
    seed: int = 0

    @classmethod
    def quick_config(cls) -> TrainConfig:
        return cls(folds=1, n_estimators=60, stride=14, baselines=False, anomaly_rows=20_000)

    def model_params(self) -> dict:
        return {
            "n_estimators": self.n_estimators,
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
        }


class ParityError(RuntimeError):
    """ONNX Runtime and the native model disagree beyond tolerance: the export is not shipped.

    >>> try:
    ...     check_parity({"mean": np.array([1.0])}, {"mean": np.array([1.5])}, "demand")
    ... except ParityError as err:
    ...     print(err)
    demand: ONNX differs from native by 0.5 (> 0.0001 x 1)
    """


def _say(msg: str) -> None:
    say(f"[{datetime.now(UTC):%H:%M:%S}] {msg}")


def check_parity(
    native: dict[str, np.ndarray], onnx_out: dict[str, np.ndarray], what: str
) -> float:
    """Max abs difference over shared outputs; raises :class:`ParityError` above
    ``PARITY_TOLERANCE x max(1, max |native|)``."""
    from models.onnx_export import max_abs_diff

    diff = max_abs_diff(native, onnx_out)
    scale = max(1.0, *(float(np.max(np.abs(v))) for k, v in native.items() if k in onnx_out))
    if diff > PARITY_TOLERANCE * scale:
        raise ParityError(
            f"{what}: ONNX differs from native by {diff:g} (> {PARITY_TOLERANCE:g} x {scale:g})"
        )
    return diff


def anomaly_training_rows(panel, close, limit: int, seed: int = 0) -> np.ndarray:
    """A sample of started store-SKU-days for the IsolationForest."""
    from feature_store.batch import anomaly_rows

    started = np.arange(panel.n_days)[None, :] >= panel.first_day()[:, None]
    s, d = np.nonzero(started)
    if len(s) > limit:
        pick = np.random.default_rng(seed).choice(len(s), size=limit, replace=False)
        s, d = s[pick], d[pick]
    return anomaly_rows(panel, close, s, d)


def series_years(panel, last_day: int | None = None, recent: int | None = None) -> float:
    """Years of history summed over series, each from its first day (to ``last_day``, over the
    last ``recent`` steps when given), at the panel's grain: the unit training cost is quoted
    in, so data sets of different widths, lengths and grains compare."""
    end = panel.n_days - 1 if last_day is None else last_day
    start = panel.first_day() if recent is None else np.maximum(panel.first_day(), end - recent)
    steps = np.clip(end + 1 - start, 0, None)
    return float(np.sum(steps)) * panel.step.days / 365.25


def stores_served(panel) -> list[str]:
    """The stores a bundle trained on this panel serves, sorted: what the hub's rollout reads
    to send a per-store or per-cluster bundle to its stores only.

    >>> from feature_store.batch import Panel
    >>> stores_served(Panel(keys=[("S2", "A"), ("S1", "A"), ("S2", "B")],
    ...                     start=np.datetime64("2024-01-01"), units=np.zeros((3, 1))))
    ['S1', 'S2']
    """
    return sorted({store for store, _sku in panel.keys})


def only_stores(history, stores: list[str]):
    """The rows of the named stores; ``ValueError`` names any store the history lacks."""
    have = set(history["store_id"].astype(str))
    missing = [s for s in stores if s not in have]
    if missing:
        raise ValueError(
            f"--stores: no rows for store(s) {', '.join(missing)}; the history has "
            f"{', '.join(sorted(have)[:10])}{' ...' if len(have) > 10 else ''}"
        )
    return history[history["store_id"].astype(str).isin(stores)]


def fit_seconds_per_1000_series_years(seconds: float, years: float) -> float:
    """Training cost per 1,000 series-years of history.

    >>> fit_seconds_per_1000_series_years(54.0, 300 * 1.8)
    100.0
    """
    return seconds * 1000.0 / years if years > 0 else 0.0


@dataclass
class TrainResult:
    bundle: Path
    metadata: dict
    backtest: dict


def train(
    history,
    out_dir: str | Path,
    config: TrainConfig,
    source: str,
    track: bool = True,
    signing_key: str | Path | None = None,
    quick: bool = False,
    data_selection: dict | None = None,
    engine=None,
    known_ahead: bool = False,
) -> TrainResult:
    """Run the whole pipeline on a canonical history frame; returns the bundle and its metadata.

    The bundle carries a reference set (held-out rows and their ONNX outputs) and is signed with
    ``signing_key`` (``training.signing_key.signer_for``: else ``$SHELFCAST_SIGNING_KEY``, else
    the default key, created on first use). ``quick`` only labels the run (its name says quick
    or full). ``data_selection`` (:func:`training.datasets.selection`) is written to the
    bundle's metadata so a forecast on the same data set selects the same series. ``engine``
    (:mod:`training.engine`) runs the backtest's per-series baselines, and each backtest fold
    and the final fit as a task of one batch (:mod:`training.backtest_and_fit`); with
    ``fit_on_cluster`` the folds stay in this process, their rows per partition of whole series
    and each LightGBM fit data-parallel on the workers (:mod:`training.distributed_fit`).
    ``config.folds == 0`` skips the backtest: the bundle then carries no backtest metrics, and MLflow's champion
    cannot move to it. ``known_ahead``: the history's price and promo are planned
    (:class:`feature_store.batch.Panel`). The bundle's metadata names the stores it serves
    (``stores``: every store of the history; train on one store's or one cluster's rows for a
    per-store or per-cluster bundle) and the grain it forecasts in."""
    from feature_store.batch import (
        anomaly_rows,
        close_features,
        forecast_rows,
        panel_from_frame,
    )
    from feature_store.spec import ANOMALY_FEATURES, FEATURE_STORE_VERSION, names, spec_dict
    from models.anomaly import AnomalyModel
    from models.bundle import write_bundle
    from models.bundle_reference import build_reference
    from models.onnx_export import run_onnx
    from training.backtest_and_fit import backtest_and_final_fit
    from training.signing_key import signer_for

    sign = signer_for(signing_key, say=_say)  # a missing named key fails before hours of work
    _say(f"history: {len(history):,} rows, {history.groupby(['store_id', 'sku']).ngroups:,} series")
    panel = panel_from_frame(history, known_ahead=known_ahead)
    # One bar over the pipeline's stages (the backtest shows its folds on a bar of its own).
    stages = progress_bar(5 + int(track), "train", unit="stage")
    stages.set_postfix_str("backtest and demand fit")
    close = close_features(panel)
    bt, summary, final = backtest_and_final_fit(panel, close, config, engine, _say)
    demand, fit_seconds, last = final.model, final.seconds, panel.n_days - 1
    stages.update(2)
    stages.set_postfix_str("fit anomaly")
    years = series_years(panel)
    _say(
        f"demand fit {fit_seconds:.1f} s for {years:,.1f} series-years of history: "
        f"{fit_seconds_per_1000_series_years(fit_seconds, years):.2f} s per 1,000 series-years"
    )
    A = anomaly_training_rows(panel, close, config.anomaly_rows, config.seed)
    _say(f"fitting anomaly model on {len(A):,} store-SKU-days")
    anomaly = AnomalyModel(n_estimators=config.anomaly_trees, seed=config.seed).fit(A)
    stages.update()
    stages.set_postfix_str("export and parity")

    _say("exporting to ONNX and checking parity on held-out rows")
    onnx_models = {
        "demand": demand.to_onnx(len(names())),
        "anomaly": anomaly.to_onnx(len(ANOMALY_FEATURES)),
    }
    # Forecast rows from the last day have targets beyond the history: never trained on.
    Xh, series, _ = forecast_rows(panel, close, last)
    demand_diff = check_parity(demand.predict(Xh), run_onnx(onnx_models["demand"], Xh), "demand")
    Ah = anomaly_rows(panel, close, np.unique(series), np.full(len(np.unique(series)), last))
    anomaly_diff = check_parity(
        {"scores": anomaly.score(Ah)}, run_onnx(onnx_models["anomaly"], Ah), "anomaly"
    )
    stages.update()
    metrics = {**{k: v for k, v in summary.items() if not isinstance(v, str)}}
    metrics.update(
        onnx_max_abs_diff=demand_diff,
        onnx_anomaly_max_abs_diff=anomaly_diff,
        fit_seconds=fit_seconds,
        fit_seconds_per_1000_series_years=fit_seconds_per_1000_series_years(fit_seconds, years),
    )

    dates = panel.dates
    metadata = {
        "model_version": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "feature_store_version": FEATURE_STORE_VERSION,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_source": source,
        "data_selection": data_selection or {},
        "training_data": {"start": str(dates[0]), "end": str(dates[-1]), "series": len(panel.keys)},
        "grain": panel.grain,
        "stores": stores_served(panel),
        "backtest": summary,
        "params": {"demand": demand.params(), "anomaly": anomaly.params(), "train": asdict(config)},
        "outputs": {"demand": ["mean", "p50", "p90"], "anomaly": ["label", "scores"]},
        "mlflow_run_id": None,
    }
    if track:
        from training.backtest import fold_cutoffs
        from training.forecast_figures import backtest_forecast_figure, error_by_method_figure
        from training.lineage import RunLineage
        from training.tracking import log_training_run, tracking_uri

        stages.set_postfix_str("MLflow")
        lineage = RunLineage.of(history, source, config.folds, config.horizon, quick)
        _say(f"logging to MLflow at {tracking_uri()}: run {lineage.run_name()!r}")
        figures = {}
        if bt is not None:
            last_cut = fold_cutoffs(panel.n_days, config.folds, config.horizon)[-1]
            figures = {
                "forecast_vs_actual": backtest_forecast_figure(
                    panel, bt.models[-1], last_cut, config.horizon
                ),
                "rmsse_by_method": error_by_method_figure(bt.frame()),
            }
        logged = log_training_run(
            params={**asdict(config), "data_source": source, "series": len(panel.keys)},
            metrics=metrics,
            onnx_models=onnx_models,
            n_features={"demand": len(names()), "anomaly": len(ANOMALY_FEATURES)},
            feature_spec=spec_dict(),
            lineage=lineage,
            history=history,
            backtest_rows=None if bt is None else bt.frame(),
            figures=figures,
            examples={"demand": Xh[:5], "anomaly": Ah[:5]},
            tags={"data_source": source},
        )
        metadata.update(
            mlflow_run_id=logged.run_id,
            model_version=logged.versions["demand"],
            registered_versions=logged.versions,
            champion=logged.champion_moved,
        )
        verdict = "promoted to champion" if logged.champion_moved else "champion stays"
        _say(f"registered demand v{logged.versions['demand']}: {verdict} ({logged.reason})")
        stages.update()
    stages.set_postfix_str("bundle")
    # Held-out rows and what ONNX Runtime made of them: gateways score them again before use.
    reference = build_reference(onnx_models, {"demand": Xh, "anomaly": Ah})
    bundle = write_bundle(
        out_dir, onnx_models, spec_dict(), metadata, reference=reference, sign=sign
    )
    stages.update()
    stages.close()
    _say(f"bundle signed with key {sign.key_id}")
    _say(f"bundle written to {bundle}")
    return TrainResult(bundle=bundle, metadata=metadata, backtest=summary)


def load_input(
    data: str,
    top_skus: int | None,
    columns: str | None = None,
    date_format: str | None = None,
    warn: Callable[[str], None] | None = None,
):
    """A canonical history from a file path or the name of a real data set (its series chosen by
    :func:`training.datasets.selection`); ``columns`` is a
    ``--columns`` mapping for a file (``sku=item,date=day,units=qty``), ``date_format`` and
    ``warn`` go to :func:`training.history.load_history` for a file."""
    from training.datasets import DATASETS, load_dataset, selection
    from training.history import HistoryError, load_history
    from training.history_columns import parse_column_mapping

    mapping = parse_column_mapping(columns) if columns else None
    if data in DATASETS:
        if mapping:
            raise HistoryError(f"--columns applies to files; {data!r} is a bundled data set")
        return load_dataset(data, **selection(data, top_skus)), data
    path = Path(data)
    if not path.exists() and not path.suffix:
        raise ValueError(
            f"{data!r} is neither a file nor a data set name; data sets: {', '.join(sorted(DATASETS))}"
        )
    return (
        load_history(path, mapping, date_format=date_format, warn=warn),
        str(path.resolve()),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        help="canonical Parquet/CSV file, or a data set name: online_retail, m5_sample, favorita, ...",
    )
    parser.add_argument(
        "--out", required=True, help="bundle directory to write (replaced if it exists)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small fast run: 1 fold, 60 trees, no baselines"
    )
    parser.add_argument(
        "--folds",
        type=non_negative_int,
        default=None,
        help="backtest folds (default 3; quick 1); 0 skips the backtest, as --no-backtest does",
    )
    parser.add_argument(
        "--no-backtest",
        action="store_true",
        help="skip the backtest (the same as --folds 0): faster, but the bundle has no backtest "
        "metrics and MLflow's champion cannot move to it (the run's decision tag says so)",
    )
    parser.add_argument(
        "--trees", type=positive_int, default=None, help="trees per LightGBM model (default 200)"
    )
    parser.add_argument(
        "--baselines",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit statsforecast baselines in the backtest",
    )
    parser.add_argument(
        "--top-skus",
        type=positive_int,
        default=None,
        help="online_retail only: keep the N SKUs with most units (default 300; quick 30)",
    )
    parser.add_argument(
        "--date-format",
        default=None,
        help="strftime format of a file's date column, e.g. %%d/%%m/%%Y, when it is neither "
        "ISO yyyy-mm-dd nor a dd/mm/yyyy or mm/dd/yyyy the file itself settles",
    )
    parser.add_argument(
        "--stores",
        default=None,
        metavar="S1,S2",
        help="train on these stores' rows only: a per-store or per-cluster bundle, whose "
        "metadata names the stores it serves",
    )
    add_columns_argument(parser)
    add_engine_arguments(parser)
    parser.add_argument(
        "--fit-on-cluster",
        action="store_true",
        help="with --engine dask: fit the demand model's LightGBM models on the workers too "
        "(lightgbm.dask, data-parallel), for training rows one process cannot hold; the trees "
        "then differ slightly from a single process's",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    parser.add_argument(
        "--signing-key",
        default=None,
        help="Ed25519 private key (PEM) that signs the bundle (env SHELFCAST_SIGNING_KEY; "
        "default var/keys/bundle-signing.key, created on first use; see `shelfcast keygen`)",
    )


def add_columns_argument(parser: argparse.ArgumentParser) -> None:
    """``--columns`` for every command that reads a sales history file."""
    parser.add_argument(
        "--columns",
        default=None,
        metavar="MAP",
        help="the file's names for the canonical columns, e.g. sku=item,date=day,units=qty "
        "(store_id may be left out: one store). Nixtla-style unique_id, ds, y are "
        "recognised without it",
    )


def run(args: argparse.Namespace) -> int:
    from configuration.data_dir import DataMissingError
    from training.history import HistoryError
    from training.library_noise import silence_library_noise

    silence_library_noise()
    config = TrainConfig.quick_config() if args.quick else TrainConfig()
    if args.folds is not None:
        config.folds = args.folds
    if args.no_backtest:
        config.folds = 0
    if args.trees is not None:
        config.n_estimators = args.trees
    if args.baselines is not None:
        config.baselines = args.baselines
    from training.datasets import (
        DATASETS,
        KNOWN_AHEAD,
        ONLINE_RETAIL_TOP_SKUS,
        ONLINE_RETAIL_TOP_SKUS_QUICK,
        selection,
    )

    top = args.top_skus or (ONLINE_RETAIL_TOP_SKUS_QUICK if args.quick else ONLINE_RETAIL_TOP_SKUS)
    engine = None
    try:
        history, source = load_input(
            args.data,
            top,
            args.columns,
            date_format=args.date_format,
            warn=lambda m: _say(f"warning: {m}"),
        )
        if args.stores:
            history = only_stores(history, [s.strip() for s in args.stores.split(",") if s.strip()])
        engine = engine_for(args.engine, args.workers, args.scheduler, args.fit_on_cluster)
        result = train(
            history,
            args.out,
            config,
            source,
            track=not args.no_mlflow,
            signing_key=args.signing_key,
            quick=args.quick,
            data_selection=selection(args.data, top) if args.data in DATASETS else None,
            engine=engine,
            known_ahead=args.data in KNOWN_AHEAD,
        )
    except (HistoryError, DataMissingError, KeyError, ValueError, ParityError) as exc:
        print(f"shelfcast train: {exc}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.close()
    print(result.bundle)
    return 0
