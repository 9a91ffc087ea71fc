"""The feedsync benchmark: ``python -m tests.bench [--small] [--json PATH]``.

Generates a synthetic archive in the real API shape, serves it from the fake HF API on
127.0.0.1, and drives the real ``feedsync`` command in fresh directories, as a user would.
Prints a table and writes a JSON file of figures per scenario. Numbers are reported,
never asserted: the targets are in the README's Performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.archive import build_archive, topic_queries, topics_toml
from tests.fakes.hf_api import FakeHF
from tests.memory import TreePeak

FEEDSYNC = [sys.executable, "-m", "feedsync"]


@dataclass(frozen=True)
class Size:
    papers: int
    days: int
    topics: int
    repeats: int
    daemon_runs: int
    daemon_baseline: int
    zotero_papers: int
    new_papers: int = 80


FULL = Size(
    papers=50_000,
    days=1_000,
    topics=100,
    repeats=5,
    daemon_runs=200,
    daemon_baseline=10,
    zotero_papers=1_000,
)
SMALL = Size(
    papers=300,
    days=20,
    topics=5,
    repeats=2,
    daemon_runs=12,
    daemon_baseline=2,
    zotero_papers=30,
    new_papers=8,
)


@dataclass
class Measured:
    wall: float
    cpu: float
    max_rss_mb: float
    returncode: int
    # Peak of the summed RSS of the command and its worker processes (sampled); 0 if not
    # asked for.
    tree_rss_mb: float
    stdout: str
    stderr: str


# Linux carries a process's peak RSS across fork+exec: a command started straight from
# this process (which holds the whole synthetic archive) would report our peak, not its
# own. So commands are started by this small launcher, which forks, times and reaps them.
LAUNCHER = """
import json, os, sys, time
out = sys.argv[1]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(out, "w") as f:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
               "rss": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}, f)
"""


def command_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured command, as on a user's machine.

    An installed package has its bytecode compiled (pip does that at install time). A
    development shell with PYTHONDONTWRITEBYTECODE set would make every command compile
    feedsync's sources again, which no user pays, so it is dropped here.
    """
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_measured(
    args: list[str], env: dict[str, str] | None = None, *, tree: bool = False
) -> Measured:
    """Run a command: its own wall time, CPU time (its workers' included) and peak RSS,
    and its output; with ``tree``, also the peak of its and its workers' RSS summed."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        figures = Path(tmp.name)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, str(figures), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=command_env(env),
        )
        with TreePeak(proc.pid) if tree else nullcontext() as peak:
            stdout, stderr = proc.communicate()
        m = json.loads(figures.read_text())
    finally:
        figures.unlink(missing_ok=True)
    assert proc.returncode == m["code"]
    return Measured(
        wall=m["wall"],
        cpu=m["cpu"],
        max_rss_mb=m["rss"] / 1024,
        returncode=m["code"],
        stdout=stdout.decode(),
        stderr=stderr.decode(),
        tree_rss_mb=peak.peak_kb / 1024 if peak else 0.0,
    )


def files_newer_than(directory: Path, moment: float) -> int:
    if not directory.exists():
        return 0
    return sum(1 for p in directory.iterdir() if p.stat().st_mtime > moment)


def write_config(workdir: Path, api_url: str, queries: list[str], extra: str = "") -> Path:
    path = workdir / "feedsync.toml"
    path.write_text(
        f'data_dir = "data"\noutput_dir = "feeds"\nbase_url = "http://127.0.0.1:8080"\n'
        f'[source]\nkind = "hf-api"\napi_url = "{api_url}"\ndays = 3\nretries = 2\n'
        f"{extra}\n{topics_toml(queries)}",
        encoding="utf-8",
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--small", action="store_true", help="a tiny run that checks it works")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "latest.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--only",
        nargs="*",
        help="scenario numbers to run (default: all); the backfill (1) always runs first, "
        "as the others measure the installation it builds",
    )
    args = parser.parse_args(argv)
    size = SMALL if args.small else FULL
    only = set(args.only or [])
    if only:
        only.add("1")
    results = run_all(size, only=only, keep=args.keep)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"\nfigures written to {args.json}")
    return 0


def run_all(size: Size, *, only: set[str], keep: bool) -> dict[str, Any]:
    from tests.bench import scenarios

    workdir = Path(tempfile.mkdtemp(prefix="feedsync-bench-"))
    workdir.chmod(0o755)  # nginx's workers (another user) read the feeds from here
    results: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "size": size.__dict__,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenarios": {},
    }
    today = datetime.now(UTC).date()
    t = time.perf_counter()
    archive = build_archive(papers=size.papers, days=size.days, last_day=today)
    queries = topic_queries(archive, size.topics)
    results["archive"] = {
        "papers": archive.papers,
        "days": len(archive.days),
        "generated_in_s": round(time.perf_counter() - t, 2),
    }
    try:
        with FakeHF(cache_bodies=True) as hf:
            for day, entries in archive.days.items():
                hf.set_day(day, entries)
            ctx = scenarios.Context(size, workdir, hf, archive, queries)
            for number, scenario in scenarios.ALL:
                if only and str(number) not in only:
                    continue
                print(f"scenario {number}: {scenario.__doc__.splitlines()[0]}", file=sys.stderr)
                try:
                    results["scenarios"][str(number)] = scenario(ctx)
                except Exception as e:  # report and go on: one broken scenario is one row
                    results["scenarios"][str(number)] = {
                        "name": scenario.__name__,
                        "result": f"ERROR {type(e).__name__}",
                        "details": str(e)[:200],
                    }
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}", file=sys.stderr)
    return results


def print_table(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(
        f"\nfeedsync benchmark: {m['cores']} cores, Python {m['python']}, "
        f"{results['archive']['papers']} papers over {results['archive']['days']} days, "
        f"{results['size']['topics']} topics"
    )
    print(f"{'#':<3}{'scenario':<34}{'result':<28}{'target':<32}{'details'}")
    for number, r in results["scenarios"].items():
        print(
            f"{number:<3}{r['name']:<34}{r['result']:<28}{r.get('target', ''):<32}{r.get('details', '')}"
        )


if __name__ == "__main__":
    sys.exit(main())
