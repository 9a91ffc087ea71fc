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
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.archive import build_archive, topic_queries, topics_toml
from tests.fakes.hf_api import FakeHF

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
    stdout: str
    stderr: str


def run_measured(args: list[str], env: dict[str, str] | None = None) -> Measured:
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Read pipes without deadlock, then reap with wait4 to get this child's own rusage.
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []

    def drain(stream: Any, sink: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.append(chunk)

    threads = [
        threading.Thread(target=drain, args=(proc.stdout, out_chunks)),
        threading.Thread(target=drain, args=(proc.stderr, err_chunks)),
    ]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    for t in threads:
        t.join()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return Measured(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,
        returncode=code,
        stdout=b"".join(out_chunks).decode(),
        stderr=b"".join(err_chunks).decode(),
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
    parser.add_argument("--only", nargs="*", help="scenario numbers to run (default: all)")
    args = parser.parse_args(argv)
    size = SMALL if args.small else FULL
    results = run_all(size, only=set(args.only or []), keep=args.keep)
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
        with FakeHF() as hf:
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
    print(f"{'#':<3}{'scenario':<34}{'result':<28}{'target':<22}{'details'}")
    for number, r in results["scenarios"].items():
        print(
            f"{number:<3}{r['name']:<34}{r['result']:<28}{r.get('target', ''):<22}{r.get('details', '')}"
        )


if __name__ == "__main__":
    sys.exit(main())
