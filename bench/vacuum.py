"""A stand-in for autovacuum, which this machine's PostgreSQL runs without."""

from __future__ import annotations

import time

HOT_TABLES = ("leads_lead", "leads_interaction", "scoring_rescorerequest", "handoff_handoff")


def stand_in_for_autovacuum(conn, notes: list[str]) -> None:
    """This machine's PostgreSQL runs with autovacuum off (a setting of the machine, not the app).
    Without it every rescore run leaves a million dead lead rows and clears the visibility map, so
    each metric would pay for the previous one's garbage. A deployment vacuums automatically; here
    the harness runs VACUUM ANALYZE on the app's busiest tables before each group, after each
    rescore run before its SQL floor is timed, and says so."""
    if conn.execute("SHOW autovacuum").fetchone()[0] == "on":
        conn.rollback()
        return
    conn.rollback()
    started = time.perf_counter()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        for table in HOT_TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        conn.autocommit = autocommit
    note = (
        "autovacuum is off on this server: VACUUM ANALYZE of the busiest tables before each group "
        "(and after each rescore run, before its SQL floor) stands in for it"
    )
    if note not in notes:
        notes.append(note)
    print(f"  · VACUUM ANALYZE (autovacuum is off here): {time.perf_counter() - started:.1f} s", flush=True)
