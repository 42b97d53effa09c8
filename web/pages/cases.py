"""Pages: the officer's dashboard, starting a case, and a case's own page with the actions the
signed-in user may take on it now.

Every action goes through the application layer as the API's do (`engine.cases.act`, the
workflow's validator and the rules), as the signed-in user's actor, never a typed one. Each
form carries the session's CSRF token and a request key made when the form was shown: the
key becomes the Temporal update's id, so a form sent twice is recorded once. A refusal shows
the page again with the rule's words beside the field at fault; nothing is recorded then."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from markupsafe import Markup, escape
from pydantic import TypeAdapter, ValidationError
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from application.cases import (
    ActionNotPermitted,
    ActionRefused,
    CaseNotFound,
    current_read_models,
)
from application.notices import case_notices
from application.peers import explain_selections
from application.users import User
from domain import commands as cmd
from domain.actors import Role, parse_actor
from domain.councils import Council
from domain.deadlines import LADDER, Due, pending
from domain.events import PeerTeamProposed
from domain.permissions import MAY, NotPermitted, check_permitted
from domain.policies import PolicyBook
from domain.read_models import policy_of
from domain.recorded import Recorded
from domain.rules import CommandRefused, decide
from domain.state import CaseState, fold
from domain.vocabulary import CaseKind, DeadlineName
from eventstore import StoredEvent
from eventstore.councils import councils_as_of, known_councils
from eventstore.projections import ProjectionBroken
from web.forms import (
    ACTION_FORMS,
    CHOICE_WORDS,
    ActionForm,
    FormErrors,
    Submitted,
    checked,
    error_summary,
    field_at_fault,
    form_for,
    read_form,
)
from web.reads import OpenCases, open_cases, requested_by, timeline
from web.security import CSRF_FIELD, csrf_ok, csrf_token
from web.site import Kept, PageRefused, Site
from workflows.messages import council_of_case

log = structlog.get_logger("web")

OFFICERS = (Role.CASE_OFFICER, Role.LGA_ADVISER)
ACTING = (*OFFICERS, Role.COUNCIL)
"""Who may send a case's forms at all (the role table decides which)."""
READING = (*ACTING, Role.AUDITOR)
"""Who may see a case's page: an auditor reads it, and has no form on it."""
SOON = timedelta(days=30)
BOOK = PolicyBook(demo_mode=True)
"""The deadlines of any policy a case recorded, demo ones too, as the read models show them."""
ANSWER_WITHIN_SECONDS = 60.0
"""As the API's: an action not recorded by then is answered 503, and the same form sent
again waits for the same update."""
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
REQUEST_KEY = "request_key"
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
NOT_THERE = "There is no case at this address, or not one you may see."
EXPIRED = ("This form has expired: go back, reload the page and try again. Nothing was "
           "changed.")
_COMMAND: TypeAdapter[cmd.AnyCommand] = TypeAdapter(cmd.AnyCommand)

START_FORM = form_for(cmd.RequestCase, ("council", "kind", "reason", "scope", "requested_on"))
"""Opening a case: the request's fields a person types (the case id, the terms and the
four-eyes flag are the engine's)."""
DONE = {**ACTION_FORMS, START_FORM.action: START_FORM}
"""What a `?recorded=` or `?asked=` after a redirect may name: nothing else is shown."""


@dataclass
class Failed:
    """A form sent back and refused: what was typed, the words beside each field at fault,
    and the rule's words when no one field is."""

    form: ActionForm
    values: dict[str, str]
    errors: dict[str, str]
    refusal: str | None = None
    key: str | None = None
    """Kept when the engine may yet record the action: sent again, it is recorded once."""


@dataclass
class Offer:
    """A form on the case page: the action, the choices the case gives its fields (requests
    waiting, peers proposed), and the key its request will be recorded under."""

    form: ActionForm
    choices: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    key: str = ""
    failed: Failed | None = None
    html: Markup | None = None
    """The form as drawn (`DrawnForms`), or None to draw it in the page (a form sent back
    refused, with what was typed and the words beside each field)."""


