"""The configuration: a TOML file plus ``FEEDSYNC_`` environment overrides, validated once.

Rule order (later wins): built-in defaults < the TOML file < the environment
(``FEEDSYNC_SECTION__KEY``) < secret files (``api_key_file``) for the key itself.
Relative paths are resolved against the directory of the config file, so a config behaves
the same from any working directory. Unknown keys are errors, and every problem is
reported at once as (key, value, why) inside one ``ConfigError``; nothing here raises a
pydantic or TOML exception to the caller.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
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

from feedsync import cron
from feedsync.errors import ConfigError

DEFAULT_CONFIG = Path("config/feedsync.toml")
CONFIG_ENV = "FEEDSYNC_CONFIG"
ENV_PREFIX = "FEEDSYNC_"
REDACTED = "********"
# Slugs become file names and URL path segments; "all" and "index" name our own files.
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"all", "index", "healthz"})


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    """Where the digest comes from."""

    kind: Literal["hf-api", "hf-html", "files"] = "hf-api"
    api_url: HttpUrl = "https://huggingface.co"
    days: int = Field(3, ge=1, le=31)
    paths: tuple[str, ...] = ()
    timeout: float = Field(30.0, gt=0, le=600)
    retries: int = Field(4, ge=0, le=10)

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

    @property
    def period(self) -> timedelta:
        """The shortest gap between two scheduled runs."""
        return cron.parse(self.cron).shortest_period()


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)


class FeedsConfig(_Section):
    max_items: int = Field(50, ge=1, le=1000)
    all_papers: bool = False
    title_prefix: str = "Daily Papers: "


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
    api_key_file: Path | None = None
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

    data_dir: Path = Path("data")
    output_dir: Path = Path("feeds")
    base_url: HttpUrl = "http://localhost:8080"
    source: SourceConfig = SourceConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    server: ServerConfig = ServerConfig()
    feeds: FeedsConfig = FeedsConfig()
    topics: dict[Slug, TopicConfig] = Field(default_factory=dict)
    zotero: ZoteroConfig = ZoteroConfig()
    # Where this config came from; not a setting.
    config_path: Path | None = Field(None, exclude=True)

    @property
    def store_path(self) -> Path:
        return self.data_dir / "feedsync.sqlite3"

    def topic_feeds(self) -> list[str]:
        return sorted(self.topics)

    def redacted(self) -> dict[str, Any]:
        """The effective config as plain data, secrets replaced by a placeholder."""
        data = self.model_dump(mode="json", exclude={"config_path"})
        if self.zotero.api_key is not None:
            data["zotero"]["api_key"] = REDACTED
        return data


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


def config_path_from(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"no config file at {path} (pass --config PATH or set {CONFIG_ENV}; "
            "config/feedsync.toml is a documented example)",
            [(str(path), "", "file not found")],
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a config file") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text: {e.reason}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", [(str(path), "", str(e))]) from None


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate the configuration; raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    config_path = config_path_from(path, env)
    data = read_toml(config_path)
    base = config_path.resolve().parent
    try:
        loaded = _settings_class(env)(**data)
    except ValidationError as e:
        problems = [_problem(err, env) for err in e.errors()]
        raise ConfigError(
            f"{config_path}: {len(problems)} problem(s) in the config", problems
        ) from None
    except SettingsError as e:
        raise ConfigError(f"{config_path}: cannot read the environment: {e}") from None
    config = _resolve_paths(loaded, base)
    return config.model_copy(update={"config_path": config_path, "zotero": _read_secret(config)})


def _resolve_paths(config: Config, base: Path) -> Config:
    def resolve(p: Path) -> Path:
        p = p.expanduser()
        # normpath, not resolve(): "../data" reads as the user wrote it, symlinks kept.
        return Path(os.path.normpath(p if p.is_absolute() else base / p))

    source = config.source.model_copy(
        update={"paths": tuple(str(resolve(Path(p))) for p in config.source.paths)}
    )
    zotero = config.zotero
    if zotero.api_key_file is not None:
        zotero = zotero.model_copy(update={"api_key_file": resolve(zotero.api_key_file)})
    return config.model_copy(
        update={
            "data_dir": resolve(config.data_dir),
            "output_dir": resolve(config.output_dir),
            "source": source,
            "zotero": zotero,
        }
    )


def _read_secret(config: Config) -> ZoteroConfig:
    """Take the API key from ``api_key_file`` (Docker secrets) unless it was given directly."""
    zotero = config.zotero
    if zotero.api_key is not None or zotero.api_key_file is None:
        return zotero
    try:
        key = zotero.api_key_file.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(
            "cannot read the Zotero API key file",
            [("zotero.api_key_file", str(zotero.api_key_file), e.strerror or str(e))],
        ) from None
    if not key:
        raise ConfigError(
            "the Zotero API key file is empty",
            [("zotero.api_key_file", str(zotero.api_key_file), "file is empty")],
        )
    return zotero.model_copy(update={"api_key": SecretStr(key)})


_SECRET_KEYS = frozenset({"api_key"})


def _problem(error: Any, environ: Mapping[str, str]) -> tuple[str, str, str]:
    # A dict key's own error is located at (..., key, "[key]"): name the key itself.
    loc = [str(part) for part in error.get("loc", ()) if part != "[key]"]
    key = ".".join(loc) or "(config)"
    value = error.get("input")
    if loc and loc[-1] in _SECRET_KEYS:
        shown = REDACTED
    elif isinstance(value, dict):
        shown = ""  # the whole table; the message says what is wrong with it
    else:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
    why = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        why = "unknown key"
    env_name = ENV_PREFIX + "__".join(part.upper() for part in loc)
    if loc and any(name.upper() == env_name for name in environ):
        why += f" (from {env_name})"
    return key, shown, why
