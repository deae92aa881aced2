"""A small, hand-made history whose every report figure is worked out by hand in the tests.

Built with the real state machine (handoff.services) at explicit times. Anchor: Monday 3 March 2025,
time zone UTC, SLA 24 h; reports are computed at NOW = Thursday 20 March 2025 12:00.

    MQL (promotion order; round robin gives S1 = sdr, S2 = sdr2 alternately, H12 first)
    id   MQL time        source  campaign  model  score  rules            what the SDR did (after MQL)
    H12  2024-11-01 10h  inbound -         v1     90     Demo             S1 accept +1 h  (outside the range)
    H1   Mon 24 Feb 10h  inbound -         v1     65     DM, Pricing      S2 accept +2 h, qualify +2 d, opp +5 d, won +10 d
    H2   Mon  3 Mar 09h  paid    Search A  v1     72     Demo, DM         S1 accept +1 h, qualify +1 d, opp +3 d, lost +6 d
    H3   Mon  3 Mar 12h  paid    Search A  v1     81     Demo, Pricing    S2 accept +4 h, qualify +3 d
    H4   Tue  4 Mar 08h  inbound -         v1     68     Pricing, DM      S1 reject +30 h (no budget; SLA breached)
    H5   Wed  5 Mar 10h  event   Webinar C v2     75     DM, Free, Demo   S2 accept +20 h, reject +2 d (bad timing)
    H6   Thu  6 Mar 14h  event   Webinar C v2     62     Pricing, Free    S1 reject +3 h (no budget)
    H7   Mon 10 Mar 09h  paid    Social B  v2     93     Demo, DM, Pric.  S2 accept +6 h, qualify +1 d, opp +2 d
    H8   Tue 11 Mar 11h  paid    Social B  v2     104    Demo, DM, Pric.  S1 accept +26 h (SLA breached)
    H9   Wed 12 Mar 15h  inbound -         v2     60     DM, Pricing      S2 reject +12 h (competitor: disqualified)
    H10  Tue 18 Mar 09h  inbound -         v2     70     Demo             S1 nothing: due 19 Mar 09h → overdue now
    H11  Thu 20 Mar 08h  paid    Search A  v2     77     Demo, Pricing    S2 nothing: due 21 Mar 08h → pending

    Every MQL's lead was created one hour before its MQL time. Leads that never became MQLs:
    L13 inbound Tue 4 Mar, L14 paid/Search A Tue 11 Mar, L15 event/Webinar C Wed 5 Mar,
    L16 inbound Tue 25 Feb, L17 inbound Tue 18 Mar.
    Campaigns: Search A (search, spend 1,200), Social B (social, 500), Webinar C (webinar, 300).
    Rules: DM = "Decision-maker title" (fit, +20), Demo = "Demo request" (behavior, +40),
    Pricing = "Pricing page" (behavior, +10), Free = "Free mail" (fit, -10).
"""

from datetime import UTC, datetime, timedelta

from handoff import services
from handoff.models import Handoff, RejectionReason
from tests.leads.factories import CampaignFactory, LeadFactory

ANCHOR = datetime(2025, 3, 3, tzinfo=UTC)  # Monday
NOW = datetime(2025, 3, 20, 12, tzinfo=UTC)  # Thursday
RANGE = {"from": "2025-02-24", "to": "2025-03-20"}  # every handoff but H12 (and, by chance, = the default)

RULES = {
    "DM": {"rule_id": 1, "type": "fit", "label": "Decision-maker title", "points": 20},
    "Demo": {"rule_id": 2, "type": "behavior", "label": "Demo request", "points": 40},
    "Pricing": {"rule_id": 3, "type": "behavior", "label": "Pricing page", "points": 10},
    "Free": {"rule_id": 4, "type": "fit", "label": "Free mail", "points": -10},
}
V1, V2 = "Default v1", "Default v2"
H, D = timedelta(hours=1), timedelta(days=1)


def at(day: int, hour: int = 0) -> datetime:
    """`day` days after Monday 3 March 2025 (negative: before), at `hour`:00 UTC."""
    return ANCHOR + day * D + hour * H