_CASE_SLOT, _CSRF_SLOT, _KEY_SLOT = ("case-slot-5f0c9e", "csrf-slot-5f0c9e",
                                     "request-key-slot-5f0c9e")


class DrawnForms:
    """Each action form drawn once for every case, with slots for what differs (the case
    id, the session's CSRF token, the form's request key) filled in per page: the GOV.UK
    macros that draw a form cost more than the rest of a case page."""

    def __init__(self, env: Environment) -> None:
        self.macro = env.get_template("cases/_macros.html").module.action_form  # type: ignore[attr-defined]
        self.drawn: Kept[tuple[object, ...], str] = Kept(512)

    def __call__(self, offer: Offer, case_id: str, csrf: str) -> Markup:
        key = (offer.form.action, tuple((name, tuple(listed))
                                        for name, listed in sorted(offer.choices.items())))
        html = self.drawn.get(key)
        if html is None:
            html = self.drawn.keep(key, str(self.macro(
                Offer(form=offer.form, choices=offer.choices, key=_KEY_SLOT),
                _CASE_SLOT, _CSRF_SLOT)))
        return Markup(html.replace(_CASE_SLOT, str(escape(case_id)))
                      .replace(_CSRF_SLOT, str(escape(csrf)))
                      .replace(_KEY_SLOT, str(escape(offer.key))))


def _new_key() -> str:
    return secrets.token_urlsafe(24)


def request_id(user: User, action: str, key: object) -> str | None:
    """The update id a form's request key becomes: the user's own and the action's (two
    users' keys, or one key sent to another action, never meet), never the key itself."""
    if not isinstance(key, str) or not _KEY.match(key):
        return None
    said = f"{user.name}\n{action}\n{key}".encode()
    return "page-" + hashlib.sha256(said).hexdigest()[:40]


