"""What a new user and an operator hit in their first hour with dr (issue 13), at the CLI."""

from __future__ import annotations

import json

import pytest

from dr.cli import main

BASE = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: ./state}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "dr.yaml"
    path.write_text(BASE)
    return path


def test_a_misspelt_region_is_a_config_error_with_a_suggestion(config, capsys):
    config.write_text(BASE.replace("dr: us-west-2", "dr: us-wset-2"))
    assert main(["--config", str(config), "validate"]) == 2
    err = capsys.readouterr().err
    assert "dr.yaml:2: regions.dr: 'us-wset-2' is not an AWS region; did you mean 'us-west-2'?" in err


def test_regions_must_share_a_partition(config, capsys):
    config.write_text(BASE.replace("dr: us-west-2", "dr: cn-north-1"))
    assert main(["--config", str(config), "validate"]) == 2
    assert "must be in the same AWS partition as regions.primary (aws, not aws-cn)" in capsys.readouterr().err


def test_global_options_are_accepted_after_the_command_too(config, capsys, tmp_path):
    assert main(["runs", "list", "--config", str(config), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["--output", "text", "runs", "list", "--config", str(config)]) == 0
    assert "No runs recorded yet." in capsys.readouterr().out
    missing = tmp_path / "elsewhere.yaml"
    assert main(["runs", "list", "--config", str(missing)]) == 2  # the command's --config wins
    assert f"config file {missing} not found" in capsys.readouterr().err


def test_usage_errors_are_one_json_document_with_output_json(capsys):
    assert main(["--output", "json", "backup", "lst"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["exit_code"] == 2 and "invalid choice: 'lst'" in doc["error"]
    assert "usage: dr backup" in captured.err
    assert main(["runs", "list", "--bogus", "--output=json"]) == 2
    assert "unrecognized arguments: --bogus" in json.loads(capsys.readouterr().out)["error"]


def test_make_demo_installs_only_what_the_demo_needs_and_the_metadata_builds_without_warnings():
    import re
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"  # PEP 639: no setuptools deprecation warning
    assert project["build-system"]["requires"] == ["setuptools>=77"]
    makefile = (repo / "Makefile").read_text()
    demo_deps = re.search(r"^demo: (.*)$", makefile, re.M).group(1).split()
    assert demo_deps == ["$(VENV)/.installed-demo"]
    demo_install = re.search(r"^\$\(VENV\)/\.installed-demo:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "'.[sandbox]'" in demo_install and "test" not in demo_install and "--quiet" not in demo_install


def test_the_shipped_drill_without_an_rds_entry_says_what_is_missing(config, capsys, tmp_path):
    from dr.sandbox import world

    config.write_text(BASE + f'stack: {{name: acme-web, template: "{world.TEMPLATE}"}}\n'
                      'health: {url: "http://127.0.0.1:1/health"}\n'
                      "dns: {provider: route53, zone: acme.example., record: www.acme.example.}\n")
    assert main(["--config", str(config), "drill"]) == 2
    err = capsys.readouterr().err
    assert ("${config.rds.0.name}: config.rds.0: dr.yaml has no entry under `rds:`, and this step needs one; "
            "add one, or run a runbook without this step") in err


def test_a_health_url_may_start_with_a_stack_output_that_is_a_url(config, capsys):
    from dr.sandbox import world

    config.write_text(BASE + f'stack: {{name: acme-web, template: "{world.TEMPLATE}"}}\n'
                      'health: {url: "{stack.WebsiteURL}/health"}\n')
    assert main(["--config", str(config), "validate"]) == 0
    config.write_text(BASE + 'health: {url: "www.example.com/health"}\n')
    assert main(["--config", str(config), "validate"]) == 2
    assert "health.url: expected an http(s) URL, or one that starts with a stack output" in capsys.readouterr().err


def test_an_endpoint_that_does_not_answer_is_said_once_per_command_without_retries(config, capsys):
    config.write_text(BASE.replace("state: {path: ./state}", "state: {path: ./state}\naws: {endpoint_url: "
                                   "'http://127.0.0.1:9'}") + "rds:\n  - {name: app-db, instance: acme-prod-db}\n")
    assert main(["--config", str(config), "validate", "--readiness"]) == 3
    out = capsys.readouterr().out
    assert "the AWS endpoint http://127.0.0.1:9 does not answer (Connection refused); nothing was done" in out


UNREACHABLE = BASE.replace("state: {path: ./state}", "state: {path: ./state}\naws: {endpoint_url: "
                           "'http://127.0.0.1:9'}") + (
    "rds:\n  - {name: app-db, instance: acme-prod-db}\n"
    "s3:\n  - {name: assets, source: acme-assets, destination: acme-assets-dr}\n")


def test_a_run_that_cannot_reach_aws_says_each_resources_error_once(config, capsys):
    config.write_text(UNREACHABLE)
    assert main(["--config", str(config), "backup", "run"]) == 1
    out = capsys.readouterr().out
    assert out.count("does not answer (Connection refused)") == 2  # app-db, assets: once each
    assert "  app-db: failed\n    the AWS endpoint" in out and "  assets: failed\n" in out


def test_a_dry_run_where_nothing_can_be_backed_up_exits_1(config, capsys):
    config.write_text(UNREACHABLE)
    assert main(["--config", str(config), "backup", "run", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert out.count("cannot back up: the AWS endpoint http://127.0.0.1:9 does not answer") == 2
    assert "2 of 2 resource(s) cannot be backed up (app-db, assets): a run now would fail" in out


def test_backup_list_shows_what_it_can_and_marks_what_failed(config, capsys, tmp_path):
    """RDS unreachable must not hide the S3 runs, which come from the state store alone."""
    from dr.state.local import LocalStore

    config.write_text(UNREACHABLE)
    LocalStore(tmp_path / "state").put_json("manifests/s3/assets/backup-20261201T120000Z-abcd.json", {
        "format": "dr-s3-manifest/1", "run_id": "backup-20261201T120000Z-abcd", "name": "assets",
        "status": "completed", "copied": 7, "skipped_in_sync": 0, "failed": 0, "copied_bytes": 70,
        "finished_at": "2026-12-01T12:00:09+00:00"})
    assert main(["--config", str(config), "backup", "list"]) == 1
    out = capsys.readouterr().out
    assert "assets  backup-20261201T120000Z-abcd  completed" in out
    assert "COULD NOT LIST (everything else is shown):\n  app-db: the AWS endpoint" in out
    assert main(["--config", str(config), "--output", "json", "backup", "list"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in doc["s3_runs"]] == ["backup-20261201T120000Z-abcd"]
    assert list(doc["failed"]) == ["app-db"] and "does not answer" in doc["failed"]["app-db"]


def test_text_shows_one_human_time_format_and_json_keeps_iso(config, capsys, tmp_path):
    from dr.state.local import LocalStore
    from dr.state.records import RunRecord, RunStore

    RunStore(LocalStore(tmp_path / "state")).save(RunRecord(
        run_id="backup-20261201T120000Z-abcd", kind="backup", status="completed",
        started_at="2026-12-01T12:00:00+00:00", finished_at="2026-12-01T12:00:09.5+00:00"))
    assert main(["--config", str(config), "runs", "list"]) == 0
    assert "2026-12-01 12:00:00 UTC  2026-12-01 12:00:09 UTC" in capsys.readouterr().out
    assert main(["--config", str(config), "runs", "show", "backup-20261201T120000Z-abcd"]) == 0
    assert "Started:  2026-12-01 12:00:00 UTC" in capsys.readouterr().out
    assert main(["--config", str(config), "--output", "json", "runs", "list"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["started_at"] == "2026-12-01T12:00:00+00:00"


def test_every_command_has_a_description_an_example_and_help_for_each_option(monkeypatch):
    from dr.cli import _commands, build_parser

    monkeypatch.setenv("COLUMNS", "80")
    problems = []
    for command in _commands(build_parser()):
        text = (command.description or "") + (command.epilog or "")
        if not command.description or "Example" not in text:
            problems.append(f"{command.prog}: no description with an example")
        problems += [f"{command.prog}: {line!r} is over 100 characters"
                     for line in command.format_help().splitlines() if len(line) > 100]
        problems += [f"{command.prog}: {action.option_strings} has no help" for action in command._actions
                     if action.help is None and action.option_strings and action.dest != "help"]
    assert problems == []
