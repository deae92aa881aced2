"""One function per group of metrics. Each measures its figures and their floors in the same run,
interleaved where they can be, and returns Metric records (see metrics.py).

Groups and the metric names they produce (--only takes either):
  pages:    board, board_manager, board_queries
  reports:  report_<name> for each report page
  rescore:  rescore_full, rescore_single_rule
  ingest:   ingest_batch, ingest_single
  freshness: freshness, freshness_mql
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import psycopg

from . import env, floors, load
from .client import Http
from .datagen import MANAGER, PASSWORD, sdr_username
from .metrics import TARGETS, Metric, duration, latency, percentile, throughput
from .processes import Redis, Stack
from .vacuum import stand_in_for_autovacuum

REPORTS = ("funnel", "acceptance", "speed", "velocity", "cost", "calibration", "rules", "sdrs")
GROUPS = {
    "pages": ("board", "board_manager", "board_queries"),
    "reports": tuple(f"report_{name}" for name in REPORTS),
    "rescore": ("rescore_full", "rescore_single_rule"),
    "ingest": ("ingest_batch", "ingest_single"),
    "freshness": ("freshness", "freshness_mql"),
}
BATCH = 1000
# Bodies prepared before each closed loop (load.Prepared): for twice the ingest target, and for
# many times the single-interaction rate seen here (~150/s).
PREPARED_RATE = 20_000  # interactions/s
PREPARED_SINGLES = 1_000  # requests/s


@dataclass
class Context:
    scale: object
    stack: Stack
    redis: Redis
    conn: psycopg.Connection
    token: str
    run_id: str
    kinds: dict
    pool: load.IngestPool
    notes: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.stack.port

    def settle(self, timeout: float | None = None) -> float:
        """Wait until the worker has nothing left: no lead flagged for rescoring, no queued task, no
        bulk run in progress. Returns the seconds waited (how long the backlog took to drain)."""
        timeout = timeout or self.scale.settle_timeout
        started = time.perf_counter()
        while True:
            self.stack.check()
            flagged, runs = self.conn.execute(
                "SELECT (SELECT count(*) FROM scoring_rescorerequest), "
                "(SELECT count(*) FROM scoring_rescorerun WHERE status IN ('queued', 'running'))"
            ).fetchone()
            self.conn.rollback()
            if not flagged and not runs and not self.redis.queue_length():
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                self.notes.append(f"settle timed out after {timeout:.0f}s ({flagged} leads still flagged)")
                return time.perf_counter() - started
            time.sleep(0.25)


def noise(metric: Metric, load_before: float, cpu: env.CpuMeter) -> Metric:
    metric.extra.update(
        load_before=load_before, load_after=env.loadavg(), machine_cpu_busy_pct=cpu.stop(),
        page_cache_gib=env.page_cache_gib(),
    )
    return metric


# --- board ------------------------------------------------------------------------------------------


def _page_samples(http: Http, floor: Http, path: str, count: int, budget: float) -> tuple[list, list, dict]:
    """`count` GETs of `path`, each followed by one /healthz (the floor), within `budget` seconds."""
    pages, floors_, headers = [], [], {}
    deadline = time.perf_counter() + budget
    for _ in range(count):
        resp = http.get(path)
        if resp.status != 200:
            raise RuntimeError(f"GET {path} answered {resp.status}")
        pages.append(resp.elapsed)
        headers = resp.headers
        floors_.append(floor.get("/healthz").elapsed)
        if time.perf_counter() > deadline:
            break
    return pages, floors_, headers


def _board_queries(username: str) -> tuple[int, int]:
    """(queries, status) of one GET /board/ run in this process against the bench database."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=username))
    client.get("/board/")  # warm caches (permissions, content types)
    with CaptureQueriesContext(connection) as captured:
        status = client.get("/board/").status_code
    return len(captured.captured_queries), status