def build(*, campaign_names=("Search A", "Social B", "Webinar C")) -> dict:
    """Create the history; return {"H1": Handoff, ..., "campaigns": {...}}."""
    search = CampaignFactory(name=campaign_names[0], channel="search", spend=1200)
    social = CampaignFactory(name=campaign_names[1], channel="social", spend=500)
    webinar = CampaignFactory(name=campaign_names[2], channel="webinar", spend=300)
    reasons = {r.code: r for r in RejectionReason.objects.all()}
    out = {"campaigns": {"search": search, "social": social, "webinar": webinar}}

    def mql(name, when, source, campaign, version, score, rules):
        lead = LeadFactory(source=source, campaign=campaign, created_at=when - H, stage_changed_at=when - H,
                           score=score)
        promotion = services.lead_promote_to_mql(
            lead=lead, score=score, breakdown=[RULES[r] for r in rules], model_version=version, now=when
        )
        out[name] = Handoff.objects.select_related("assignee").get(pk=promotion.handoff_id)
        return out[name]

    def accept(h, after):
        services.handoff_accept(handoff_id=h.pk, actor=h.assignee, now=h.created_at + after)

    def qualify(h, after_accept):
        h.refresh_from_db()
        services.handoff_qualify(handoff_id=h.pk, actor=h.assignee, budget="b", authority="a", need="n",
                                 timing="t", now=h.accepted_at + after_accept)

    def opportunity(h, after_qualify):
        h.refresh_from_db()
        services.handoff_open_opportunity(handoff_id=h.pk, actor=h.assignee, now=h.qualified_at + after_qualify)
        return h.qualified_at + after_qualify

    def reject(h, when, reason):
        services.handoff_reject(handoff_id=h.pk, actor=h.assignee, reason=reasons[reason], now=when)

    h12 = mql("H12", datetime(2024, 11, 1, 10, tzinfo=UTC), "inbound", None, V1, 90, ["Demo"])
    accept(h12, 1 * H)

    h1 = mql("H1", at(-7, 10), "inbound", None, V1, 65, ["DM", "Pricing"])
    accept(h1, 2 * H)
    qualify(h1, 2 * D)
    opened = opportunity(h1, 5 * D)
    services.handoff_close(handoff_id=h1.pk, actor=h1.assignee, won=True, now=opened + 10 * D)

    h2 = mql("H2", at(0, 9), "paid", search, V1, 72, ["Demo", "DM"])
    accept(h2, 1 * H)
    qualify(h2, 1 * D)
    opened = opportunity(h2, 3 * D)
    services.handoff_close(handoff_id=h2.pk, actor=h2.assignee, won=False, now=opened + 6 * D)

    h3 = mql("H3", at(0, 12), "paid", search, V1, 81, ["Demo", "Pricing"])
    accept(h3, 4 * H)
    qualify(h3, 3 * D)

    h4 = mql("H4", at(1, 8), "inbound", None, V1, 68, ["Pricing", "DM"])
    reject(h4, h4.created_at + 30 * H, "no_budget")

    h5 = mql("H5", at(2, 10), "event", webinar, V2, 75, ["DM", "Free", "Demo"])
    accept(h5, 20 * H)
    reject(h5, h5.created_at + 20 * H + 2 * D, "bad_timing")

    h6 = mql("H6", at(3, 14), "event", webinar, V2, 62, ["Pricing", "Free"])
    reject(h6, h6.created_at + 3 * H, "no_budget")

    h7 = mql("H7", at(7, 9), "paid", social, V2, 93, ["Demo", "DM", "Pricing"])
    accept(h7, 6 * H)
    qualify(h7, 1 * D)
    opportunity(h7, 2 * D)

    h8 = mql("H8", at(8, 11), "paid", social, V2, 104, ["Demo", "DM", "Pricing"])
    accept(h8, 26 * H)

    h9 = mql("H9", at(9, 15), "inbound", None, V2, 60, ["DM", "Pricing"])
    reject(h9, h9.created_at + 12 * H, "competitor")

    mql("H10", at(15, 9), "inbound", None, V2, 70, ["Demo"])
    mql("H11", at(17, 8), "paid", search, V2, 77, ["Demo", "Pricing"])

    # Leads that never became MQLs.
    for source, campaign, created in (
        ("inbound", None, at(1, 10)),
        ("paid", search, at(8, 10)),
        ("event", webinar, at(2, 10)),
        ("inbound", None, at(-6, 10)),
        ("inbound", None, at(15, 10)),
    ):
        LeadFactory(source=source, campaign=campaign, created_at=created)
    for name in list(out):
        if name.startswith("H"):
            out[name].refresh_from_db()
    return out
