"""The handoff board: thin views that parse input, call selectors or services, and render.

One URL, two renderings: with htmx (`request.htmx`) a view answers the fragment that changed; without
JavaScript the same forms post normally and get a redirect back to the board (or a full page).

Status codes of the action endpoints: 200 (htmx fragment) or 302 (no-JS post) on success; 400 for an
invalid dialog form (the dialog again, with its errors); 403 when the user's role may not do this
(no `work_handoff`; an SDR reassigning; a manager claiming); 404 for unknown handoffs and for another
SDR's handoff that was never this user's to see (never revealed); 405 for anything but POST; 409 when
the state machine says somebody else got there first, including another SDR taking a card this
user's board showed as unassigned or theirs. The `handoff_endpoint` decorator maps the state
machine's refusals to these answers for every action and dialog.
"""

from functools import wraps
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget, trigger_client_event

from leads.models import Stage

from . import selectors, services
from .forms import BoardFilterForm, QualifyForm, ReassignForm, RejectForm, filters_querystring
from .selectors import OPEN_COLUMNS, BoardFilters

WORK = "handoff.work_handoff"
REASSIGN = "handoff.reassign_handoff"


# --- helpers ---------------------------------------------------------------------------------------


def _require(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied


def _actionable(request, pk: int):
    """The handoff (with what its card shows) if this user may act on it now. Unknown: 404; otherwise
    services.check_access decides and raises, which handoff_endpoint answers."""
    handoff = selectors.card(pk)
    if handoff is None:
        raise Http404("No such handoff.")
    services.check_access(request.user, handoff)
    return handoff


def handoff_endpoint(perm: str, method):
    """An endpoint acting on handoff `pk`: only `method`, only with `perm` (403), and the state
    machine's refusals answered here, once: Forbidden → 403, NotAllowed → 404 (another SDR's handoff
    is never revealed), TransitionConflict → 409 with the card as it really is now."""

    def decorate(view):
        @method
        @wraps(view)
        def endpoint(request, pk: int):
            _require(request.user, perm)
            try:
                return view(request, pk)
            except services.Forbidden as exc:
                raise PermissionDenied(str(exc)) from exc
            except services.NotAllowed as exc:
                raise Http404("No such handoff.") from exc
            except services.TransitionConflict as exc:
                return _conflict(request, pk, exc)

        return endpoint

    return decorate


def action(perm: str = WORK):
    """A board action (POST)."""
    return handoff_endpoint(perm, require_POST)


def dialog(perm: str = WORK):
    """The form of a board action (GET)."""
    return handoff_endpoint(perm, require_GET)


def _filters(request, params: QueryDict) -> tuple[BoardFilterForm, BoardFilters]:
    form = BoardFilterForm(params, user=request.user, campaigns=None)
    return form, form.filters()


def _page_filters(request) -> BoardFilters:
    """The filters of the board page an htmx action was sent from (HX-Current-URL)."""
    query = urlsplit(request.htmx.current_url or "").query if request.htmx else ""
    filters = _filters(request, QueryDict(query))[1]
    filters.view = "open"
    return filters


def _back(request) -> str:
    """Where a no-JS post returns to: the board page it came from, filters included."""
    referer = request.headers.get("referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(referer)
        if parts.path == reverse("board"):
            return f"{parts.path}?{parts.query}" if parts.query else parts.path
    return reverse("board")


def _card_context(request, pk: int, **extra) -> dict:
    """The card of handoff `pk` as the board shows it to this user now (one query)."""
    return {"c": selectors.card_view(pk, request.user), **extra}


def _dialog_response(request, handoff, kind: str, form, *, status: int = 200) -> HttpResponse:
    """A dialog's content: into the card's <dialog> with htmx, or as a page of its own without JS."""
    context = {"h": handoff, "form": form, "kind": kind}
    if request.htmx:
        response = render(
            request, f"handoff/dialogs.html#{kind}", {**context, "in_dialog": True}, status=status
        )
        if status == 400:
            # The form posts with hx-target="closest article"; errors go back into the open dialog.
            retarget(response, f"#handoff-{handoff.pk}-dialog")
            reswap(response, "innerHTML")
        return response
    return render(request, "handoff/action_page.html", context, status=status)


def _conflict(request, pk: int, exc: services.TransitionConflict) -> HttpResponse:
    """409: the message and the card as it really is now."""
    context = _card_context(request, pk, conflict=str(exc))
    stage = context["c"]["stage"]
    if request.htmx:
        html = render_to_string("handoff/board.html#card", context, request=request)
        html += _counts_oob(request)
        response = HttpResponse(html, status=409)
        # Into the card, also when the request came from a dialog button (its target is the dialog).
        retarget(response, f"#handoff-{pk}")
        reswap(response, "outerHTML")
        trigger_client_event(
            response, "handoff-conflict", {"id": pk, "stage": stage, "message": str(exc)}
        )
        return response
    return render(request, "handoff/conflict_page.html", context, status=409)


def _counts_oob(request) -> str:
    filters = _page_filters(request)
    counts = selectors.column_counts(request.user, filters)
    return render_to_string(
        "handoff/board.html#counts_oob", {"counts": [(c.stage, counts[c.stage]) for c in OPEN_COLUMNS]}
    )


def _done(request, handoff_id: int, *, from_stage: str, message: str) -> HttpResponse:
    """Success: the card in its new state (moved to its new column), the counts, an HX-Trigger."""
    if not request.htmx:
        messages.success(request, message)
        return redirect(_back(request))
    context = _card_context(request, handoff_id, moved_from=from_stage, message=message)
    html = render_to_string("handoff/board.html#moved", context, request=request) + _counts_oob(request)
    response = HttpResponse(html)
    return trigger_client_event(
        response,
        "handoff-moved",
        {"id": handoff_id, "from": from_stage, "to": context["c"]["stage"], "message": message},
    )


def _name(handoff) -> str:
    return str(handoff.lead)


# --- the board -------------------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def board(request):
    """The board page; with htmx (the 15 s poll, the filter form) only its columns."""
    _require(request.user, WORK)
    campaigns = selectors.campaigns_for_filter() if not request.htmx else []
    form = BoardFilterForm(request.GET, user=request.user, campaigns=campaigns)
    filters = form.filters()
    now = timezone.now()
    context = {
        "filters": filters,
        "query": filters_querystring(filters),
        "columns": selectors.board(request.user, filters, now),
        "now": now,
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "handoff/board.html#columns", context)
    form = BoardFilterForm(form.initial_values(filters), user=request.user, campaigns=campaigns)
    context.update(form=form, is_manager=selectors.is_manager(request.user))
    return render(request, "handoff/board.html", context)


@require_GET
def board_more(request, stage: str):
    """The next page of one column ("Show more")."""
    _require(request.user, WORK)
    form, filters = _filters(request, request.GET)
    if stage not in {c.stage for c in filters.columns}:
        raise Http404("No such column.")
    try:
        offset = max(0, int(request.GET.get("offset", "0")))
    except ValueError:
        offset = 0
    now = timezone.now()
    counts = selectors.column_counts(request.user, filters, now)
    cards = selectors.column_cards(request.user, filters, stage, offset=offset, now=now)
    shown = offset + len(cards)
    context = {
        "cards": cards,
        "stage": stage,
        "shown": shown,
        "more": max(0, counts[stage] - shown),
        "next_limit": shown + selectors.PAGE_SIZE,
        "query": filters_querystring(filters),
        "filters": filters,
    }
    return render(request, "handoff/board.html#more_page", context)


# --- actions ---------------------------------------------------------------------------------------


@action()
def accept(request, pk: int):
    handoff = _actionable(request, pk)
    services.handoff_accept(handoff_id=pk, actor=request.user)
    return _done(request, pk, from_stage=handoff.stage, message=f"Accepted {_name(handoff)}: now a SAL.")


@action()
def reject(request, pk: int):
    handoff = _actionable(request, pk)
    form = RejectForm(request.POST, auto_id=f"h{pk}-%s")
    if not form.is_valid():
        return _dialog_response(request, handoff, "reject", form, status=400)
    reason = form.cleaned_data["reason"]
    try:
        services.handoff_reject(
            handoff_id=pk, actor=request.user, reason=reason, note=form.cleaned_data["note"]
        )
    except ValueError as exc:  # the reason was deactivated a moment ago
        form.add_error("reason", str(exc))
        return _dialog_response(request, handoff, "reject", form, status=400)
    return _done(request, pk, from_stage=handoff.stage, message=f"Rejected {_name(handoff)}: {reason.label}.")


@action()
def qualify(request, pk: int):
    handoff = _actionable(request, pk)
    form = QualifyForm(request.POST, auto_id=f"h{pk}-%s")
    if not form.is_valid():
        return _dialog_response(request, handoff, "qualify", form, status=400)
    services.handoff_qualify(handoff_id=pk, actor=request.user, **form.cleaned_data)
    return _done(request, pk, from_stage=handoff.stage, message=f"Qualified {_name(handoff)}: now a SQL.")


@action()
def claim(request, pk: int):
    handoff = _actionable(request, pk)
    if handoff.assignee_id == request.user.pk:  # already theirs (a double click): nothing to do
        return _done(request, pk, from_stage=handoff.stage, message=f"{_name(handoff)} is already yours.")
    services.handoff_claim(handoff_id=pk, actor=request.user)
    return _done(request, pk, from_stage=handoff.stage, message=f"Claimed {_name(handoff)}: it is yours now.")


@action(REASSIGN)
def reassign(request, pk: int):
    handoff = _actionable(request, pk)
    form = ReassignForm(request.POST, auto_id=f"h{pk}-%s")
    if not form.is_valid():
        return _dialog_response(request, handoff, "reassign", form, status=400)
    to_user = form.cleaned_data["assignee"]
    try:
        services.handoff_reassign(handoff_id=pk, actor=request.user, to_user=to_user)
    except ValueError as exc:  # no longer an active SDR
        form.add_error("assignee", str(exc))
        return _dialog_response(request, handoff, "reassign", form, status=400)
    who = (to_user.get_full_name() or to_user.get_username()) if to_user else "nobody"
    return _done(request, pk, from_stage=handoff.stage, message=f"Reassigned {_name(handoff)} to {who}.")


# --- dialogs (GET: the form that the action endpoints above receive) --------------------------------


@dialog()
def reject_dialog(request, pk: int):
    handoff = _actionable(request, pk)
    return _dialog_response(request, handoff, "reject", RejectForm(auto_id=f"h{pk}-%s"))


@dialog()
def qualify_dialog(request, pk: int):
    handoff = _actionable(request, pk)
    initial = selectors.lead_bant(handoff.lead_id)  # what an earlier qualification recorded
    return _dialog_response(request, handoff, "qualify", QualifyForm(initial=initial, auto_id=f"h{pk}-%s"))


@dialog(REASSIGN)
def reassign_dialog(request, pk: int):
    handoff = _actionable(request, pk)
    form = ReassignForm(initial={"assignee": handoff.assignee_id}, auto_id=f"h{pk}-%s")
    return _dialog_response(request, handoff, "reassign", form)


# --- lead detail -----------------------------------------------------------------------------------


@require_GET
def lead_detail(request, pk: int):
    """A lead's facts, why it scored, what it did and what happened to it. Read-only."""
    lead = selectors.lead_for_detail(pk)
    if lead is None or not selectors.can_view_lead(request.user, lead):
        raise Http404("No such lead.")
    detail = selectors.lead_detail(lead)
    return render(
        request,
        "handoff/lead_detail.html",
        {
            "d": detail,
            "lead": lead,
            "Stage": Stage,
            "can_board": request.user.has_perm(WORK),
        },
    )