async def _sent(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


def _may_see(user: User, case_id: str) -> None:
    """A council user sees their own council's cases only: another's is not there for
    them (404, and nothing of it shown)."""
    if not CASE_ID.match(case_id):
        raise PageRefused(404, NOT_THERE)
    if user.role == Role.COUNCIL and council_of_case(case_id) != user.principal.council:
        raise PageRefused(404, NOT_THERE)


# --- which actions a page offers ------------------------------------------------------------

def _refused_whatever_is_typed(state: CaseState, form: ActionForm, user: User,
                               now: datetime, **given: Any) -> bool:
    """Whether the rules refuse the action before reading anything typed into its form.

    The rules are asked with the form's fields left out: a refusal that comes before a rule
    reads a field (the stage, the role, the council, a request of the kind already waiting)
    stands whatever is typed, so the form is not offered. A rule that goes on to read a
    field leaves it to what is typed: the form is offered, and may be refused then in the
    rule's own words."""
    stub = form.command.model_construct(actor=user.actor, case_id=state.case_id, **given)
    try:
        decide(state, stub, now)
    except CommandRefused:
        return True
    except Exception:
        return False
    return False


def _words(value: str) -> str:
    return value.replace("_", " ")


def offered(state: CaseState, user: User, now: datetime) -> list[Offer]:
    """The forms of the actions `user`'s role may take on the case now, in the journey's
    order: those in MAY[role] that the rules would not refuse whatever is typed."""
    if not state.is_open:
        return []
    offers = []
    for action, form in ACTION_FORMS.items():
        if action not in MAY[user.role]:
            continue
        choices: dict[str, list[tuple[str, str]]] = {}
        if action in ("approve", "decline"):
            choices["request_id"] = [
                (w.request_id, f"{_words(w.action).capitalize()}, asked by {w.requested_by} "
                               f"({w.request_id})")
                for w in state.awaiting_approval
                if not _refused_whatever_is_typed(state, form, user, now,
                                                  request_id=w.request_id)]
            if not choices["request_id"]:
                continue
        elif _refused_whatever_is_typed(state, form, user, now):
            continue
        if action == "object_to_peer":
            choices["peer_id"] = [(p.peer_id, f"{p.name} ({_words(p.role)}, {p.peer_id})")
                                  for p in state.proposed_team]
        offers.append(Offer(form=form, choices=choices, key=_new_key()))
    return offers


# --- what a case page shows -----------------------------------------------------------------

def _engine_reasons(site: Site, case_id: str, stored: Sequence[StoredEvent]
                    ) -> tuple[dict[str, str], str | None]:
    """Why the engine chose each peer on the team, in words (re-run from the selection's
    event, as `cases peers explain` does), or why that cannot be shown."""
    try:
        results = explain_selections(site.engine.store, case_id, stored)
    except Exception as unexplained:
        return {}, f"The selection cannot be explained just now: {unexplained}"
    reasons: dict[str, str] = {}
    for result in results:
        if result.get("selected_by") != "engine" or "team" not in result:
            continue
        team = {seat["peer_id"] for seat in result["team"]}
        reasons = {c["peer_id"]: c["reason"] for c in result.get("candidates", [])
                   if c["peer_id"] in team and c.get("admitted")}
    return reasons, None


@dataclass(frozen=True)
class Deadline:
    due: Due
    words: str


def _deadlines(state: CaseState, dues: Sequence[Due], ladder: Mapping[int, str]
               ) -> list[Deadline]:
    """What the engine does by itself at each moment ahead, in words."""
    shown = []
    for due in dues:
        if due.action == "remind":
            words = "the council is reminded of it"
        elif due.deadline == DeadlineName.FACTUAL_ACCURACY_CHECK:
            words = ("falls due: without the council's comments by then, the report is made "
                     "final as drafted and the lapse recorded")
        elif due.action == "lapse":
            words = (f"falls due: if missed, the lapse is recorded and the case escalates to "
                     f"level 1 ({ladder[1]})")
        else:
            current = state.escalation_for(due.deadline)
            level = (current.level if current else 0) + 1
            words = f"escalates to level {level} ({ladder.get(level, 'the top')})"
        shown.append(Deadline(due=due, words=words))
    return shown


def _ladder(state: CaseState, councils: Mapping[str, Council]) -> dict[int, str]:
    named = councils.get(state.council or "")
    return {level: who.format(council=named.short_name if named else state.council)
            for level, who in LADDER.items()}


def _hand_picked_rationale(history: Sequence[Recorded]) -> list[str]:
    """The officer's reasons for the team on the table, as the proposal recorded them."""
    for recorded in reversed(history):
        if isinstance(recorded.event, PeerTeamProposed):
            return list(recorded.event.rationale)
    return []


# --- the routes -------------------------------------------------------------------------------

SHOWN = 50
"""Rows of each dashboard list shown; the rest are counted."""


def engine_now(state: CaseState) -> datetime:
    """The engine's clock as far as this page can tell: now, or the case's last recorded
    event if that is later (a workflow's clock is its server's, which a test server moves
    ahead), so the actions offered are those the workflow's rules would take."""
    now = datetime.now(UTC)
    last = state.last_event_at
    return max(now, last) if last is not None else now


def router(site: Site) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    store = site.engine.store
    forms = DrawnForms(site.env)
    explained: Kept[tuple[object, ...], tuple[dict[str, str], str | None]] = Kept(256)
    """Each engine-selected team's reasons, by case version and council register version."""

    async def case_page(request: Request, user: User, case_id: str, *, status: int = 200,
                        failed: Failed | None = None) -> Response:
        # One hop off the event loop for the reads and the drawing together.
        return await asyncio.to_thread(draw_case, request, user, case_id, status, failed)

    def draw_case(request: Request, user: User, case_id: str, status: int,
                  failed: Failed | None) -> Response:
        stored = store.read_case(case_id)
        if not stored:
            raise PageRefused(404, NOT_THERE)
        history = [e.to_recorded() for e in stored]
        state = fold(case_id, history)
        if state.stage is None:
            raise PageRefused(404, NOT_THERE)
        register, councils = councils_as_of(store)
        # The store is the record: every action's events are in it before the engine answers,
        # so the page folds them as the workflow does, with no round trip through Temporal
        # (which cost a query task on a worker for every page shown).
        policy = policy_of(state, BOOK)
        dues: Sequence[Due] = pending(state, policy) if policy is not None else []
        reasons: dict[str, str] = {}
        unexplained: str | None = None
        if state.team_selected_by == "engine":
            key = (case_id, state.version, register)
            # re-running a selection costs milliseconds
            reasons, unexplained = (explained.get(key)
                                    or explained.keep(key, _engine_reasons(site, case_id, stored)))
        notices = case_notices(store, case_id, lga_addresses=user.role != Role.COUNCIL)
        offers = offered(state, user, engine_now(state))
        csrf = csrf_token(request)
        for offer in offers:
            offer.html = forms(offer, case_id, csrf)
        if failed is not None:
            found = next((o for o in offers if o.form.action == failed.form.action), None)
            if found is None:  # refused outright: shown anyway, so its words sit beside it
                found = Offer(form=failed.form, key=_new_key())
                offers.insert(0, found)
            found.failed = failed
            found.key = failed.key or _new_key()
            found.html = None
        recorded_action = request.query_params.get("recorded", "")
        asked_action = request.query_params.get("asked", "")
        done = DONE.get(recorded_action) or DONE.get(asked_action)
        ladder = _ladder(state, councils)
        return site.page(
            request, "cases/case.html", status=status, title=f"Case {state.case_id}",
            user=user, state=state,
            council=councils.get(state.council or ""), councils=councils,
            deadlines=_deadlines(state, dues, ladder), ladder=ladder,
            missed=dict(state.missed_due_at),
            team=state.team or state.proposed_team, confirmed=bool(state.team),
            reasons=reasons, unexplained=unexplained,
            rationale=_hand_picked_rationale(history) if state.team_selected_by == "officer"
            else [],
            timeline=timeline(history), notices=notices, offers=offers,
            errors_summary=error_summary(failed.form, failed.errors, failed.refusal)
            if failed else [],
            done=done, asked=bool(asked_action) and done is not None)

    shared: Kept[tuple[object, ...], OpenCases] = Kept(1)
    """The lists every officer's dashboard shows alike, by the read models' position and
    the minute: read once for all, not once per officer per view."""

    def open_now(position: int, now: datetime) -> OpenCases:
        minute = now.replace(second=0, microsecond=0)
        key = (position, minute)
        found = shared.get(key)  # only the newest is wanted
        return found if found is not None else shared.keep(
            key, open_cases(store, minute + SOON, LADDER, SHOWN))

    @routes.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        """An officer's or adviser's cases: their own first, what falls due within 30 days,
        what has escalated, and the requests waiting for them as the second person."""
        user = site.require(request, OFFICERS)
        now = datetime.now(UTC)
        try:
            current = await asyncio.to_thread(current_read_models, store)
        except ProjectionBroken as broken:
            return site.page(request, "refused.html", status=503, user=user,
                             title="Cases cannot be listed just now", message=str(broken))
        key = (user.name, user.role, csrf_token(request), current.position,
               now.replace(second=0, microsecond=0))
        html = drawn.get(key)
        if html is None:
            page = await asyncio.to_thread(draw_dashboard, request, user, current.position, now)
            html = drawn.keep(key, bytes(page.body).decode("utf-8"))
        return HTMLResponse(html)

    drawn: Kept[tuple[object, ...], str] = Kept(256)
    """Dashboards as drawn, by whose (the user and their session's CSRF token, which the
    page's forms carry), the read models' position and the minute: an officer who looks
    again before anything has changed is not drawn a new page."""

    def draw_dashboard(request: Request, user: User, position: int,
                       now: datetime) -> HTMLResponse:
        # A long list is cut to its first rows (soonest deadline first), saying how many there
        # are: ten thousand rows help nobody, and cost a second to draw.
        board = open_now(position, now)
        mine, mine_total = requested_by(store, user.actor, SHOWN)
        councils = known_councils(store)
        me = user.principal.person
        return site.page(
            request, "cases/dashboard.html",
            title="Dashboard", user=user, totals={**board.totals, "mine": mine_total},
            mine=mine, due=board.due, rows=board.rows, escalated=board.escalated,
            ladder=LADDER, now=now, councils=councils,
            to_approve=[w for w in board.waiting
                        if parse_actor(w.request.requested_by).person != me],
            yours=[w for w in board.waiting
                   if parse_actor(w.request.requested_by).person == me])

    def start_page(request: Request, user: User, *, status: int = 200,
                   submitted: Submitted | None = None, errors: Mapping[str, str] | None = None,
                   key: str | None = None) -> Response:
        councils = sorted((c for c in known_councils(store).values() if c.is_english_council),
                          key=lambda c: c.name)
        return site.page(request, "cases/new.html", status=status, title="Start a case",
                         user=user, form=START_FORM, values=submitted.values if submitted
                         else {}, errors=dict(errors or {}), key=key or _new_key(),
                         errors_summary=error_summary(START_FORM, errors or {}, prefix="case"),
                         councils=councils,
                         kinds=[(k.value, CHOICE_WORDS.get(k.value) or _words(k.value).capitalize())
                                for k in CaseKind])

    @routes.get("/cases/new")
    async def new_case(request: Request) -> Response:
        user = site.require(request, OFFICERS)
        return await asyncio.to_thread(start_page, request, user)

    @routes.post("/cases/new")
    async def start_case(request: Request) -> Response:
        """Open a case from the form; on success, its page."""
        user = site.require(request, OFFICERS)
        sent = await _sent(request)
        if not csrf_ok(request, sent.get(CSRF_FIELD)):
            raise PageRefused(403, EXPIRED)
        submitted = read_form(START_FORM, sent)
        councils = await asyncio.to_thread(known_councils, store)
        resolved = resolve_council(councils, submitted.values.get("council", ""))
        if isinstance(resolved, str):
            submitted.errors["council"] = resolved
        else:
            submitted.data["council"] = resolved.gss_code
        try:
            valid = checked(START_FORM, submitted)
        except FormErrors as refused:
            return await asyncio.to_thread(start_page, request, user, status=422,
                                           submitted=submitted, errors=refused.errors)
        key = sent.get(REQUEST_KEY)
        kind = CaseKind(getattr(valid, "kind"))  # noqa: B009 - a model made at run time
        try:
            view = await asyncio.wait_for(site.engine.cases.start(
                council=getattr(valid, "council"), kind=kind,  # noqa: B009
                reason=getattr(valid, "reason"), actor=user.actor,  # noqa: B009
                scope=list(getattr(valid, "scope")),  # noqa: B009
                requested_on=getattr(valid, "requested_on"),  # noqa: B009
                request_id=request_id(user, START_FORM.action, key)), ANSWER_WITHIN_SECONDS)
        except ActionRefused as refused:
            at_fault = field_at_fault(START_FORM, submitted.data, str(refused)) or "council"
            return await asyncio.to_thread(start_page, request, user, status=409,
                                           submitted=submitted, errors={at_fault: str(refused)})
        except (TimeoutError, RPCError, TemporalError):
            return await asyncio.to_thread(
                start_page, request, user, status=503, submitted=submitted, key=key,
                errors={"council": "The engine has not opened the case yet (Temporal or its "
                                   "database may be slow or down). Send the form again: the "
                                   "case is opened once."})
        log.info("case started", case_id=view.state.case_id, actor=user.actor, door="page")
        return RedirectResponse(f"/cases/{view.state.case_id}?recorded=request",
                                status_code=303)

    @routes.get("/cases/{case_id}")
    async def case(request: Request, case_id: str) -> Response:
        user = site.require(request, READING)
        _may_see(user, case_id)
        return await case_page(request, user, case_id)

    @routes.post("/cases/{case_id}/actions/{action}")
    async def act(request: Request, case_id: str, action: str) -> Response:
        """Record one action from its form, as the signed-in user; refused, the page again
        with the rule's words beside the field at fault, and nothing recorded."""
        user = site.require(request, ACTING)
        _may_see(user, case_id)
        sent = await _sent(request)
        if not csrf_ok(request, sent.get(CSRF_FIELD)):
            raise PageRefused(403, EXPIRED)
        form = ACTION_FORMS.get(action)
        if form is None:
            raise PageRefused(404, "There is no such action.")
        submitted = read_form(form, sent)

        def again(status: int, errors: Mapping[str, str], refusal: str | None = None,
                  key: str | None = None) -> Coroutine[Any, Any, Response]:
            return case_page(request, user, case_id, status=status, failed=Failed(
                form=form, values=submitted.values, errors=dict(errors), refusal=refusal,
                key=key))

        try:
            valid = checked(form, submitted)
            command = _COMMAND.validate_python({
                **valid.model_dump(exclude_none=True), "action": form.action,
                "actor": user.actor, "case_id": case_id})
        except FormErrors as refused:
            return await again(422, refused.errors)
        except ValidationError as invalid:  # not the form's fields: the case or the actor
            return await again(422, {}, "; ".join(e["msg"] for e in invalid.errors()))
        try:
            check_permitted(command, council_of_case(case_id))
        except NotPermitted as refused:
            return await again(403, {}, f"case {case_id}: {refused}")
        key = sent.get(REQUEST_KEY)
        try:
            view = await asyncio.wait_for(
                site.engine.cases.act(case_id, command, request_id(user, action, key)),
                ANSWER_WITHIN_SECONDS)
        except CaseNotFound:
            raise PageRefused(404, NOT_THERE) from None
        except ActionNotPermitted as refused:
            return await again(403, {}, str(refused))
        except ActionRefused as refused:
            at_fault = field_at_fault(form, submitted.data, str(refused))
            if at_fault is None:
                return await again(409, {}, str(refused))
            return await again(409, {at_fault: str(refused)})
        except (TimeoutError, RPCError, TemporalError):
            return await again(503, {}, "The engine has not recorded this yet (Temporal or its "
                                        "database may be slow or down). Send the form again: "
                                        "it is recorded once.", key=key)
        log.info("case action", case_id=case_id, action=action, actor=user.actor,
                 version=view.state.version, door="page")
        asked = form.sensitive and any(w.action == action and w.requested_by == user.actor
                                       for w in view.state.awaiting_approval)
        return RedirectResponse(f"/cases/{case_id}?{'asked' if asked else 'recorded'}={action}",
                                status_code=303)

    return routes


_NAMED_CODE = re.compile(r"\(([EKNSW][0-9]{8})\)\s*$")


def resolve_council(councils: Mapping[str, Council], typed: str) -> Council | str:
    """The council typed: its GSS code, its name or short name, or its register code, any
    case; or `Name (GSS)` as the form's list offers it. A string says why not."""
    text = " ".join(typed.split())
    if not text:
        return "Enter a council's name or GSS code"
    named = _NAMED_CODE.search(text)
    by_code = councils.get(named.group(1) if named else text.upper())
    if by_code is not None:
        return by_code
    wanted = text.casefold()
    found = [c for c in councils.values() if c.current and wanted in (
        c.name.casefold(), c.short_name.casefold(), c.code.casefold())]
    if len(found) == 1:
        return found[0]
    if found:
        return (f"“{text}” names more than one council ("
                + ", ".join(f"{c.name}, {c.gss_code}" for c in found[:5])
                + "): enter its GSS code")
    return (f"No council the engine knows is called “{text}”: enter its name as the register "
            "has it (for example, Croydon) or its GSS code (for example, E09000008)")
