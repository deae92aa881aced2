"""The order of things: for each scale (the growth points first, then the requested one) prepare
the database, start the processes, measure, stop them; then the growth ratios and the report."""

from __future__ import annotations

import argparse
import signal
import time
import traceback
import uuid
from datetime import UTC, datetime

import psycopg

from . import datagen, env, report, scales, suite
from .load import IngestPool
from .metrics import TARGETS, Metric
from .processes import Redis, Stack
from .cache import warm_page_cache
from .vacuum import stand_in_for_autovacuum

ORDER = ("pages", "reports", "rescore", "ingest", "freshness")  # read-only first, data-changing last


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Accord's benchmark harness.")
    parser.add_argument("--scale", default="default", choices=sorted(scales.SCALES))
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated metrics or groups: "
        + ", ".join(f"{g} ({', '.join(n)})" for g, n in suite.GROUPS.items()),
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="reuse the generated data when its scale matches (undoing earlier bench changes)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats of every metric (default: per scale)"
    )
    parser.add_argument(
        "--no-growth", action="store_true",
        help="measure only the requested scale, not the smaller growth points before it",
    )
    return parser.parse_args(argv)


def groups_for(only: str) -> list[str]:
    if not only:
        return list(ORDER)
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    chosen = [g for g in ORDER if g in wanted or wanted & set(suite.GROUPS[g])]
    unknown = wanted - set(suite.GROUPS) - {n for names in suite.GROUPS.values() for n in names}
    if unknown or not chosen:
        raise SystemExit(f"--only: unknown metric(s) {', '.join(sorted(unknown)) or only}")
    return chosen


def _info(name: str, value: float, note: str, **extra) -> Metric:
    return Metric(
        name, "s", value=value, p50=value, p95=value, n=1, note=note, extra=extra, target="(information)"
    )


def _initial_rescore(scale, stack: Stack) -> float:
    """Publish the default model (imported by datagen): the first full rescore, on the real worker."""
    from scoring.models import ScoringModel
    from scoring.services import model_publish

    model = ScoringModel.objects.get(name="Default B2B")
    started = time.perf_counter()
    run = model_publish(model=model)
    status, _ = suite._wait_run(run.pk, scale.rescore_timeout * 2, stack)
    if status != "done":
        raise RuntimeError(f"the initial rescore did not finish ({status})")
    return time.perf_counter() - started


