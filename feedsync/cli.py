"""The command line: the only place that configures logging and maps errors to exit codes.

Commands import what they need inside their bodies: ``feedsync --version`` and a quiet
``feedsync run`` must not pay for pydantic, feedgen, APScheduler or pyzotero up front.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feedsync import __version__
from feedsync.errors import ConfigError, FeedsyncError

if TYPE_CHECKING:
    from feedsync.config import Config

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("feedsync")


class _Date(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date in YYYY-MM-DD form", param, ctx)


DATE = _Date()


class _Group(click.Group):
    """Turns feedsync's own errors into a message and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FeedsyncError as e:
            _report(e)
            raise click.exceptions.Exit(e.exit_code) from None


def _report(error: FeedsyncError) -> None:
    click.echo(f"feedsync: error: {error}", err=True)
    if isinstance(error, ConfigError):
        for key, value, why in error.problems:
            shown = f" = {value}" if value else ""
            click.echo(f"  {key}{shown}: {why}", err=True)


def _config_option(f: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Config file (default: $FEEDSYNC_CONFIG, else config/feedsync.toml).",
    )(f)


def load(ctx: click.Context, config_path: Path | None) -> Config:
    """The validated config: the command's --config, else the group's, else the default."""
    from feedsync.config import load_config

    root = ctx.find_root()
    return load_config(config_path or root.params.get("config_path"))


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from feedsync.logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        )
    root = logging.getLogger("feedsync")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="feedsync")
@_config_option
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="How much to log on stderr.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or as JSON objects.",
)
def cli(config_path: Path | None, log_level: str, log_format: str) -> None:
    """feedsync turns the Hugging Face Daily Papers digest into per-topic RSS and Atom feeds.

    Each topic in the config has a query; feedsync keeps every paper it sees in a SQLite
    store and publishes the newest matches of each topic as feed files.
    """
    setup_logging(log_level, log_format)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=True, allow_dash=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "hf-json", "hf-html", "text"]),
    default="auto",
    show_default=True,
    help="Input form; auto-detected by default.",
)
@click.option(
    "--as-of",
    type=DATE,
    help="The page's date for a text copy, which gives dates their year "
    "(default: the file's modification date).",
)
@click.option("--day", type=DATE, help="The featured day of a JSON or HTML digest.")
def parse(file: Path, fmt: str, as_of: date | None, day: date | None) -> None:
    """Parse a saved digest and print one JSON object per paper (JSON Lines).

    FILE is a Hugging Face API response, a saved papers page (HTML), or a plain-text copy
    of the papers page; "-" reads standard input. Skipped entries are reported on stderr.
    """
    from feedsync.parsers import parse_digest, parse_file

    if str(file) == "-":
        digest = parse_digest(sys.stdin.buffer.read(), format=fmt, as_of=as_of, day=day,
                              source="<stdin>")
    else:
        digest = parse_file(file, format=fmt, as_of=as_of, day=day)
    _warn(str(file), digest.warnings)
    out = sys.stdout
    for paper in digest.papers:
        out.write(json.dumps(paper.to_json(), ensure_ascii=False) + "\n")


def _warn(source: str, warnings: Any) -> None:
    for warning in warnings:
        click.echo(f"feedsync: warning: {source}: {warning}", err=True)


@cli.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=Path)
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "hf-json", "hf-html", "text"]),
    default="auto",
    show_default=True,
    help="Input form; auto-detected by default.",
)
@click.option("--as-of", type=DATE, help="The page's date for text copies (see `parse`).")
@_config_option
@click.pass_context
def import_(
    ctx: click.Context, files: tuple[Path, ...], fmt: str, as_of: date | None,
    config_path: Path | None,
) -> None:
    """Parse saved digests and merge their papers into the store.

    Prints how many papers were new, updated and unchanged. A file that cannot be parsed
    stops the import before anything is written.
    """
    from feedsync.models import UpsertCounts
    from feedsync.parsers import parse_file
    from feedsync.store import Store

    config = load(ctx, config_path)
    digests = []
    for file in files:
        digest = parse_file(file, format=fmt, as_of=as_of)
        _warn(str(file), digest.warnings)
        digests.append(digest)
    total = UpsertCounts()
    with Store(config.store_path) as store:
        for digest in digests:
            total += store.upsert(digest.papers)
        stored = store.count()
    papers = sum(len(d.papers) for d in digests)
    click.echo(
        f"imported {papers} papers from {len(files)} file(s): {total.new} new, "
        f"{total.updated} updated, {total.unchanged} unchanged; {stored} in the store"
    )


@cli.command("check-config")
@_config_option
@click.pass_context
def check_config(ctx: click.Context, config_path: Path | None) -> None:
    """Validate the config and print it as feedsync sees it, secrets redacted.

    Exits 0 when the config is valid; otherwise lists every problem (key, value, why)
    and exits 2.
    """
    from feedsync.tomlout import dumps

    config = load(ctx, config_path)
    click.echo(f"# config file: {config.config_path}")
    click.echo(dumps(config.redacted()), nl=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        code = cli.main(args=argv, prog_name="feedsync", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        code = e.exit_code
    except click.exceptions.Abort:
        click.echo("feedsync: interrupted", err=True)
        code = 130
    except KeyboardInterrupt:
        click.echo("feedsync: interrupted", err=True)
        code = 130
    except BrokenPipeError:
        # The reader of our output went away (`feedsync parse x | head`): not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code if isinstance(code, int) else 0)

