"""Demo history: which demo leads became MQLs when, and what the SDRs did with them.

Everything goes through the real services (scoring engine, handoff state machine) with the times
set in the past, so the board and the reports show what the app itself would have recorded.
"""

import random
from datetime import datetime, timedelta

from handoff import services as handoffs
from handoff.models import RejectionReason
from leads.models import Interaction, Lead
from scoring import engine
from scoring.defaults import DEFAULT_MODEL
from scoring.models import ScoringModel
from scoring.serialization import model_from_dict
from scoring.services import model_publish

# Rejection reasons an SDR picks, by how well the lead fits.
POOR_FIT_REASONS = (("not_decision_maker", 40), ("student_job_seeker", 15), ("bad_data", 15), ("no_need", 30))
GOOD_FIT_REASONS = (("no_budget", 35), ("bad_timing", 35), ("competitor", 10), ("duplicate", 5), ("no_need", 15))


def _pick(rng, weighted):
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _hours(rng, median: float) -> timedelta:
    """A log-normal delay: most quick, a long tail (some SLA misses)."""
    return timedelta(hours=median * rng.lognormvariate(0, 0.9))


def _could_ever_qualify(spec, facts, interactions) -> bool:
    """A cheap upper bound (no decay, no windows, every positive rule counted) below the threshold
    means the lead never qualified: most leads are ruled out without scoring them over time."""
    fit = sum(points for _, points in engine.fit_points(spec, facts))
    counts: dict[str, int] = {}
    for fact in interactions:
        counts[fact.kind] = counts.get(fact.kind, 0) + 1
    best = fit
    for rule in spec.behavior_rules:
        if rule.points > 0 and counts.get(rule.kind):
            total = rule.points * counts[rule.kind]
            best += min(total, rule.max_points) if rule.max_points else total
    return best >= spec.mql_threshold


def _first_qualifying_moment(spec, facts, interactions, anchor) -> tuple[datetime, engine.ScoreResult] | None:
    """The first interaction time at which the lead's score reached the threshold, if any.
    Scores only change upwards at a positively scored interaction, so only those moments are tried."""
    if not _could_ever_qualify(spec, facts, interactions):
        return None
    positive = {rule.kind for rule in spec.behavior_rules if rule.points > 0}
    for fact in sorted(interactions, key=lambda f: f.occurred_at):
        if fact.kind not in positive:
            continue
        result = engine.score_lead(spec, facts, interactions, fact.occurred_at)
        if result.qualifies(spec):
            return fact.occurred_at, result
    return None


def seed_history(*, rng: random.Random, users: dict, anchor: datetime) -> int:
    """Publish the default model and play out six months of MQL handoffs; return handoffs made."""
    # seed_demo --force keeps scoring models: reuse the default one if an earlier seed made it.
    model = ScoringModel.objects.filter(name=DEFAULT_MODEL["name"]).first() or model_from_dict(DEFAULT_MODEL)
    spec = model.to_spec()
    kinds = {rule.kind for rule in spec.behavior_rules}
    facts_by_lead: dict[int, list] = {}
    for lead_id, slug, occurred_at, props, ext in Interaction.objects.filter(kind__slug__in=kinds).values_list(
        "lead_id", "kind__slug", "occurred_at", "properties", "external_id"
    ):
        facts_by_lead.setdefault(lead_id, []).append(engine.InteractionFact(slug, occurred_at, props, ext))

    version = f"{model.name} v{model.version + 1}"  # the version publishing gives it below
    reasons = {r.code: r for r in RejectionReason.objects.all()}
    moments = []
    for lead in Lead.objects.filter(pk__in=list(facts_by_lead)).order_by("pk"):
        found = _first_qualifying_moment(spec, engine.lead_facts(lead), facts_by_lead[lead.pk], anchor)
        if found:
            moments.append((found[0] + timedelta(minutes=rng.randint(2, 30)), lead, found[1]))

    # The same user objects throughout, so their permission caches are filled once.
    sdrs = {user.pk: user for user in users.values()}
    count = 0
    # In time order, so round-robin assignment and SDR workload unfold as they would have.
    for mql_at, lead, result in sorted(moments, key=lambda m: (m[0], m[1].pk)):
        if mql_at >= anchor:
            continue
        # The score the lead had then, so audit rows record it (the final publish rescores to today).
        Lead.objects.filter(pk=lead.pk).update(
            score=result.score, fit_score=result.fit_score, engagement_score=result.engagement_score
        )
        lead.score = result.score
        promotion = handoffs.lead_promote_to_mql(
            lead=lead, score=result.score, breakdown=result.breakdown, model_version=version, now=mql_at
        )
        count += 1
        _play_out(rng, promotion, result, reasons, mql_at, anchor, sdrs)

    model_publish(model=model, by=users.get("marketer"))
    return count