def run_scale(
    scale, database: str, redis: Redis, args, groups: list[str], notes: list[str]
) -> dict[str, Metric]:
    from django.utils import timezone

    from leads.services import api_token_create

    print(
        f"\n== scale {scale.name}: {scale.leads:,} leads, {scale.interactions:,} interactions, "
        f"{scale.open_handoffs:,} open handoffs (database {database})",
        flush=True,
    )
    env.use_database(database)
    datagen.ensure_database()
    datagen.migrate(env.process_env(redis.url))
    with psycopg.connect(env.dsn()) as conn:
        meta = datagen.read_meta(conn)
    reuse = bool(args.keep_data and meta.get("data_key") == scales.data_key(scale) and meta.get("complete"))
    metrics: dict[str, Metric] = {}
    if reuse:
        undone = datagen.restore(meta["generated_at"])
        print(f"  · reusing the data generated at {meta['generated_at']} ({undone})", flush=True)
        gen = meta["datagen"]
        metrics["datagen"] = _info(
            "datagen", gen["seconds"], f"reused (--keep-data); generated {meta['generated_at']}", **gen
        )
        if meta.get("initial_rescore_s"):
            metrics["rescore_initial"] = _info(
                "rescore_initial", meta["initial_rescore_s"], "from the generating run"
            )
    else:
        gen = datagen.generate(scale)
        with psycopg.connect(env.dsn()) as conn:
            datagen.write_meta(
                conn,
                data_key=scales.data_key(scale),
                generated_at=timezone.now().isoformat(),
                datagen=gen,
                complete=False,
            )
        metrics["datagen"] = _info(
            "datagen",
            gen["seconds"],
            f"COPY {gen['leads']:,} leads, {gen['interactions']:,} interactions, "
            f"{gen['handoffs']:,} handoffs ({gen['open_handoffs']:,} open)",
            **gen,
        )
    redis.command("FLUSHALL")
    stack = Stack(env.process_env(redis.url))
    conn = psycopg.connect(env.dsn())
    try:
        stack.start()
        print(
            f"  · gunicorn on 127.0.0.1:{stack.port}, Celery worker + beat on redis :{redis.port}", flush=True
        )
        if not reuse:
            seconds = _initial_rescore(scale, stack)
            metrics["rescore_initial"] = _info(
                "rescore_initial",
                seconds,
                f"publish the default model: first full rescore of {scale.leads:,} "
                f"leads ({scale.leads / seconds:,.0f} leads/s)",
            )
            print(f"  · initial rescore: {seconds:.1f} s", flush=True)
            with psycopg.connect(env.dsn()) as c:
                # Changes after this moment are the bench's own: --keep-data undoes them.
                datagen.write_meta(
                    c, complete=True, initial_rescore_s=seconds, generated_at=timezone.now().isoformat()
                )
            with psycopg.connect(env.dsn(), autocommit=True) as c:  # the rescore rewrote every lead row
                c.execute("VACUUM ANALYZE leads_lead")
        run_id = uuid.uuid4().hex[:8]
        _, token = api_token_create(name=f"bench-{run_id}")
        kinds = dict(conn.execute("SELECT slug, id FROM leads_interactionkind").fetchall())
        # The load's leads: every lead in stage "lead" scoring under 25 (up to 200k), so however
        # many page views and email clicks it posts (capped rules, ≤ +20) nobody becomes an MQL.
        leads = conn.execute(
            "SELECT id, email FROM leads_lead WHERE stage = 'lead' AND score < 25 "
            "ORDER BY md5(id::text) LIMIT 200000"
        ).fetchall()
        conn.rollback()
        ctx = suite.Context(scale, stack, redis, conn, token, run_id, kinds, IngestPool(leads, kinds, run_id))
        ctx.settle()
        for group in groups:
            stand_in_for_autovacuum(conn, notes)
            warm_page_cache(conn, notes)
            print(f"  · {group} …", flush=True)
            started = time.perf_counter()
            try:
                for m in suite.RUNNERS[group](ctx):
                    metrics[m.name] = m
                    print(
                        f"    {m.name}: value {report.fmt(m.value, m.unit)}, "
                        f"floor {report.fmt(m.floor, m.unit)}, ratio {report.ratio(m.ratio)}",
                        flush=True,
                    )
            except Exception as exc:  # one group failing must not lose the others' figures
                traceback.print_exc()
                metrics[f"{group}_error"] = Metric(
                    f"{group}_error", "s", note=f"{type(exc).__name__}: {exc}"[:300]
                )
            print(f"    ({time.perf_counter() - started:.0f} s)", flush=True)
        notes += [f"{scale.name}: {n}" for n in ctx.notes]
        floors_cleanup(conn)
    finally:
        stack.stop()
        conn.close()
    return metrics


def floors_cleanup(conn: psycopg.Connection) -> None:
    from .floors import drop_scratch

    drop_scratch(conn)


# --- growth ---------------------------------------------------------------------------------------------


