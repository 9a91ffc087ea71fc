"""The command line as a user meets it: help, version, errors, and the README's promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from feedsync import __version__
from feedsync.cli import cli
from tests.commands import start_feedsync
from tests.fakes.stalled import StalledServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def all_commands(group: click.Group = cli, prefix: str = "feedsync") -> list[str]:
    names = []
    for name, command in group.commands.items():
        full = f"{prefix} {name}"
        names.append(full)
        if isinstance(command, click.Group):
            names += all_commands(command, full)
    return names


def test_commands_exist() -> None:
    assert {
        "feedsync run",
        "feedsync parse",
        "feedsync import",
        "feedsync check-config",
        "feedsync preview",
        "feedsync backfill",
    } <= set(all_commands())


@pytest.mark.parametrize("command", all_commands())
def test_every_command_is_documented_in_the_readme(command: str) -> None:
    assert re.search(re.escape(command) + r"\b", README), f"{command} missing from README.md"


@pytest.mark.parametrize("command", all_commands())
def test_every_command_has_help(command: str) -> None:
    args = [*command.split()[1:], "--help"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    obj = cli
    for part in command.split()[1:]:
        obj = obj.commands[part]  # type: ignore[attr-defined]
    assert obj.help and len(obj.help) > 20


def test_version_and_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "feedsync", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"feedsync, version {__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "feedsync", "--help"], capture_output=True, text=True, check=True
    )
    assert "check-config" in out.stdout


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("python3")]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    demo, tests = commands
    assert "config/demo.toml" in demo and " run" in demo
    assert tests.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()


def test_unknown_command_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "feedsync", "frobnicate"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "No such command" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_idle_run_loads_none_of_the_heavy_modules(tmp_path: Path) -> None:
    """Start-up is most of an idle hourly run: what it does not need, it must not import."""
    import shutil

    config = tmp_path / "config" / "demo.toml"
    shutil.copytree(ROOT / "config", config.parent)
    heavy = [
        "feedgen", "lxml", "pyzotero", "apscheduler", "uvicorn", "starlette", "pydantic",
        "multiprocessing", "concurrent.futures.process", "feedsync.query", "feedsync.parsers",
        "re2",
        "obstore",
    ]  # fmt: skip
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
        "from feedsync.cli import main\n"
        f"main(['--config', {str(config)!r}, 'run'])\n"
    )
    for _ in ("first run", "idle run"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        loaded = out.stdout.strip().splitlines()[-1]
    assert "0 written" in out.stdout and loaded == "[]", out.stdout


def test_check_config_refuses_a_regex_re2_cannot_run_and_says_what_to_write(
    tmp_path: Path,
) -> None:
    """Exit 2, naming the topic, the column (RE2 tells no position: the regex's start), RE2's
    reason and what to write instead; nothing else on stderr (RE2 would log the error
    itself through absl), no traceback."""
    import os

    config = tmp_path / "feedsync.toml"
    config.write_text(
        "[topics.llm]\ntitle = \"LLMs\"\nquery = 'agents /(a|b)\\1/'\n", encoding="utf-8"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-m", "feedsync", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"feedsync: error: {config}: 1 problem(s) in the config",
        "  topics.llm.query = 'agents /(a|b)\\\\1/': query syntax error: invalid regex: "
        "invalid escape sequence: \\1; RE2 has no backreferences: spell out the texts the "
        "group may repeat, as in (aa|bb) for (a|b)\\1 at column 8",
    ]


@pytest.mark.parametrize(("signal_name", "code", "said"), [
    ("SIGINT", 130, "feedsync: interrupted"),
    ("SIGTERM", 143, "feedsync: terminated"),
])  # fmt: skip
def test_a_run_waiting_on_a_stalled_server_stops_at_once_on_ctrl_c_or_sigterm(
    tmp_path: Path, signal_name: str, code: int, said: str
) -> None:
    """Requests in flight are not waited for: with a 20 s timeout and retries, that took
    minutes. The store stays usable, and the next run works."""
    import signal
    import time

    from feedsync.store import Store

    server = StalledServer()
    config = tmp_path / "feedsync.toml"
    config.write_text(
        'data_dir = "data"\noutput_dir = "feeds"\n'
        f'[source]\nkind = "hf-api"\napi_url = "{server.url}"\ndays = 3\ntimeout = 20\n'
        '[topics.x]\ntitle = "X"\nquery = "lattice"\n',
        encoding="utf-8",
    )
    proc = start_feedsync("--config", str(config), "run")
    try:
        assert server.accepted.wait(30), "the run never connected"
        time.sleep(0.2)  # its requests are in flight
        sent = time.monotonic()
        proc.send_signal(getattr(signal, signal_name))
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.close()
    assert proc.returncode == code, stderr
    assert stderr.strip().endswith(said) and "Traceback" not in stderr
    assert took < 5, f"{took:.1f} s to stop"
    with Store(tmp_path / "data" / "feedsync.sqlite3") as store:
        assert store.integrity_check() == "ok"
    again = subprocess.run(
        [sys.executable, "-m", "feedsync", "--config", str(config), "run", "--offline"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-13-01"], "Invalid value for '--since'"),
        (["--since", "2026-03-05", "--until", "2026-03-01"], "--until 2026-03-01 is before"),
        (["--since", "2026-03-01", "--until", "2062-03-01"], "--until 2062-03-01 is in the future"),
    ],
)
def test_backfill_refuses_days_it_cannot_fetch(
    tmp_path: Path, args: list[str], message: str
) -> None:
    config = tmp_path / "feedsync.toml"
    config.write_text(
        'data_dir = "data"\noutput_dir = "out"\n[source]\napi_url = "http://127.0.0.1:9"\n'
        '[topics.a]\ntitle = "A"\nquery = "planning"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "backfill", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "data").exists()  # refused before anything was opened
