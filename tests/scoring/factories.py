"""Factories for scoring models and rules, and the design's example model (DESIGN.md, "Scoring model
as JSON")."""

import copy

import factory

from scoring.models import BehaviorRule, FitRule, ScoringModel
from tests.leads.factories import InteractionKindFactory

# The design's example, exactly as written there.
EXAMPLE_MODEL = {
    "name": "Default B2B",
    "mql_threshold": 60,
    "mql_min_fit": None,
    "fit_rules": [
        {
            "label": "Decision-maker title",
            "field": "job_title",
            "operator": "contains_any",
            "value": ["vp", "head", "director", "chief"],
            "points": 20,
        },
        {"label": "Mid-market+", "field": "company_size", "operator": "gte", "value": 200, "points": 15},
        {"label": "Free mail", "field": "email_domain", "operator": "in", "value": ["gmail.com"], "points": -10},
    ],
    "behavior_rules": [
        {"label": "Pricing page", "kind": "pricing_page_view", "points": 10, "max_points": 30, "half_life_days": 14},
        {
            "label": "Whitepaper",
            "kind": "content_download",
            "points": 8,
            "property": {"key": "asset_type", "operator": "equals", "value": "whitepaper"},
        },
        {"label": "Demo request", "kind": "demo_request", "points": 40, "within_days": 90},
        {"label": "Unsubscribed", "kind": "unsubscribe", "points": -25},
    ],
}


def example_dict(**changes) -> dict:
    """A fresh deep copy of the design's example, with top-level keys replaced."""
    data = copy.deepcopy(EXAMPLE_MODEL)
    data.update(changes)
    return data


class ScoringModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScoringModel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Model {n}")
    status = ScoringModel.Status.DRAFT
    mql_threshold = 60


class FitRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FitRule

    model = factory.SubFactory(ScoringModelFactory)
    position = factory.Sequence(lambda n: n)
    label = factory.Sequence(lambda n: f"Fit rule {n}")
    field = "job_title"
    operator = "contains"
    value = "vp"
    points = 20


class BehaviorRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BehaviorRule

    model = factory.SubFactory(ScoringModelFactory)
    position = factory.Sequence(lambda n: n)
    label = factory.Sequence(lambda n: f"Behaviour rule {n}")
    kind = factory.SubFactory(InteractionKindFactory, slug="pricing_page_view")
    points = 10


def build_example_model(name: str = "Default B2B", **fields) -> ScoringModel:
    """The design's example model in the database, built with the factories (not the importer)."""
    model = ScoringModelFactory(name=name, mql_threshold=EXAMPLE_MODEL["mql_threshold"], **fields)
    for position, rule in enumerate(EXAMPLE_MODEL["fit_rules"]):
        FitRuleFactory(model=model, position=position, **rule)
    for position, rule in enumerate(EXAMPLE_MODEL["behavior_rules"]):
        rule = dict(rule)
        kind = InteractionKindFactory(slug=rule.pop("kind"))
        BehaviorRuleFactory(model=model, position=position, kind=kind, **rule)
    return model
