"""Where the harness runs: the bench database, the environment of every process, the machine, noise.

The harness only ever touches databases named accord_bench* (accord_bench for the requested scale,
accord_bench_<scale> for a run's smaller growth points; ACCORD_BENCH_DB renames the first) and its
own redis-server.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"

PG_HOST = os.environ.get("ACCORD_BENCH_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ACCORD_BENCH_PGPORT", "5432"))
PG_USER = os.environ.get("ACCORD_BENCH_PGUSER", "postgres")
# The requested scale's data lives in accord_bench; the smaller growth points of a run live in
# accord_bench_<scale>, so --keep-data can reuse each of them.
MAIN_DB = os.environ.get("ACCORD_BENCH_DB", "accord_bench")
if not MAIN_DB.startswith("accord_bench"):
    raise SystemExit(f"refusing to run against {MAIN_DB!r}: bench databases are named accord_bench*")
_current = {"db": MAIN_DB}


def use_database(name: str) -> None:
    """Point dsn(), process_env() and (if set up) this process's Django at database `name`."""
    if not name.startswith("accord_bench"):
        raise SystemExit(f"refusing to run against {name!r}: bench databases are named accord_bench*")
    _current["db"] = name
    if "django" in sys.modules:
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections["default"].close()
            connections["default"].settings_dict["NAME"] = name


def bench_db() -> str:
    return _current["db"]


SECRET_KEY = "accord-bench-not-a-secret-" + "x" * 24
# Engagement decay is a periodic full rescore (beat, hourly by default): it would land in the
# middle of a measurement, so the bench pushes it out of the way and measures rescoring directly.
DECAY_MINUTES = "100000"


def dsn(db: str | None = None) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{db or bench_db()}"


def database_url() -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{bench_db()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(redis_url: str) -> dict[str, str]:
    """The environment of gunicorn, the worker, beat, manage.py and the harness's own Django."""
    keep = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis_url,
        "ACCORD_DECAY_MINUTES": DECAY_MINUTES,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def setup_django(redis_url: str) -> None:
    """Point this process's Django at the bench database and the private broker, then set it up."""
    os.environ.update(process_env(redis_url))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- the machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib(field: str = "MemTotal") -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def page_cache_gib() -> float | None:
    """The OS page cache now. This VM's host takes unused memory back, so the cache can hold less
    than the database even with most of the memory free: then the run reads from disk."""
    return _mem_gib("Cached")


def code_revision() -> dict:
    """The commit checked out (read from .git, no git command) and a digest of the app's Python
    sources, so a result can be tied to the code it measured (uncommitted edits change the digest)."""
    import hashlib

    head = None
    try:
        ref = (ROOT / ".git" / "HEAD").read_text().strip()
        if ref.startswith("ref: "):
            name = ref[5:]
            path = ROOT / ".git" / name
            if path.exists():
                head = path.read_text().strip()
            elif (ROOT / ".git" / "packed-refs").exists():
                for line in (ROOT / ".git" / "packed-refs").read_text().splitlines():
                    if line.endswith(" " + name):
                        head = line.split()[0]
        else:
            head = ref
    except OSError:
        pass
    digest = hashlib.sha1()
    for package in ("config", "leads", "scoring", "handoff", "templates"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".html"):
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return {"commit": head[:12] if head else None, "source_digest": digest.hexdigest()[:12]}


def machine(pg_version: str) -> dict:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "mem": f"{_mem_gib()} GiB",
        "pg version": pg_version,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": code_revision(),
    }


# --- noise ---------------------------------------------------------------------------------------


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of the whole machine's CPU that was busy over `seconds` (0-100)."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    total = max(1, total1 - total0)
    return round(100.0 * (1 - (idle1 - idle0) / total), 1)


class CpuMeter:
    """Machine-wide CPU busy share between start() and stop()."""

    def start(self) -> CpuMeter:
        self.t0, self.i0 = _cpu_times()
        return self

    def stop(self) -> float:
        t1, i1 = _cpu_times()
        return round(100.0 * (1 - (i1 - self.i0) / max(1, t1 - self.t0)), 1)