def pages(ctx: Context) -> list[Metric]:
    scale, out = ctx.scale, []
    floor = Http(ctx.port)
    for name, username in (("board", sdr_username(1)), ("board_manager", MANAGER)):
        before, cpu = env.loadavg(), env.CpuMeter().start()
        http = Http(ctx.port)
        http.login(username, PASSWORD)
        _page_samples(http, floor, "/board/", 3, 60)  # warm up
        samples, floor_samples, medians, headers = [], [], [], {}
        for _ in range(scale.repeats):
            page, fl, headers = _page_samples(http, floor, "/board/", scale.page_samples, 120)
            samples += page
            floor_samples += fl
            medians.append(percentile(page, 50))
        m = latency(name, samples, medians, floor_samples=floor_samples)
        timing = headers.get("server-timing")
        m.note = (
            f"Server-Timing: {timing}" if timing else "no Server-Timing header: client-side loopback time"
        )
        m.extra["bytes"] = len(http.get("/board/").body)
        out.append(noise(m.judge(TARGETS["board"]), before, cpu))
        http.close()
    floor.close()
    queries, status = _board_queries(sdr_username(1))
    q = Metric(
        "board_queries",
        "queries",
        value=queries,
        p50=queries,
        p95=queries,
        n=1,
        note=f"GET /board/ as {sdr_username(1)} in-process (status {status}); compare across scales",
    )
    q.target = "(information; constant across scales: growth_board_queries)"
    out.append(q)
    return out


# --- reports ----------------------------------------------------------------------------------------


