"""Pages: the auditor's view, read-only (BRIEF §1, §3 "the way of an audit").

Each case page reads the store itself, never the workflow nor the read models: the rows, the
fold of them up to the end of a chosen day (`domain.timeline.as_of`, the workflow's own fold),
what changed between two days (`domain.timeline.diff`), the chain's verdict with its head
(`eventstore.verify.verify`), and the bundle `cases export --bundle` writes, as a zip. Only
the index's list of cases comes from the read models, and it says when they lag or stopped.

Auditors, case officers and LGA advisers may look; council users and admins may not (403).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from domain import timeline
from domain.actors import Role
from domain.state import CaseState
from eventstore.chain import format_time
from eventstore.export import NoSuchCase, UnreadableCase
from eventstore.projections import case_rows, status
from eventstore.records import StoredEvent
from eventstore.verify import UnreadablePayload
from web.audit_reads import (
    ChainVerdict,
    StoredHistory,
    bundle_zip,
    chain_verdict,
    is_case_id,
    stored_history,
)
from web.site import PageRefused, Site

AUDIT_ROLES = (Role.AUDITOR, Role.CASE_OFFICER, Role.LGA_ADVISER)
"""Who may read every case as of any date; none of them can change anything here."""
NOT_FOUND = "There is no case with this id in the store."
GSS = re.compile(r"^[EKNSW][0-9]{8}$")
DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2200, 12, 31)
"""The days a page takes: wide of any case, and short of the calendar's end."""
LISTED = 200
"""Cases listed on the index at most: a filter by council narrows a longer list."""


@dataclass(frozen=True)
class TimelineEntry:
    """One stored event as the auditor reads it: exact time, actor, type, payload, hash."""

    version: int
    occurred_at: datetime
    exact_time: str
    actor: str
    type: str
    details: list[tuple[str, str]]
    hash: str