def _play_out(rng, promotion, result, reasons, mql_at: datetime, anchor: datetime, sdrs: dict) -> None:
    """What the assigned SDR did with one MQL, as far as the time up to `anchor` allows."""
    handoff_id, sdr = promotion.handoff_id, sdrs.get(promotion.assignee_id)
    if sdr is None:
        return
    good_fit = result.fit_score >= 30
    at = mql_at + _hours(rng, 4 if good_fit else 8)
    if at >= anchor:
        return  # still waiting on the board (maybe overdue)
    if rng.random() > (0.75 if good_fit else 0.4):
        reason = reasons[_pick(rng, GOOD_FIT_REASONS if good_fit else POOR_FIT_REASONS)]
        handoffs.handoff_reject(handoff_id=handoff_id, actor=sdr, reason=reason, note=_note(rng, reason), now=at)
        return
    handoffs.handoff_accept(handoff_id=handoff_id, actor=sdr, now=at)

    at += timedelta(days=rng.uniform(1, 10))
    if at >= anchor:
        return
    if rng.random() < 0.3:
        reason = reasons[_pick(rng, GOOD_FIT_REASONS)]
        handoffs.handoff_reject(handoff_id=handoff_id, actor=sdr, reason=reason, note=_note(rng, reason), now=at)
        return
    handoffs.handoff_qualify(
        handoff_id=handoff_id, actor=sdr, budget=rng.choice(["Approved for this year", "25–50k", "Needs CFO sign-off"]),
        authority=rng.choice(["Decision maker", "Champion; VP signs", "Committee of three"]),
        need=rng.choice(["Scores are stale in HubSpot", "No feedback loop to marketing", "Replacing spreadsheets"]),
        timing=rng.choice(["This quarter", "Next quarter", "Before renewal in 6 months"]), now=at,
    )

    at += timedelta(days=rng.uniform(2, 14))
    if at >= anchor or rng.random() > 0.6:
        return
    handoffs.handoff_open_opportunity(handoff_id=handoff_id, actor=sdr, now=at)

    at += timedelta(days=rng.uniform(10, 40))
    if at >= anchor or rng.random() < 0.25:
        return
    handoffs.handoff_close(handoff_id=handoff_id, actor=sdr, won=rng.random() < 0.45, now=at)


def _note(rng, reason) -> str:
    notes = {
        "no_budget": ["Budget frozen until next fiscal year", "Only evaluating free tools"],
        "not_decision_maker": ["Works in a team of one; no say on tools", "Intern researching for a manager"],
        "bad_timing": ["Mid-migration to a new CRM; call back in Q3", "Just signed a 2-year contract"],
        "no_need": ["Has fewer than 50 leads a month", "Only needed the whitepaper"],
        "bad_data": ["Phone and company do not match", "Fake name"],
        "competitor": ["Works at a competitor"],
        "student_job_seeker": ["Student writing a thesis", "Looking for a job"],
        "duplicate": ["Same person as an existing lead with a personal address"],
    }
    return rng.choice(notes.get(reason.code, [""]))
