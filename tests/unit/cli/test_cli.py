"""The CLI contract: global options, exit codes, one JSON document on stdout."""

from __future__ import annotations

import json

import pytest

from dr.cli import main
from dr.config import STARTER_CONFIG


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "dr.yaml"
    assert main(["--config", str(path), "init"]) == 0
    assert path.read_text() == STARTER_CONFIG
    assert main(["--config", str(path), "validate"]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["--config", str(path), "init"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["--config", str(path), "init", "--force"]) == 0


def test_config_error_exits_2_and_names_key_and_line(tmp_path, capsys):
    path = tmp_path / "dr.yaml"
    path.write_text(STARTER_CONFIG.replace("daily: 7 ", "daily: seven "))
    assert main(["--config", str(path), "backup", "run"]) == 2
    err = capsys.readouterr().err
    assert "rds[0].retention.daily: expected a whole number >= 0, got 'seven'" in err
    assert "dr.yaml:34: rds[0].retention.daily" in err


def test_missing_config_says_how_to_fix(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.yaml"), "validate"]) == 2
    assert "dr init" in capsys.readouterr().err


def test_json_output_is_one_document_even_on_error(tmp_path, capsys):
    assert main(["--output", "json", "--config", str(tmp_path / "nope.yaml"), "validate"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["exit_code"] == 2 and "not found" in doc["error"]
    path = tmp_path / "dr.yaml"
    path.write_text(STARTER_CONFIG)
    assert main(["--output", "json", "--config", str(path), "validate"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["rds"] == ["app-db"]


def test_dr_config_env_is_the_default(tmp_path, monkeypatch, capsys):
    path = tmp_path / "elsewhere.yaml"
    path.write_text(STARTER_CONFIG)
    monkeypatch.setenv("DR_CONFIG", str(path))
    assert main(["validate"]) == 0
    assert str(path) in capsys.readouterr().out


def test_validate_prints_warnings(tmp_path, capsys):
    path = tmp_path / "dr.yaml"
    path.write_text(STARTER_CONFIG.replace("schedule: every 1h", "schedule: every 1d"))
    assert main(["--config", str(path), "validate"]) == 0
    assert "less often than the RPO objective 1h" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["backup"], ["backup", "run", "--only", "tape"],
                                  ["--output", "yaml", "validate"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "dr: error:" in capsys.readouterr().err


def test_nothing_selected_touches_nothing(tmp_path, capsys):
    path = tmp_path / "dr.yaml"
    path.write_text(STARTER_CONFIG)  # no s3 entries; no AWS endpoint is reachable from here
    assert main(["--config", str(path), "backup", "run", "--only", "s3"]) == 0
    assert "Nothing to back up" in capsys.readouterr().out
    assert not (tmp_path / ".dr-state").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("dr ")
