"""The configuration every command receives: plain frozen dataclasses, validated once.

Rule order (later wins): built-in defaults < the TOML file < the environment
(``FEEDSYNC_SECTION__KEY``). The secrets (the Zotero key, the Hub token, the bucket's
secret access key) come from the file or the environment, else from their secret file
(``api_key_file``, ``token_file``, ``secret_access_key_file``); the Hub token last from
``HF_TOKEN``, as the Hub's own tools read it, but only for a source on huggingface.co (a
mirror must be given its token explicitly). A bucket's credentials may also be left to the
service's own variables (``AWS_*``), which its client reads itself (publish/objects.py).
``output_dir`` is a folder (a ``Path``) or a bucket (a ``BucketUrl``, buckets.py).
Relative paths are resolved against the directory of the config file, so a config behaves
the same from any working directory. Validation (pydantic-settings, in ``settings.py``)
reports every problem at once as one ``ConfigError``.

Validating costs more than an idle hourly run (importing pydantic alone is ~0.2 s), so the
validated result is cached under ``$XDG_CACHE_HOME/feedsync``, keyed by a hash of the
config file's bytes, its path, the ``FEEDSYNC_*`` environment and feedsync's version: any
change to any of them validates afresh. The cache never holds a secret: each is read again
from where it came from on every load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedsync import __version__
from feedsync.config import cron
from feedsync.config.buckets import BucketUrl, is_url, parse_bucket_url
from feedsync.config.names import ENV_PREFIX, REDACTED
from feedsync.errors import ConfigError

DEFAULT_CONFIG = Path("config/feedsync.toml")
CONFIG_ENV = "FEEDSYNC_CONFIG"
KEY_ENV = "FEEDSYNC_ZOTERO__API_KEY"
TOKEN_ENV = "FEEDSYNC_SOURCE__TOKEN"
BUCKET_SECRET_ENV = "FEEDSYNC_PUBLISH__SECRET_ACCESS_KEY"
HF_TOKEN_ENV = "HF_TOKEN"
CACHE_FORMAT = 2  # 2: [publish], [state], bucket URLs


class Secret:
    """A string that does not show itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    kind: str = "hf-api"
    api_url: str = "https://huggingface.co"
    days: int = 3
    paths: tuple[str, ...] = ()
    timeout: float = 30.0
    retries: int = 4
    max_wait: float = 600.0
    token: Secret | None = field(default=None, repr=False)
    token_file: Path | None = None
    # Where the token came from, for the message that says it was refused; not a setting.
    token_from: str | None = field(default=None, compare=False)

    def bearer(self) -> str | None:
        return self.token.get_secret_value() if self.token else None


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    cron: str = "7 * * * *"
    timezone: str = "UTC"

    @property
    def period(self) -> timedelta:
        """The shortest gap between two scheduled runs."""
        return cron.period(self.cron)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True, slots=True)
class FeedsConfig:
    max_items: int = 50
    all_papers: bool = False
    title_prefix: str = "Daily Papers: "
    websub_hub: str | None = None


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """How to reach an s3:// bucket; what is not set here comes from the AWS_* variables."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = field(default=None, repr=False)
    secret_access_key_file: Path | None = None
    timeout: float = 30.0
    retries: int = 3

    def secret(self) -> str | None:
        return self.secret_access_key.get_secret_value() if self.secret_access_key else None


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Where a run with no disk keeps its store: one object, fetched at start, saved at the
    end only if nobody saved it meanwhile."""

    url: BucketUrl | None = None


@dataclass(frozen=True, slots=True)
class TopicConfig:
    title: str
    query: str | None = None
    min_upvotes: int | None = None
    authors: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    max_items: int | None = None
    zotero: bool = False


@dataclass(frozen=True, slots=True)
class ZoteroConfig:
    enabled: bool = False
    library_id: str | None = None
    library_type: str = "user"
    api_key: Secret | None = field(default=None, repr=False)
    api_key_file: Path | None = None
    api_url: str = "https://api.zotero.org"
    collection: str = "feedsync"
    attach_pdf: bool = False
    keyword_tags: bool = False

    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None


