"""Settings come from the environment; a bad value stops start-up with a message naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x8Jq2-this-is-a-long-random-production-key-for-tests-only-93kd0s",
    "ALLOWED_HOSTS": "accord.example.com",
}
SHOW = (
    "from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.DEBUG, s.ALLOWED_HOSTS)"
)


def django(code_or_args, **env):
    """Run Django in a fresh process with exactly these variables (nothing inherited)."""
    clean = {k: v for k, v in os.environ.items() if k not in (
        "DEBUG", "SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS",
        "SECURE_SSL_REDIRECT",
        "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for the browser tests' process only
    )}
    clean.update(env)
    if isinstance(code_or_args, str):
        args = [sys.executable, "-c", f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup(); {code_or_args}"]
    else:
        args = [sys.executable, "manage.py", *code_or_args]
    return subprocess.run(args, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_nothing_set_in_debug_means_sqlite_and_eager_celery():
    out = django(SHOW, DEBUG="true")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:3] == ["django.db.backends.sqlite3", "True", "True"]


def test_database_and_broker_urls_switch_to_postgres_and_a_real_broker():
    out = django(
        SHOW,
        DEBUG="true",
        DATABASE_URL="postgres://accord@127.0.0.1:5432/accord",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["django.db.backends.postgresql", "False"]


def test_allowed_hosts_is_a_comma_separated_list():
    out = django(SHOW, **{**PRODUCTION, "ALLOWED_HOSTS": "a.example.com,b.example.com"})
    assert "['a.example.com', 'b.example.com']" in out.stdout


@pytest.mark.parametrize(
    "variable, value",
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://root@localhost/accord"),
        ("AXES_FAILURE_LIMIT", "five"),
        ("SECURE_SSL_REDIRECT", "sometimes"),
        ("ACCORD_RESCORE_THREADS", "0"),
        ("ACCORD_RESCORE_THREADS", "two"),
    ],
)
def test_a_bad_value_fails_at_start_up_naming_the_variable(variable, value):
    out = django(SHOW, **{**PRODUCTION, variable: value})
    assert out.returncode != 0
    last_line = out.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line and variable in last_line


def test_production_without_a_secret_key_refuses_to_start():
    out = django(SHOW, DEBUG="false")
    assert out.returncode != 0
    assert "SECRET_KEY" in out.stderr.strip().splitlines()[-1]


def test_the_development_secret_key_is_never_used_in_production():
    out = django("from django.conf import settings as s; print(s.SECRET_KEY)", **PRODUCTION)
    assert out.stdout.strip() == PRODUCTION["SECRET_KEY"]


def test_check_deploy_reports_nothing_on_production_settings():
    out = django(["check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_collectstatic_works_on_production_settings(tmp_path):
    """The manifest storage of production refuses a CSS/JS file that references a missing asset."""
    out = django(["collectstatic", "--noinput", "-v0"], **PRODUCTION, STATIC_ROOT=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/htmx-2.0.11/htmx.min.js" in manifest and "vendor/chartjs-4.5.1/chart.umd.min.js" in manifest


@pytest.mark.django_db
def test_the_database_checks_print_no_warnings(capsys):
    """`make run` runs migrate, whose checks include the database's: on the embedded SQLite they
    warned that covering indexes lose their INCLUDE columns (a PostgreSQL-only speed-up)."""
    from django.core.management import call_command

    call_command("check", databases=["default"])
    out = capsys.readouterr()
    assert "W040" not in out.err + out.out
