import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from leads.models import ApiToken, Campaign, Interaction, InteractionKind, Lead, hash_token


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        """UserFactory(role="SDR") puts the user in that group (and staff for admin roles)."""
        if not create or not extracted:
            return
        self.groups.add(Group.objects.get(name=extracted))
        self.is_staff = extracted in ("Marketer", "Manager")
        self.save()


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = Campaign.Channel.SEARCH
    spend = 1000


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    email = factory.Sequence(lambda n: f"lead{n}@acme{n % 7}.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    job_title = "Head of Marketing"
    company = factory.Faker("company")
    company_size = 250
    country = "DE"
    source = "inbound"


class InteractionKindFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InteractionKind
        django_get_or_create = ("slug",)

    slug = "page_view"
    label = factory.LazyAttribute(lambda k: k.slug.replace("_", " ").capitalize())


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    lead = factory.SubFactory(LeadFactory)
    kind = factory.SubFactory(InteractionKindFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyFunction(dict)
    external_id = factory.Sequence(lambda n: f"ext-{n}")


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """ApiTokenFactory(raw="secret") stores the hash of "secret"; the raw value is kept on .raw."""

    class Meta:
        model = ApiToken
        exclude = ("raw",)

    raw = factory.Sequence(lambda n: f"test-token-{n}")
    name = factory.Sequence(lambda n: f"tool {n}")
    token_hash = factory.LazyAttribute(lambda t: hash_token(t.raw))
    prefix = factory.LazyAttribute(lambda t: t.raw[:8])