@dataclass(frozen=True, slots=True)
class Config:
    """The validated, immutable configuration."""

    data_dir: Path = Path("data")
    output_dir: Path | BucketUrl = Path("feeds")
    base_url: str = "http://localhost:8080"
    source: SourceConfig = SourceConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    server: ServerConfig = ServerConfig()
    feeds: FeedsConfig = FeedsConfig()
    publish: PublishConfig = PublishConfig()
    state: StateConfig = StateConfig()
    topics: Mapping[str, TopicConfig] = field(default_factory=dict)
    zotero: ZoteroConfig = ZoteroConfig()
    config_path: Path | None = None  # where it came from; not a setting

    @property
    def store_path(self) -> Path:
        return self.data_dir / "feedsync.sqlite3"

    def redacted(self) -> dict[str, Any]:
        """The effective config as plain data, the secret replaced by a placeholder."""
        data: dict[str, Any] = _plain(self)  # secrets come out as REDACTED
        data.pop("config_path", None)
        data["source"].pop("token_from", None)
        return data


def config_path_from(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate the configuration; raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    config_path = config_path_from(path, env)
    raw = _read(config_path)
    overrides = {
        k: v for k, v in env.items() if k.upper().startswith(ENV_PREFIX) and k.upper() != CONFIG_ENV
    }
    cache = _cache_file(config_path, raw, overrides, env)
    plain = _load_cached(cache)
    if plain is None:
        from feedsync.config.validate import validate

        data = _parse_toml(config_path, raw)
        plain = validate(data, env, config_path)
        for spec in SECRETS:  # validated, and never cached: read again below
            plain[spec.section].pop(spec.key)
        _store_cached(cache, plain)
    config = _build(plain, config_path.resolve().parent)
    zotero, _ = _with_secret(config.zotero, ZOTERO_KEY, config_path, raw, overrides)
    publish, _ = _with_secret(config.publish, BUCKET_SECRET, config_path, raw, overrides)
    source, origin = _with_secret(config.source, SOURCE_TOKEN, config_path, raw, overrides)
    if source.token is None and _on_the_hub(source.api_url) and env.get(HF_TOKEN_ENV, "").strip():
        source, origin = _replace(source, token=Secret(env[HF_TOKEN_ENV].strip())), HF_TOKEN_ENV
    if origin is not None:
        source = _replace(source, token_from=f"the token from {origin}")
    return dataclasses.replace(
        config, config_path=config_path, zotero=zotero, source=source, publish=publish
    )


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """Where one secret may be given: a key of a section, its variable, its secret file."""

    section: str
    key: str
    file_key: str
    env: str
    what: str


ZOTERO_KEY = SecretSpec("zotero", "api_key", "api_key_file", KEY_ENV, "the Zotero API key")
SOURCE_TOKEN = SecretSpec("source", "token", "token_file", TOKEN_ENV, "the Hugging Face token")
BUCKET_SECRET = SecretSpec(
    "publish",
    "secret_access_key",
    "secret_access_key_file",
    BUCKET_SECRET_ENV,
    "the bucket's secret access key",
)
SECRETS = (ZOTERO_KEY, SOURCE_TOKEN, BUCKET_SECRET)

_replace = dataclasses.replace


def _on_the_hub(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "huggingface.co" or host.endswith(".huggingface.co")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
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


def _parse_toml(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text: {e.reason}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", [(str(path), "", str(e))]) from None


def _secret_again(
    spec: SecretSpec, path: Path, raw: bytes, overrides: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """A secret given in the environment or the file, and where: the variable wins."""
    for name, value in overrides.items():
        if name.upper() == spec.env:
            return value, spec.env
    if spec.key.encode() not in raw:  # spares an idle run parsing the TOML again
        return None, None
    table = _parse_toml(path, raw).get(spec.section, {})
    found = table.get(spec.key) if isinstance(table, dict) else None
    if not isinstance(found, str):
        return None, None
    return found, f"[{spec.section}] {spec.key}"


_WithSecret = Any  # ZoteroConfig, SourceConfig or PublishConfig: a section with one secret


def _with_secret(
    section: _WithSecret, spec: SecretSpec, path: Path, raw: bytes, overrides: Mapping[str, str]
) -> tuple[_WithSecret, str | None]:
    """The section with its secret as given, else read from its secret file (Docker
    secrets); and where it came from."""
    value, origin = _secret_again(spec, path, raw, overrides)
    if value is not None:
        return _replace(section, **{spec.key: Secret(value)}), origin
    secret_file: Path | None = getattr(section, spec.file_key)
    if secret_file is None:
        return section, None
    key = f"{spec.section}.{spec.file_key}"
    try:
        text = secret_file.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(
            f"cannot read {spec.what} file", [(key, str(secret_file), e.strerror or str(e))]
        ) from None
    if not text:
        raise ConfigError(f"{spec.what} file is empty", [(key, str(secret_file), "file is empty")])
    return _replace(section, **{spec.key: Secret(text)}), str(secret_file)


def _build(plain: dict[str, Any], base: Path) -> Config:
    def resolve(p: str) -> Path:
        path = Path(p).expanduser()
        # normpath, not resolve(): "../data" reads as the user wrote it, symlinks kept.
        return Path(os.path.normpath(path if path.is_absolute() else base / path))

    source = dict(plain["source"])
    source["paths"] = tuple(str(resolve(p)) for p in source["paths"])
    source.pop("token", None)
    if source.get("token_file"):
        source["token_file"] = resolve(source["token_file"])
    zotero = dict(plain["zotero"])
    zotero.pop("api_key", None)
    if zotero.get("api_key_file"):
        zotero["api_key_file"] = resolve(zotero["api_key_file"])
    publish = dict(plain["publish"])
    publish.pop("secret_access_key", None)
    if publish.get("secret_access_key_file"):
        publish["secret_access_key_file"] = resolve(publish["secret_access_key_file"])
    output = plain["output_dir"]
    state = plain["state"]["url"]
    topics = {
        slug: TopicConfig(
            **{**t, "authors": tuple(t["authors"]), "organizations": tuple(t["organizations"])}
        )
        for slug, t in plain["topics"].items()
    }
    return Config(
        data_dir=resolve(plain["data_dir"]),
        output_dir=parse_bucket_url(output) if is_url(output) else resolve(output),
        base_url=plain["base_url"],
        source=SourceConfig(**source),
        schedule=ScheduleConfig(**plain["schedule"]),
        server=ServerConfig(**plain["server"]),
        feeds=FeedsConfig(**plain["feeds"]),
        publish=PublishConfig(**publish),
        state=StateConfig(parse_bucket_url(state, object_key=True) if state else None),
        topics=topics,
        zotero=ZoteroConfig(**zotero),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, BucketUrl):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Secret):
        return REDACTED
    return value


# -- the validated-config cache -------------------------------------------------------------


def _cache_file(
    path: Path, raw: bytes, overrides: Mapping[str, str], env: Mapping[str, str]
) -> Path | None:
    home = env.get("XDG_CACHE_HOME") or (
        os.path.join(env["HOME"], ".cache") if env.get("HOME") else None
    )
    if not home:
        return None
    h = hashlib.sha256()
    for part in (
        str(CACHE_FORMAT),
        __version__,
        str(path.resolve()),
        json.dumps(sorted(overrides.items())),
    ):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    h.update(raw)
    return Path(home) / "feedsync" / f"config-{h.hexdigest()[:32]}.json"


def _load_cached(cache: Path | None) -> dict[str, Any] | None:
    if cache is None:
        return None
    try:
        data = json.loads(cache.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == CACHE_FORMAT else None


def _store_cached(cache: Path | None, plain: dict[str, Any]) -> None:
    # Best effort: a read-only home only costs the next run a validation.
    if cache is None:
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({**plain, "format": CACHE_FORMAT}), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass
