"""A stand-in for a database server's memory: warm the OS page cache before each group."""

from __future__ import annotations

import time

import psycopg


def warm_page_cache(conn, notes: list[str]) -> None:
    """Read the bench database's tables and indexes into the OS page cache (pg_prewarm, 'read').

    This VM's host takes unused memory back within a minute or two: with 20 of 24 GB free, the page
    cache fell from 5.5 to 0.7 GB, so a 1M run measured minutes after the data was written read its
    6 GB database from disk and every figure came out 1.3-2x slower than one measured just after
    (unchanged code: board p95 30 -> 48 ms). A server with this much memory keeps its database
    cached; each group starts from that state, and what the group then touches stays warm."""
    started = time.perf_counter()
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        relations = conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't', 'm') AND pg_relation_size(c.oid) > 0"
        ).fetchall()
        pages = sum(conn.execute("SELECT pg_prewarm(%s::regclass, 'read')", [name]).fetchone()[0]
                    for (name,) in relations)
        conn.commit()
    except psycopg.Error as exc:
        conn.rollback()
        note = f"could not warm the page cache (pg_prewarm: {exc.diag.message_primary}); figures may include disk reads"
        if note not in notes:
            notes.append(note)
        return
    note = ("the OS page cache is warmed with the database's tables and indexes (pg_prewarm) before each "
            "group: this VM's host reclaims unused page cache within minutes")
    if note not in notes:
        notes.append(note)
    print(f"  · warmed the page cache: {pages * 8 / 2**20:.1f} GiB in {time.perf_counter() - started:.1f} s",
          flush=True)
