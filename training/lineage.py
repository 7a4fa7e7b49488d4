"""What a training run was trained and judged on: the data set (name, source, content digest,
SKUs, date range) and the backtest design (folds x horizon days). It names and describes the
MLflow run, and decides whether two runs' backtest figures can be compared at all.

>>> import pandas as pd
>>> frame = pd.DataFrame({"store_id": ["S1", "S1"], "sku": ["A", "B"],
...     "date": pd.to_datetime(["2024-01-01", "2024-01-31"]), "units": [3.0, 1.0]})
>>> lin = RunLineage.of(frame, "sales.csv", folds=1, horizon=28, quick=True)
>>> lin.run_name()
'sales.csv · 2 SKUs · 2024-01-01..2024-01-31 · quick · backtest 1x28d'
>>> lin.backtest_design, len(lin.digest)
('1 fold(s) x 28 days', 16)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

DIGEST_CHARS = 16  # MLflow keeps dataset digests in a short column


def dataset_digest(history) -> str:
    """SHA-256 over every row of the canonical frame (columns in name order), so the same
    data read from Parquet or CSV, or cut the same way from a data set, has the same digest."""
    import pandas as pd

    frame = history[sorted(history.columns)].reset_index(drop=True)
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(row_hashes.tobytes())
    return h.hexdigest()[:DIGEST_CHARS]


@dataclass(frozen=True)
class RunLineage:
    """The data and backtest design behind one run (see the module docstring).

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"store_id": ["S1"], "sku": ["A"],
    ...                       "date": pd.to_datetime(["2024-01-01"]), "units": [3.0]})
    >>> a = RunLineage.of(frame, "sales.csv", folds=1, horizon=28, quick=True)
    >>> b = RunLineage.of(frame.assign(units=[4.0]), "sales.csv", folds=1, horizon=28, quick=True)
    >>> a.n_series, a.digest == b.digest  # another figure: another data set
    (1, False)
    """

    dataset: str
    digest: str
    n_skus: int
    n_series: int
    start: str
    end: str
    folds: int
    horizon: int
    quick: bool
    source: str = ""

    @classmethod
    def of(cls, history, source: str, folds: int, horizon: int, quick: bool) -> RunLineage:
        dates = history["date"]
        return cls(
            dataset=_short_name(source),
            digest=dataset_digest(history),
            n_skus=int(history["sku"].nunique()),
            n_series=int(history.groupby(["store_id", "sku"]).ngroups),
            start=str(dates.min())[:10],
            end=str(dates.max())[:10],
            folds=folds,
            horizon=horizon,
            quick=quick,
            source=source,
        )

    @property
    def backtest_design(self) -> str:
        if self.folds == 0:
            return "none (backtest skipped)"
        return f"{self.folds} fold(s) x {self.horizon} days"

    @property
    def source_uri(self) -> str:
        path = Path(self.source)
        return path.resolve().as_uri() if path.exists() else self.source or self.dataset

    def run_name(self) -> str:
        mode = "quick" if self.quick else "full"
        return (
            f"{self.dataset} · {self.n_skus} SKUs · {self.start}..{self.end} · {mode}"
            f" · backtest {self.folds}x{self.horizon}d"
        )

    def description(self) -> str:
        """Markdown shown as the run's description in the MLflow UI."""
        return (
            f"Demand (LightGBM mean/P50/P90, exported to ONNX) and anomaly (IsolationForest) "
            f"models trained on **{self.source or self.dataset}**: {self.n_series} store-SKU "
            f"series ({self.n_skus} SKUs), {self.start} to {self.end}; dataset digest "
            f"`{self.digest}`.\n\n"
            f"Backtest: rolling origin, {self.backtest_design}, "
            f"{'quick configuration' if self.quick else 'full configuration'}. "
            "Tables under `backtest/`, forecast-against-actual figures under `figures/`. "
            "`champion` moves only to a better run on the same data digest and backtest design "
            "(see the `shelfcast.champion_decision` tag)."
        )

    def tags(self) -> dict[str, str]:
        return {
            "shelfcast.dataset": self.dataset,
            "shelfcast.dataset.digest": self.digest,
            "shelfcast.backtest": self.backtest_design,
            "shelfcast.mode": "quick" if self.quick else "full",
        }


def _short_name(source: str) -> str:
    """A file's name, or the data set's name (the first word of a demo's longer source)."""
    if "/" in source or "\\" in source:
        return Path(source).name
    return source.split()[0] if source.strip() else "history"
