"""The example GitHub Actions workflow (config/github-actions.yml) is one that works: valid
YAML in the shape Actions reads, its commands are real commands with real options, its
FEEDSYNC_* variables real config keys that validate with the example config, and its
credentials come from secrets only."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from feedsync.cli import cli
from feedsync.config import cron, load_config
from feedsync.config.buckets import BucketUrl

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "config" / "github-actions.yml"


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def job() -> dict[str, Any]:
    (only,) = workflow()["jobs"].values()
    return dict(only)


def commands() -> list[list[str]]:
    """Every `feedsync ...` line of the run steps, split as the shell would."""
    found = []
    for step in job()["steps"]:
        for line in step.get("run", "").splitlines():
            line = line.strip()
            if line.startswith(("feedsync ", "then feedsync", "else feedsync")):
                found.append(shlex.split(line.removeprefix("then ").removeprefix("else ")))
    return found


def test_it_is_a_workflow_actions_can_run() -> None:
    data = workflow()
    # YAML 1.1 reads the key `on` as True; Actions reads it as "on".
    triggers = data.get("on", data.get(True))
    assert {"schedule", "workflow_dispatch"} <= set(triggers)
    for schedule in triggers["schedule"]:
        cron.parse(schedule["cron"])
    assert data["concurrency"]["cancel-in-progress"] is False  # never kill a job mid-save
    steps = job()["steps"]
    assert all("uses" in step or "run" in step for step in steps)
    assert any(step.get("uses", "").startswith("actions/checkout@") for step in steps)
    assert job()["runs-on"] == "ubuntu-latest"


def test_its_commands_are_real_with_real_options() -> None:
    found = commands()
    assert {c[1] for c in found} == {"check-config", "run", "backfill"}
    for argv in found:
        assert argv[0] == "feedsync"
        args = [a if not a.startswith("$") else "2026-01-05" for a in argv[1:]]
        root = cli.make_context("feedsync", args[:1], resilient_parsing=False)
        command = cli.get_command(root, args[0])
        assert isinstance(command, click.Command), argv
        command.make_context(args[0], args[1:], parent=root)  # raises on a bad option


def test_its_variables_are_config_keys_that_validate_with_the_example_config() -> None:
    env = {k: str(v) for k, v in job()["env"].items()}
    names = [k for k in env if k.startswith("FEEDSYNC_") and k != "FEEDSYNC_CONFIG"]
    assert names == ["FEEDSYNC_OUTPUT_DIR", "FEEDSYNC_STATE__URL"]
    config_path = ROOT / env["FEEDSYNC_CONFIG"]
    assert config_path == ROOT / "config" / "feedsync.toml"
    config = load_config(config_path, {k: env[k] for k in names})
    assert isinstance(config.output_dir, BucketUrl) and config.state.url is not None
    assert str(config.output_dir) == env["FEEDSYNC_OUTPUT_DIR"]


def test_credentials_come_from_secrets_only() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HF_TOKEN"):
        assert job()["env"][name] == f"${{{{ secrets.{name} }}}}"
    assert not re.search(r"(?i)secret_access_key\s*[:=]\s*[\"']?[A-Za-z0-9/+]{20,}", text)


@pytest.mark.parametrize("section", ["Run it without a server"])
def test_the_readme_points_at_it(section: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"## {section}" in readme
    assert "config/github-actions.yml" in readme
