"""The README documents every command, every option and every config key, and the example
config shows every key: a user never has to read the code to find a setting."""

from __future__ import annotations

import re

import click
import pytest
from pydantic import BaseModel

from feedsync.cli import cli
from feedsync.config import validate
from tests.test_cli import README, ROOT, all_commands

EXAMPLE = (ROOT / "config" / "feedsync.toml").read_text(encoding="utf-8")


def command(name: str) -> click.Command:
    obj: click.Command = cli
    for part in name.split()[1:]:
        obj = obj.commands[part]  # type: ignore[attr-defined]
    return obj


def options() -> list[tuple[str, str]]:
    found = []
    for name in ["feedsync", *all_commands()]:
        for param in command(name).params:
            if isinstance(param, click.Option) and not param.hidden:
                longest = max(param.opts, key=len)
                if longest not in ("--help",):
                    found.append((name, longest))
    return found


@pytest.mark.parametrize(("name", "option"), options())
def test_every_option_is_documented(name: str, option: str) -> None:
    assert re.search(re.escape(option) + r"\b", README), f"{name} {option} missing from README"


def config_keys(model: type[BaseModel] = validate.Config, prefix: str = "") -> list[str]:
    keys = []
    for key, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys += config_keys(kind, f"{key}.")
        else:
            keys.append(prefix + key)
    return keys


def test_the_sections_are_read() -> None:
    assert {"source.kind", "source.token", "zotero.api_key", "data_dir", "topics"} <= set(
        config_keys()
    )


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_is_documented(key: str) -> None:
    name = key.rsplit(".", 1)[-1]
    assert re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", README), f"{key} missing from README"


def topic_keys() -> list[str]:
    return list(validate.TopicConfig.model_fields)


@pytest.mark.parametrize("key", [*config_keys(), *(f"topics.t.{k}" for k in topic_keys())])
def test_the_example_config_shows_every_key(key: str) -> None:
    name = key.rsplit(".", 1)[-1]
    if key == "topics":
        name = r"\[topics\."
    assert re.search(rf"^#?\s*{name}\b", EXAMPLE, re.M), f"{key} missing from config/feedsync.toml"
