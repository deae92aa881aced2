"""How the board formats things: compact durations, signed points, labels and a card's URLs.

`selectors.board_card` uses these to turn a card's row into a plain dict of ready-made strings, so
the card template does cheap dictionary lookups only: a board renders up to 75 cards (more after
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


def card_urls() -> dict[str, str]:
    """A card's URLs as `str.format` templates ("/handoffs/{}/accept"): one `reverse` per name and
    script prefix, not one per card."""
    return _url_templates(get_script_prefix())
