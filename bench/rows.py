"""Row generators for the bench data set: people, leads and interactions as COPY text, fast.

Everything random comes from one seeded random.Random, so the same scale gives the same data (only
the timestamps move with the time of the run).
"""

from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

SEED = 20250101
HISTORY_DAYS = 182  # six months of history, ending a minute before generation
DAY = 86400

# Share of all interactions per kind (ordinary sessions are mostly page views).
KIND_WEIGHTS = {
    "page_view": 50,
    "email_click": 16,
    "pricing_page_view": 10,
    "content_download": 10,
    "webinar_attended": 5,
    "demo_request": 1.2,
    "contact_sales": 0.8,
    "unsubscribe": 1.0,
}
LEAD_COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "job_title",
    "seniority",
    "company",
    "industry",
    "company_size",
    "annual_revenue",
    "country",
    "source",
    "stage",
    "stage_changed_at",
    "score",
    "fit_score",
    "engagement_score",
    "score_breakdown",
    "scored_at",
    "bant_budget",
    "bant_authority",
    "bant_need",
    "bant_timing",
    "created_at",
    "updated_at",
    "campaign_id",
    "owner_id",
)
INTERACTION_COLUMNS = ("id", "occurred_at", "properties", "external_id", "received_at", "kind_id", "lead_id")
INTERACTION_COLUMNS = ("id", "occurred_at", "properties", "external_id", "received_at", "kind_id", "lead_id")


# --- text helpers ----------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Safe for COPY's text format (no tab, newline or backslash) and ASCII-only."""
    return re.sub(r"[\t\n\r\\]", " ", text).encode("ascii", "ignore").decode().strip()


class Clock:
    """Integer seconds since `start` (the beginning of the history) as timestamptz text, fast."""

    def __init__(self, anchor: datetime):
        self.anchor = anchor
        self.start = anchor - timedelta(days=HISTORY_DAYS)
        self.end = HISTORY_DAYS * DAY  # = anchor
        self.days = [(self.start.date() + timedelta(days=d)).isoformat() for d in range(HISTORY_DAYS + 2)]
        self.hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        self.offset = self.start.hour * 3600 + self.start.minute * 60 + self.start.second

    def text(self, t: int) -> str:
        t += self.offset
        return f"{self.days[t // DAY]} {self.hms[t % DAY]}+00"

    def __call__(self, t: int | None) -> str:
        return "\\N" if t is None else self.text(int(t))


def _weighted(rng: random.Random, items, weights, k: int) -> list:
    return rng.choices(items, weights=weights, k=k)


# --- leads -------------------------------------------------------------------------------------------


class People:
    """Pools of names and companies (Faker, seeded), drawn from per lead."""

    def __init__(self, rng: random.Random, companies: int):
        from faker import Faker

        from leads.demo import COMPANY_SIZES, COUNTRIES, INDUSTRIES

        fake = Faker("en_US")
        fake.seed_instance(SEED)
        self.first = sorted({_clean(fake.first_name()) for _ in range(600)} - {""})
        self.last = sorted({_clean(fake.last_name()) for _ in range(1500)} - {""})
        self.companies = []
        for n in range(companies):
            country, _, _, tld = rng.choices(COUNTRIES, weights=[c[1] for c in COUNTRIES])[0]
            industry, _, per_employee = rng.choices(INDUSTRIES, weights=[i[1] for i in INDUSTRIES])[0]
            (low, high), _ = rng.choices(COMPANY_SIZES, weights=[s[1] for s in COMPANY_SIZES])[0]
            size = min(max(round(math.exp(rng.uniform(math.log(low), math.log(high + 1)))), low), high)
            revenue = (
                None
                if rng.random() < 0.1
                else max(10_000, round(size * per_employee * rng.lognormvariate(0, 0.35), -3))
            )
            name = _clean(fake.company())
            slug = "".join(re.findall(r"[a-z0-9]+", name.lower())[:2]) or "company"
            self.companies.append(
                (name, f"{slug}{n}.{tld if rng.random() < 0.7 else 'com'}", industry, size, revenue, country)
            )


def lead_rows(rng, scale, people, campaigns, clock, state):
    """Yields COPY lines for leads; fills state: created[i], weight[i] (engagement propensity)."""
    from leads.demo import FREE_MAIL_DOMAINS, NO_COMPANY_TITLES, SOURCE_CHANNELS, SOURCE_WEIGHTS, TITLES

    titles = [(t, s) for t, s, _ in TITLES]
    title_w = [w for _, _, w in TITLES]
    sources = list(SOURCE_WEIGHTS)
    source_w = list(SOURCE_WEIGHTS.values())
    free = [d for d, _ in FREE_MAIL_DOMAINS]
    free_w = [w for _, w in FREE_MAIL_DOMAINS]
    n = scale.leads
    picks_title = _weighted(rng, titles, title_w, n)
    picks_source = _weighted(rng, sources, source_w, n)
    senior = {"director", "vp", "c_level"}
    created, weight = state["created"], state["weight"]
    for i in range(n):
        lead_id = i + 1
        title, seniority = picks_title[i]
        source = picks_source[i]
        first, last = rng.choice(people.first), rng.choice(people.last)
        if title in NO_COMPANY_TITLES:
            company = industry = country = ""
            size = revenue = None
            domain = rng.choices(free, free_w)[0]
        else:
            company, domain, industry, size, revenue, country = rng.choice(people.companies)
            if rng.random() < 0.065:
                domain = rng.choices(free, free_w)[0]
        email = f"{first}.{last}.{lead_id}@{domain}".lower().replace(" ", "")
        channels = SOURCE_CHANNELS.get(source)
        campaign = None
        if channels:
            ids = [c for ch in channels for c in campaigns.get(ch, ())]
            campaign = rng.choice(ids) if ids and rng.random() < 0.8 else None
        t = int(clock.end * rng.random() ** 0.8)  # more recent leads than old ones
        created.append(t)
        w = (
            rng.lognormvariate(0, 1.0)
            * (1.8 if seniority in senior else 1.0)
            * (1.3 if (size or 0) >= 200 else 1.0)
        )
        weight.append(w)
        ts = clock(t)
        yield (
            "\t".join(
                (
                    str(lead_id),
                    email,
                    first,
                    last,
                    title,
                    seniority,
                    company,
                    industry,
                    "\\N" if size is None else str(size),
                    "\\N" if revenue is None else f"{int(revenue)}.00",
                    country,
                    source,
                    "lead",
                    ts,
                    "0",
                    "0",
                    "0",
                    "[]",
                    "\\N",  # scored_at
                    "",
                    "",
                    "",
                    "",
                    ts,
                    ts,
                    "\\N" if campaign is None else str(campaign),
                    "\\N",
                )
            )
            + "\n"
        )


