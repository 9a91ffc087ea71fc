"""The command line: the only place that configures logging and maps errors to exit codes.

Commands import what they need inside their bodies: ``feedsync --version`` and a quiet
``feedsync run`` must not pay for pydantic, feedgen, APScheduler or pyzotero up front.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feedsync import __version__
from feedsync.errors import ConfigError, FeedsyncError

if TYPE_CHECKING:
    from feedsync.config import Config
    from feedsync.pipeline import RunReport

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("feedsync")


class _Date(click.ParamType):  # type: ignore[type-arg]
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


def _format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["auto", "hf-json", "hf-html", "text"]),
        default="auto",
        show_default=True,
        help="Input form; auto-detected by default.",
    )(f)


def load(ctx: click.Context, config_path: Path | None) -> Config:
    """The validated config: the command's --config, else the group's, else the default."""
    from feedsync.config import load_config

    root = ctx.find_root()
    return load_config(config_path or root.params.get("config_path"))


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for `--log-format json`."""

    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_LOG_ATTRIBUTES:  # passed with `extra=`: a field
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


_STANDARD_LOG_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
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
@_format_option
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
        digest = parse_digest(
            sys.stdin.buffer.read(), format=fmt, as_of=as_of, day=day, source="<stdin>"
        )
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
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=Path))
@_format_option
@click.option("--as-of", type=DATE, help="The page's date for text copies (see `parse`).")
@_config_option
@click.pass_context
def import_(
    ctx: click.Context,
    files: tuple[Path, ...],
    fmt: str,
    as_of: date | None,
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
    with _stored(config, save=True), Store(config.store_path) as store:
        for digest in digests:
            total += store.upsert(digest.papers)
        stored = store.count()
    papers = sum(len(d.papers) for d in digests)
    click.echo(
        f"imported {papers} papers from {len(files)} file(s): {total.new} new, "
        f"{total.updated} updated, {total.unchanged} unchanged; {stored} in the store"
    )


@cli.command()
@_config_option
@click.option("--offline", is_flag=True, help="Do not fetch; render and publish from the store.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Refetch even what the server says is unchanged, and publish every file again "
    "(a bucket: upload it again) whatever feedsync recorded.",
)
@click.pass_context
def run(ctx: click.Context, config_path: Path | None, offline: bool, refresh: bool) -> None:
    """Run one pass: fetch the digest, store it, match topics, publish the feeds.

    Exits 0 on success; 1 when a stage failed (the feeds were still published from what
    is stored) or the feeds could not be written (the published ones stay as they were);
    2 on a bad config; 3 when the store cannot be used; 130 on Ctrl-C and 143 on SIGTERM,
    at once, even with requests in flight.
    """
    from feedsync.pipeline import run as run_pass

    config = load(ctx, config_path)
    report = run_pass(config, offline=offline, refresh=refresh)
    _print_report(config, report)
    ctx.exit(report.exit_code)


@cli.command()
@_config_option
@click.option("--since", type=DATE, required=True, help="First featured day to fetch.")
@click.option(
    "--until", type=DATE, help="Last featured day to fetch (default: today; at most tomorrow, UTC)."
)
@click.option("--refresh", is_flag=True, help="Refetch days that are already stored.")
@click.pass_context
def backfill(
    ctx: click.Context, config_path: Path | None, since: date, until: date | None, refresh: bool
) -> None:
    """Fetch every featured day from --since to --until, then publish the feeds.

    Days already fetched are skipped unless --refresh, so an interrupted backfill resumes
    where it stopped. Shows a progress bar on a terminal.
    """
    from datetime import UTC, datetime

    from feedsync.fetch.sources import day_range, digest_files
    from feedsync.pipeline import run as run_pass

    config = load(ctx, config_path)
    days = day_range(since, until, today=datetime.now(UTC).date())
    steps = len(days)
    if config.source.kind == "files":
        click.echo('feedsync: [source] kind is "files": importing every file, not days', err=True)
        steps = len(digest_files(config.source.paths)[0])
    with _progress(steps, "backfill") as step:
        report = run_pass(
            config, days=days, refresh=refresh, skip_fetched=not refresh, progress=step
        )
    _print_report(config, report)
    ctx.exit(report.exit_code)


@cli.command()
@click.argument("topic", required=False)
@click.option("--query", "-q", "query_text", help="Try a query instead of a configured topic.")
@click.option("--limit", "-n", default=20, show_default=True, help="How many papers to list.")
@_config_option
@click.pass_context
def preview(
    ctx: click.Context,
    topic: str | None,
    query_text: str | None,
    limit: int,
    config_path: Path | None,
) -> None:
    """List the stored papers that TOPIC (or --query) matches, newest first.

    Each paper is shown with the terms that matched, so a query can be tuned before
    anyone subscribes to it. Nothing is fetched or written.
    """
    from feedsync.errors import InputError
    from feedsync.match.preview import preview as run_preview

    if (topic is None) == (query_text is None):
        raise InputError("give a TOPIC or --query 'QUERY' (one of them)")
    config = load(ctx, config_path)
    with _stored(config, save=False):
        lines = list(run_preview(config, topic=topic, query=query_text, limit=limit))
    for line in lines:
        click.echo(line)


@cli.command()
@_config_option
@click.option("--serve", is_flag=True, help="Also serve output_dir over HTTP (see `serve`).")
@click.option("--host", help="Server address (default: [server] host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Server port (default: [server] port).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    help="Run every N seconds instead of [schedule] cron (for tests and benchmarks).",
)
@click.option("--max-runs", type=click.IntRange(min=1), help="Stop after N runs.")
@click.pass_context
def daemon(
    ctx: click.Context,
    config_path: Path | None,
    serve: bool,
    host: str | None,
    port: int | None,
    interval: float | None,
    max_runs: int | None,
) -> None:
    """Run the pass at start-up and then on [schedule] cron, until SIGTERM or SIGINT.

    Only one daemon may use a data directory; a second one exits at once (code 3) naming
    the process that holds the lock. A failing run is logged and recorded, and the next
    scheduled run still happens. Stops cleanly (exit 0) on SIGTERM/SIGINT.
    """
    from feedsync.daemon import run_daemon

    config = load(ctx, config_path)
    if serve:
        from feedsync.serve.app import served_folder

        served_folder(config)  # a bucket cannot be served from here: say so before starting
    if logging.getLogger("feedsync").level > logging.INFO:
        logging.getLogger("feedsync").setLevel(logging.INFO)  # a daemon logs its runs
    run_daemon(config, serve=serve, host=host, port=port, interval=interval, max_runs=max_runs)


@cli.command()
@_config_option
@click.option("--host", help="Address to listen on (default: [server] host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [server] port).")
@click.pass_context
def serve(ctx: click.Context, config_path: Path | None, host: str | None, port: int | None) -> None:
    """Serve output_dir over HTTP, with /healthz, until SIGTERM or SIGINT (then exit 0).

    Feeds get their proper content types, ETag and Last-Modified (304 on revalidation),
    gzip when asked for and a Cache-Control max-age that matches the schedule.
    """
    from feedsync.serve.app import serve as run_server
    from feedsync.serve.app import served_folder

    config = load(ctx, config_path)
    served_folder(config)
    run_server(config, host=host, port=port)


@cli.command()
@_config_option
@click.pass_context
def healthcheck(ctx: click.Context, config_path: Path | None) -> None:
    """Exit 0 if the last run succeeded within two schedule periods, else 1.

    Reads the status record in the store directly (no HTTP needed), prints it as JSON.
    """
    from feedsync.serve.health import health_report

    config = load(ctx, config_path)
    healthy, payload = health_report(config)
    click.echo(json.dumps(payload, sort_keys=True))
    ctx.exit(0 if healthy else 1)


class _Step:
    """The fetch's progress on a click progress bar (or nowhere, off a terminal)."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def step(self, label: str) -> None:
        if self._bar is not None:
            self._bar.label = label
            self._bar.update(1)
            self._bar.render_progress()  # click throttles redraws; show every day

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.label = text
            self._bar.render_progress()


class _progress:
    def __init__(self, total: int, label: str) -> None:
        self._bar = (
            click.progressbar(length=total, label=label, file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )

    def __enter__(self) -> _Step:
        if self._bar is not None:
            self._bar.__enter__()
        return _Step(self._bar)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _print_report(config: Config, report: RunReport) -> None:
    source = report.source
    if source is not None:
        if config.source.kind == "files":
            what = f"read {source.units} file(s) ({source.not_modified} unchanged)"
        else:
            what = (
                f"fetched {source.units} page(s) ({source.not_modified} not modified"
                + (f", {source.skipped} days already stored" if source.skipped else "")
                + f", {source.requests} requests"
                + (f", {source.quota_waits} quota waits" if source.quota_waits else "")
                + ")"
            )
        click.echo(
            f"{what}: {source.papers} papers, {source.counts.new} new, "
            f"{source.counts.updated} updated"
        )
    if report.topics:
        parts = [f"{slug} {t.matches} (+{t.new})" for slug, t in report.topics.items()]
        click.echo("topics: " + ", ".join(parts))
    if report.zotero:
        counts = report.zotero.counts()
        click.echo("zotero: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    published = report.published
    if published is not None:
        click.echo(
            f"files: {len(published.written)} written, {len(published.unchanged)} unchanged, "
            f"{len(published.removed)} removed in {config.output_dir}"
        )
        if isinstance(config.output_dir, Path):
            index = config.output_dir / "index.html"
            click.echo(f"open {index} or run `feedsync serve` to read them")
        else:
            click.echo(f"readers find them at {config.base_url}/index.html")
    if report.websub is not None and report.websub.failure is None:
        click.echo(report.websub.line())
    for warning in report.warnings:
        click.echo(f"feedsync: warning: {warning}", err=True)
    for failure in report.failures:
        click.echo(f"feedsync: failed: {failure}", err=True)


@cli.command("check-config")
@_config_option
@click.pass_context
def check_config(ctx: click.Context, config_path: Path | None) -> None:
    """Validate the config and print it as feedsync sees it, secrets redacted.

    Exits 0 when the config is valid; otherwise lists every problem (key, value, why)
    and exits 2.
    """
    from feedsync.config.toml import dumps

    config = load(ctx, config_path)
    click.echo(f"# config file: {config.config_path}")
    click.echo(dumps(config.redacted()), nl=False)


@cli.group()
def zotero() -> None:
    """Push the papers of topics with `zotero = true` into a Zotero library.

    Each topic gets a subcollection under [zotero] collection; each matched paper with an
    arXiv id becomes one preprint item, created once whatever the network does. `feedsync
    run` does this as its last step when [zotero] enabled = true.
    """


@zotero.command("sync")
@_config_option
@click.option(
    "--dry-run", is_flag=True, help="Print what would be created or updated; change nothing."
)
@click.pass_context
def zotero_sync(ctx: click.Context, config_path: Path | None, dry_run: bool) -> None:
    """Sync the papers the last run matched into Zotero, now.

    Exits 0 when every matched paper is in Zotero; 1 when the sync stopped or Zotero
    refused some papers (they are retried next time); 2 when Zotero is not configured.
    With --dry-run, Zotero is only read and the store is left as it is.
    """
    from feedsync.match.topics import build_topics
    from feedsync.pipeline import synced_state
    from feedsync.store import Store
    from feedsync.store.locks import run_lock
    from feedsync.zotero.status import opted_in
    from feedsync.zotero.sync import sync

    config = load(ctx, config_path)
    topics = opted_in(config, build_topics(config))
    if dry_run:
        with _stored(config, save=False), Store(config.store_path) as store:
            report = sync(config, store, topics, dry_run=True)
    else:
        with run_lock(config.data_dir), synced_state(config), Store(config.store_path) as store:
            report = sync(config, store, topics)
    for line in report.plan:
        click.echo(line)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts().items())
    click.echo(f"zotero{' (dry run, nothing written)' if dry_run else ''}: {counts}")
    for problem in report.problems():
        click.echo(f"feedsync: failed: zotero: {problem}", err=True)
    ctx.exit(1 if report.problems() else 0)


@zotero.command("status")
@_config_option
@click.pass_context
def zotero_status(ctx: click.Context, config_path: Path | None) -> None:
    """Show the Zotero library, its collections, and how many papers are synced.

    Reads the store only (no network): papers synced, pending (sent, answer not yet
    confirmed), failed (refused, with the reason), waiting (not sent yet).
    """
    from feedsync.match.topics import build_topics
    from feedsync.store import Store
    from feedsync.zotero.status import status

    config = load(ctx, config_path)
    topics = build_topics(config)
    with _stored(config, save=False), Store(config.store_path) as store:
        lines = status(config, store, topics).lines()
    for line in lines:
        click.echo(line)


@contextlib.contextmanager
def _stored(config: Config, *, save: bool) -> Iterator[None]:
    """For a command that uses the store outside a pass: with ``[state] url``, the working
    copy is fetched first (and saved after, if ``save``), under the run lock."""
    if config.state.url is None:
        yield
        return
    from feedsync.pipeline import synced_state
    from feedsync.store.locks import run_lock

    with run_lock(config.data_dir), synced_state(config, save=save):
        yield


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the command is, so that it unwinds as on Ctrl-C.

    A one-shot command stopped by `timeout`, a service manager or `kill` then rolls back its
    open transaction and exits 143 with one line, instead of dying on the spot. The daemon and the
    server install their own handlers: they stop at a safe point instead.
    """


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = cli.main(args=argv, prog_name="feedsync", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        code = e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as e:
        # click reports Ctrl-C (and so SIGTERM) as Abort, caused by the KeyboardInterrupt.
        if isinstance(e, _Terminated) or isinstance(e.__cause__, _Terminated):
            click.echo("feedsync: terminated", err=True)
            code = 143
        else:
            click.echo("feedsync: interrupted", err=True)
            code = 130
    except BrokenPipeError:
        # The reader of our output went away (`feedsync parse x | head`): not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(code if isinstance(code, int) else 0)