def shown(value: Any) -> str:
    """A stored value as text: strings as they are, the rest as JSON (escaped on the page)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def timeline_of(rows: list[StoredEvent]) -> list[TimelineEntry]:
    entries = []
    for row in rows:
        payload = row.payload
        details = ([("payload", f"cannot be read: {payload.reason}")]
                   if isinstance(payload, UnreadablePayload)
                   else [(key, shown(value)) for key, value in payload.items()])
        entries.append(TimelineEntry(row.version, row.occurred_at, format_time(row.occurred_at),
                                     row.actor, row.type, details, row.hash))
    return entries


def day_asked(text: str, what: str) -> tuple[date | None, str | None]:
    """The day a form field names, or why it names none (said beside the field)."""
    text = text.strip()
    if not DAY.match(text):
        return None, f"Enter {what} as YYYY-MM-DD, for example 2026-03-02"
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, f"{what[0].upper()}{what[1:]} must be a real date"
    if not FIRST_DAY <= day <= LAST_DAY:
        return None, f"{what[0].upper()}{what[1:]} must be between 1990 and 2200"
    return day, None


@dataclass(frozen=True)
class AsOf:
    """The case at a moment, the rows recorded up to it, and why it cannot be folded, if so."""

    state: CaseState | None
    rows: list[StoredEvent]
    problem: str | None


def case_as_of(history: StoredHistory, moment: datetime) -> AsOf:
    """The fold of the rows recorded up to `moment`, as `cases history --as-of` gives it.
    Rows that cannot be read or folded are still listed, as stored, with why."""
    if history.recorded is None:
        return AsOf(None, [r for r in history.events if r.occurred_at <= moment],
                    history.unreadable)
    try:
        state = timeline.as_of(history.recorded, moment)
    except ValueError as unfoldable:
        return AsOf(None, [r for r in history.events if r.occurred_at <= moment],
                    f"the events cannot be replayed: {unfoldable}")
    return AsOf(state, history.events[:state.version], None)


def router(site: Site) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    store = site.engine.store

    async def read(case_id: str) -> tuple[StoredHistory, ChainVerdict]:
        """The case's rows and verdict, or 404 (no data) for an id the store does not hold."""
        if not is_case_id(case_id):
            raise PageRefused(404, NOT_FOUND)
        history = await asyncio.to_thread(stored_history, store, case_id)
        if history is None:
            raise PageRefused(404, NOT_FOUND)
        return history, await asyncio.to_thread(chain_verdict, store, case_id)

    @routes.get("/audit")
    async def index(request: Request, case: str = "", council: str = "") -> Response:
        """Pick a case by id; or browse the cases the read models list, by council."""
        user = site.require(request, AUDIT_ROLES)
        errors: dict[str, str] = {}
        code = 200
        wanted = case.strip()
        if wanted:
            if not is_case_id(wanted):
                errors["case"], code = "Enter a case id like cpc-E06000001-2026", 422
            elif (await asyncio.to_thread(store.head, wanted))[0] == 0:
                errors["case"], code = "There is no case with this id in the store", 404
            else:
                return RedirectResponse(f"/audit/cases/{quote(wanted)}", status_code=303)
        council = council.strip()
        gss = council.upper()
        if gss and not GSS.match(gss):
            errors["council"], code = "Enter a council's GSS code, like E09000008", 422
        projection = await asyncio.to_thread(status, store.engine)
        rows = ([] if projection.problem is not None or "council" in errors else
                await asyncio.to_thread(case_rows, store.engine, council=gss or None,
                                        include_ended=True))
        return site.page(request, "audit/index.html", status=code, title="Audit a case",
                         user=user, errors=errors, case=wanted, council=council,
                         rows=rows[:LISTED], total=len(rows), projection=projection)

    @routes.get("/audit/cases/{case_id}")
    async def case_page(request: Request, case_id: str, as_of: str = "") -> Response:
        """The case as it stood at the end of a day (UTC), its timeline up to then, and the
        chain's verdict as the store stands now."""
        user = site.require(request, AUDIT_ROLES)
        history, verdict = await read(case_id)
        day, error = day_asked(as_of, "the date") if as_of.strip() else (None, None)
        context: dict[str, Any] = {"case_id": case_id, "verdict": verdict, "as_of": as_of,
                                   "day": day, "error": error, "seen": None, "timeline": []}
        if error is not None:
            return site.page(request, "audit/case.html", status=422,
                             title=f"Case {case_id}", user=user, **context)
        moment = (timeline.end_of_day(day) if day is not None  # else every event recorded
                  else max(datetime.now(UTC), *(row.occurred_at for row in history.events)))
        seen = case_as_of(history, moment)
        return site.page(request, "audit/case.html", title=f"Case {case_id}", user=user,
                         **{**context, "seen": seen, "timeline": timeline_of(seen.rows),
                            "total": len(history.events)})

    @routes.get("/audit/cases/{case_id}/diff")
    async def case_diff(request: Request, case_id: str,
                        start: Annotated[str, Query(alias="from")] = "",
                        end: Annotated[str, Query(alias="to")] = "") -> Response:
        """What changed between the end of one day and the end of another."""
        user = site.require(request, AUDIT_ROLES)
        history, verdict = await read(case_id)
        context: dict[str, Any] = {"case_id": case_id, "verdict": verdict, "start": start,
                                   "end": end, "change": None, "unreadable": None,
                                   "errors": {}}
        if not start.strip() and not end.strip():
            return site.page(request, "audit/diff.html", title=f"What changed in {case_id}",
                             user=user, **context)
        first, start_error = day_asked(start, "the first date")
        last, end_error = day_asked(end, "the second date")
        errors = {k: v for k, v in (("from", start_error), ("to", end_error)) if v}
        if first is not None and last is not None and first > last:
            errors["from"] = "The first date must be the same as or before the second date"
        if errors or first is None or last is None:
            return site.page(request, "audit/diff.html", status=422,
                             title=f"What changed in {case_id}", user=user,
                             **{**context, "errors": errors})
        if history.recorded is None:
            return site.page(request, "audit/diff.html", title=f"What changed in {case_id}",
                             user=user, **{**context, "unreadable": history.unreadable})
        try:
            change = timeline.diff(history.recorded, timeline.end_of_day(first),
                                   timeline.end_of_day(last))
        except ValueError as unfoldable:
            return site.page(request, "audit/diff.html", title=f"What changed in {case_id}",
                             user=user, **{**context, "unreadable":
                                           f"the events cannot be replayed: {unfoldable}"})
        changes = [(c.field, shown(c.old), shown(c.new)) for c in change.changes]
        by_version = {row.version: row for row in history.events}
        return site.page(request, "audit/diff.html", title=f"What changed in {case_id}",
                         user=user, **{**context, "change": change, "changes": changes,
                                       "first": first, "last": last,
                                       "timeline": timeline_of(
                                           [by_version[r.version] for r in change.events])})

    @routes.get("/audit/cases/{case_id}/bundle")
    async def bundle(request: Request, case_id: str) -> Response:
        """The case's audit bundle (events, RULE.md, verify.py, MANIFEST.json), zipped."""
        site.require(request, AUDIT_ROLES)
        if not is_case_id(case_id):
            raise PageRefused(404, NOT_FOUND)
        try:
            data = await asyncio.to_thread(bundle_zip, store, case_id)
        except NoSuchCase:
            raise PageRefused(404, NOT_FOUND) from None
        except UnreadableCase as unreadable:
            return site.page(request, "refused.html", status=409,
                             title="This case cannot be exported", message=str(unreadable))
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{case_id}-bundle.zip"',
            "Cache-Control": "no-store"})

    return routes
