"""How the board formats things: compact durations, signed points, and a card's display values.

`card` turns a handoff decorated by `selectors.decorate` into a plain dict of strings, so the card
template does cheap dictionary lookups only: a board renders up to 150 cards (and more after
"Show more") on every 15 s refresh, and the template engine's attribute lookups, `{% url %}` and
choice-label calls per card were most of its time.
"""

from datetime import timedelta
from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse

from handoff.models import Handoff
from leads.models import Source, Stage

register = template.Library()

STAGE_LABELS = dict(Stage.choices)
SOURCE_LABELS = dict(Source.choices)
OUTCOME_LABELS = dict(Handoff.Outcome.choices)
_PK = 2147483647  # a placeholder id to build URL templates with


@register.filter
def duration(value) -> str:
    """A timedelta as a short, humane duration: "2 d 4 h", "3 h 20 min", "12 min", "< 1 min"."""
    if value is None:
        return ""
    if not isinstance(value, timedelta):
        return str(value)
    minutes = int(abs(value).total_seconds() // 60)
    days, rest = divmod(minutes, 60 * 24)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins and hours < 10 else f"{hours} h"
    if mins:
        return f"{mins} min"
    return "< 1 min"


@register.filter
def points(value) -> str:
    """Score points with their sign: "+40", "−25", "0"."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return str(value)
    if n > 0:
        return f"+{n}"
    if n < 0:
        return f"−{abs(n)}"
    return "0"


@lru_cache(maxsize=8)
def _url_templates(prefix: str) -> dict[str, str]:
    names = {
        "accept": "handoff_accept",
        "claim": "handoff_claim",
        "qualify_dialog": "handoff_qualify_dialog",
        "reject_dialog": "handoff_reject_dialog",
        "reassign_dialog": "handoff_reassign_dialog",
    }
    urls = {key: reverse(name, args=[_PK]) for key, name in names.items()}
    urls["lead"] = reverse("lead_detail", args=[_PK])
    return {key: url.replace(str(_PK), "{}") for key, url in urls.items()}


def _person(user) -> str:
    return (f"{user.first_name} {user.last_name}".strip() or user.username) if user else ""


@register.filter
def card(h) -> dict:
    """The display values of one decorated handoff (see selectors.decorate)."""
    lead = h.lead
    urls = _url_templates(get_script_prefix())
    key = str(h.pk)
    sla = h.sla_state if h.sla_state != "none" else ""
    sla_text = sla_icon = ""
    if sla == "overdue":
        sla_text, sla_icon = f"Overdue by {duration(h.sla_overdue_by)}", "⚠"
    elif sla == "due_soon":
        sla_text, sla_icon = f"Due soon: {duration(h.sla_left)} left", "◔"
    elif sla == "on_track":
        sla_text = f"SLA: {duration(h.sla_left)} left"
    reason = h.rejection_reason.label if h.rejection_reason_id else ""
    return {
        "id": key,
        "stage": h.stage,
        "stage_label": STAGE_LABELS.get(h.stage, h.stage),
        "name": lead.full_name or lead.email,
        "title": lead.job_title or "No title",
        "company": lead.company or "No company",
        "score": str(lead.score),
        "fit": str(lead.fit_score),
        "reasons": [
            ("neg" if r["points"] < 0 else "pos", f"{points(r['points'])} {r.get('label', '')}")
            for r in h.top_reasons
        ],
        "source": SOURCE_LABELS.get(lead.source, lead.source),
        "campaign": lead.campaign.name if lead.campaign_id else "—",
        "owner": _person(h.assignee),
        "in_stage": duration(h.in_stage),
        "sla": sla,
        "sla_text": sla_text,
        "sla_icon": sla_icon,
        "open": h.is_open,
        "outcome": f"Rejected: {reason}"
        if reason
        else OUTCOME_LABELS.get(h.outcome) or STAGE_LABELS.get(h.stage, ""),
        "disqualified": h.stage == Stage.DISQUALIFIED,
        "note": h.rejection_note,
        "closed_ago": duration(h.closed_ago) if h.closed_at else "",
        "accept": h.can_act and h.stage == Stage.MQL,
        "qualify": h.can_act and h.stage == Stage.SAL,
        "reject": h.can_act and h.stage in (Stage.MQL, Stage.SAL),
        "claim": h.can_claim,
        "reassign": h.can_reassign,
        "lead_url": urls["lead"].format(h.lead_id),
        "accept_url": urls["accept"].format(key),
        "claim_url": urls["claim"].format(key),
        "qualify_url": urls["qualify_dialog"].format(key),
        "reject_url": urls["reject_dialog"].format(key),
        "reassign_url": urls["reassign_dialog"].format(key),
    }
