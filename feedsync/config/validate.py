"""Validation of the configuration with pydantic-settings: the TOML file's data plus the
``FEEDSYNC_`` environment (``__`` for nesting), environment winning over the file.

Unknown keys are errors, and every problem is reported at once as (key, value, why)
inside one ``ConfigError``; nothing here lets a pydantic exception reach the caller.
This module is only imported when a config has to be validated; ``feedsync.config`` keeps
the validated result and hands the rest of feedsync plain frozen dataclasses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from feedsync.config import cron
from feedsync.config.buckets import is_url, parse_bucket_url, without_credentials
from feedsync.config.names import ENV_PREFIX, REDACTED, RESERVED_SLUGS, SLUG
from feedsync.errors import ConfigError


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


def _hub_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError("must be the hub's absolute http:// or https:// URL")
    return value  # as given: a hub's path may need its trailing slash


HubUrl = Annotated[str, AfterValidator(_hub_url)]


def _valid_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise ValueError(
            "a topic name must be 1-64 lowercase letters, digits, '-' or '_' "
            "(it becomes the feed's file name)"
        )
    if slug in RESERVED_SLUGS:
        raise ValueError(f"topic name {slug!r} is reserved for feedsync's own files")
    return slug


# Validated as dict keys, so a bad name is reported next to any problem inside the table.
Slug = Annotated[str, AfterValidator(_valid_slug)]


def _no_nul(value: Any) -> Any:
    # The OS refuses such a name ("embedded null byte"): say so now, not mid-run.
    if "\x00" in str(value):
        raise ValueError("a path cannot contain a NUL character")
    return value


PathSetting = Annotated[Path, AfterValidator(_no_nul)]
GlobSetting = Annotated[str, AfterValidator(_no_nul)]


def _folder_or_bucket(value: str) -> str:
    # A value written as a URL is a bucket, or an error: never a folder named "s3:".
    return str(parse_bucket_url(value)) if is_url(value) else _no_nul(value)


def _state_object(value: str) -> str:
    return str(parse_bucket_url(value, object_key=True))


OutputSetting = Annotated[str, AfterValidator(_folder_or_bucket)]
StateUrl = Annotated[str, AfterValidator(_state_object)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    """Where the digest comes from."""

    kind: Literal["hf-api", "hf-html", "files"] = "hf-api"
    api_url: HttpUrl = "https://huggingface.co"
    days: int = Field(3, ge=1, le=31)
    paths: tuple[GlobSetting, ...] = ()
    timeout: float = Field(30.0, gt=0, le=600)
    retries: int = Field(4, ge=0, le=10)
    max_wait: float = Field(600.0, ge=0, le=86400)
    token: SecretStr | None = None
    token_file: PathSetting | None = None

    @field_validator("token")
    @classmethod
    def _token_given(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty (leave it out to fetch anonymously)")
        return value

    @model_validator(mode="after")
    def _files_need_paths(self) -> SourceConfig:
        if self.kind == "files" and not self.paths:
            raise ValueError('kind = "files" needs at least one glob in `paths`')
        return self


class ScheduleConfig(_Section):
    cron: str = "7 * * * *"
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        cron.parse(value)  # raises ValueError naming the bad field
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as 'Europe/Paris')"
            ) from None
        return value


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)


class FeedsConfig(_Section):
    max_items: int = Field(50, ge=1, le=1000)
    all_papers: bool = False
    title_prefix: str = "Daily Papers: "
    websub_hub: HubUrl | None = None


class PublishConfig(_Section):
    """How to reach the bucket of an ``s3://`` output_dir or state URL (gs:// and az://
    read their service's own variables)."""

    endpoint: HttpUrl | None = None
    region: str | None = Field(None, min_length=1, max_length=64)
    access_key_id: str | None = Field(None, min_length=1, max_length=256)
    secret_access_key: SecretStr | None = None
    secret_access_key_file: PathSetting | None = None
    timeout: float = Field(30.0, gt=0, le=600)
    retries: int = Field(3, ge=0, le=10)

    @field_validator("secret_access_key")
    @classmethod
    def _secret_given(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty (leave it out to use AWS_SECRET_ACCESS_KEY)")
        return value

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> PublishConfig:
        secret = self.secret_access_key is not None or self.secret_access_key_file is not None
        if (self.access_key_id is not None) != secret:
            raise ValueError(
                "give both `access_key_id` and `secret_access_key` (or its file), or neither "
                "to use the AWS_* variables"
            )
        return self


class StateConfig(_Section):
    url: StateUrl | None = None


class TopicConfig(_Section):
    """One per-topic feed. At least one of `query`, `authors`, `organizations` is needed."""

    title: str = Field(min_length=1, max_length=200)
    query: str | None = None
    min_upvotes: int | None = Field(None, ge=0)
    authors: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    max_items: int | None = Field(None, ge=1, le=1000)
    zotero: bool = False

    @field_validator("query")
    @classmethod
    def _valid_query(cls, value: str | None) -> str | None:
        if value is not None:
            from feedsync.errors import QueryError
            from feedsync.query import compile_query

            try:
                compile_query(value)
            except QueryError as e:
                raise ValueError(f"query syntax error: {e.reason} at column {e.column}") from None
        return value

    @model_validator(mode="after")
    def _selects_something(self) -> TopicConfig:
        if not (self.query or self.authors or self.organizations):
            raise ValueError("a topic needs a `query`, `authors` or `organizations`")
        return self


class ZoteroConfig(_Section):
    enabled: bool = False
    library_id: str | None = None
    library_type: Literal["user", "group"] = "user"
    api_key: SecretStr | None = None
    api_key_file: PathSetting | None = None
    api_url: HttpUrl = "https://api.zotero.org"
    collection: str = Field("feedsync", min_length=1, max_length=255)
    attach_pdf: bool = False
    keyword_tags: bool = False

    @field_validator("library_id")
    @classmethod
    def _numeric_id(cls, value: str | None) -> str | None:
        if value is not None and not value.isdigit():
            raise ValueError("must be the numeric user or group ID (zotero.org/settings/keys)")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> ZoteroConfig:
        if self.enabled:
            if self.library_id is None:
                raise ValueError("zotero.enabled needs `library_id`")
            if self.api_key is None and self.api_key_file is None:
                raise ValueError(
                    "zotero.enabled needs `api_key`, `api_key_file` or FEEDSYNC_ZOTERO__API_KEY"
                )
        return self

    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None


class Config(BaseSettings):
    """The validated, immutable configuration every command receives."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
    )

    data_dir: PathSetting = Path("data")
    output_dir: OutputSetting = "feeds"
    base_url: HttpUrl = "http://localhost:8080"
    source: SourceConfig = SourceConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    server: ServerConfig = ServerConfig()
    feeds: FeedsConfig = FeedsConfig()
    publish: PublishConfig = PublishConfig()
    state: StateConfig = StateConfig()
    topics: dict[Slug, TopicConfig] = Field(default_factory=dict)
    zotero: ZoteroConfig = ZoteroConfig()

    @model_validator(mode="after")
    def _state_is_not_published(self) -> Config:
        # The store holds the Zotero library's bookkeeping and every fetch: it must never
        # be served beside the feeds.
        if self.state.url is None or not is_url(self.output_dir):
            return self
        site, state = parse_bucket_url(self.output_dir), parse_bucket_url(self.state.url)
        inside = not site.key or state.key.startswith(site.key + "/")
        if (site.scheme, site.bucket) == (state.scheme, state.bucket) and inside:
            raise ValueError(
                f"[state] url {self.state.url} is inside output_dir {self.output_dir}, so "
                "readers could download the store: put it in another bucket or prefix"
            )
        return self


class _Env(EnvSettingsSource):
    """The environment source, reading an injected mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(
            settings_cls,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter="__",
            case_sensitive=False,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, False, False, None)


def _settings_class(environ: Mapping[str, str]) -> type[Config]:
    class _Loaded(Config):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # The file's values arrive as init kwargs; the environment is listed first so
            # that it wins over the file.
            return (_Env(settings_cls, environ), init_settings)

    return _Loaded


def validate(data: dict[str, Any], environ: Mapping[str, str], source: Path) -> dict[str, Any]:
    """The validated config as plain JSON-able data (the API key in clear: handle with care)."""
    try:
        loaded = _settings_class(environ)(**data)
    except ValidationError as e:
        problems = [_problem(err, environ) for err in e.errors()]
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the config", problems) from None
    except SettingsError as e:
        raise ConfigError(
            f"{source}: cannot read the environment: {e}", _unreadable(e, environ)
        ) from None
    plain = loaded.model_dump(mode="json")
    plain["zotero"]["api_key"] = loaded.zotero.key()
    token = loaded.source.token
    plain["source"]["token"] = token.get_secret_value() if token else None
    secret = loaded.publish.secret_access_key
    plain["publish"]["secret_access_key"] = secret.get_secret_value() if secret else None
    return plain


_SECRET_KEYS = frozenset({"api_key", "token", "secret_access_key"})


def _problem(error: Any, environ: Mapping[str, str]) -> tuple[str, str, str]:
    # A dict key's own error is located at (..., key, "[key]"): name the key itself.
    loc = [str(part) for part in error.get("loc", ()) if part != "[key]"]
    key = ".".join(loc) or "(config)"
    value = error.get("input")
    if loc and loc[-1] in _SECRET_KEYS:
        shown = REDACTED
    elif error.get("type") == "extra_forbidden":
        shown = ""  # its name is the problem; its value may be a mistyped `api_key`
    elif isinstance(value, dict):
        shown = ""  # the whole table; the message says what is wrong with it
    else:
        shown = repr(without_credentials(value) if isinstance(value, str) else value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
    why = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        why = "unknown key"
    env_name = ENV_PREFIX + "__".join(part.upper() for part in loc)
    if loc and any(name.upper() == env_name for name in environ):
        why += f" (from {env_name})"
    return key, shown, why


def _unreadable(error: SettingsError, environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The variables behind a field pydantic-settings could not decode (lists and tables
    must be JSON there): its message names only the top-level field."""
    match = re.search(r'field "([^"]+)"', str(error))
    if match is None:
        return []
    prefix = ENV_PREFIX + match[1].upper()
    names = sorted(
        name
        for name, value in environ.items()
        if (name.upper() == prefix or name.upper().startswith(prefix + "__"))
        and not _is_json(value)
    )
    return [(name, "", "not valid JSON (lists and tables are given as JSON)") for name in names]


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True
