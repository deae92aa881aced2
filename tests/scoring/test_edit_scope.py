"""What an edit changed decides how much is rescored (scoring/edit_scope.py)."""

import dataclasses

from scoring.edit_scope import FIT, FULL, NOTHING, THRESHOLD, edit_scope
from scoring.engine import BehaviorRuleSpec, FitRuleSpec, ModelSpec

VP = FitRuleSpec(id=1, label="VP", field="job_title", operator="contains", value="vp", points=20)
SIZE = FitRuleSpec(id=2, label="Size", field="company_size", operator="gte", value=200, points=15)
DEMO = BehaviorRuleSpec(id=3, label="Demo", kind="demo_request", points=40, within_days=90)
MODEL = ModelSpec(fit_rules=(VP, SIZE), behavior_rules=(DEMO,), mql_threshold=60)


def edited(**changes):
    return dataclasses.replace(MODEL, **changes)


def test_a_behaviour_change_rescores_every_lead_in_full():
    assert edit_scope(MODEL, edited(behavior_rules=(dataclasses.replace(DEMO, points=41),))) == FULL
    assert edit_scope(MODEL, edited(behavior_rules=(dataclasses.replace(DEMO, label="Demo!"),))) == FULL
    assert edit_scope(MODEL, edited(behavior_rules=())) == FULL
    assert edit_scope(None, MODEL) == FULL  # what changed is unknown


def test_a_fit_change_refits_even_with_the_threshold():
    assert edit_scope(MODEL, edited(fit_rules=(VP, dataclasses.replace(SIZE, points=16)))) == FIT
    assert edit_scope(MODEL, edited(fit_rules=(VP,), mql_threshold=50)) == FIT
    assert edit_scope(MODEL, edited(fit_rules=(VP, dataclasses.replace(SIZE, label="Big")))) == FIT


def test_threshold_or_min_fit_alone_only_promotes():
    assert edit_scope(MODEL, edited(mql_threshold=50)) == THRESHOLD
    assert edit_scope(MODEL, edited(mql_min_fit=10)) == THRESHOLD


def test_reordering_rules_changes_nothing():
    assert edit_scope(MODEL, edited(fit_rules=(SIZE, VP))) == NOTHING
