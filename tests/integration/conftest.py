"""Integration tests: the real thing, as separate processes.

A private Redis (own port, so tests may stop and restart it without touching the machine's), a Celery
worker with an embedded beat, and gunicorn serving the app — all against the test database on
PostgreSQL. Tests drive them over HTTP. Needs PostgreSQL (a separate process cannot see SQLite's
in-memory test database) and a redis-server binary; otherwise the tests skip (or fail under
ACCORD_REQUIRE_SERVICES=1).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-artifacts" / "integration"
SWEEP_SECONDS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=20.0, interval=0.1, what="condition"):
    """Poll with a deadline (no blind sleeps); return the predicate's truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Redis:
    """A throwaway redis-server the tests may stop and start."""

    def __init__(self, port: int):
        self.port, self.proc = port, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, what=f"redis on port {self.port}")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class Stack:
    """gunicorn + celery worker (+beat) processes sharing the test database."""

    def __init__(self, env, redis: Redis):
        self.env, self.redis, self.procs = env, redis, {}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _spawn(self, name, args, extra_env=None):
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(args, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def start_web(self):
        self._spawn("gunicorn", [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind",
                                 f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "4"])
        wait_until(lambda: self.get("/healthz")[0] == 200, what="gunicorn")

    def start_worker(self, name="worker", beat=True, **extra_env):
        """A Celery worker (one prefork child); extra_env e.g. ACCORD_SWEEP_SECONDS="15"."""
        args = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                "--concurrency", "1", "--pool", "prefork", "-n", f"{name}@%h"]
        if beat:
            args += ["--beat", "--schedule", str(LOGS / f"celerybeat-schedule-{name}")]
        log = LOGS / f"{name}.log"
        start = log.stat().st_size if log.exists() else 0
        self._spawn(name, args, extra_env)
        wait_until(lambda: b"ready" in log.read_bytes()[start:], timeout=30, what=f"celery {name}")

    def log_since(self, name, start=0) -> bytes:
        return (LOGS / f"{name}.log").read_bytes()[start:]

    def children(self, name) -> list[int]:
        """PIDs of a worker's pool processes (the ones that run tasks)."""
        out = subprocess.run(["pgrep", "-P", str(self.procs[name].pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def kill(self, name, sig=signal.SIGKILL):
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop(self):
        for name in list(self.procs):
            try:
                self.kill(name, signal.SIGTERM)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    def request(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None

    def get(self, path, token=None):
        return self.request("GET", path, token=token)

    def post(self, path, body, token=None):
        return self.request("POST", path, body, token=token)


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        skip_or_fail("integration tests need PostgreSQL (set DATABASE_URL=postgres://...)")
    if not os.environ.get("CELERY_BROKER_URL"):
        skip_or_fail("integration tests need a Celery broker (set CELERY_BROKER_URL=redis://...)")
    if not shutil.which("redis-server"):
        skip_or_fail("integration tests need the redis-server binary")

    db = settings.DATABASES["default"]
    redis = Redis(free_port())
    redis.start()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DEBUG": "true",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": redis.url,
        "ACCORD_SWEEP_SECONDS": str(SWEEP_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }
    for old in LOGS.glob("*.log"):
        old.unlink()
    running = Stack(env, redis)
    try:
        running.start_web()
        running.start_worker()
        yield running
    finally:
        running.stop()
        redis.stop()


@pytest.fixture(scope="session")
def figures():
    """Measured figures of the fault tests, written to test-artifacts/integration/figures.json for
    docs/reliability.md."""
    found: dict = {}
    yield found
    if found:
        LOGS.mkdir(parents=True, exist_ok=True)
        path = LOGS / "figures.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **found}, indent=2, default=str))
