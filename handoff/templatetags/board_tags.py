"""How the board formats things: compact durations, signed points, labels, a card's URLs, and the
card itself.

`selectors.board_card` uses the helpers to turn a card's row into a plain dict of ready-made,
already escaped strings; `board_card` (the tag) writes that dict out as the card's markup. A board
renders 75 cards (more after "Show more") on every 15 s refresh of every open board: per card, the
template engine's lookups, escaping, `{% url %}` and choice labels were most of the page's time.
"""

from datetime import timedelta
from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString

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


# --- the card ----------------------------------------------------------------------------------------
#
# The card's markup, written out here rather than as template nodes: a board renders 75 cards (more
# after "Show more") on every 15 s refresh, and Django's template engine spent ~90 µs per card on its
# ~35 variable lookups and ~15 `if`s, where this spends ~15 µs (1M leads, docs/board.md "Speed").
# Every value comes from `selectors.board_card` already HTML-escaped (SafeString); the only other
# text, a conflict's message, is escaped here. templates/handoff/board.html#card calls this.


def _csrf_input(context) -> str:
    """`{% csrf_token %}`'s hidden field, built once per rendering (every POST form of every card)."""
    cached = context.render_context.get("board_csrf_input")
    if cached is None:
        token = context.get("csrf_token")
        cached = "" if not token or token == "NOTPROVIDED" else format_html(
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token
        )
        context.render_context["board_csrf_input"] = cached
    return cached


@register.simple_tag(takes_context=True)
def board_card(context, c: dict) -> SafeString:
    """One card (`c`: selectors.board_card), as the card partial of templates/handoff/board.html."""
    conflict = context.get("conflict")
    i = c["id"]
    owner = c["owner"]
    out = [
        f'\n<article class="handoff-card{c["sla_class"]}{" has-conflict" if conflict else ""}'
        f'{" just-moved" if context.get("just_moved") else ""}"\n'
        f'         id="handoff-{i}" data-handoff-id="{i}" data-card-stage="{c["stage"]}"\n'
        f'         aria-labelledby="handoff-{i}-name" tabindex="-1">\n  '
    ]
    if conflict:
        now = f"owner {owner}" if owner else "unassigned"
        out.append(
            f'\n  <p class="conflict" role="alert" tabindex="-1">\n'
            f"    <strong>Not done.</strong> {conditional_escape(conflict)}\n"
            f'    <span class="now">Now: <strong>{c["stage_label"]}</strong> · {now}.</span>\n'
            f"  </p>\n  "
        )
    out.append(
        f'\n  <div class="card-head">\n'
        f'    <h3 class="name" id="handoff-{i}-name"><a href="{c["lead_url"]}">{c["name"]}</a></h3>\n'
        f'    <p class="score"><span class="score-value" title="Score">{c["score"]}</span>'
        f'<span class="fit" title="Fit score">fit {c["fit"]}</span></p>\n'
        f"  </div>\n"
        f'  <p class="card-who">{c["title"]} · <span class="company">{c["company"]}</span></p>\n  '
    )
    if c["reasons"]:
        items = "".join(f'<li class="{cls}">{text}</li>' for cls, text in c["reasons"])
        out.append(f'\n  <ul class="reasons" aria-label="Top scoring reasons">{items}</ul>\n  ')
    closed = f"<div><dt>Closed</dt><dd>{c['closed_ago']} ago</dd></div>" if c["closed_ago"] else ""
    out.append(
        f'\n  <dl class="facts">\n'
        f'    <div><dt>Source</dt><dd>{c["source"]}</dd></div>\n'
        f'    <div><dt>Owner</dt><dd>{owner if owner else "<em>Unassigned</em>"}</dd></div>\n'
        f'    <div class="span"><dt>Campaign</dt><dd>{c["campaign"]}</dd></div>\n'
        f'    <div><dt>In {c["stage_label"]}</dt><dd>{c["in_stage"]}</dd></div>\n'
        f"    {closed}\n"
        f"  </dl>\n  "
    )
    if c["sla"]:
        icon = f'<span aria-hidden="true">{c["sla_icon"]}</span> ' if c["sla_icon"] else ""
        out.append(f'<p class="sla sla-{c["sla"]}">{icon}{c["sla_text"]}</p>')
    out.append("\n  ")
    if not c["open"]:
        note = f'<blockquote class="note">{c["note"]}</blockquote>' if c["note"] else ""
        out.append(f'\n  <p class="outcome">{c["outcome"]}</p>\n  {note}\n  ')
    else:
        out.append('\n  <div class="actions">\n    ')
        if c["accept"]:
            url = c["accept_url"]
            out.append(
                f'\n    <form method="post" action="{url}" hx-post="{url}" hx-target="closest article"'
                f' hx-swap="outerHTML" hx-disabled-elt="find button">\n'
                f"      {_csrf_input(context)}"
                f'<button type="submit" class="primary" id="handoff-{i}-accept">Accept</button>\n'
                f"    </form>\n    "
            )
        if c["qualify"]:
            url = c["qualify_url"]
            out.append(
                f'\n    <form method="get" action="{url}" hx-get="{url}" hx-target="#handoff-{i}-dialog"'
                f' hx-swap="innerHTML" hx-disabled-elt="find button">\n'
                f'      <button type="submit" class="primary" id="handoff-{i}-qualify"'
                f' aria-haspopup="dialog">Qualify</button>\n'
                f"    </form>\n    "
            )
        if c["reject"]:
            url = c["reject_url"]
            out.append(
                f'\n    <form method="get" action="{url}" hx-get="{url}" hx-target="#handoff-{i}-dialog"'
                f' hx-swap="innerHTML" hx-disabled-elt="find button">\n'
                f'      <button type="submit" class="danger" id="handoff-{i}-reject"'
                f' aria-haspopup="dialog">Reject</button>\n'
                f"    </form>\n    "
            )
        if c["claim"]:
            url = c["claim_url"]
            out.append(
                f'\n    <form method="post" action="{url}" hx-post="{url}" hx-target="closest article"'
                f' hx-swap="outerHTML" hx-disabled-elt="find button">\n'
                f"      {_csrf_input(context)}"
                f'<button type="submit" id="handoff-{i}-claim">Claim</button>\n'
                f"    </form>\n    "
            )
        if c["reassign"]:
            url = c["reassign_url"]
            out.append(
                f'\n    <form method="get" action="{url}" hx-get="{url}" hx-target="#handoff-{i}-dialog"'
                f' hx-swap="innerHTML" hx-disabled-elt="find button">\n'
                f'      <button type="submit" id="handoff-{i}-reassign"'
                f' aria-haspopup="dialog">Reassign</button>\n'
                f"    </form>\n    "
            )
        out.append(
            f"\n  </div>\n"
            f'  <dialog id="handoff-{i}-dialog" class="action-dialog"'
            f' aria-labelledby="handoff-{i}-dialog-title"></dialog>\n  '
        )
    out.append("\n</article>\n")
    return SafeString("".join(out))
