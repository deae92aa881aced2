"""The bench data set, loaded with PostgreSQL COPY (psycopg 3 `cursor.copy()`), not the ORM.

generate(): TRUNCATE, then SDR/manager/marketer users and the demo's campaigns (ORM: a few rows),
COPY leads and interactions (rows.py: secondary indexes dropped and rebuilt in the same
transaction, FK triggers skipped), import the default scoring model as a draft, COPY the handoff
history (history.py), VACUUM ANALYZE. main publishes the model: the first full rescore runs on the
real worker and is measured.

restore(): with --keep-data, undo what an earlier bench run added (its interactions, leads and
promotions) so the data set is the generated one again.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from . import history, rows
from .env import ROOT, bench_db, dsn
from .rows import HISTORY_DAYS, SEED

PASSWORD = "accord-bench-pw"
NEW_LEAD_DOMAIN = "new.bench.example"  # leads created by the ingest load (restore deletes them)
BENCH_ID_PREFIX = "bench-"  # external ids posted by the harness (restore deletes them)

TRUNCATE = (
    "handoff_handoffcontribution",
    "handoff_transition",
    "handoff_handoff",
    "leads_interaction",
    "leads_lead",
    "leads_campaign",
    "scoring_rescorerun",
    "scoring_behaviorrule",
    "scoring_fitrule",
    "scoring_scoringmodel",
    "leads_apitoken",
    "django_session",
    "django_admin_log",
    "axes_accessattempt",
    "axes_accesslog",
    "axes_accessfailurelog",
    "auth_user_groups",
    "auth_user",
)


def log(message: str) -> None:
    print(f"  · {message}", flush=True)


# --- database ------------------------------------------------------------------------------------


def ensure_database() -> None:
    with psycopg.connect(dsn("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (bench_db(),)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(bench_db())))
            log(f"created database {bench_db()}")


def migrate(env: dict) -> None:
    """manage.py migrate against the bench database, then collectstatic when static/ changed since
    the last one (DEBUG=false serves the manifest's hashed names, like production; see
    collectstatic_settings for the fallback)."""
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    manifest = ROOT / "staticfiles" / "staticfiles.json"
    sources = [p for p in (ROOT / "static").rglob("*") if p.is_file()]
    if manifest.exists() and all(p.stat().st_mtime < manifest.stat().st_mtime for p in sources):
        return
    collect = [*run, "collectstatic", "--noinput", "-v", "0"]
    done = subprocess.run(collect, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        problem = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        log(f"collectstatic failed with the app's storage ({problem[:160]}); using the lenient storage")
        lenient = [*collect, "--settings", "bench.collectstatic_settings"]
        subprocess.run(lenient, cwd=ROOT, env=env, check=True)


def _ensure_meta(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
    conn.commit()


def read_meta(conn: psycopg.Connection) -> dict:
    _ensure_meta(conn)
    return {k: v for k, v in conn.execute("SELECT key, value FROM bench_meta").fetchall()}


def write_meta(conn: psycopg.Connection, **values) -> None:
    _ensure_meta(conn)
    for key, value in values.items():
        conn.execute(
            "INSERT INTO bench_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value",
            (key, json.dumps(value)),
        )
    conn.commit()


# --- users and campaigns (ORM: a handful of rows) ---------------------------------------------------


def sdr_username(n: int) -> str:
    return f"bench_sdr_{n:02d}"


MANAGER = "bench_manager"


def create_users(sdrs: int) -> dict[str, int]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group

    from leads import roles

    User = get_user_model()
    encoded = make_password(PASSWORD)
    groups = {g.name: g for g in Group.objects.all()}
    ids = {}
    people = [(sdr_username(n), roles.SDR) for n in range(1, sdrs + 1)]
    people += [(MANAGER, roles.MANAGER), ("bench_marketer", roles.MARKETER)]
    for username, role in people:
        user = User.objects.create(
            username=username,
            password=encoded,
            first_name=username.split("_")[1].title(),
            last_name=username.rsplit("_", 1)[-1],
            email=f"{username}@bench.example",
            is_staff=role != roles.SDR,
        )
        user.groups.add(groups[role])
        ids[username] = user.pk
    return ids


def create_campaigns(rng: random.Random, anchor: datetime) -> dict[str, list[int]]:
    """The demo's campaigns; returns campaign ids by channel."""
    from decimal import Decimal

    from leads.demo import CAMPAIGNS
    from leads.models import Campaign

    by_channel: dict[str, list[int]] = {}
    for name, channel, (low, high), (dmin, dmax) in CAMPAIGNS:
        duration = rng.randint(dmin, dmax)
        starts = anchor.date() - timedelta(days=rng.randint(duration, HISTORY_DAYS - 1))
        campaign = Campaign.objects.create(
            name=name,
            channel=channel,
            spend=Decimal(rng.randint(low, high)),
            starts_on=starts,
            ends_on=starts + timedelta(days=duration - 1),
        )
        by_channel.setdefault(channel, []).append(campaign.pk)
    return by_channel


# --- entry points ------------------------------------------------------------------------------------------


