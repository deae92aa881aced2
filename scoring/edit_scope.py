"""What an edit of the active model changed, and so the least rescoring that brings every lead up
to date with it (docs/decisions.md, "Rescoring after an edit").

- Behaviour rules changed: every lead's engagement may change, so every lead is rescored in full.
- Only fit rules changed (with the threshold or not): fit depends on the lead's own fields, so each
  lead is refitted from its fields and the engagement total stored when it was last scored; no
  interaction is read.
- Only the threshold (or minimum fit) changed: no score changes; leads that now qualify are
  promoted.
- Nothing that scoring reads changed (rules reordered, say): nothing to do.
"""

from dataclasses import asdict

from .engine import ModelSpec, behavior_basis

FULL, FIT, THRESHOLD, NOTHING = "all", "fit", "threshold", "none"
CHOICES = [
    (FULL, "every lead, in full"),
    (FIT, "fit rules only"),
    (THRESHOLD, "threshold only"),
    (NOTHING, "nothing to rescore"),
]


def edit_scope(before: ModelSpec | None, after: ModelSpec) -> str:
    """The scope of the change from `before` to `after` (None: unknown, so everything)."""
    if before is None or behavior_basis(before) != behavior_basis(after):
        return FULL
    if _fit_rules(before) != _fit_rules(after):
        return FIT
    if (before.mql_threshold, before.mql_min_fit) != (after.mql_threshold, after.mql_min_fit):
        return THRESHOLD
    return NOTHING


def changed_fit_rules(before: ModelSpec, after: ModelSpec) -> list[dict]:
    """The fit rules an edit changed, as they were and as they are (added and removed ones too):
    a lead none of them matches keeps its fit, so its score cannot change."""
    old, new = _fit_rules(before), _fit_rules(after)
    return [rule for rule in old if rule not in new] + [rule for rule in new if rule not in old]


def _fit_rules(spec: ModelSpec) -> list:
    # Their order in the model does not matter to a score (the breakdown sorts by points).
    return sorted((asdict(rule) for rule in spec.fit_rules), key=repr)
