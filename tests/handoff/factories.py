import factory
from django.utils import timezone

from handoff.models import Handoff, RejectionReason, Transition
from tests.leads.factories import LeadFactory


class RejectionReasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RejectionReason
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"reason_{n}")
    label = factory.LazyAttribute(lambda r: r.code.replace("_", " ").capitalize())


class HandoffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Handoff

    lead = factory.SubFactory(LeadFactory, stage="mql")
    stage = "mql"
    created_at = factory.LazyFunction(timezone.now)
    score_at_mql = 70


class TransitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Transition

    lead = factory.SubFactory(LeadFactory)
    from_stage = "lead"
    to_stage = "mql"
    score = 70