def reports(ctx: Context) -> list[Metric]:
    scale, out = ctx.scale, []
    http = Http(ctx.port)
    http.login(MANAGER, PASSWORD)
    samples_per_repeat = max(3, scale.page_samples // 3)
    for name in REPORTS:
        path = f"/reports/{name}/"
        before, cpu = env.loadavg(), env.CpuMeter().start()
        first = http.get(path)
        floor_s = [floors.report_floor(ctx.conn, name) for _ in range(3)]
        if first.status != 200:
            m = Metric(
                f"report_{name}",
                "s",
                floor=percentile(floor_s, 95),
                note=f"not available ({path} answered {first.status})",
            )
            out.append(noise(m.judge(TARGETS["report"]), before, cpu))
            continue
        samples, medians, floor_samples = [], [], list(floor_s)
        deadline = time.perf_counter() + 120
        for _ in range(scale.repeats):
            page = []
            for _ in range(samples_per_repeat):
                resp = http.get(path)
                if resp.status != 200:
                    raise RuntimeError(f"GET {path} answered {resp.status}")
                page.append(resp.elapsed)
                floor_samples.append(floors.report_floor(ctx.conn, name))
                if time.perf_counter() > deadline:
                    break
            samples += page
            medians.append(percentile(page, 50))
        m = latency(f"report_{name}", samples, medians, floor_samples=floor_samples)
        m.note = "floor: the report's bare aggregate SQL (bench/floors.py REPORT_SQL)"
        out.append(noise(m.judge(TARGETS["report"]), before, cpu))
    http.close()
    return out


# --- rescoring ---------------------------------------------------------------------------------------


def _wait_run(run_id: int, timeout: float, stack: Stack) -> tuple[str, float | None]:
    from scoring.models import RescoreRun

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        run = RescoreRun.objects.get(pk=run_id)
        if run.status in (RescoreRun.Status.DONE, RescoreRun.Status.FAILED):
            server = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
            return run.status, server
        stack.check()
        time.sleep(0.2)
    return "timeout", None


def _toggle(value, a: float, b: float) -> float:
    return b if float(value) == a else a


def _rescore_once(ctx: Context, change) -> tuple[float | None, float, dict]:
    """Make one change that starts a bulk run, time it to done; then time the SQL floor with the
    model now active and compare their scores.

    The floor runs after the run's garbage is vacuumed, as the run itself starts (the group's or the
    previous repeat's vacuum): right after a run rewrote a million lead rows, the floor's scan paid
    for that run's dead rows and unset hint bits (10.7 s in one run, 19.8 s in the next, with the
    app steady), which made the ratio flatter the app by up to 2x."""
    from django.utils import timezone

    from scoring.services import active_model

    ctx.settle()
    started = time.perf_counter()
    run = change()
    status, server_s = _wait_run(run.pk, ctx.scale.rescore_timeout, ctx.stack)
    elapsed = time.perf_counter() - started
    stand_in_for_autovacuum(ctx.conn, [])
    model = active_model()
    floor_s = floors.scoring_floor(ctx.conn, model.to_spec(), ctx.kinds, timezone.now())
    total, same = floors.floor_agreement(ctx.conn)
    ctx.conn.commit()
    info = {"status": status, "server_s": server_s, "agree": same / total if total else None}
    return (elapsed if status == "done" else None), floor_s, info


def rescore(ctx: Context) -> list[Metric]:
    from scoring.models import BehaviorRule, FitRule
    from scoring.serialization import model_duplicate
    from scoring.services import active_model, model_publish, model_rules_changed

    def publish_copy(i: int):
        def change():
            copy = model_duplicate(active_model(), name=f"Bench {ctx.run_id} r{i}")
            rule = BehaviorRule.objects.get(model=copy, label="Pricing page")
            BehaviorRule.objects.filter(pk=rule.pk).update(points=_toggle(rule.points, 10, 11))
            return model_publish(model=copy)

        return change

    def edit_rule():
        # What the admin's change form does: note the model as it was, save the rule, hand both over.
        model = active_model()
        previous = model.to_spec()
        rule = FitRule.objects.get(model=model, label="Mid-market+")
        FitRule.objects.filter(pk=rule.pk).update(points=_toggle(rule.points, 15, 16))
        return model_rules_changed(model=model, previous=previous)

    out = []
    leads = ctx.conn.execute("SELECT count(*) FROM leads_lead").fetchone()[0]
    ctx.conn.rollback()
    for name, make in (("rescore_full", publish_copy), ("rescore_single_rule", lambda i: edit_rule)):
        before, cpu = env.loadavg(), env.CpuMeter().start()
        app, floor, infos = [], [], []
        for i in range(ctx.scale.heavy_repeats):
            seconds, floor_s, info = _rescore_once(ctx, make(i))
            app.append(seconds)
            floor.append(floor_s)
            infos.append(info)
        ok = [s for s in app if s is not None]
        m = duration(name, ok, floor)
        m.extra.update(
            leads=leads,
            leads_per_s=round(leads / m.value) if m.value else None,
            projected_1m_s=round(m.value * 1_000_000 / leads, 1) if m.value else None,
            runs=infos,
        )
        agree = [i["agree"] for i in infos if i["agree"] is not None]
        m.note = f"{len(ok)}/{len(app)} runs done, {m.extra['leads_per_s'] or 0:,} leads/s"
        if m.value and leads < 1_000_000:
            m.note += f" (at that rate 1M leads take {m.extra['projected_1m_s']:,.0f} s)"
        m.note += "; floor = one SQL statement"
        if agree:
            m.note += f"; app and floor give the same score for {100 * min(agree):.2f}% of leads"
        out.append(noise(m.judge(TARGETS[name]), before, cpu))
    return out


# --- ingest --------------------------------------------------------------------------------------------


def ingest(ctx: Context) -> list[Metric]:
    scale, out = ctx.scale, []
    before, cpu = env.loadavg(), env.CpuMeter().start()
    rates, floor_rates, latencies, drains, errors, made_late = [], [], [], [], 0, 0
    waits = WaitSampler(ctx)
    for _ in range(scale.heavy_repeats):
        prepared = math.ceil(PREPARED_RATE * scale.ingest_seconds / BATCH)
        bodies = load.Prepared(lambda: ctx.pool.batch(BATCH), prepared)
        ctx.settle()
        with waits:
            result = load.closed_loop(ctx.port, ctx.token, scale.ingest_clients, scale.ingest_seconds, bodies)
        made_late += bodies.made_late
        rates.append(result.accepted / result.seconds)
        latencies += result.latencies
        errors += result.errors
        copy_s = floors.copy_floor(ctx.conn, ctx.pool.copy_rows(max(BATCH, result.accepted)))
        floor_rates.append(max(BATCH, result.accepted) / copy_s)
        drains.append(ctx.settle())
    m = throughput("ingest_batch", rates, floor_rates, "interactions/s")
    m.extra.update(
        clients=scale.ingest_clients,
        batch=BATCH,
        bodies_made_during_the_loop=made_late,
        request_p50_s=percentile(latencies, 50),
        request_p95_s=percentile(latencies, 95),
        errors=errors,
        rescore_drain_s=[round(d, 2) for d in drains],
        db_waits=waits.summary(),
    )
    m.note = "floor: COPY of as many rows into a table LIKE leads_interaction INCLUDING ALL"
    out.append(noise(m.judge(TARGETS["ingest_batch"]), before, cpu))

    before, cpu = env.loadavg(), env.CpuMeter().start()
    rates, floor_rates, latencies, errors = [], [], [], 0
    for _ in range(scale.heavy_repeats):
        bodies = load.Prepared(ctx.pool.single, math.ceil(PREPARED_SINGLES * scale.ingest_seconds))
        ctx.settle()
        result = load.closed_loop(ctx.port, ctx.token, scale.ingest_clients, scale.ingest_seconds, bodies)
        rates.append(result.statuses.get(202, 0) / result.seconds)
        latencies += result.latencies
        errors += result.errors
        healthz = _closed_get_loop(ctx.port, scale.ingest_clients, scale.ingest_seconds)
        floor_rates.append(healthz)
    drain = ctx.settle()
    m = throughput("ingest_single", rates, floor_rates, "requests/s")
    m.extra.update(
        clients=scale.ingest_clients,
        request_p50_s=percentile(latencies, 50),
        request_p95_s=percentile(latencies, 95),
        errors=errors,
        rescore_drain_s=round(drain, 2),
    )
    m.note = "floor: GET /healthz requests/s, same clients, same gunicorn"
    m.target = "(no target; floor = trivial view)"
    out.append(noise(m, before, cpu))
    return out


def _closed_get_loop(port: int, clients: int, seconds: float) -> float:
    import threading

    counts, lock = [0], threading.Lock()
    deadline = time.perf_counter() + seconds

    def client():
        http = Http(port)
        while time.perf_counter() < deadline:
            if http.get("/healthz").status == 200:
                with lock:
                    counts[0] += 1
        http.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    return counts[0] / (time.perf_counter() - started)


# --- freshness ---------------------------------------------------------------------------------------------


def probe_leads(conn: psycopg.Connection, kinds: dict, count: int) -> list[str]:
    """Leads a demo request (+40) visibly changes and makes MQLs: stage lead, score 25-55, no demo
    request yet (so the Demo request rule's points grow by exactly 40)."""
    rows = conn.execute(
        "SELECT l.email FROM leads_lead l WHERE l.stage = 'lead' AND l.score BETWEEN 25 AND 55 "
        "AND NOT EXISTS (SELECT 1 FROM leads_interaction i WHERE i.lead_id = l.id AND i.kind_id = %s) "
        "ORDER BY md5(l.id::text) LIMIT %s",
        (kinds["demo_request"], count),
    ).fetchall()
    conn.rollback()
    return [r[0] for r in rows]


def _late_probes(conn: psycopg.Connection, late: list) -> list[dict]:
    """What the database says about each probe that timed out, read right after the windows: was
    its interaction stored, is its lead's request still pending (and since when), when was the
    lead last scored — so a timeout can be told apart: a lost task, a request deleted without its
    interaction being counted, or a worker far behind."""
    seen = []
    for probe in late:
        row = conn.execute(
            "SELECT i.lead_id, i.received_at, l.scored_at, "
            "(SELECT count(*) FROM scoring_rescorerequest r WHERE r.lead_id = i.lead_id), "
            "(SELECT min(requested_at) FROM scoring_rescorerequest r WHERE r.lead_id = i.lead_id), now() "
            "FROM leads_interaction i JOIN leads_lead l ON l.id = i.lead_id WHERE i.external_id = %s",
            (probe.external_id,),
        ).fetchone()
        conn.rollback()
        if row is None:
            seen.append({"external_id": probe.external_id, "stored": False})
            continue
        lead_id, received, scored_at, pending, oldest, now = row
        seen.append({
            "external_id": probe.external_id, "stored": True, "lead_id": lead_id,
            "received_s_ago": round((now - received).total_seconds(), 2),
            "scored_s_after_received": round((scored_at - received).total_seconds(), 2) if scored_at else None,
            "pending_requests": pending,
            "oldest_request_s_ago": round((now - oldest).total_seconds(), 2) if oldest else None,
        })
    return seen


def freshness(ctx: Context) -> list[Metric]:
    """One steady background load (1,000 interactions/s in batches of 50) for all the windows; in
    each window probes run back to back. Windows are consecutive, not drained in between: a worker
    that falls behind shows as latencies growing from window to window (and in cv)."""
    scale = ctx.scale
    before, cpu = env.loadavg(), env.CpuMeter().start()
    candidates = probe_leads(ctx.conn, ctx.kinds, 400)
    score_s, mql_s, floor_s, medians, windows, late = [], [], [], [], [], []
    http = Http(ctx.port, token=ctx.token, timeout=30)
    prober = load.Prober(http, ctx.run_id)
    waits = WaitSampler(ctx)
    ctx.settle()
    with load.Paced(ctx.port, ctx.token, ctx.pool, rate=1000, batch=50) as paced, waits:
        time.sleep(2.0)  # into the steady state first
        for _ in range(scale.heavy_repeats):
            probes = prober.window(candidates, scale.freshness_seconds)
            this = [30.0 if p.score_s is None else p.score_s for p in probes]
            late += [p for p in probes if p.score_s is None]
            mql_s += [p.mql_s for p in probes if p.mql_s is not None]
            floor_s += [p.post_s + p.get_s for p in probes]
            score_s += this
            medians.append(percentile(this, 50))
            windows.append(
                {
                    "probes": len(this),
                    "median_s": percentile(this, 50),
                    "max_s": max(this, default=None),
                    "queued_tasks": ctx.redis.queue_length(),
                }
            )
    http.close()
    timeouts, late_seen = len(late), _late_probes(ctx.conn, late)
    drain = ctx.settle(timeout=max(60.0, 4 * scale.freshness_seconds))
    m = latency("freshness", score_s, medians, floor_samples=floor_s)
    m.extra.update(
        background={
            "offered_per_s": round(paced.sent / (paced.ended - paced.started)),
            "accepted_per_s": round(paced.achieved),
            "missed": paced.missed,
            "errors": paced.errors,
            "batch_p50_s": percentile(paced.latencies, 50),
            "batch_p95_s": percentile(paced.latencies, 95),
        },
        windows=windows,
        probes=len(score_s),
        timeouts=timeouts,
        timed_out=late_seen,
        drain_after_s=round(drain, 2),
        db_waits=waits.summary(),
    )
    m.note = (
        "POST → new score readable via GET (a probe every 0.5 s, probes in flight polled round-robin, one "
        "GET per 20 ms), under 1,000 interactions/s offered in batches of 50 "
        f"({round(paced.achieved)}/s accepted); floor: the POST + one GET round trip"
        + (f"; {timeouts} probe(s) timed out at 30 s" if timeouts else "")
    )
    out = [noise(m.judge(TARGETS["freshness"]), before, cpu)]
    mq = latency("freshness_mql", mql_s, [], floor_samples=floor_s)
    mq.note = f"POST → stage mql readable, for the {len(mql_s)} probes that crossed the threshold"
    out.append(mq.judge(TARGETS["freshness"]))
    return out


class WaitSampler:
    """Samples pg_stat_activity of the bench database every 100 ms while active (a context manager,
    re-enterable): what the app's sessions are doing — on CPU, waiting for a row lock, for I/O..."""

    def __init__(self, ctx: Context):
        self.ctx, self.counts, self.samples, self.lock_waits = ctx, {}, 0, {}

    def __enter__(self):
        import threading

        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)

    def _run(self):
        with psycopg.connect(env.dsn(), autocommit=True) as conn:
            while not self.stop.wait(0.1):
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), wait_event_type, "
                    "regexp_replace(left(query, 60), '\\s+', ' ', 'g') FROM pg_stat_activity "
                    "WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"
                ).fetchall()
                self.samples += 1
                for event, kind, query in rows:
                    self.counts[event] = self.counts.get(event, 0) + 1
                    if kind == "Lock":
                        self.lock_waits[query] = self.lock_waits.get(query, 0) + 1

    def summary(self) -> dict:
        """Average number of active sessions in each state (e.g. {"CPU": 1.2, "Lock:tuple": 2.5})."""
        if not self.samples:
            return {}
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:6]
        out = {event: round(n / self.samples, 2) for event, n in top}
        waiting = sorted(self.lock_waits.items(), key=lambda kv: -kv[1])[:3]
        if waiting:
            out["lock_waits_in"] = {query: round(n / self.samples, 2) for query, n in waiting}
        return out


RUNNERS = {"pages": pages, "reports": reports, "rescore": rescore, "ingest": ingest, "freshness": freshness}
