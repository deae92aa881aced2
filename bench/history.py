"""The handoff history of the bench data set: MQL episodes for the leads that qualify.

Every lead is scored with the one-statement SQL floor; the qualifiers get an episode — the first
`open_handoffs` of them open in mql/sal/sql (the board), the rest closed (recycled, disqualified,
won, lost) — with transitions, rejection reasons and rule contributions, written with COPY. Recycled
leads are rejected after their last interaction, so the initial rescore re-promotes nobody.
"""

from __future__ import annotations

import json
import random

import psycopg

from . import floors
from .rows import DAY, SEED, copy_rows

MODEL_VERSION = "Default B2B v1"
OPEN_STAGES = (("mql", 50), ("sal", 30), ("sql", 20))
CLOSED_OUTCOMES = (("recycled", 45), ("disqualified", 15), ("won", 15), ("lost", 25))

HANDOFF_COLUMNS = (
    "id",
    "stage",
    "created_at",
    "sla_due_at",
    "accepted_at",
    "qualified_at",
    "closed_at",
    "outcome",
    "rejection_note",
    "score_at_mql",
    "breakdown_at_mql",
    "model_version",
    "assignee_id",
    "lead_id",
    "rejection_reason_id",
    "first_action_at",
)
TRANSITION_COLUMNS = (
    "id",
    "from_stage",
    "to_stage",
    "at",
    "note",
    "score",
    "actor_id",
    "handoff_id",
    "lead_id",
    "reason_id",
)
CONTRIBUTION_COLUMNS = ("handoff_id", "rule_id", "rule_type", "label", "points")


def _breakdown(spec, kind_ids: dict, row: dict) -> list[dict]:
    """The engine's breakdown from the floor's per-rule columns (same order and rounding)."""
    from scoring.engine import round_points

    rows = []
    for n, rule in enumerate(spec.fit_rules):
        rows.append(
            {"rule_id": rule.id, "type": "fit", "label": rule.label, "points": round_points(row[f"f{n}"])}
        )
    for n, rule in enumerate(r for r in spec.behavior_rules if r.kind in kind_ids):
        rows.append(
            {
                "rule_id": rule.id,
                "type": "behavior",
                "label": rule.label,
                "points": round_points(row.get(f"b{n}") or 0.0),
            }
        )
    rows = [r for r in rows if r["points"] != 0]
    rows.sort(key=lambda r: (-abs(r["points"]), r["label"], r["type"], r["rule_id"] or 0))
    return rows


class History:
    """Builds handoff, transition and contribution rows and the leads' new stages."""

    BANT = (
        "Budget approved for this year",
        "VP Marketing signs",
        "Scoring MQLs by hand today",
        "This quarter",
    )

    def __init__(self, rng, clock, sdr_ids, reasons, state):
        self.rng, self.clock, self.sdrs, self.state = rng, clock, sdr_ids, state
        self.keep = [r for r in reasons if not r[2]]
        self.disq = [r for r in reasons if r[2]]
        self.handoffs, self.transitions, self.contributions, self.leads = [], [], [], []
        self.next_sdr = 0

    def _sdr(self) -> int:
        self.next_sdr = (self.next_sdr + 1) % len(self.sdrs)
        return self.sdrs[self.next_sdr]

    def _hours(self, median: float) -> int:
        return int(3600 * median * self.rng.lognormvariate(0, 0.9))

    def add(self, lead_id: int, score: int, breakdown: list[dict], stage: str) -> None:
        rng, end = self.rng, self.clock.end
        created = self.state["created"][lead_id - 1]
        last = self.state["last"][lead_id - 1]
        assignee = self._sdr()
        moves = []  # (from, to, at, actor, reason)
        accepted = qualified = closed = first_action = reason = None
        outcome = ""
        if stage == "mql":
            mql = end - int(rng.uniform(0, 3 * DAY))
            if rng.random() < 0.15:
                assignee = None
        else:
            back = {"sal": (1, 20), "sql": (5, 60)}.get(stage, (2, 170))
            mql = end - int(rng.uniform(back[0] * DAY, back[1] * DAY))
        mql = max(mql, created + 60)
        moves.append(("lead", "mql", mql, None, None))
        if stage in ("sal", "sql", "won", "lost") or (stage == "recycled" and rng.random() < 0.3):
            accepted = first_action = min(mql + self._hours(4), end - 120)
            moves.append(("mql", "sal", accepted, assignee, None))
        if stage in ("sql", "won", "lost"):
            qualified = min(accepted + int(rng.uniform(DAY, 10 * DAY)), end - 90)
            moves.append(("sal", "sql", qualified, assignee, None))
        if stage in ("won", "lost"):
            opportunity = min(qualified + int(rng.uniform(DAY, 5 * DAY)), end - 60)
            closed = min(opportunity + int(rng.uniform(5 * DAY, 40 * DAY)), end - 30)
            moves += [
                ("sql", "opportunity", opportunity, assignee, None),
                ("opportunity", stage, closed, assignee, None),
            ]
            outcome = stage
        if stage in ("recycled", "disqualified"):
            code_id, _, _ = rng.choice(self.keep if stage == "recycled" else self.disq)
            reason = code_id
            frm = "sal" if accepted else "mql"
            closed = min((accepted or mql) + self._hours(6), end - 30)
            if stage == "recycled":
                # No positive engagement after the rejection: the initial rescore must not re-promote it.
                closed = min(max(closed, last + 60), end - 30)
            first_action = first_action or closed
            moves.append((frm, stage, closed, assignee, reason))
            outcome = "rejected" if stage == "recycled" else "disqualified"
        moves = [(f, t, min(max(at, mql), end - 1), a, r) for f, t, at, a, r in moves]
        handoff_id = len(self.handoffs) + 1
        c = self.clock
        self.handoffs.append(
            (
                handoff_id,
                stage,
                c(mql),
                c(mql + DAY),
                c(accepted),
                c(qualified),
                c(closed),
                outcome,
                "",
                score,
                json.dumps(breakdown),
                MODEL_VERSION,
                assignee,
                lead_id,
                reason,
                c(first_action),
            )
        )
        for frm, to, at, actor, why in moves:
            self.transitions.append(
                (len(self.transitions) + 1, frm, to, c(at), "", score, actor, handoff_id, lead_id, why)
            )
        for row in breakdown:
            self.contributions.append((handoff_id, row["rule_id"], row["type"], row["label"], row["points"]))
        bant = self.BANT if stage in ("sql", "won", "lost") else ("", "", "", "")
        self.leads.append((lead_id, stage, assignee, c(moves[-1][2]), *bant))


