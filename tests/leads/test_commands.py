"""The management commands: create_api_token and seed_demo."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from handoff.models import Handoff, Transition
from leads import demo
from leads.models import ApiToken, Campaign, Interaction, Lead, Source, Stage
from leads.services import api_token_authenticate
from tests.handoff.factories import HandoffFactory, TransitionFactory
from tests.leads.factories import (
    ApiTokenFactory,
    CampaignFactory,
    InteractionFactory,
    LeadFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

User = get_user_model()
SIX_MONTHS = timedelta(days=demo.HISTORY_DAYS + 1)
FREE_MAIL = {domain for domain, _ in demo.FREE_MAIL_DOMAINS}


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def seed(*args) -> str:
    return run("seed_demo", "--leads", "60", *args)


def snapshot():
    """What two seeds with the same --seed must agree on."""
    return (
        sorted(Lead.objects.values_list("email", "job_title", "company", "source", "campaign__name")),
        Counter(Interaction.objects.values_list("kind__slug", flat=True)),
        sorted(Interaction.objects.values_list("external_id", "lead__email", "kind__slug")),
    )


# --- create_api_token --------------------------------------------------------------------------


def test_create_api_token_prints_the_token_last_and_the_stored_hash_authenticates_it():
    output = run("create_api_token", "zapier")

    raw = output.split()[-1]
    assert '"zapier"' in output
    token = ApiToken.objects.get(name="zapier")
    assert api_token_authenticate(raw) == token
    assert raw not in (token.token_hash, token.prefix)  # only the hash is stored
    assert token.prefix == raw[:8]


def test_create_api_token_refuses_a_duplicate_name_and_creates_nothing():
    existing = ApiTokenFactory(name="zapier")

    with pytest.raises(CommandError, match='"zapier" already exists'):
        run("create_api_token", "zapier")

    assert list(ApiToken.objects.all()) == [existing]
    assert ApiToken.objects.get().token_hash == existing.token_hash


# --- seed_demo: what it creates ----------------------------------------------------------------


def test_seed_demo_creates_the_demo_users_in_their_groups_with_the_given_password():
    seed("--password", "s3cret-demo")

    expected = {
        "marketer": ("Marketer", True),
        "sdr": ("SDR", False),
        "sdr2": ("SDR", False),
        "manager": ("Manager", True),
    }
    for username, (group, is_staff) in expected.items():
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert user.is_staff is is_staff
        assert not user.is_superuser
        assert user.check_password("s3cret-demo")
        assert user.first_name and user.last_name
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("s3cret-demo")


def test_the_default_password_is_accord_demo():
    seed()
    assert User.objects.get(username="sdr").check_password("accord-demo")


def test_seed_demo_creates_campaigns_leads_and_interactions():
    output = seed()

    assert Campaign.objects.count() == len(demo.CAMPAIGNS)
    assert Lead.objects.count() == 60
    assert Interaction.objects.count() >= 60  # every lead has at least the one that created it
    assert "60 leads" in output


def test_campaigns_have_spend_and_ran_within_the_last_six_months():
    seed()
    today = timezone.now().date()
    for campaign in Campaign.objects.all():
        assert campaign.spend > 0
        assert today - SIX_MONTHS <= campaign.starts_on <= campaign.ends_on <= today


def test_interactions_lie_within_six_months_after_their_lead_appeared_and_never_in_the_future():
    seed()
    now = timezone.now()
    for interaction in Interaction.objects.select_related("lead"):
        assert now - SIX_MONTHS <= interaction.lead.created_at < interaction.occurred_at <= now
        assert interaction.occurred_at < interaction.received_at <= now
        assert interaction.external_id.startswith(f"demo-{demo.DEFAULT_SEED}-")


def test_the_generated_leads_are_consistent_and_distributed_like_a_real_funnel():
    run("seed_demo", "--leads", "400")
    leads = list(Lead.objects.select_related("campaign"))
    titles = {title: seniority for title, seniority, _ in demo.TITLES}

    emails = [lead.email.lower() for lead in leads]
    assert len(set(emails)) == len(emails)
    for lead in leads:
        assert lead.seniority == titles[lead.job_title]
        assert len(lead.country) == 2 and lead.country.isupper()
        channels = demo.SOURCE_CHANNELS.get(lead.source)
        if channels:
            assert lead.campaign is not None and lead.campaign.channel in channels
        else:
            assert lead.campaign is None

    sources = Counter(lead.source for lead in leads)
    total = sum(demo.SOURCE_WEIGHTS.values())
    for source, weight in demo.SOURCE_WEIGHTS.items():
        assert abs(sources[source] / len(leads) - weight / total) < 0.07, source
    free_mail = sum(lead.email_domain in FREE_MAIL for lead in leads) / len(leads)
    assert 0.03 < free_mail < 0.15
    sizes = [lead.company_size for lead in leads if lead.company_size]
    # Long-tailed: many small companies, few very large ones.
    assert sum(size <= 50 for size in sizes) / len(sizes) > 0.35
    assert sum(size > 5000 for size in sizes) / len(sizes) < 0.10


def test_engaged_leads_are_the_ones_with_good_fit():
    run("seed_demo", "--leads", "400")
    by_seniority = {}
    for seniority in ("entry", "vp"):
        leads = Lead.objects.filter(seniority=seniority)
        by_seniority[seniority] = Interaction.objects.filter(lead__in=leads).count() / leads.count()
    assert by_seniority["vp"] > by_seniority["entry"]


def test_outbound_leads_are_owned_by_an_sdr_and_others_only_once_handed_off():
    seed()
    owners = Lead.objects.filter(source=Source.OUTBOUND).values_list("owner__username", flat=True)
    assert set(owners) <= {"sdr", "sdr2"}
    # Inbound leads get an owner when they become MQLs and are assigned, never before.
    assert not Lead.objects.exclude(source=Source.OUTBOUND).filter(owner__isnull=False, stage="lead").exists()


def test_it_prints_a_summary_with_the_demo_logins():
    output = seed("--password", "pw-123456")

    assert "12 campaigns" in output and "60 leads" in output
    lines = output.splitlines()
    for username, start in (("marketer", "/admin/"), ("sdr", "/board/"), ("manager", "/reports/")):
        assert any(line.split()[:1] == [username] and "pw-123456" in line and start in line for line in lines)


# --- seed_demo: determinism --------------------------------------------------------------------


def test_the_same_seed_gives_identical_data():
    seed("--seed", "7")
    first = snapshot()
    seed("--seed", "7", "--force")

    assert snapshot() == first


def test_the_same_seed_at_the_same_moment_gives_identical_timestamps_too():
    now = datetime(2025, 6, 30, 12, 34, tzinfo=UTC)

    def timeline():
        return sorted(
            Interaction.objects.values_list("external_id", "occurred_at", "received_at", "properties")
        )

    demo.seed_demo(seed=3, leads=30, now=now)
    first = timeline()
    demo.seed_demo(seed=3, leads=30, now=now, force=True)

    assert timeline() == first
    assert max(at for _, at, _, _ in first) <= now


def test_the_same_seed_gives_the_same_leads_and_interactions_whenever_it_runs():
    # A Monday morning and a Saturday night a week and a half later: only the timestamps may move.
    demo.seed_demo(seed=5, leads=80, now=datetime(2025, 3, 3, 8, 15, tzinfo=UTC))
    first = snapshot(), sorted(Interaction.objects.values_list("external_id", "properties"))
    demo.seed_demo(seed=5, leads=80, now=datetime(2025, 3, 15, 23, 50, tzinfo=UTC), force=True)

    assert (snapshot(), sorted(Interaction.objects.values_list("external_id", "properties"))) == first


def test_different_seeds_give_different_data():
    seed("--seed", "1")
    first = snapshot()
    seed("--seed", "2", "--force")

    assert snapshot()[0] != first[0]


# --- seed_demo: refusing and replacing ---------------------------------------------------------


@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(lambda: LeadFactory(), id="a lead"),
        pytest.param(lambda: CampaignFactory(), id="a campaign"),
        pytest.param(lambda: UserFactory(username="sdr2", role="SDR"), id="a demo user"),
    ],
)
def test_it_refuses_a_non_empty_database(existing):
    existing()
    before = (Lead.objects.count(), Campaign.objects.count(), User.objects.count())

    with pytest.raises(CommandError, match="--force"):
        seed()

    assert (Lead.objects.count(), Campaign.objects.count(), User.objects.count()) == before
    assert not Interaction.objects.exists()


def test_force_replaces_leads_campaigns_handoffs_transitions_and_the_demo_users():
    old_lead = LeadFactory(email="old@example.com")
    InteractionFactory(lead=old_lead)
    CampaignFactory(name="Old campaign")
    TransitionFactory(lead=old_lead, handoff=HandoffFactory(lead=old_lead))
    UserFactory(username="marketer", role="Marketer")  # password "pw-for-tests"
    bystander = UserFactory(username="someone-else")
    token = ApiTokenFactory()

    output = seed("--force")

    assert not Lead.objects.filter(email="old@example.com").exists()
    assert not Campaign.objects.filter(name="Old campaign").exists()
    assert Lead.objects.count() == 60
    assert User.objects.get(username="marketer").check_password("accord-demo")
    # Only demo data goes: other users and API tokens stay.
    assert User.objects.filter(pk=bystander.pk).exists()
    assert ApiToken.objects.filter(pk=token.pk).exists()
    assert "deleted" in output


def test_a_failing_seed_changes_nothing(monkeypatch):
    old_lead = LeadFactory(email="old@example.com")

    def boom(**kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(demo, "seed_handoff_history", boom)
    with pytest.raises(RuntimeError):
        seed("--force")

    assert list(Lead.objects.all()) == [old_lead]
    assert not Campaign.objects.exists()
    assert not User.objects.filter(username__in=demo.DEMO_USERNAMES).exists()


def test_it_rejects_a_non_positive_number_of_leads():
    with pytest.raises(CommandError):
        run("seed_demo", "--leads", "0")


def test_if_empty_seeds_an_empty_database_and_leaves_a_seeded_one_alone():
    call_command("seed_demo", "--leads", "20", "--if-empty", stdout=StringIO())
    assert Lead.objects.count() == 20
    Lead.objects.filter(pk=Lead.objects.first().pk).update(job_title="Edited by a marketer")

    out = StringIO()
    call_command("seed_demo", "--leads", "50", "--if-empty", stdout=out)

    assert Lead.objects.count() == 20
    assert Lead.objects.filter(job_title="Edited by a marketer").exists()
    assert "already present" in out.getvalue() and "marketer" in out.getvalue()


def test_seed_demo_plays_out_a_handoff_history_through_the_state_machine():
    call_command("seed_demo", "--leads", "600", stdout=StringIO())
    from scoring.models import ScoringModel

    assert ScoringModel.objects.get(status="active").name == "Default B2B"
    stages = set(Lead.objects.values_list("stage", flat=True))
    assert {"lead", "mql", "sal", "sql", "recycled"} <= stages
    now = timezone.now()
    for handoff in Handoff.objects.prefetch_related("transitions"):
        history = list(handoff.transitions.all())
        # Every episode starts with the system's promotion, and its stages chain without gaps.
        assert (history[0].from_stage, history[0].to_stage, history[0].actor) in (
            ("lead", "mql", None), ("recycled", "mql", None),
        )
        assert all(a.to_stage == b.from_stage for a, b in zip(history, history[1:]))
        assert history[-1].to_stage == handoff.stage
        assert all(now - timedelta(days=200) < t.at <= now for t in history)
        assert handoff.assignee is not None
    for lead in Lead.objects.exclude(stage="lead"):
        assert lead.transitions.last().to_stage == lead.stage
