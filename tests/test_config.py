from __future__ import annotations

from pathlib import Path

import pytest

from feedsync.config import REDACTED, load_config
from feedsync.config.toml import dumps
from feedsync.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
    [topics.llm]
    title = "LLMs"
    query = "LLM"
"""


def problems(path: Path, env: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return info.value.problems


def test_example_and_demo_configs_are_valid() -> None:
    example = load_config(ROOT / "config" / "feedsync.toml", {})
    assert example.source.kind == "hf-api"
    assert example.topics
    demo = load_config(ROOT / "config" / "demo.toml", {})
    assert demo.source.kind == "files"


def test_defaults(write_config) -> None:
    config = load_config(write_config(MINIMAL), {})
    assert config.source.api_url == "https://huggingface.co"
    assert config.source.days == 3
    assert config.feeds.max_items == 50
    assert config.zotero.api_url == "https://api.zotero.org"
    assert config.zotero.collection == "feedsync"
    assert config.schedule.cron == "7 * * * *"


def test_relative_paths_resolve_against_the_config_directory(write_config, tmp_path) -> None:
    path = write_config(
        'data_dir = "state"\n[source]\nkind = "files"\npaths = ["in/*.json"]\n' + MINIMAL,
    )
    config = load_config(path, {})
    assert config.data_dir == tmp_path / "state"
    assert config.output_dir == tmp_path / "feeds"
    assert config.source.paths == (str(tmp_path / "in" / "*.json"),)


def test_environment_wins_over_the_file(write_config) -> None:
    path = write_config("[source]\ndays = 2\n" + MINIMAL)
    env = {
        "FEEDSYNC_SOURCE__DAYS": "5",
        "FEEDSYNC_TOPICS__LLM__TITLE": "Large models",
        "FEEDSYNC_BASE_URL": "https://feeds.example.org/papers/",
    }
    config = load_config(path, env)
    assert config.source.days == 5
    assert config.topics["llm"].title == "Large models"
    assert config.topics["llm"].query == "LLM"  # merged, not replaced
    assert config.base_url == "https://feeds.example.org/papers"


def test_config_path_from_environment(write_config) -> None:
    path = write_config(MINIMAL, name="other.toml")
    config = load_config(None, {"FEEDSYNC_CONFIG": str(path)})
    assert config.config_path == path


def test_unknown_keys_are_errors(write_config) -> None:
    path = write_config("colour = 'blue'\n[source]\nkidn = 'files'\n" + MINIMAL)
    found = {(key, why) for key, _, why in problems(path)}
    assert ("colour", "unknown key") in found
    assert ("source.kidn", "unknown key") in found


def test_every_problem_is_listed_at_once(write_config) -> None:
    path = write_config(
        """
        base_url = "feeds.example.org"
        [source]
        kind = "rss"
        days = 0
        [schedule]
        cron = "61 * * * *"
        timezone = "Mars/Olympus"
        [topics."Bad Slug"]
        title = "x"
        query = "a"
        [topics.empty]
        title = "nothing selected"
        """
    )
    keys = {key for key, _, _ in problems(path)}
    assert {
        "base_url",
        "source.kind",
        "source.days",
        "schedule.cron",
        "schedule.timezone",
        "topics.Bad Slug",
        "topics.empty",
    } <= keys


def test_problem_names_the_environment_variable(write_config) -> None:
    found = problems(write_config(MINIMAL), {"FEEDSYNC_SOURCE__DAYS": "many"})
    assert found[0][0] == "source.days"
    assert "FEEDSYNC_SOURCE__DAYS" in found[0][2]


def test_query_syntax_error_names_topic_and_column(write_config) -> None:
    path = write_config('[topics.llm]\ntitle = "x"\nquery = "(LLM OR agents"\n')
    ((key, value, why),) = problems(path)
    assert key == "topics.llm.query"
    assert "column" in why


def test_toml_syntax_error(write_config) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write_config("[source\nkind = 1"), {})


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'base_url = "http://caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"UTF-8|TOML"):
        load_config(path, {})


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load_config(tmp_path, {})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "absent.toml", {})


def test_zotero_key_from_file_and_redaction(write_config, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("s3cr3t-key\n")
    path = write_config(
        MINIMAL + '[zotero]\nenabled = true\nlibrary_id = "12345"\napi_key_file = "key"\n'
    )
    config = load_config(path, {})
    assert config.zotero.key() == "s3cr3t-key"
    shown = dumps(config.redacted())
    assert "s3cr3t-key" not in shown
    assert REDACTED in shown
    assert "s3cr3t-key" not in repr(config)


def test_zotero_key_from_environment(write_config) -> None:
    path = write_config(MINIMAL + '[zotero]\nenabled = true\nlibrary_id = "12345"\n')
    config = load_config(path, {"FEEDSYNC_ZOTERO__API_KEY": "env-key"})
    assert config.zotero.key() == "env-key"


def test_zotero_enabled_needs_id_and_key(write_config) -> None:
    found = problems(write_config(MINIMAL + "[zotero]\nenabled = true\n"))
    assert found[0][0] == "zotero"
    assert "library_id" in found[0][2]


def test_zotero_missing_key_file(write_config) -> None:
    path = write_config(
        MINIMAL + '[zotero]\nenabled = true\nlibrary_id = "1"\napi_key_file = "nope"\n'
    )
    ((key, _, why),) = problems(path)
    assert key == "zotero.api_key_file"


def test_secret_values_never_appear_in_problems(write_config) -> None:
    path = write_config(MINIMAL + '[zotero]\napi_key = ["not", "a", "string"]\n')
    ((key, value, _),) = problems(path)
    assert key == "zotero.api_key"
    assert value == REDACTED


@pytest.mark.parametrize("slug", ["all", "index", "-x", "UPPER", "a/b", "x" * 65])
def test_bad_slugs(write_config, slug: str) -> None:
    path = write_config(f'[topics."{slug}"]\ntitle = "t"\nquery = "q"\n')
    assert problems(path)[0][0] == f"topics.{slug}"


def test_files_source_needs_paths(write_config) -> None:
    found = problems(write_config(MINIMAL + '[source]\nkind = "files"\n'))
    assert found[0][0] == "source"


def test_validated_config_is_cached_without_the_secret(write_config, tmp_path: Path) -> None:
    path = write_config(MINIMAL + '[zotero]\napi_key = "zk-very-secret"\n')
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = load_config(path, env)
    (cached,) = (tmp_path / "cache" / "feedsync").glob("config-*.json")
    assert b"zk-very-secret" not in cached.read_bytes()
    second = load_config(path, env)
    assert second == first
    assert second.zotero.key() == "zk-very-secret"
    # The key from the environment wins, on a cache hit as well.
    assert load_config(path, {**env, "FEEDSYNC_ZOTERO__API_KEY": "zk-env"}).zotero.key() == "zk-env"


def test_cache_follows_the_file_and_the_environment(write_config, tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    path = write_config(MINIMAL)
    assert load_config(path, env).source.days == 3
    assert load_config(path, {**env, "FEEDSYNC_SOURCE__DAYS": "6"}).source.days == 6
    write_config("[source]\ndays = 4\n" + MINIMAL)
    assert load_config(path, env).source.days == 4
    write_config("[source]\ndays = 0\n" + MINIMAL)
    with pytest.raises(ConfigError):
        load_config(path, env)


def test_a_cache_hit_does_not_import_pydantic(write_config, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = write_config(MINIMAL)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = (
        "import sys; from feedsync.config import load_config; "
        f"c = load_config({str(path)!r}); print('pydantic' in sys.modules, c.topics['llm'].query)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs == [["True", "LLM"], ["False", "LLM"]]


def test_corrupt_cache_is_ignored(write_config, tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    path = write_config(MINIMAL)
    load_config(path, env)
    for cached in (tmp_path / "cache" / "feedsync").glob("config-*.json"):
        cached.write_text("{not json")
    assert load_config(path, env).topics["llm"].title == "LLMs"


# --- buckets: output_dir, [publish], [state] --------------------------------------------------


def test_output_dir_may_be_a_bucket(write_config, tmp_path: Path) -> None:
    from feedsync.config.buckets import BucketUrl

    path = write_config('output_dir = "s3://my-feeds/daily/papers/"\n' + MINIMAL)
    config = load_config(path, {})
    assert config.output_dir == BucketUrl("s3", "my-feeds", "daily/papers")
    assert dumps(config.redacted()).splitlines()[1] == 'output_dir = "s3://my-feeds/daily/papers"'
    # A relative folder still resolves against the config's directory; a URL never does.
    whole = load_config(path, {"FEEDSYNC_OUTPUT_DIR": "gs://my-feeds"})
    assert whole.output_dir == BucketUrl("gs", "my-feeds", "")
    assert str(whole.output_dir) == "gs://my-feeds"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ftp://feeds/x", "unknown scheme 'ftp': a bucket URL starts with s3://, gs:// or az://"),
        ("http://feeds.example.org/x", "unknown scheme 'http'"),
        ("s3://", "no bucket name"),
        ("s3://My_Feeds/x", "bucket name 'My_Feeds': s3:// bucket names have 3-63 lowercase"),
        ("s3://ab", "bucket name 'ab'"),
        ("s3://feeds/a//b", "the path has an empty, '.' or '..' segment"),
        ("s3://feeds/a/../b", "the path has an empty, '.' or '..' segment"),
        ("s3://feeds:9000/x", "a bucket URL has no port"),
        ("s3://feeds/x?versionId=1", "a bucket URL has no query or fragment"),
        ("az://two--hyphens/x", "bucket name 'two--hyphens'"),
    ],
)
def test_a_bad_bucket_url_is_named_with_why(write_config, value: str, why: str) -> None:
    ((key, shown, said),) = problems(write_config(f'output_dir = "{value}"\n' + MINIMAL))
    assert key == "output_dir"
    assert shown == repr(value)
    assert said.startswith(why), said


def test_credentials_in_a_bucket_url_are_refused_and_never_shown(write_config) -> None:
    path = write_config('output_dir = "s3://AKIAX:very-secret@feeds/x"\n' + MINIMAL)
    ((key, shown, said),) = problems(path)
    assert key == "output_dir"
    assert "very-secret" not in shown + said
    assert shown == repr("s3://********@feeds/x")
    assert said.startswith("credentials do not belong in the URL")


def test_the_state_url_names_one_object_outside_the_feeds(write_config) -> None:
    from feedsync.config.buckets import BucketUrl

    config = load_config(write_config(MINIMAL + '[state]\nurl = "s3://b-state/x/fs.sqlite3"\n'), {})
    assert config.state.url == BucketUrl("s3", "b-state", "x/fs.sqlite3")
    for url in ("s3://b-state", "s3://b-state/x/"):
        ((key, _, why),) = problems(write_config(MINIMAL + f'[state]\nurl = "{url}"\n'))
        assert key == "state.url"
        assert why.startswith("must name an object")
    inside = (
        'output_dir = "s3://site/feeds"\n' + MINIMAL + '[state]\nurl = "s3://site/feeds/s.db"\n'
    )
    ((key, _, why),) = problems(write_config(inside))
    assert "readers could download the store" in why
    beside = 'output_dir = "s3://site/feeds"\n' + MINIMAL + '[state]\nurl = "s3://site/state.db"\n'
    assert load_config(write_config(beside), {}).state.url is not None
    top = 'output_dir = "s3://site"\n' + MINIMAL + '[state]\nurl = "s3://site/state.db"\n'
    assert "readers could download the store" in problems(write_config(top))[0][2]


def test_the_buckets_secret_key_is_redacted_cached_never_and_read_from_a_file(
    write_config, tmp_path: Path
) -> None:
    publish = '[publish]\nendpoint = "http://127.0.0.1:8333/"\naccess_key_id = "AKIAEXAMPLE"\n'
    path = write_config(MINIMAL + publish + 'secret_access_key = "bucket-very-secret"\n')
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    config = load_config(path, env)
    assert config.publish.secret() == "bucket-very-secret"
    assert config.publish.endpoint == "http://127.0.0.1:8333"
    shown = dumps(config.redacted())
    assert "bucket-very-secret" not in shown + repr(config)
    assert f'secret_access_key = "{REDACTED}"' in shown
    assert 'access_key_id = "AKIAEXAMPLE"' in shown
    (cached,) = (tmp_path / "cache" / "feedsync").glob("config-*.json")
    assert b"bucket-very-secret" not in cached.read_bytes()
    assert load_config(path, env).publish.secret() == "bucket-very-secret"  # from the cache
    from_env = {**env, "FEEDSYNC_PUBLISH__SECRET_ACCESS_KEY": "from-env"}
    assert load_config(path, from_env).publish.secret() == "from-env"
    (tmp_path / "secret").write_text("from-a-file\n")
    path = write_config(MINIMAL + publish + 'secret_access_key_file = "secret"\n')
    assert load_config(path, {}).publish.secret() == "from-a-file"


def test_the_buckets_keys_come_in_pairs(write_config) -> None:
    ((key, _, why),) = problems(write_config(MINIMAL + '[publish]\naccess_key_id = "AKIA"\n'))
    assert key == "publish"
    assert "give both `access_key_id` and `secret_access_key`" in why
    path = write_config(MINIMAL + '[publish]\nsecret_access_key = ["a"]\n')
    ((key, value, _),) = problems(path)
    assert (key, value) == ("publish.secret_access_key", REDACTED)


def test_the_websub_hub_is_an_http_url_kept_as_given(write_config) -> None:
    path = write_config('[feeds]\nwebsub_hub = "https://hub.example.org/hub/"\n' + MINIMAL)
    assert load_config(path, {}).feeds.websub_hub == "https://hub.example.org/hub/"
    for bad in ("hub.example.org", "ftp://hub.example.org/", "https://hub.example.org/#x"):
        path = write_config(f'[feeds]\nwebsub_hub = "{bad}"\n' + MINIMAL)
        ((key, _, why),) = problems(path)
        assert (key, why) == (
            "feeds.websub_hub",
            "must be the hub's absolute http:// or https:// URL",
        )


@pytest.mark.parametrize(
    "name",
    ["SourceConfig", "ScheduleConfig", "ServerConfig", "FeedsConfig", "PublishConfig",
     "StateConfig", "TopicConfig", "ZoteroConfig", "Config"],
)  # fmt: skip
def test_the_frozen_config_and_its_validation_declare_the_same_keys_and_defaults(
    name: str,
) -> None:
    """Each section is written twice: as the frozen dataclass every command gets, and as
    the pydantic model that validates it (pydantic costs an idle run 0.2 s to import). They
    must agree: a key or default changed in one only would be silently lost."""
    import dataclasses

    from pydantic_core import PydanticUndefined

    import feedsync.config as frozen
    from feedsync.config import validate

    plain = {f.name: f for f in dataclasses.fields(getattr(frozen, name))}
    model = getattr(validate, name).model_fields
    # Not settings: where the config came from, and where the token came from.
    ours = set(plain) - {"config_path", "token_from"}
    assert ours == set(model)
    for key in ours:
        default = plain[key].default
        if default is dataclasses.MISSING and plain[key].default_factory is not dataclasses.MISSING:
            default = plain[key].default_factory()
        wanted = model[key].get_default(call_default_factory=True)
        if wanted is PydanticUndefined or dataclasses.is_dataclass(default):
            continue  # required (a topic's title), or a section: compared in its own case
        if isinstance(default, Path) or isinstance(wanted, Path):
            default, wanted = str(default), str(wanted)
        if isinstance(default, tuple):
            wanted = tuple(wanted)
        assert default == wanted, (name, key, default, wanted)
