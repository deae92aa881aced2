"""Lead scoring engine: fit + decayed, capped engagement -> integer score.

Pure Python (stdlib only). The Django side converts models into the specs
below; see docs/scoring-semantics.md for the contract this implements.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .rules import LEAD_FIELDS, matches

SECONDS_PER_DAY = 86400.0


# --------------------------------------------------------------------------
# Specs (plain data; built from ORM rows or JSON elsewhere)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FitRuleSpec:
    id: int | None
    label: str
    field: str
    operator: str
    value: Any
    points: float


@dataclass(frozen=True)
class BehaviorRuleSpec:
    id: int | None
    label: str
    kind: str
    points: float
    property: dict | None = None
    max_points: float | None = None
    half_life_days: float | None = None
    within_days: float | None = None

    def __post_init__(self) -> None:
        # Fail when the spec is built rather than mid-way through a bulk run.
        if self.max_points is not None and not float(self.max_points) > 0:
            raise ValueError(f"max_points must be positive; got {self.max_points}")
        if self.half_life_days is not None and not float(self.half_life_days) > 0:
            raise ValueError(f"half_life_days must be positive; got {self.half_life_days}")
        if self.within_days is not None and not float(self.within_days) >= 0:
            raise ValueError(f"within_days must be zero or more; got {self.within_days}")


@dataclass(frozen=True)
class ModelSpec:
    fit_rules: tuple[FitRuleSpec, ...]
    behavior_rules: tuple[BehaviorRuleSpec, ...]
    mql_threshold: float
    mql_min_fit: float | None = None


@dataclass(frozen=True)
class InteractionFact:
    kind: str
    occurred_at: datetime
    properties: Mapping = field(default_factory=dict)
    # Identity (e.g. the external event id). Facts sharing a non-None key are
    # one event delivered twice: the engine counts the first and ignores the rest.
    key: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.occurred_at, "occurred_at")


@dataclass(frozen=True)
class ScoreResult:
    score: int
    fit_score: int
    engagement_score: int
    breakdown: tuple[dict, ...]
    # The engagement total before rounding: with the lead's fit it gives the score again, which is
    # what lets an edit of fit rules alone rescore a lead without its interactions.
    engagement_total: float = 0.0

    def qualifies(self, model: ModelSpec) -> bool:
        """Is this lead an MQL under ``model``?"""
        if self.score < float(model.mql_threshold):
            return False
        return model.mql_min_fit is None or self.fit_score >= float(model.mql_min_fit)


# --------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------

_SIX_DP = Decimal("0.000001")


def _to_decimal_6dp(x: float) -> Decimal:
    """x at 6 decimal places, half away from zero.

    Goes through 15 significant digits first - exactly what PostgreSQL's
    float8 -> numeric cast does - so ``round(round(x::numeric, 6), n)`` in SQL
    gives the same answer, and tiny float-order differences vanish.
    """
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot round {x}")
    return Decimal(format(x, ".15g")).quantize(_SIX_DP, rounding=ROUND_HALF_UP)


def round_half_up(x: float) -> int:
    """Round to an integer, halves away from zero, after rounding to 6 dp.

    2.5 -> 3, -2.5 -> -3, 2.49999999 -> 2.5 (at 6 dp) -> 3, 2.4999994 -> 2.
    """
    return int(_to_decimal_6dp(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def round_points(x: float) -> float:
    """Breakdown points: 2 decimals, same half-up rule as ``round_half_up``."""
    return float(_to_decimal_6dp(x).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------


def email_domain(email: Any) -> str | None:
    """The part after the last "@", stripped and lowercased; None if absent."""
    if not isinstance(email, str) or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower()
    return domain or None


def lead_facts(lead: Any) -> dict:
    """The LEAD_FIELDS of a lead object (attributes) or mapping (keys).

    ``email_domain`` is always derived from ``email``.
    """
    get = lead.get if isinstance(lead, Mapping) else (lambda name: getattr(lead, name, None))
    facts = {name: get(name) for name in LEAD_FIELDS if name != "email_domain"}
    facts["email_domain"] = email_domain(facts["email"])
    return facts


def _fact(facts: Mapping, name: str) -> Any:
    # Tolerate callers passing raw fields: derive the domain if not given.
    if name == "email_domain" and "email_domain" not in facts:
        return email_domain(facts.get("email"))
    return facts.get(name)


def _require_aware(dt: datetime, what: str) -> None:
    if not isinstance(dt, datetime):
        raise ValueError(f"{what} must be a datetime; got {dt!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware; got naive {dt.isoformat()}")


def dedupe(interactions: Iterable[InteractionFact]) -> list[InteractionFact]:
    """Keep every fact without a key, and the first fact for each key."""
    seen: set[str] = set()
    kept = []
    for fact in interactions:
        if fact.key is not None:
            if fact.key in seen:
                continue
            seen.add(fact.key)
        kept.append(fact)
    return kept


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


def fit_points(model: ModelSpec, facts: Mapping) -> list[tuple[FitRuleSpec, float]]:
    """One (rule, points) per fit rule, in model order; 0.0 if it does not hold."""
    return [
        (rule, float(rule.points) if matches(rule.operator, _fact(facts, rule.field), rule.value) else 0.0)
        for rule in model.fit_rules
    ]


def interaction_applies(rule: BehaviorRuleSpec, fact: InteractionFact, now: datetime) -> bool:
    if fact.kind != rule.kind or fact.occurred_at > now:
        return False  # other kind, or not happened yet (clock skew, bad data)
    if rule.within_days is not None and fact.occurred_at < now - timedelta(days=float(rule.within_days)):
        return False
    if rule.property is not None:
        cond = rule.property
        actual = (fact.properties or {}).get(cond["key"])
        return matches(cond["operator"], actual, cond.get("value"))
    return True


def decayed_points(rule: BehaviorRuleSpec, fact: InteractionFact, now: datetime) -> float:
    points = float(rule.points)
    if rule.half_life_days is None:
        return points
    age_days = (now - fact.occurred_at).total_seconds() / SECONDS_PER_DAY
    return points * 0.5 ** (age_days / float(rule.half_life_days))


def _capped(s: float, max_points: float | None) -> float:
    # The cap bounds the magnitude, so a negative rule bottoms out at -max.
    if max_points is None:
        return s
    return math.copysign(min(abs(s), float(max_points)), s) if s else 0.0


def behavior_points(
    model: ModelSpec, interactions: Iterable[InteractionFact], now: datetime
) -> list[tuple[BehaviorRuleSpec, float]]:
    """One (rule, C(rule)) per behaviour rule, in model order; 0.0 if unused."""
    _require_aware(now, "now")
    by_kind: dict[str, list[InteractionFact]] = {}
    for fact in dedupe(interactions):
        by_kind.setdefault(fact.kind, []).append(fact)
    result = []
    for rule in model.behavior_rules:
        # fsum: exact sum, so the order interactions arrive in cannot matter.
        s = math.fsum(
            decayed_points(rule, fact, now)
            for fact in by_kind.get(rule.kind, ())
            if interaction_applies(rule, fact, now)
        )
        result.append((rule, _capped(s, rule.max_points)))
    return result


def _breakdown(
    fit: list[tuple[FitRuleSpec, float]], behavior: list[tuple[BehaviorRuleSpec, float]]
) -> tuple[dict, ...]:
    rows = [
        {"rule_id": rule.id, "type": kind, "label": rule.label, "points": round_points(points)}
        for kind, pairs in (("fit", fit), ("behavior", behavior))
        for rule, points in pairs
    ]
    rows = [row for row in rows if row["points"] != 0]
    # Ties beyond the label are broken by type and id only to be deterministic.
    rows.sort(
        key=lambda r: (-abs(r["points"]), r["label"], r["type"], r["rule_id"] is None, r["rule_id"] or 0)
    )
    return tuple(rows)


def behavior_points_from_sums(
    model: ModelSpec, sums: Mapping[Hashable, float]
) -> list[tuple[BehaviorRuleSpec, float]]:
    """Like ``behavior_points`` when the uncapped sums s (per rule id) were computed elsewhere,
    e.g. aggregated in SQL by a bulk rescore: only the cap is applied here."""
    return [(rule, _capped(float(sums.get(rule.id, 0.0)), rule.max_points)) for rule in model.behavior_rules]


def assemble(
    fit: list[tuple[FitRuleSpec, float]], behavior: list[tuple[BehaviorRuleSpec, float]]
) -> ScoreResult:
    """Totals, rounding and breakdown from per-rule points: the one place a score is put together."""
    fit_total = math.fsum(points for _, points in fit)
    engagement_total = math.fsum(points for _, points in behavior)
    return ScoreResult(
        score=round_half_up(fit_total + engagement_total),
        fit_score=round_half_up(fit_total),
        engagement_score=round_half_up(engagement_total),
        breakdown=_breakdown(fit, behavior),
        engagement_total=engagement_total,
    )


def behavior_basis(model: ModelSpec) -> int:
    """A fingerprint of the model's behaviour rules (a signed 64-bit integer): leads scored under
    rules with the same fingerprint have engagement totals that are still valid."""
    text = "\n".join(sorted(json.dumps(asdict(rule), sort_keys=True) for rule in model.behavior_rules))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def score_lead(
    model: ModelSpec, facts: Mapping, interactions: Iterable[InteractionFact], now: datetime
) -> ScoreResult:
    """Score one lead. ``facts`` as returned by ``lead_facts``."""
    return assemble(fit_points(model, facts), behavior_points(model, interactions, now))


def score_leads(
    model: ModelSpec,
    leads: Iterable[tuple[Hashable, Mapping, Iterable[InteractionFact]]],
    now: datetime,
) -> dict[Hashable, ScoreResult]:
    """Score many leads: {key: score_lead(model, facts, interactions, now)}."""
    _require_aware(now, "now")
    return {key: score_lead(model, facts, interactions, now) for key, facts, interactions in leads}
