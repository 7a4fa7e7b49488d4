"""The benchmarks' cached bundles (``benchmarks.twin.bundle_for``): reused only when trained by
the same training code, for the same history, cut and trees."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import training.train
from benchmarks.twin import bundle_for, training_code_digest
from feature_store.spec import FEATURE_STORE_VERSION


def _tree(root: Path) -> None:
    for folder in ("training", "feature_store", "models", "hub"):
        (root / folder).mkdir(parents=True)
        (root / folder / "a.py").write_text(f"# {folder}\n")


def test_the_digest_follows_the_training_code_only(tmp_path):
    _tree(tmp_path)
    before = training_code_digest(tmp_path)
    (tmp_path / "hub" / "a.py").write_text("# the router changed\n")
    assert training_code_digest(tmp_path) == before
    (tmp_path / "training" / "a.py").write_text("# the demand model's loss changed\n")
    assert training_code_digest(tmp_path) != before


@pytest.fixture
def trainings(monkeypatch) -> list[str]:
    """Stands in for training: records the source of every bundle it is asked to train."""
    calls: list[str] = []

    def fake_train(history, out, config, source, track=True):
        calls.append(source)
        return SimpleNamespace(bundle=Path(out), metadata={"data_source": source})

    monkeypatch.setattr(training.train, "train", fake_train)
    return calls


def _cached(out: Path, source: str) -> None:
    out.mkdir()
    meta = {"data_source": source, "feature_store_version": FEATURE_STORE_VERSION}
    (out / "metadata.json").write_text(json.dumps(meta))


def test_a_bundle_trained_by_other_training_code_is_trained_again(tmp_path, trainings):
    frame = pd.DataFrame({"sku": ["a"], "date": pd.to_datetime(["2016-05-01"]), "units": [1]})
    # What the cache held before: the history, the cut and the trees, not the code.
    _cached(tmp_path / "b", "m5 to 2016-05-08, 100 trees")
    bundle_for(frame, "2016-05-08", tmp_path / "b", 100, "m5", folds=0)
    assert trainings == [f"m5 to 2016-05-08, 100 trees, training code {training_code_digest()}"]


def test_a_bundle_trained_by_this_training_code_is_reused(tmp_path, trainings):
    frame = pd.DataFrame({"sku": ["a"], "date": pd.to_datetime(["2016-05-01"]), "units": [1]})
    source = f"m5 to 2016-05-08, 100 trees, training code {training_code_digest()}"
    _cached(tmp_path / "b", source)
    path, meta = bundle_for(frame, "2016-05-08", tmp_path / "b", 100, "m5", folds=0)
    assert trainings == [] and path == tmp_path / "b" and meta["data_source"] == source


def test_the_decisions_benchmark_keys_its_bundle_on_the_training_code():
    from benchmarks.decisions import bundle_source

    assert bundle_source(200).endswith(f"training code {training_code_digest()}")
