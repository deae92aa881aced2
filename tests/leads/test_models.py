import pytest
from django.db import IntegrityError, connection, transaction

from handoff.models import Transition
from leads.models import Interaction, InteractionKind, Lead
from leads.services import api_token_authenticate, api_token_create, api_token_revoke
from tests.handoff.factories import HandoffFactory, TransitionFactory
from tests.leads.factories import InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_it_refuses_a_second_lead_with_the_same_email_in_another_case():
    LeadFactory(email="Ann.Lee@Acme.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        LeadFactory(email="ann.lee@acme.COM")
    assert Lead.objects.count() == 1


def test_it_refuses_a_duplicate_interaction_external_id():
    first = InteractionFactory(external_id="hubspot-42")
    with pytest.raises(IntegrityError), transaction.atomic():
        InteractionFactory(external_id="hubspot-42", lead=first.lead)
    assert Interaction.objects.filter(external_id="hubspot-42").count() == 1


def test_it_refuses_an_unknown_stage_at_the_database():
    lead = LeadFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Lead.objects.filter(pk=lead.pk).update(stage="promoted")


def test_it_allows_only_one_open_handoff_per_lead():
    handoff = HandoffFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        HandoffFactory(lead=handoff.lead)


def test_the_migration_seeds_the_interaction_kinds_of_the_design():
    assert set(InteractionKind.objects.values_list("slug", flat=True)) >= {
        "page_view",
        "pricing_page_view",
        "content_download",
        "webinar_attended",
        "email_click",
        "demo_request",
        "contact_sales",
        "unsubscribe",
    }


def test_a_transition_cannot_be_edited_or_deleted():
    transition = TransitionFactory()
    transition.note = "rewritten history"
    with pytest.raises(ValueError):
        transition.save()
    with pytest.raises(ValueError):
        transition.delete()
    assert Transition.objects.get(pk=transition.pk).note == ""


def test_an_api_token_is_stored_hashed_and_authenticates_until_revoked():
    token, raw = api_token_create(name="zapier")
    assert raw not in token.token_hash and token.token_hash != raw
    assert api_token_authenticate(raw) == token
    assert api_token_authenticate(raw + "x") is None

    api_token_revoke(tokens=type(token).objects.filter(pk=token.pk))
    assert api_token_authenticate(raw) is None


def test_email_domain_is_the_lowercased_part_after_the_at():
    assert LeadFactory.build(email="Bo@Sub.Example.COM").email_domain == "sub.example.com"


def test_lead_pages_keep_room_for_score_rewrites_on_postgresql():
    """Rescoring rewrites every lead's score: with free space on each page the rewrite is a HOT
    update that touches no index (leads/migrations/0007)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL storage parameter")
    leads = LeadFactory.create_batch(50)
    table = Lead._meta.db_table

    def updates_so_far():  # this transaction's own counts: (updated, of which HOT)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), "
                "pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
                [table, table],
            )
            return cursor.fetchone()

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [table])
        assert "fillfactor=80" in cursor.fetchone()[0]
    before = updates_so_far()
    # A few leads, on packed pages in the middle of the table (a page's free space is shared by the
    # rewrites of one transaction until it is pruned).
    for lead in leads[5:45:10]:
        Lead.objects.filter(pk=lead.pk).update(score=lead.score + 7, score_breakdown=[{"label": "x", "points": 7}])
    after = updates_so_far()
    assert (after[0] - before[0], after[1] - before[1]) == (4, 4)


def test_interactions_carry_only_the_indexes_ingest_and_rescoring_use():
    """PostgreSQL: every stored interaction writes each index, so there are three: the primary key,
    the unique external_id that makes a repeated event count once, and (lead, kind, occurred_at)
    that every rescore reads by (from the index alone, for rules without property conditions). The external_id LIKE index Django would add and the old (kind,
    occurred_at) index are gone (nothing queries them)."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL index")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'leads_interaction'")
        definitions = [row[0] for row in cursor.fetchall()]
    assert not [d for d in definitions if "varchar_pattern_ops" in d]
    assert [d for d in definitions if "UNIQUE" in d and "(external_id)" in d]
    assert [d for d in definitions if "(lead_id, kind_id, occurred_at)" in d]
    assert len(definitions) == 3, definitions