def growth(per_scale: dict[str, dict[str, Metric]], sequence) -> dict[str, Metric]:
    """Cost at the largest scale relative to the smallest, normalised so that 1 = the expected shape:
    linear (÷ the data-size ratio) for rescoring, flat for ingest rates, pages and freshness."""
    if len(sequence) < 2:
        return {}
    small, large = sequence[0], sequence[-1]
    a, b = per_scale.get(small.name, {}), per_scale.get(large.name, {})
    size = large.leads / small.leads
    out = {}

    def add(name, value, target, note):
        m = Metric(f"growth_{name}", "×", value=value, p50=value, p95=value, n=2, note=note)
        out[m.name] = m.judge(target) if target else m
        if not target:
            m.target = "(information)"

    span = f"{small.name} → {large.name}, {size:.0f}× the leads"
    for name in ("rescore_full", "rescore_single_rule"):
        if a.get(name) and b.get(name) and a[name].value and b[name].value:
            add(
                name,
                b[name].value / a[name].value / size,
                TARGETS["growth_linear"],
                f"{span}: {a[name].value:.2f} s → {b[name].value:.2f} s; (time ratio) / (size ratio)",
            )
    for name in ("ingest_batch", "ingest_single"):
        if a.get(name) and b.get(name) and a[name].value and b[name].value:
            add(
                name,
                a[name].value / b[name].value,
                TARGETS["growth_linear"] if name == "ingest_batch" else None,
                f"{span}: {a[name].value:,.0f} → {b[name].value:,.0f} {a[name].unit}; "
                "cost per item, larger / smaller",
            )
    for name in ("board", "board_manager", "freshness", *[f"report_{r}" for r in suite.REPORTS]):
        if a.get(name) and b.get(name) and a[name].p95 and b[name].p95:
            add(
                name,
                b[name].p95 / a[name].p95,
                TARGETS["growth_flat"] if name.startswith("board") else None,
                f"{span}: p95 {a[name].p95 * 1000:.0f} ms → {b[name].p95 * 1000:.0f} ms",
            )
    if a.get("board_queries") and b.get("board_queries"):
        qa, qb = a["board_queries"].value, b["board_queries"].value
        m = Metric(
            "growth_board_queries",
            "queries",
            value=qb - qa,
            p50=qb - qa,
            p95=qb - qa,
            n=2,
            target="constant (difference 0)",
            met=qb == qa,
            note=f"{span}: {qa} → {qb} queries",
        )
        out[m.name] = m
    return out


def main(argv=None) -> int:
    args = parse(argv)
    scale = scales.get(args.scale, args.repeats)
    groups = groups_for(args.only)
    growth_from = () if args.no_growth else scale.growth_from
    sequence = [scales.get(name, args.repeats) for name in growth_from] + [scale]
    redis = Redis()
    env.setup_django(redis.url)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    idle = env.cpu_busy(2.0)
    load_before = env.loadavg()
    print(
        f"Accord bench: scale {scale.name}, groups {', '.join(groups)}; "
        f"machine CPU {idle}% busy before start, load {load_before}",
        flush=True,
    )
    per_scale, notes = {}, []
    started = time.perf_counter()
    try:
        redis.start()
        for s in sequence:
            database = env.MAIN_DB if s is scale else f"{env.MAIN_DB}_{s.name}"
            per_scale[s.name] = run_scale(s, database, redis, args, groups, notes)
    except KeyboardInterrupt:
        print("\ninterrupted: every process the bench started has been stopped", flush=True)
        return 130
    finally:
        redis.stop()

    metrics = dict(per_scale[scale.name])
    for s in sequence[:-1]:
        metrics.update({f"{name}@{s.name}": m for name, m in per_scale[s.name].items()})
    metrics.update(growth(per_scale, sequence))
    with psycopg.connect(env.dsn()) as conn:
        pg_version = conn.execute("SELECT version()").fetchone()[0]
        database_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    machine = env.machine(pg_version)
    machine["noise"] = {
        "idle_cpu_busy_pct": idle,
        "load_before": load_before,
        "load_after": env.loadavg(),
        "wall_s": round(time.perf_counter() - started),
        "database_gib": round(database_bytes / 2**30, 1),
        "page_cache_gib_at_end": env.page_cache_gib(),
    }
    path = report.write(scale.name, machine, metrics, notes, full=not args.only)
    print("\n" + report.table_text(metrics))
    print(
        f"\nwrote {path} and {path.with_suffix('.md')} ({datetime.now(UTC):%H:%M} UTC, "
        f"{time.perf_counter() - started:.0f} s)"
    )
    return 0
