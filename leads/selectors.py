"""Read queries about leads, shared by views and reports."""

from django.db.models import Count

from .models import Lead, Stage


def lead_counts_by_stage() -> list[tuple[str, str, int]]:
    """(stage value, stage label, count) for every stage, zeros included, in lifecycle order."""
    counts = dict(Lead.objects.values_list("stage").annotate(n=Count("id")).order_by())
    return [(value, label, counts.get(value, 0)) for value, label in Stage.choices]