def _interaction_counts(rng, total: int, weight: list[float]) -> list[int]:
    """Per-lead interaction counts proportional to the weights, summing exactly to `total`."""
    factor = total / sum(weight)
    counts = [int(w * factor) for w in weight]
    missing = total - sum(counts)
    n = len(counts)
    for _ in range(missing):
        counts[rng.randrange(n)] += 1
    return counts


def interaction_rows(rng, scale, kinds, clock, state):
    """Yields COPY lines for interactions; fills state["last"][i] (last interaction time, or -1)."""
    from leads.demo import ASSETS, PAGES

    slugs = list(KIND_WEIGHTS)
    kind_ids = [kinds[s] for s in slugs]
    kind_w = list(KIND_WEIGHTS.values())
    page_props = [json.dumps({"path": p}) for p, _ in PAGES]
    page_w = [w for _, w in PAGES]
    asset_props = [json.dumps({"asset": _clean(title), "asset_type": kind}) for title, kind in ASSETS]
    pricing = json.dumps({"path": "/pricing"})
    page_id, content_id, pricing_id = (
        kinds["page_view"],
        kinds["content_download"],
        kinds["pricing_page_view"],
    )
    counts = _interaction_counts(rng, scale.interactions, state["weight"])
    created, last = state["created"], state["last"]
    end = clock.end
    iid = 0
    rand = rng.random
    for i, count in enumerate(counts):
        lead_id = i + 1
        if not count:
            last.append(-1)
            continue
        start = created[i]
        span = end - start
        picks = rng.choices(kind_ids, weights=kind_w, k=count)
        latest = -1
        for kind_id in picks:
            iid += 1
            t = start + int(span * rand())
            if t > latest:
                latest = t
            if kind_id == page_id:
                props = rng.choices(page_props, page_w)[0]
            elif kind_id == content_id:
                props = asset_props[int(rand() * len(asset_props))]
            elif kind_id == pricing_id:
                props = pricing
            else:
                props = "{}"
            ts = clock.text(t)
            yield f"{iid}\t{ts}\t{props}\tgen-{iid}\t{ts}\t{kind_id}\t{lead_id}\n"
        last.append(latest)


def new_columns(table: str, known) -> tuple[list[str], list]:
    """NOT NULL columns of `table` that the generator does not know yet (added by a later migration),
    with the value their Django field gives by default — so a new column does not break the COPY."""
    from django.apps import apps
    from django.utils import timezone

    model = next((m for m in apps.get_models() if m._meta.db_table == table), None)
    names, values = [], []
    for f in model._meta.concrete_fields if model else ():
        if f.primary_key or f.null or f.column in known:
            continue
        value = f.get_default()
        if value is None:
            kind = f.get_internal_type()
            value = (
                0
                if "Integer" in kind or kind in ("FloatField", "DecimalField")
                else False
                if kind == "BooleanField"
                else timezone.now()
                if "Date" in kind
                else ""
            )
        names.append(f.column)
        values.append(value)
    return names, values


def copy_text(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    elif isinstance(value, datetime):
        value = value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def copy_lines(conn: psycopg.Connection, table: str, columns, lines) -> int:
    """COPY text lines (in `columns` order) into `table`; returns the number of rows."""
    extra, values = new_columns(table, columns)
    suffix = "".join("\t" + copy_text(v) for v in values)
    count = 0
    buffer: list[str] = []
    with conn.cursor() as cur:
        with cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, [*columns, *extra]))
            )
        ) as copy:
            for line in lines:
                buffer.append(line[:-1] + suffix + "\n" if suffix else line)
                if len(buffer) >= 20_000:
                    copy.write("".join(buffer))
                    count += len(buffer)
                    buffer.clear()
            if buffer:
                copy.write("".join(buffer))
                count += len(buffer)
    return count


def plain_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that back no constraint (safe to drop and rebuild)."""
    return conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.tablename = %s AND i.schemaname = 'public' AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)",
        (table,),
    ).fetchall()


def copy_rows(conn: psycopg.Connection, table: str, columns, rows) -> None:
    """COPY Python rows (in `columns` order; "\\N" or None for NULL) into `table`."""
    extra, values = new_columns(table, columns) if not table.startswith("bench_") else ([], [])
    with conn.cursor() as cur:
        with cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, [*columns, *extra]))
            )
        ) as copy:
            for row in rows:
                copy.write_row([*(None if v == "\\N" else v for v in row), *values])
