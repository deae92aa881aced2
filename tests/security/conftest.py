"""A small, complete world for the security tests: two SDRs, a marketer, a manager, handoffs in the
stages the board acts on, an active and a draft scoring model and an API token; plus a snapshot of
everything a refused request must leave untouched."""

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from handoff.models import Handoff, RejectionReason, Transition
from leads.models import Interaction, Lead
from scoring.models import BehaviorRule, FitRule, ScoringModel
from tests.handoff.factories import HandoffFactory
from tests.leads.factories import ApiTokenFactory, LeadFactory
from tests.scoring.builders import make_model

TOKEN = "security-api-token-0123456789"
FIGURES = Path(__file__).resolve().parents[2] / "test-artifacts" / "security" / "figures.json"
BREAKDOWN = [
    {"rule_id": 1, "type": "behavior", "label": "Demo request", "points": 40},
    {"rule_id": 2, "type": "fit", "label": "VP title", "points": 20},
]


def make_handoff(stage, *, assignee, hours_ago=2, **lead_fields):
    """An open episode in `stage` (mql or sal) assigned to `assignee` (None: unassigned)."""
    entered = timezone.now() - timedelta(hours=hours_ago)
    lead_fields.setdefault("score", 75)
    lead_fields.setdefault("fit_score", 35)
    lead_fields.setdefault("score_breakdown", BREAKDOWN)
    lead = LeadFactory(stage=stage, owner=assignee, stage_changed_at=entered, **lead_fields)
    return HandoffFactory(
        lead=lead,
        stage=stage,
        assignee=assignee,
        created_at=entered,
        sla_due_at=entered + timedelta(hours=24),
        accepted_at=entered if stage == "sal" else None,
    )


@dataclass
class World:
    sdr: object
    sdr2: object
    marketer: object
    manager: object
    mql: Handoff  # sdr's MQL
    sal: Handoff  # sdr's SAL
    unassigned: Handoff  # an MQL nobody has yet
    active: ScoringModel
    draft: ScoringModel
    reason: RejectionReason


@pytest.fixture
def world(sdr, sdr2, marketer, manager):
    active = make_model(
        name="Active model",
        threshold=60,
        fit=[("VP title", "job_title", "contains", "vp", 20)],
        behavior=[{"kind": "demo_request", "label": "Demo request", "points": 40}],
        status="active",
    )
    draft = make_model(
        name="Draft model", threshold=50, fit=[("VP title", "job_title", "contains", "vp", 30)]
    )
    ApiTokenFactory(raw=TOKEN, name="security tests")
    return World(
        sdr=sdr,
        sdr2=sdr2,
        marketer=marketer,
        manager=manager,
        mql=make_handoff("mql", assignee=sdr, first_name="Mia", last_name="Mql"),
        sal=make_handoff("sal", assignee=sdr, first_name="Sal", last_name="Sal"),
        unassigned=make_handoff("mql", assignee=None, first_name="Una", last_name="Signed"),
        active=active,
        draft=draft,
        reason=RejectionReason.objects.get(code="no_budget"),
    )


def snapshot() -> dict:
    """Everything a refused request must not change: stages, owners, scores, handoffs, the audit trail,
    scoring models and rules, interactions."""
    return {
        "leads": list(
            Lead.objects.order_by("pk").values_list(
                "pk", "stage", "score", "fit_score", "owner_id", "bant_budget", "job_title", "updated_at"
            )
        ),
        "handoffs": list(
            Handoff.objects.order_by("pk").values_list(
                "pk",
                "stage",
                "assignee_id",
                "accepted_at",
                "qualified_at",
                "closed_at",
                "outcome",
                "rejection_reason_id",
                "rejection_note",
            )
        ),
        "transitions": list(
            Transition.objects.order_by("pk").values_list("pk", "from_stage", "to_stage", "actor_id", "note")
        ),
        "models": list(
            ScoringModel.objects.order_by("pk").values_list(
                "pk", "name", "status", "mql_threshold", "version"
            )
        ),
        "fit_rules": list(
            FitRule.objects.order_by("pk").values_list("pk", "label", "operator", "value", "points")
        ),
        "behavior_rules": list(BehaviorRule.objects.order_by("pk").values_list("pk", "label", "points")),
        "interactions": list(Interaction.objects.order_by("pk").values_list("pk", "external_id")),
    }


def model_form_data(model: ScoringModel, **changes) -> dict:
    """POST data of the scoring admin's change form for `model` as stored, with `changes` applied to
    the model fields (name, mql_threshold, mql_min_fit) or, as fit_rules-0-points=..., to its rules."""
    data = {"name": model.name, "mql_threshold": str(model.mql_threshold), "mql_min_fit": ""}
    fit = list(model.fit_rules.order_by("position", "pk"))
    behavior = list(model.behavior_rules.order_by("position", "pk"))
    for prefix, rules in (("fit_rules", fit), ("behavior_rules", behavior)):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": str(len(rules)),
                f"{prefix}-INITIAL_FORMS": str(len(rules)),
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    for i, rule in enumerate(fit):
        value = rule.value if isinstance(rule.value, str) else json.dumps(rule.value)
        data.update(
            {
                f"fit_rules-{i}-id": str(rule.pk),
                f"fit_rules-{i}-model": str(model.pk),
                f"fit_rules-{i}-label": rule.label,
                f"fit_rules-{i}-field": rule.field,
                f"fit_rules-{i}-operator": rule.operator,
                f"fit_rules-{i}-value": value,
                f"fit_rules-{i}-points": str(rule.points),
            }
        )
    for i, rule in enumerate(behavior):
        prop = rule.property or {}
        data.update(
            {
                f"behavior_rules-{i}-id": str(rule.pk),
                f"behavior_rules-{i}-model": str(model.pk),
                f"behavior_rules-{i}-label": rule.label,
                f"behavior_rules-{i}-kind": str(rule.kind_id),
                f"behavior_rules-{i}-points": str(rule.points),
                f"behavior_rules-{i}-property_key": prop.get("key", ""),
                f"behavior_rules-{i}-property_operator": prop.get("operator", ""),
                f"behavior_rules-{i}-property_value": ""
                if prop.get("value") is None
                else str(prop.get("value")),
                f"behavior_rules-{i}-max_points": "" if rule.max_points is None else str(rule.max_points),
                f"behavior_rules-{i}-half_life_days": ""
                if rule.half_life_days is None
                else str(rule.half_life_days),
                f"behavior_rules-{i}-within_days": "" if rule.within_days is None else str(rule.within_days),
            }
        )
    data.update({key: str(value) for key, value in changes.items()})
    return data


@pytest.fixture(scope="session")
def security_figures():
    """Counts measured by the security tests, written to test-artifacts/security/figures.json for
    docs/reliability.md (merged with what earlier runs of other tests wrote)."""
    found: dict = {}
    yield found
    if found:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
        FIGURES.write_text(json.dumps({**old, **found}, indent=2, sort_keys=True))
