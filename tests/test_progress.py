"""Progress bars on the long steps (backtest, twin, training stages): shown on a terminal or when
forced with SHELFCAST_PROGRESS=1, silent in logs and CI otherwise."""

from __future__ import annotations

import numpy as np

from feature_store.batch import Panel
from tests.test_twin import Fixed
from training.backtest import backtest
from training.progress import progress_bar
from twin.store import DemandPanel, StoreConfig, simulate


def test_backtest_shows_a_bar_over_its_folds(monkeypatch, capsys):
    monkeypatch.setenv("SHELFCAST_PROGRESS", "1")
    rng = np.random.default_rng(0)
    units = rng.poisson(3.0, size=(2, 150)).astype(float)
    panel = Panel(keys=[("S", "A"), ("S", "B")], start=np.datetime64("2024-01-01"), units=units)
    backtest(panel, folds=2, model_params={"n_estimators": 5}, baselines=False)
    err = capsys.readouterr().err
    assert "backtest" in err and "2/2" in err and "fold" in err


def test_twin_shows_a_bar_over_its_days(monkeypatch, capsys):
    monkeypatch.setenv("SHELFCAST_PROGRESS", "1")
    units = np.full((2, 40), 2.0)
    panel = DemandPanel.from_arrays(
        "st", ["a", "b"], np.datetime64("2024-01-01") + np.arange(40), units
    )
    simulate(panel, Fixed(1), StoreConfig(pack_size=1), start=20)
    err = capsys.readouterr().err
    assert "twin fixed" in err and "20/20" in err


def test_bars_stay_silent_off_a_terminal_unless_forced(capsys):
    with progress_bar(4, "quiet", env={}) as bar:  # stderr is captured: not a terminal
        bar.update(4)
    assert capsys.readouterr().err == ""
    with progress_bar(4, "forced", env={"SHELFCAST_PROGRESS": "1"}) as bar:
        bar.update(4)
    assert "forced" in capsys.readouterr().err
