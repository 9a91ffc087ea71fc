"""The benchmark's scenarios; each returns a dict of figures with `name`, `result`, `target`."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench import floors
from tests.bench.__main__ import FEEDSYNC, Size, files_newer_than, run_measured, write_config
from tests.bench.archive import Archive
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.memory import memory_kb


@dataclass
class Context:
    size: Size
    workdir: Path
    hf: FakeHF
    archive: Archive
    queries: list[str]
    config: Path | None = None  # the backfilled installation, shared by later scenarios
    version_wall: float = 0.0


def _cli(ctx: Context, *args: str) -> list[str]:
    assert ctx.config is not None
    return [*FEEDSYNC, "--config", str(ctx.config), *args]


def _median(values: list[float]) -> float:
    return statistics.median(values)


def backfill(ctx: Context) -> dict[str, Any]:
    """Backfill: every day fetched, stored, matched, rendered and published."""
    home = ctx.workdir / "install"
    home.mkdir()
    ctx.config = write_config(home, ctx.hf.url, ctx.queries)
    days = sorted(ctx.archive.days)
    ctx.hf.reset_log()
    before = time.time()
    args = _cli(ctx, "backfill", "--since", str(days[0]), "--until", str(days[-1]))
    m = run_measured(args, tree=True)
    assert m.returncode == 0, m.stderr[-2000:]
    # Matching builds word segments in worker processes: the memory that counts is theirs
    # and the command's together, sampled; the command's own peak is reported beside it.
    peak = max(m.max_rss_mb, m.tree_rss_mb)
    return {
        "name": "backfill",
        "result": f"{m.wall:.1f} s, {peak:.0f} MB",
        "target": "<= 20 s, <= 300 MB",
        "wall_s": round(m.wall, 2),
        "cpu_s": round(m.cpu, 2),
        "peak_rss_mb": round(peak, 1),
        "main_process_peak_rss_mb": round(m.max_rss_mb, 1),
        "requests": len(ctx.hf.requests),
        "files_written": files_newer_than(home / "feeds", before),
        "details": f"{len(ctx.hf.requests)} requests, cpu {m.cpu:.1f} s (workers included); "
        f"peak RSS of all processes at once {m.tree_rss_mb:.0f} MB, main process {m.max_rss_mb:.0f} MB",
        "report": m.stdout.strip().splitlines(),
    }


def _version_wall(ctx: Context) -> float:
    if not ctx.version_wall:
        run_measured([*FEEDSYNC, "--version"])  # warm: the bytecode is written once
        walls = [
            run_measured([*FEEDSYNC, "--version"]).wall for _ in range(max(3, ctx.size.repeats))
        ]
        ctx.version_wall = _median(walls)
    return ctx.version_wall


def _floor_ratio(ctx: Context, *args: str) -> float:
    """A bare Python running ``args`` (after -c), as a multiple of ``feedsync --version``."""
    command = [sys.executable, "-c", *args]
    first = run_measured(command)  # warm, as for --version
    assert first.returncode == 0, first.stderr[-2000:]
    walls = [run_measured(command).wall for _ in range(max(3, ctx.size.repeats))]
    return _median(walls) / _version_wall(ctx)


def idle_run(ctx: Context) -> dict[str, Any]:
    """Idle hourly run: nothing new, recent days answer 304."""
    version = _version_wall(ctx)
    run_measured(_cli(ctx, "run"))  # settle: the recent days' validators are stored
    walls, cpus, rss, requests, written = [], [], [], [], []
    feeds = ctx.config.parent / "feeds"  # type: ignore[union-attr]
    for _ in range(ctx.size.repeats):
        ctx.hf.reset_log()
        before = time.time()
        time.sleep(0.01)
        m = run_measured(_cli(ctx, "run"))
        assert m.returncode == 0, m.stderr[-2000:]
        walls.append(m.wall)
        cpus.append(m.cpu)
        rss.append(m.max_rss_mb)
        requests.append(len(ctx.hf.requests))
        written.append(files_newer_than(feeds, before))
    wall = _median(walls)
    in_daemon = _daemon_run_walls(ctx, runs=ctx.size.repeats + 1)[1:]
    floor = _floor_ratio(ctx, floors.IDLE_IMPORTS)
    store = ctx.config.parent / "data" / "feedsync.sqlite3"  # type: ignore[union-attr]
    least = _floor_ratio(ctx, floors.LEAST_IDLE_CHECK, str(ctx.config), str(store), "3")
    return {
        "name": "idle hourly run",
        "result": f"{wall:.3f} s = {wall / version:.2f}x --version",
        "target": "<= 2x --version, 0 files",
        "wall_s": round(wall, 3),
        "cpu_s": round(_median(cpus), 3),
        "peak_rss_mb": round(max(rss), 1),
        "version_wall_s": round(version, 3),
        "ratio": round(wall / version, 2),
        "import_floor_ratio": round(floor, 2),
        "least_program_ratio": round(least, 2),
        "requests": max(requests),
        "files_written": max(written),
        # The same pass as the daemon runs it every hour: no start-up, no imports.
        "daemon_run_s": round(_median(in_daemon), 4) if in_daemon else None,
        "details": f"{max(requests)} requests ({requests[0]} 304s), {max(written)} files written"
        + (f"; in the daemon {_median(in_daemon) * 1000:.0f} ms" if in_daemon else "")
        + f"; `python -c '{floors.IDLE_IMPORTS}'` alone {floor:.2f}x"
        + f"; the least idle check through click and httpx {least:.2f}x",
    }


def _daemon_run_walls(ctx: Context, runs: int) -> list[float]:
    """Each pass's own time as `feedsync daemon` logs it ("run ok in X s")."""
    proc = subprocess.run(
        _cli(ctx, "daemon", "--interval", "0.2", "--max-runs", str(runs)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return [float(m) for m in re.findall(r" run ok in ([\d.]+) s", proc.stderr)]


def _fresh_papers(ctx: Context, rng: random.Random, serial: int) -> list[dict[str, Any]]:
    """``new_papers`` made-up papers for today, ids from ``serial`` + 1 on."""
    today = max(ctx.archive.days)
    fresh = []
    for n in range(ctx.size.new_papers):
        words = rng.sample(ctx.archive.vocabulary[30:1500], 12)
        fresh.append(
            entry(
                f"{today:%y%m}.{serial + n + 1:05d}",
                " ".join(words).capitalize(),
                today,
                abstract=" ".join(rng.choices(ctx.archive.vocabulary[:2000], k=180)),
                keywords=tuple(rng.sample(ctx.archive.keywords, 5)),
            )
        )
    return fresh


def new_papers_run(ctx: Context) -> dict[str, Any]:
    """Hourly run with new papers on today's page."""
    version = _version_wall(ctx)
    today = max(ctx.archive.days)
    original = list(ctx.hf.state.days.get(today, []))
    rng = random.Random(5)
    walls, cpus, rss, written, requests = [], [], [], [], []
    feeds = ctx.config.parent / "feeds"  # type: ignore[union-attr]
    serial = 90000
    for _ in range(ctx.size.repeats):
        fresh = _fresh_papers(ctx, rng, serial)
        serial += len(fresh)
        ctx.hf.set_day(today, ctx.hf.state.days.get(today, []) + fresh)
        ctx.hf.reset_log()
        before = time.time()
        time.sleep(0.01)
        m = run_measured(_cli(ctx, "run"))
        assert m.returncode == 0, m.stderr[-2000:]
        walls.append(m.wall)
        cpus.append(m.cpu)
        rss.append(m.max_rss_mb)
        written.append(files_newer_than(feeds, before))
        requests.append(len(ctx.hf.requests))
    # Later scenarios count on the archive as generated.
    ctx.hf.set_day(today, original)
    wall = _median(walls)
    floor = _floor_ratio(ctx, floors.RENDER_IMPORTS)
    store = ctx.config.parent / "data" / "feedsync.sqlite3"  # type: ignore[union-attr]
    scratch = Path(tempfile.mkdtemp(prefix="least-", dir=ctx.workdir))
    # The day with new papers answers 200 each time: the fake's day differs from the stored
    # one (it was reset above), so the least run also reads that day's pages.
    least = _floor_ratio(
        ctx,
        floors.LEAST_NEW_PAPERS_RUN,
        str(ctx.config),
        str(store),
        "3",
        str(ctx.size.new_papers),
        str(int(_median([float(w) for w in written]))),
        str(scratch),
    )
    return {
        "name": f"hourly run, {ctx.size.new_papers} new papers",
        "result": f"{wall:.3f} s = {wall / version:.2f}x --version",
        "target": "<= 3x --version",
        "wall_s": round(wall, 3),
        "cpu_s": round(_median(cpus), 3),
        "peak_rss_mb": round(max(rss), 1),
        "ratio": round(wall / version, 2),
        "import_floor_ratio": round(floor, 2),
        "least_program_ratio": round(least, 2),
        "requests": max(requests),
        "files_written": int(_median([float(w) for w in written])),
        "details": f"{int(_median([float(w) for w in written]))} files written, {max(requests)} requests"
        f"; `python -c '{floors.RENDER_IMPORTS}'` alone {floor:.2f}x"
        f"; the least such run (fetch, render the new entries, write the files) {least:.2f}x",
    }


def _script_figures(code: str, *args: str) -> dict[str, Any]:
    """Run a timing script in its own process; it prints its figures as one JSON object."""
    m = run_measured([sys.executable, "-c", code, *args])
    assert m.returncode == 0, m.stderr[-2000:]
    figures: dict[str, Any] = json.loads(m.stdout)
    return figures


def matching(ctx: Context) -> dict[str, Any]:
    """Matching alone: every stored paper against every topic, as a run re-matches them."""
    # What a run does when every topic must re-match (a new install, changed queries): each
    # topic's SQL on the full-text table. Each timing is the first re-match of a fresh
    # process, as in a run.
    code = """
import json, sys, time, resource
from feedsync.config import load_config
from feedsync.store import Store
from feedsync.match.topics import build_topics
from feedsync.match.select import select_all
config = load_config(sys.argv[1], {})
topics = build_topics(config)
with Store(config.store_path) as store:
    store.search_ready()
    t0 = time.perf_counter()
    found = select_all(store, topics)
    rematch = time.perf_counter() - t0
    figures = {"rematch": rematch, "papers": store.count(),
        "matches": sum(len(v) for v in found.values()),
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(figures))
"""
    runs = [_script_figures(code, str(ctx.config)) for _ in range(max(3, ctx.size.repeats))]
    r = runs[-1]
    wall = _median([run["rematch"] for run in runs])
    return {
        "name": "matching alone",
        "result": f"{wall:.2f} s re-match",
        "target": "<= 1 s",
        "wall_s": round(wall, 3),
        "runs_s": [round(run["rematch"], 3) for run in runs],
        "papers": r["papers"],
        "matches": r["matches"],
        "peak_rss_mb": round(max(run["rss"] for run in runs), 1),
        "details": f"{r['papers']} papers x {len(ctx.queries)} topics from the store's "
        f"full-text table (median of {len(runs)} fresh processes)",
    }


def rendering(ctx: Context) -> dict[str, Any]:
    """Rendering alone: every topic as RSS and Atom with its newest items."""
    code = f"""
import json, time
from feedsync.config import load_config
from feedsync.store import Store
from feedsync.match.topics import build_topics
from feedsync.publish.stage import feed_spec
from feedsync.render.feeds import render_atom, render_rss
config = load_config({str(ctx.config)!r}, {{}})
topics = build_topics(config)
with Store(config.store_path) as store:
    feeds = [(feed_spec(config, t.slug, t.title, t.description), store.newest(t.slug, t.max_items)) for t in topics]
t0 = time.perf_counter()
size = 0
for spec, papers in feeds:
    size += len(render_rss(spec, papers)) + len(render_atom(spec, papers))
t1 = time.perf_counter()
# The way runs render: each distinct paper once through feedgen, then spliced per feed.
# "Cold": no entry cached yet (a new installation); the pipeline keeps them in the store.
from feedsync.render.fragments import assemble_atom, assemble_rss, render_fragments
t2 = time.perf_counter()
distinct = {{p.rowid: p for _, papers in feeds for p in papers}}
entries = render_fragments(list(distinct.values()))
t3 = time.perf_counter()
spliced = 0
for spec, papers in feeds:
    chosen = [entries[p.rowid] for p in papers]
    spliced += len(assemble_rss(spec, chosen)) + len(assemble_atom(spec, chosen))
t4 = time.perf_counter()
assert spliced == size
print(json.dumps({{"seconds": t1 - t0, "feeds": 2 * len(feeds), "items": sum(len(p) for _, p in feeds), "bytes": size,
    "fragments": t3 - t2, "splice": t4 - t3, "distinct": len(distinct)}}))
"""
    r = _script_figures(code)
    return {
        "name": "rendering alone",
        "result": f"{r['seconds']:.2f} s whole, {r['fragments'] + r['splice']:.2f} s spliced",
        "target": "<= 2 s",
        "wall_s": round(r["seconds"], 3),
        "fragments_s": round(r["fragments"], 3),
        "splice_s": round(r["splice"], 3),
        "feeds": r["feeds"],
        "items": r["items"],
        "details": f"{r['feeds']} feeds, {r['items']} items per format, {r['bytes'] / 1e6:.1f} MB; "
        f"spliced: {r['distinct']} distinct entries {r['fragments']:.2f} s + splice {r['splice']:.2f} s",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def _wrk(url: str, seconds: int, headers: list[str]) -> float:
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def serving(ctx: Context) -> dict[str, Any]:
    """Serving: 200 and 304 responses per second, feedsync serve vs nginx."""
    if not (shutil.which("wrk") and shutil.which("nginx")):
        return {
            "name": "serving",
            "result": "skipped",
            "target": "ratio vs nginx",
            "details": "needs wrk and nginx (apt-get install wrk nginx)",
        }
    feeds = ctx.config.parent / "feeds"  # type: ignore[union-attr]
    name = sorted(p.name for p in feeds.glob("*.atom"))[0]
    seconds = 3 if ctx.size.papers < 1000 else 8
    port = _free_port()
    server = subprocess.Popen(_cli(ctx, "serve", "--port", str(port)), stderr=subprocess.DEVNULL)
    ngx_dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=ctx.workdir))
    ngx_port = _free_port()
    repo = Path(__file__).resolve().parents[2]
    site = (repo / "config" / "nginx.conf").read_text()
    site = site.replace("/srv/feedsync/feeds", str(feeds)).replace(
        "listen 8080", f"listen {ngx_port}"
    )
    (ngx_dir / "site.conf").write_text(site)
    (ngx_dir / "nginx.conf").write_text(
        f"worker_processes 1;\npid {ngx_dir}/nginx.pid;\nerror_log {ngx_dir}/error.log;\n"
        "events { worker_connections 1024; }\n"
        f"http {{ access_log off; include {ngx_dir}/site.conf; }}\n"
    )
    subprocess.run(["nginx", "-c", str(ngx_dir / "nginx.conf")], check=True, capture_output=True)
    try:
        _wait_port(port)
        _wait_port(ngx_port)
        import httpx

        ours_tag = httpx.get(f"http://127.0.0.1:{port}/{name}").headers["etag"]
        ngx_tag = httpx.get(f"http://127.0.0.1:{ngx_port}/{name}").headers["etag"]
        r = {
            "feedsync_200": _wrk(f"http://127.0.0.1:{port}/{name}", seconds, []),
            "feedsync_304": _wrk(
                f"http://127.0.0.1:{port}/{name}", seconds, [f"If-None-Match: {ours_tag}"]
            ),
            "nginx_200": _wrk(f"http://127.0.0.1:{ngx_port}/{name}", seconds, []),
            "nginx_304": _wrk(
                f"http://127.0.0.1:{ngx_port}/{name}", seconds, [f"If-None-Match: {ngx_tag}"]
            ),
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        subprocess.run(
            ["nginx", "-c", str(ngx_dir / "nginx.conf"), "-s", "stop"], capture_output=True
        )
    ratio_200 = r["feedsync_200"] / r["nginx_200"]
    ratio_304 = r["feedsync_304"] / r["nginx_304"]
    return {
        "name": "serving (req/s)",
        "result": f"200: {r['feedsync_200']:.0f}/s, 304: {r['feedsync_304']:.0f}/s",
        "target": "ratio vs nginx",
        **{k: round(v) for k, v in r.items()},
        "ratio_200": round(ratio_200, 3),
        "ratio_304": round(ratio_304, 3),
        "details": f"nginx 200: {r['nginx_200']:.0f}/s, 304: {r['nginx_304']:.0f}/s; "
        f"ratio {ratio_200:.2f} / {ratio_304:.2f}",
    }


def zotero(ctx: Context) -> dict[str, Any]:
    """Zotero: requests to sync new papers, and a rerun."""
    try:
        from tests.fakes.zotero_api import FakeZotero  # type: ignore[import-not-found]
    except ImportError:
        return {
            "name": "zotero sync",
            "result": "skipped",
            "target": "<= 25 requests",
            "details": "no Zotero fake yet",
        }
    return _zotero_with(ctx, FakeZotero)


def _zotero_with(ctx: Context, fake_cls: Any) -> dict[str, Any]:
    home = ctx.workdir / "zotero"
    home.mkdir()
    with fake_cls() as zot:
        key = zot.api_key
        cfg = home / "feedsync.toml"
        cfg.write_text(
            f'data_dir = "data"\noutput_dir = "feeds"\n[source]\nkind = "hf-api"\napi_url = "{ctx.hf.url}"\n'
            f'[zotero]\nenabled = true\nlibrary_id = "{zot.library_id}"\napi_url = "{zot.url}"\n'
            f'[topics.everything]\ntitle = "Everything"\nquery = "upvotes:>=0"\nzotero = true\n'
            f"max_items = 10\n",
            encoding="utf-8",
        )
        env = {**os.environ, "FEEDSYNC_ZOTERO__API_KEY": key}
        days = sorted(ctx.archive.days)
        # Backfill until the store holds enough papers, without syncing yet.
        total, since = 0, len(days)
        while total < ctx.size.zotero_papers and since > 0:
            since -= 1
            total += len(ctx.archive.days[days[since]])
        env_off = {**env, "FEEDSYNC_ZOTERO__ENABLED": "false"}
        m = run_measured(
            [
                *FEEDSYNC,
                "--config",
                str(cfg),
                "backfill",
                "--since",
                str(days[since]),
                "--until",
                str(days[-1]),
            ],
            env=env_off,
        )
        assert m.returncode == 0, m.stderr[-2000:]
        zot.reset_log()
        first = run_measured([*FEEDSYNC, "--config", str(cfg), "zotero", "sync"], env=env)
        first_requests = len(zot.requests)
        first_writes = sum(
            1 for r in zot.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")
        )
        zot.reset_log()
        again = run_measured([*FEEDSYNC, "--config", str(cfg), "zotero", "sync"], env=env)
        rerun_writes = sum(
            1 for r in zot.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")
        )
        rerun_requests = len(zot.requests)
    return {
        "name": "zotero sync",
        "result": f"{first_requests} requests for {total} papers",
        "target": "<= 25 requests, rerun 0 writes",
        "papers": total,
        "requests": first_requests,
        "writes": first_writes,
        "rerun_requests": rerun_requests,
        "rerun_writes": rerun_writes,
        "wall_s": round(first.wall, 2),
        "exit_codes": [first.returncode, again.returncode],
        "details": f"{first_writes} writes; rerun: {rerun_requests} requests, {rerun_writes} writes",
    }


def daemon_memory(ctx: Context) -> dict[str, Any]:
    """Daemon memory: RSS after many accelerated scheduled runs."""
    runs, baseline_at = ctx.size.daemon_runs, ctx.size.daemon_baseline
    proc = subprocess.Popen(
        _cli(ctx, "daemon", "--interval", "0.1", "--max-runs", str(runs)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    done = 0
    samples: dict[int, int] = {}
    start = time.perf_counter()
    for line in proc.stderr:
        if " run ok " in line or " run failed " in line:
            done += 1
            if done in (baseline_at, runs) or done % 50 == 0:
                with contextlib.suppress(OSError):
                    samples[done] = memory_kb(proc.pid)
    proc.wait(60)
    wall = time.perf_counter() - start
    base, last = samples.get(baseline_at, 0), samples.get(runs, samples.get(max(samples), 0))
    growth = (last - base) / base * 100 if base else float("nan")
    return {
        "name": f"daemon memory, {runs} runs",
        "result": f"{base / 1024:.0f} -> {last / 1024:.0f} MB ({growth:+.1f}%)",
        "target": "< +10%",
        "rss_after_baseline_mb": round(base / 1024, 1),
        "rss_after_all_mb": round(last / 1024, 1),
        "growth_percent": round(growth, 2),
        "samples_mb": {k: round(v / 1024, 1) for k, v in sorted(samples.items())},
        "runs": done,
        "wall_s": round(wall, 1),
        "details": f"{done} runs in {wall:.0f} s",
    }


def _written(stdout: str) -> int:
    found = re.search(r"files: (\d+) written", stdout)
    return int(found[1]) if found else 0


def bucket_publish(ctx: Context) -> dict[str, Any]:
    """Hourly run with new papers published to a bucket (SeaweedFS), against a folder."""
    from tests.fakes.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed

    assert ctx.config is not None
    server = Seaweed(Path(tempfile.mkdtemp(prefix="seaweed-", dir=ctx.workdir))).start()
    try:
        server.create_bucket("bench")
        return _bucket_publish(ctx, server, ACCESS_KEY, SECRET_KEY)
    finally:
        server.stop()


def _install_copy(ctx: Context, name: str, extra: str, output_dir: str) -> Path:
    """A copy of the backfilled installation (its store and feeds) with its own config."""
    assert ctx.config is not None
    home = ctx.workdir / name
    shutil.copytree(ctx.config.parent / "data", home / "data")
    shutil.copytree(ctx.config.parent / "feeds", home / "feeds")
    config = write_config(home, ctx.hf.url, ctx.queries, extra)
    text = config.read_text(encoding="utf-8").replace(
        'output_dir = "feeds"', f'output_dir = "{output_dir}"'
    )
    config.write_text(text, encoding="utf-8")
    return config


def _bucket_publish(ctx: Context, server: Any, key: str, secret: str) -> dict[str, Any]:
    version = _version_wall(ctx)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "proxy" not in k.lower()
    }
    publish = (
        f'[publish]\nendpoint = "{server.endpoint}"\naccess_key_id = "{key}"\n'
        f'secret_access_key = "{secret}"\n'
    )
    folder = _install_copy(ctx, "to-folder", "", "feeds")
    bucket = _install_copy(ctx, "to-bucket", publish, "s3://bench/feeds")
    first = run_measured([*FEEDSYNC, "--config", str(bucket), "run"], env)  # uploads everything
    assert first.returncode == 0, first.stderr[-2000:]
    today = max(ctx.archive.days)
    original = list(ctx.hf.state.days.get(today, []))
    rng = random.Random(9)
    serial = 95000
    walls: dict[str, list[float]] = {"folder": [], "bucket": []}
    written: list[int] = []
    before = 0.0
    for _ in range(ctx.size.repeats):
        fresh = _fresh_papers(ctx, rng, serial)
        serial += len(fresh)
        ctx.hf.set_day(today, ctx.hf.state.days.get(today, []) + fresh)
        before = time.time()
        time.sleep(0.01)
        for kind, config in (("folder", folder), ("bucket", bucket)):
            m = run_measured([*FEEDSYNC, "--config", str(config), "run"], env)
            assert m.returncode == 0, m.stderr[-2000:]
            walls[kind].append(m.wall)
            if kind == "bucket":
                written.append(_written(m.stdout))
    idle = run_measured([*FEEDSYNC, "--config", str(bucket), "run"], env)
    assert idle.returncode == 0 and _written(idle.stdout) == 0, idle.stderr[-2000:]
    ctx.hf.set_day(today, original)
    # The least program: the files the last runs changed, PUT by obstore alone.
    feeds = folder.parent / "feeds"
    names = sorted(p.name for p in feeds.iterdir() if p.stat().st_mtime > before)
    least = _floor_ratio(
        ctx,
        floors.LEAST_BUCKET_UPLOAD,
        server.endpoint,
        "bench",
        "least",
        key,
        secret,
        str(folder.parent / "feeds"),
        *names,
    )
    state = _state_figures(ctx, server, publish, env)
    to_folder, to_bucket = _median(walls["folder"]), _median(walls["bucket"])
    files = int(_median([float(w) for w in written]))
    return {
        "name": f"{ctx.size.new_papers} new papers to a bucket",
        "result": f"{to_bucket:.3f} s = {to_bucket / version:.2f}x (folder {to_folder / version:.2f}x)",
        "target": "reported",
        "bucket_wall_s": round(to_bucket, 3),
        "folder_wall_s": round(to_folder, 3),
        "bucket_ratio": round(to_bucket / version, 2),
        "folder_ratio": round(to_folder / version, 2),
        "files_uploaded": files,
        "first_upload_files": _written(first.stdout),
        "first_upload_wall_s": round(first.wall, 3),
        "idle_bucket_wall_s": round(idle.wall, 3),
        "least_upload_ratio": round(least, 2),
        "least_upload_files": len(names),
        **state,
        "details": f"{files} PUTs; a folder run {to_folder:.3f} s; the first upload of "
        f"{_written(first.stdout)} files {first.wall:.2f} s; an idle run {idle.wall:.3f} s; "
        f"obstore alone PUTting the last run's {len(names)} changed files {least:.2f}x "
        f"--version; state object {state['state_mb']} MB: an idle run on a fresh machine "
        f"{state['state_fresh_wall_s']} s, with data_dir kept {state['state_kept_wall_s']} s",
    }


def _state_figures(ctx: Context, server: Any, publish: str, env: dict[str, str]) -> dict[str, Any]:
    """The store in the bucket too: its size, and an idle run on a fresh and a kept machine."""
    state = '[state]\nurl = "s3://bench/state/feedsync.sqlite3"\n'
    config = _install_copy(ctx, "with-state", publish + state, "s3://bench/state-feeds")
    first = run_measured([*FEEDSYNC, "--config", str(config), "run"], env)  # uploads the store
    assert first.returncode == 0, first.stderr[-2000:]
    size = (config.parent / "data" / "feedsync.sqlite3").stat().st_size
    kept = run_measured([*FEEDSYNC, "--config", str(config), "run"], env)
    assert kept.returncode == 0, kept.stderr[-2000:]
    shutil.rmtree(config.parent / "data")  # a fresh machine: nothing but the config
    fresh = run_measured([*FEEDSYNC, "--config", str(config), "run"], env)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    return {
        "state_mb": round(size / 1e6, 1),
        "state_fresh_wall_s": round(fresh.wall, 3),
        "state_kept_wall_s": round(kept.wall, 3),
    }


ALL: list[tuple[int, Callable[[Context], dict[str, Any]]]] = [
    (1, backfill),
    (2, idle_run),
    (3, new_papers_run),
    (4, matching),
    (5, rendering),
    (6, serving),
    (7, zotero),
    (8, daemon_memory),
    (9, bucket_publish),
]