def generate(scale) -> dict:
    """TRUNCATE and load the whole data set; returns what was loaded and how long each part took."""
    from leads.models import InteractionKind
    from scoring.defaults import DEFAULT_MODEL
    from scoring.serialization import model_from_dict

    rng = random.Random(SEED)
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    clock = rows.Clock(anchor)
    timings = {}
    started = time.perf_counter()
    with psycopg.connect(dsn()) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, TRUNCATE))
            )
        )
        conn.commit()
        _ensure_meta(conn)
        conn.execute("DELETE FROM bench_meta")
        conn.commit()
        users = create_users(scale.sdrs)
        sdr_ids = [users[sdr_username(n)] for n in range(1, scale.sdrs + 1)]
        campaigns = create_campaigns(rng, anchor)
        kinds = dict(InteractionKind.objects.values_list("slug", "id"))

        # One transaction from here to the rebuilt indexes: a failure leaves the schema intact.
        conn.execute("SELECT 1")  # opens it
        try:  # skip FK triggers while loading rows that are consistent by construction (superuser only)
            with conn.transaction():  # a savepoint: a refusal does not abort the load
                conn.execute("SET LOCAL session_replication_role = replica")
        except psycopg.Error:
            log("not a superuser: foreign keys are checked during COPY (slower)")
        dropped = []
        for table in ("leads_lead", "leads_interaction"):
            for name, definition in rows.plain_indexes(conn, table):
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
                dropped.append(definition)

        state = {"created": [], "weight": [], "last": []}
        t0 = time.perf_counter()
        people = rows.People(rng, min(50_000, max(200, scale.leads // 8)))
        lead_lines = rows.lead_rows(rng, scale, people, campaigns, clock, state)
        leads = rows.copy_lines(conn, "leads_lead", rows.LEAD_COLUMNS, lead_lines)
        timings["leads_s"] = round(time.perf_counter() - t0, 1)
        log(f"COPY {leads:,} leads: {timings['leads_s']} s")
        t0 = time.perf_counter()
        interaction_lines = rows.interaction_rows(rng, scale, kinds, clock, state)
        interactions = rows.copy_lines(conn, "leads_interaction", rows.INTERACTION_COLUMNS, interaction_lines)
        timings["interactions_s"] = round(time.perf_counter() - t0, 1)
        log(f"COPY {interactions:,} interactions: {timings['interactions_s']} s")
        t0 = time.perf_counter()
        for definition in dropped:
            conn.execute(definition)
        conn.commit()
        timings["indexes_s"] = round(time.perf_counter() - t0, 1)
        log(f"rebuilt {len(dropped)} indexes: {timings['indexes_s']} s")
        conn.execute("ANALYZE leads_lead")
        conn.execute("ANALYZE leads_interaction")
        conn.commit()

        model = model_from_dict(DEFAULT_MODEL)
        t0 = time.perf_counter()
        conn.autocommit = False
        staged = history.stage_history(conn, scale, model.to_spec(), model, kinds, clock, sdr_ids, state)
        timings["history_s"] = round(time.perf_counter() - t0, 1)
        log(
            f"handoff history: {staged['handoffs']:,} handoffs ({staged['open_handoffs']:,} open), "
            f"{staged['transitions']:,} transitions: {timings['history_s']} s"
        )
        for table in (
            "leads_lead",
            "leads_interaction",
            "handoff_handoff",
            "handoff_transition",
            "handoff_handoffcontribution",
        ):
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'), "
                    "coalesce((SELECT max(id) FROM {i}), 0) + 1, false)"
                ).format(t=sql.Literal(table), i=sql.Identifier(table))
            )
        conn.commit()
        conn.autocommit = True
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["analyze_s"] = round(time.perf_counter() - t0, 1)
    total = round(time.perf_counter() - started, 1)
    return {
        "leads": leads,
        "interactions": interactions,
        **staged,
        "seconds": total,
        **timings,
        "anchor": anchor.isoformat(),
        "model_id": model.pk,
    }


def restore(generated_at: str) -> dict:
    """Undo an earlier bench run: its posted interactions, the leads it created, its promotions."""
    with psycopg.connect(dsn()) as conn:
        later = "(SELECT id FROM handoff_handoff WHERE created_at > %(t)s)"
        conn.execute(
            "WITH first AS (SELECT DISTINCT ON (lead_id) lead_id, from_stage FROM handoff_transition "
            f"WHERE handoff_id IN {later} ORDER BY lead_id, at, id) "
            "UPDATE leads_lead l SET stage = first.from_stage, stage_changed_at = %(t)s, "
            "owner_id = CASE WHEN first.from_stage = 'lead' THEN NULL ELSE l.owner_id END "
            "FROM first WHERE l.id = first.lead_id",
            {"t": generated_at},
        )
        conn.execute(
            f"DELETE FROM handoff_handoffcontribution WHERE handoff_id IN {later}", {"t": generated_at}
        )
        conn.execute("SET LOCAL accord.audit_purge = 'on'")  # the append-only trigger's escape hatch
        conn.execute(f"DELETE FROM handoff_transition WHERE handoff_id IN {later}", {"t": generated_at})
        promoted = conn.execute(
            "DELETE FROM handoff_handoff WHERE created_at > %(t)s", {"t": generated_at}
        ).rowcount
        deleted = conn.execute(
            "DELETE FROM leads_interaction WHERE external_id LIKE %s", (BENCH_ID_PREFIX + "%",)
        ).rowcount
        conn.execute("DELETE FROM scoring_rescorerequest")
        new_leads = conn.execute(
            "DELETE FROM leads_lead WHERE email LIKE %s", ("%@" + NEW_LEAD_DOMAIN,)
        ).rowcount
        conn.execute("DELETE FROM leads_apitoken")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE leads_lead")
        conn.execute("VACUUM ANALYZE leads_interaction")
    return {"interactions_removed": deleted, "leads_removed": new_leads, "promotions_undone": promoted}
