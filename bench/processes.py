"""The real processes under test: a private redis-server, gunicorn, a Celery worker and beat.

Each is started in its own process group (start_new_session) so stopping it stops its children
(gunicorn's and Celery's workers) too. `Stack.stop()` is idempotent and is called from a finally:
Ctrl-C or an exception never leaves a process behind. Logs go to bench/results/logs/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .env import LOGS, ROOT, free_port

GUNICORN_WORKERS = 3
GUNICORN_THREADS = 4
CELERY_CONCURRENCY = 2


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Process:
    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name, self.args, self.env, self.log = name, args, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        LOGS.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


class Redis(Process):
    """A throwaway redis-server on its own port: the broker of this run only."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        super().__init__(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            dict(os.environ),
            LOGS / "redis.log",
        )

    def start(self) -> Redis:
        if self.log.exists():
            self.log.unlink()
        super().start()
        wait_until(self.ping, 20, f"redis on port {self.port}")
        return self

    def command(self, *parts: str) -> bytes:
        payload = f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload.encode())
            return s.recv(4096)

    def ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def queue_length(self, name: str = "celery") -> int:
        reply = self.command("LLEN", name)
        return int(reply[1:].split(b"\r\n", 1)[0]) if reply.startswith(b":") else 0


class Stack:
    """gunicorn + Celery worker + beat against the bench database and the private redis."""

    def __init__(self, env: dict):
        self.env = env
        self.port = free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="accord-bench-")
        py = sys.executable
        self.web = Process(
            "gunicorn",
            [
                py,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(GUNICORN_WORKERS),
                "--threads",
                str(GUNICORN_THREADS),
                "--timeout",
                "120",
                "--graceful-timeout",
                "10",
            ],
            env,
            LOGS / "gunicorn.log",
        )
        self.worker = Process(
            "worker",
            [
                py,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--pool",
                "prefork",
                "--concurrency",
                str(CELERY_CONCURRENCY),
                "-n",
                f"bench-{self.port}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env,
            LOGS / "worker.log",
        )
        self.beat = Process(
            "beat",
            [
                py,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(Path(self.tmp.name) / "celerybeat-schedule"),
            ],
            env,
            LOGS / "beat.log",
        )

    @property
    def processes(self) -> list[Process]:
        return [self.web, self.worker, self.beat]

    def start(self) -> Stack:
        for proc in self.processes:
            if proc.log.exists():
                proc.log.unlink()
        self.web.start()
        self.worker.start()
        self.beat.start()
        wait_until(self._web_ready, 60, "gunicorn /healthz")
        wait_until(
            lambda: b" ready." in self.worker.log.read_bytes() if self.worker.log.exists() else False,
            60,
            "the Celery worker",
        )
        return self

    def _web_ready(self) -> bool:
        if not self.web.alive():
            raise RuntimeError(f"gunicorn exited; see {self.web.log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def check(self) -> None:
        dead = [p.name for p in self.processes if not p.alive()]
        if dead:
            raise RuntimeError(f"process(es) died: {', '.join(dead)}; see {LOGS}")

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.tmp.cleanup()
