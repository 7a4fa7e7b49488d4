"""The foundation: the one data-dir setting and the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from configuration.data_dir import ENV_VAR, DataMissingError, data_dir, require
from shelfcast import cli


def test_data_dir_env_overrides_default(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    assert data_dir(tmp_path / "x") == (tmp_path / "x").resolve()


def test_missing_data_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataMissingError) as err:
        require("online_retail")
    text = str(err.value)
    assert ENV_VAR in text and "store_id, sku, date, units" in text


def test_cli_unknown_command_is_a_clear_error(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_cli_data_command_reports_real_sets(real_data_dir, capsys):
    assert cli.main(["data", "--data-dir", str(real_data_dir)]) == 0
    out = capsys.readouterr().out
    assert "online_retail" in out and "MISSING" not in out


def test_console_script_runs_without_training_libraries_loaded():
    # The gateway image has no training extra: the CLI entry must not import it eagerly.
    code = "import sys, shelfcast.cli; print(any(m in sys.modules for m in ('lightgbm','mlflow','pandas')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
