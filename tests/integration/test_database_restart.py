"""A database restart during ingestion (issue 7, item 4), on a private PostgreSQL cluster so the
restart cannot disturb the machine's server or the test database."""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from tests.conftest import skip_or_fail
from tests.integration.conftest import LOGS, ROOT, free_port, wait_until

pytestmark = pytest.mark.integration


class PrivatePostgres:
    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            skip_or_fail("PostgreSQL server binaries (initdb) are not installed")
        self.bin = os.path.dirname(bins[-1])
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="accord-pg-")
        self.user = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root

    def _run(self, *args, check=True):
        cmd = [os.path.join(self.bin, args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def init(self):
        if self.user:
            shutil.chown(self.dir, self.user)
        self._run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "accord")

    def start(self):
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-w", "-l", f"{self.dir}/log",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self):
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-w", "-m", "fast", "stop", check=False)

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/accord"


@pytest.fixture
def private_app():
    if not shutil.which("runuser") and os.geteuid() == 0:
        skip_or_fail("runuser is needed to run initdb as the postgres user")
    pg = PrivatePostgres()
    pg.init()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "CELERY_BROKER_URL")},
        "DEBUG": "false", "SECRET_KEY": "restart-test-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false", "DATABASE_URL": pg.url, "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    token = subprocess.run([*manage, "create_api_token", "restart"], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.split()[-1]
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / "gunicorn-restart.log", "ab")
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
                            "--workers", "2", "--threads", "2"], cwd=ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: _post(port, token, [])[0] in (400, 202), timeout=30, what="gunicorn")
        yield pg, port, token, env
    finally:
        os.killpg(web.pid, 15)
        web.wait(20)
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


def _post(port, token, items):
    body = json.dumps({"interactions": items} if items else {}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/interactions", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError as err:
        return 0, str(err)


def test_a_database_restart_gives_clean_503s_then_recovers_without_losing_or_duplicating(private_app, figures):
    pg, port, token, env = private_app
    statuses, accepted, duplicates = [], 0, 0
    batches = 150
    restarted = threading.Event()

    def restart_midway():
        wait_until(lambda: len(statuses) >= 40, timeout=60, what="ingestion to get going")
        pg.stop()
        time.sleep(3)  # really down for a while
        pg.start()
        restarted.set()

    restarter = threading.Thread(target=restart_midway)
    restarter.start()
    for batch in range(batches):
        items = [{"external_id": f"r-{batch}-{i}", "email": f"r{i}@restart.example", "kind": "page_view",
                  "occurred_at": datetime.now(UTC).isoformat()} for i in range(20)]
        deadline = time.monotonic() + 60
        while True:  # a client that retries the same batch until it is accepted
            status, answer = _post(port, token, items)
            statuses.append(status)
            if status == 202:
                accepted += answer["accepted"]
                duplicates += answer["duplicates"]
                break
            assert time.monotonic() < deadline, "the app did not recover within 60 s"
            time.sleep(0.2)
    restarter.join(60)
    assert restarted.is_set()

    errors = [s for s in statuses if s != 202]
    figures["database_restart"] = {
        "batches": batches, "requests": len(statuses), "answers_503": errors.count(503),
        "other_errors": len([s for s in errors if s != 503]), "accepted": accepted, "duplicates": duplicates,
    }
    assert set(errors) <= {503}, f"only clean 503s while the database is down; got {sorted(set(errors))}"
    assert errors, "the restart was seen by some requests"
    count = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from leads.models import Interaction as I; print(I.objects.count(), I.objects.values('external_id').distinct().count())"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()[-2:]
    assert count == [str(batches * 20)] * 2, "every interaction stored exactly once"
    # A batch that committed just before its answer was lost comes back as duplicates: never counted twice.
    assert accepted <= batches * 20 <= accepted + duplicates