def _copy_lead_attribution(conn: psycopg.Connection) -> None:
    """Handoffs that record the lead's source and campaign at MQL time get them from the lead."""
    columns = {
        c
        for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'handoff_handoff'"
        ).fetchall()
    }
    sets = [f"{c} = l.{c}" for c in ("source", "campaign_id") if c in columns]
    if sets:
        conn.execute(
            f"UPDATE handoff_handoff h SET {', '.join(sets)} FROM leads_lead l WHERE l.id = h.lead_id"
        )


def stage_history(conn, scale, spec, model, kind_ids, clock, sdr_ids, state) -> dict:
    """Score every lead with the SQL floor, stage the qualifiers (open or closed episodes)."""
    rng = random.Random(SEED + 7)
    floors.scoring_floor(conn, spec, kind_ids, clock.anchor, table="bench_gen_scores")
    threshold = float(model.mql_threshold)
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    qualifiers = cur.execute(
        "SELECT * FROM bench_gen_scores WHERE score >= %s ORDER BY md5(lead_id::text)", (threshold,)
    ).fetchall()
    if len(qualifiers) < scale.open_handoffs:
        extra = cur.execute(
            "SELECT * FROM bench_gen_scores WHERE score < %s ORDER BY score DESC LIMIT %s",
            (threshold, scale.open_handoffs - len(qualifiers)),
        ).fetchall()
        qualifiers += extra
    reasons = conn.execute(
        "SELECT id, code, disqualifies FROM handoff_rejectionreason ORDER BY id"
    ).fetchall()
    history = History(rng, clock, sdr_ids, reasons, state)
    open_stages = [s for s, _ in OPEN_STAGES]
    open_w = [w for _, w in OPEN_STAGES]
    closed_stages = [s for s, _ in CLOSED_OUTCOMES]
    closed_w = [w for _, w in CLOSED_OUTCOMES]
    for index, row in enumerate(qualifiers):
        if index < scale.open_handoffs:
            stage = rng.choices(open_stages, open_w)[0]
        else:
            stage = rng.choices(closed_stages, closed_w)[0]
        history.add(row["lead_id"], row["score"], _breakdown(spec, kind_ids, row), stage)
    copy_rows(conn, "handoff_handoff", HANDOFF_COLUMNS, history.handoffs)
    copy_rows(conn, "handoff_transition", TRANSITION_COLUMNS, history.transitions)
    copy_rows(conn, "handoff_handoffcontribution", CONTRIBUTION_COLUMNS, history.contributions)
    _copy_lead_attribution(conn)
    conn.execute(
        "CREATE TEMP TABLE bench_stages (id bigint, stage text, owner_id int, changed timestamptz, "
        "b1 text, b2 text, b3 text, b4 text) ON COMMIT DROP"
    )
    copy_rows(
        conn, "bench_stages", ("id", "stage", "owner_id", "changed", "b1", "b2", "b3", "b4"), history.leads
    )
    conn.execute(
        "UPDATE leads_lead l SET stage = s.stage, owner_id = s.owner_id, stage_changed_at = s.changed, "
        "bant_budget = s.b1, bant_authority = s.b2, bant_need = s.b3, bant_timing = s.b4 "
        "FROM bench_stages s WHERE l.id = s.id"
    )
    conn.execute("DROP TABLE bench_gen_scores")
    conn.commit()
    opened = sum(1 for h in history.handoffs if h[1] in ("mql", "sal", "sql"))
    return {
        "qualifying": len(qualifiers),
        "handoffs": len(history.handoffs),
        "open_handoffs": opened,
        "transitions": len(history.transitions),
    }
