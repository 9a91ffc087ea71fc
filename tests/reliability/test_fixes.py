"""Small, exact tests for what the reliability suite found, next to the suite that found it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from feedsync.config import load_config
from feedsync.config.toml import dumps
from feedsync.errors import ConfigError, ParseError
from feedsync.parsers import MAX_JSON_CONTAINERS, MAX_JSON_VALUES, MAX_LINES, parse_digest
from feedsync.parsers.hf_json import MAX_ABSTRACT, MAX_ENTRIES, clean


def test_toml_output_escapes_del() -> None:
    data = {"feeds": {"title_prefix": 'a\x7fb "q" \\ \x00'}, "topics": {"x\x7f": {"t": 1}}}
    assert tomllib.loads(dumps(data)) == data


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    path = tmp_path / "feedsync.toml"
    path.write_text('data_dir = "d"\noutput_dir = "o"\n' + text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path, env or {})
    return [(str(e.value), *p) for p in e.value.problems] or [(str(e.value),)]


def test_a_nul_in_a_path_is_a_config_error(tmp_path: Path) -> None:
    found = problems(tmp_path, '[source]\nkind = "files"\npaths = ["a\\u0000b"]\n')
    assert found[0][1:] == ("source.paths.0", "'a\\x00b'", "a path cannot contain a NUL character")


def test_the_value_of_an_unknown_key_is_not_shown(tmp_path: Path) -> None:
    found = problems(tmp_path, '[zotero]\napikey = "zk-typo-secret"\n')
    assert found[0][1:] == ("zotero.apikey", "", "unknown key")


def test_an_undecodable_variable_is_named(tmp_path: Path) -> None:
    env = {"FEEDSYNC_SOURCE__PATHS": "not json", "FEEDSYNC_SOURCE__DAYS": "5"}
    found = problems(tmp_path, "", env)
    assert [p[1] for p in found] == ["FEEDSYNC_SOURCE__PATHS"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" + b"0," * MAX_JSON_VALUES + b"0]", f"JSON values, limit {MAX_JSON_VALUES:,}"),
        (b"[" + b"[]" * (MAX_JSON_CONTAINERS + 1) + b"]", "JSON objects and arrays, limit"),
        (b"[" + b"{}," * MAX_ENTRIES + b"{}]", f"entries, limit {MAX_ENTRIES:,}"),
        (b"Daily Papers\r\n" * (MAX_LINES + 1), f"lines, limit {MAX_LINES:,}"),
    ],
)
def test_digests_beyond_any_real_one_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match="digest too large: .*" + message):
        parse_digest(data, source="<big>")


def test_a_crlf_copy_at_the_line_limit_is_read() -> None:
    data = b"Daily Papers\r\nMar 2\r\n" + b"1\r\nA title\r\n" * ((MAX_LINES - 3) // 2)
    assert len(parse_digest(data, format="text", source="<ok>").papers) > 1


def test_clean_reads_a_bounded_prefix() -> None:
    assert len(clean("x " * 10**6)) == 4 * MAX_ABSTRACT - 1
    entry = {"paper": {"id": "2603.00001", "title": "T", "summary": "word " * 10**6}}
    digest = parse_digest(json.dumps([entry]).encode(), source="<long>")
    assert len(digest.papers[0].abstract) <= MAX_ABSTRACT
    assert [w.message for w in digest.warnings] == [
        f"abstract truncated to {MAX_ABSTRACT} characters"
    ]
