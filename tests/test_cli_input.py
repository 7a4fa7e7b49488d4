"""Bad command-line input ends in one line naming the file, column or option and what is
expected, never a traceback or a silent guess; input that can be read unambiguously is.

Commands run in-process (fast) except ``serve`` and ``run``, which run as subprocesses with a
timeout: were a bad port or level let through, they would start listening instead of failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from edge_runtime.config import load_config
from shelfcast.cli import main
from training.history import HistoryError, load_history
from twin.replay import store_id_for

HEADER = "store_id,sku,date,units\n"


def _in_process(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse refusing an option
        code = stop.code
    return code, capsys.readouterr().err


def _subprocess(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "shelfcast.cli", *argv]
    full_env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), **env}
    out = subprocess.run(cmd, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=60)
    return out.returncode, out.stderr


def _files(tmp: Path) -> None:
    (tmp / "header.csv").write_text(HEADER)
    (tmp / "empty.csv").write_text("")
    (tmp / "semicolon.csv").write_text("Store;Item;Day;Qty\nS1;A;2024-01-01;3\n")
    (tmp / "ambiguous.csv").write_text(HEADER + "S1,A,01/02/2024,3\nS1,A,03/04/2024,1\n")
    (tmp / "both_ways.csv").write_text(HEADER + "S1,A,13/01/2024,3\nS1,A,01/13/2024,1\n")
    (tmp / "bundle").mkdir()
    two = pd.DataFrame({"store_id": ["S1", "S1"], "sku": ["A", "A"], "units": [1.0, 2.0]})
    two.assign(date=pd.Timestamp("2024-01-01")).to_parquet(tmp / "dup.parquet")
    two.assign(
        date=pd.to_datetime(["2024-01-01", "2024-01-02"]), units=[1.0, float("nan")]
    ).to_parquet(tmp / "no_units.parquet")


TRAIN = ["train", "--out", "{tmp}/b", "--no-mlflow"]
FORECAST = ["forecast", "--bundle", "{tmp}/bundle", "--out", "{tmp}/fc.csv"]

# id, argv, env, exit code, words the one line must hold, words it must not
CASES = [
    ("header-only csv, train", [*TRAIN, "--data", "{tmp}/header.csv"], {}, 1,
     ["header.csv", "only a header"], []),
    ("header-only csv, forecast", [*FORECAST, "--data", "{tmp}/header.csv"], {}, 1,
     ["header.csv", "only a header"], []),
    ("empty file", [*TRAIN, "--data", "{tmp}/empty.csv"], {}, 1,
     ["empty.csv", "empty", "store_id,sku,date,units"], []),
    # --folds 0 is no backtest (a documented choice), so the data is read and refused
    ("folds 0", [*TRAIN, "--data", "{tmp}/header.csv", "--folds", "0"], {}, 1,
     ["header.csv", "only a header"], []),
    ("folds -1", [*TRAIN, "--data", "{tmp}/header.csv", "--folds", "-1"], {}, 2,
     ["--folds", ">= 0", "got -1"], []),
    ("horizon 0", [*FORECAST, "--data", "{tmp}/header.csv", "--horizon", "0"], {}, 2,
     ["--horizon", ">= 1"], []),
    ("log level verbose, serve", ["serve", "--log-level", "verbose", "--no-mqtt"], {}, 2,
     ["--log-level", "'verbose'", "DEBUG, INFO, WARNING"], []),
    ("log level verbose, run", ["run", "--log-level", "verbose"], {}, 2,
     ["--log-level", "'verbose'", "DEBUG, INFO, WARNING"], []),
    ("api port from env not a number", ["serve", "--no-mqtt"], {"SHELFCAST_API_PORT": "abc"}, 2,
     ["SHELFCAST_API_PORT", "'abc'", "1..65535"], []),
    ("api port from env out of range", ["serve", "--no-mqtt"], {"SHELFCAST_API_PORT": "0"}, 2,
     ["SHELFCAST_API_PORT", "1..65535"], []),
    ("port out of range", ["serve", "--no-mqtt", "--port", "99999"], {}, 2,
     ["--port", "1..65535", "99999"], []),
    ("mqtt port out of range", ["run", "--mqtt-port", "70000"], {}, 2,
     ["--mqtt-port", "1..65535"], []),
    ("values plain, not reprs", [*TRAIN, "--data", "{tmp}/dup.parquet"], {}, 1,
     ["duplicate", "date=2024-01-01", "units=1"], ["Timestamp(", "np.float64("]),
    ("missing units plain", [*TRAIN, "--data", "{tmp}/no_units.parquet"], {}, 1,
     ["column units", "row 3: units=empty"], ["np.float64(", "nan"]),
    ("day/month order not settled", [*TRAIN, "--data", "{tmp}/ambiguous.csv"], {}, 1,
     ["ambiguous.csv", "'01/02/2024'", "--date-format %d/%m/%Y"], []),
    ("day-first and month-first mixed", [*TRAIN, "--data", "{tmp}/both_ways.csv"], {}, 1,
     ["both_ways.csv", "'13/01/2024'", "'01/13/2024'", "--date-format"], []),
    ("date format given but not met", [*TRAIN, "--data", "{tmp}/ambiguous.csv",
     "--date-format", "%Y-%m-%d"], {}, 1, ["row 2: date='01/02/2024'", "%Y-%m-%d"], []),
    ("semicolons with unknown columns", [*TRAIN, "--data", "{tmp}/semicolon.csv"], {}, 1,
     ["semicolon.csv", "delimited by ';'"], []),
    ("forecast output format checked first", ["forecast", "--bundle", "{tmp}/bundle",
     "--data", "{tmp}/no_such.csv", "--out", "{tmp}/fc.xlsx"], {}, 2,
     ["--out", ".xlsx", ".parquet or .csv"], ["no_such"]),
    ("forecast bundle checked first", ["forecast", "--bundle", "{tmp}/nowhere",
     "--data", "{tmp}/no_such.csv", "--out", "{tmp}/fc.csv"], {}, 2,
     ["--bundle", "nowhere", "not a directory"], []),
    ("replay store id the gateway refuses", ["replay", "--store-id", "United Kingdom",
     "--out", "{tmp}/e.jsonl"], {}, 2, ["--store-id", "'United Kingdom'", "A-Z a-z 0-9"], []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "env", "code", "says", "never"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, env, code, says, never):
    _files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] in ("serve", "run"):  # they would start serving if the check let it through
        env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "st"), **env}
        got, err = _subprocess(argv, env, tmp_path)
    else:
        got, err = _in_process(argv, capsys)
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert got == code, err
    for word in says:
        assert word in lines[0], lines[0]
    for word in never:
        assert word not in lines[0], lines[0]


def _csv(tmp_path: Path, text: str, name: str = "sales.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_day_first_dates_are_read_day_first_whatever_the_first_row(tmp_path):
    path = _csv(tmp_path, HEADER + "S1,A,01/02/2024,3\nS1,A,13/01/2024,1\n")
    days = load_history(path)["date"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2024-01-13", "2024-02-01"]


def test_month_first_dates_and_a_stated_format(tmp_path):
    path = _csv(tmp_path, HEADER + "S1,A,01/13/2024,3\nS1,A,02/01/2024,1\n")
    assert load_history(path)["date"].dt.strftime("%m-%d").tolist() == ["01-13", "02-01"]
    path = _csv(tmp_path, HEADER + "S1,A,01.02.2024,3\nS1,A,03.04.2024,1\n")
    stated = load_history(path, date_format="%d.%m.%Y")["date"].dt.strftime("%Y-%m-%d")
    assert stated.tolist() == ["2024-02-01", "2024-04-03"]


def test_iso_dates_keep_the_day_written_whatever_the_offset(tmp_path):
    path = _csv(tmp_path, HEADER + "S1,A,2024-01-01T23:30:00-05:00,3\nS1,A,2024-01-02,1\n")
    assert load_history(path)["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-02",
    ]


def test_integer_dates_are_refused_not_read_as_1970(tmp_path):
    path = _csv(tmp_path, HEADER + "S1,A,20240101,3\n")
    with pytest.raises(HistoryError, match=r"row 2: date='20240101'; expected yyyy-mm-dd"):
        load_history(path)
    assert load_history(path, date_format="%Y%m%d")["date"].iloc[0] == pd.Timestamp("2024-01-01")


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_semicolon_tab_and_pipe_files_are_read(tmp_path, sep):
    text = sep.join(["store_id", "sku", "date", "units"]) + "\n"
    text += sep.join(["S1", "A", "2024-01-01", "3"]) + "\n"
    frame = load_history(_csv(tmp_path, text))
    assert frame[["sku", "units"]].values.tolist() == [["A", 3.0]]


def test_gaps_are_reported_with_series_span_and_treatment(tmp_path):
    days = [*pd.date_range("2024-01-01", periods=10), *pd.date_range("2024-03-11", periods=10)]
    rows = [("S1", "A", d) for d in days] + [("S1", "B", d) for d in days[:15]]
    frame = pd.DataFrame(rows, columns=["store_id", "sku", "date"]).assign(units=1)
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    said: list[str] = []
    load_history(path, warn=said.append)
    assert len(said) == 1 and "\n" not in said[0]
    assert str(path) in said[0] and "read as zero sales" in said[0]
    assert "S1/A 2024-01-11..2024-03-10 (60 days)" in said[0]
    assert "S1/B 2024-03-16..2024-03-20" not in said[0]  # 5 days at the end: too short to say
    said.clear()
    load_history(path, warn=said.append, gap_days=3)
    assert "S1/B 2024-03-16..2024-03-20 (5 days)" in said[0]


def test_replay_default_store_ids_pass_the_gateways_own_check():
    for name in ("United Kingdom", "EIRE", "Channel Islands", "CA_1-CA_2", "Côte d'Ivoire"):
        store = store_id_for(name)
        assert load_config(env={"SHELFCAST_STORE_ID": store}).gateway.store_id == store


@pytest.mark.realdata
def test_replay_command_default_store_id_is_accepted(real_data_dir, tmp_path, capsys):
    out = tmp_path / "uk.jsonl"
    assert main(["replay", "--dataset", "online_retail", "--limit", "20", "--out", str(out)]) == 0
    assert "store_id United_Kingdom" in capsys.readouterr().err
    store = pd.read_json(out, lines=True)["store_id"].unique().tolist()
    assert store == ["United_Kingdom"]
    assert load_config(env={"SHELFCAST_STORE_ID": store[0]}).gateway.store_id == store[0]
