"""How cases look in a terminal: a status block, a timeline, a table of open cases.

Every line and every cell goes through `visible`: a field may hold anything someone with the
database file wrote into it, and no field may reach past its line (a newline), redraw it (a
carriage return, ESC) or reorder it (a bidirectional override).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cli.output import visible
from domain.deadlines import Due
from eventstore import StoredEvent
from workflows.messages import CaseView


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def due_text(due: Due | None) -> str:
    if due is None:
        return "none"
    verb = "lapses" if due.action == "lapse" else "escalates"
    return f"{due.deadline.label} {verb} at {when(due.due_at)}"


def status(view: CaseView) -> str:
    s = view.state
    lines = [
        f"case      {s.case_id}",
        f"council   {s.council}",
        f"kind      {s.kind.value.replace('_', ' ') if s.kind else '—'}",
        f"stage     {s.stage.label if s.stage else 'not started'}  (version {s.version})",
        f"next      {due_text(view.next_deadline)}",
    ]
    picked = {"engine": "selected by the engine's rules",
              "officer": "HAND-PICKED by an officer"}.get(s.team_selected_by or "", "")
    if s.team:
        lines.append("team      " + ", ".join(f"{p.name} ({p.role.replace('_', ' ')})"
                                               for p in s.team) + f"; {picked}")
    elif s.proposed_team:
        lines.append("proposed  " + ", ".join(f"{p.name} ({p.role.replace('_', ' ')})"
                                               for p in s.proposed_team) + f"; {picked}")
    if s.selection_problem:
        lines.append(f"selection cannot fill the team: {s.selection_problem}")
    for report in s.reports:
        note = f" — correction: {report.correction_reason}" if report.correction_reason else ""
        lines.append(f"report    v{report.report_version} {report.status} "
                     f"{report.document_sha256[:12]}…{note}")
    for escalation in s.escalations:
        lines.append(f"escalated {escalation.deadline.label} at level {escalation.level} "
                     f"since {when(escalation.raised_at)}")
    if s.missed_deadlines:
        lines.append("missed    " + ", ".join(d.label for d in s.missed_deadlines))
    if s.withdrawal_reason:
        lines.append(f"withdrawn {s.withdrawal_reason}")
    for waiting in s.awaiting_approval:
        lines.append(f"awaiting  approval of {waiting.request_id}: "
                     f"{waiting.action.replace('_', ' ')}, asked by {waiting.requested_by} "
                     f"on {when(waiting.requested_at)} (another officer or adviser approves "
                     f"with `cases approve {s.case_id} --request-id {waiting.request_id}`)")
    return "\n".join(map(visible, lines))


def notices(shown: Sequence[dict[str, Any]]) -> str:
    """Who was told what, and when: a line a notice, under the case's status."""
    lines = []
    for n in shown:
        recipient = str(n.get("recipient", "")).replace("_", " ")
        status = str(n.get("status", ""))
        at = str(n.get("finished_at") or n.get("created_at") or "")[:16].replace("T", " ")
        to = ", ".join(n.get("sent_to") or [])
        if status == "sent":
            told = f"told     {at} {recipient}{f' ({to})' if to else ''}: {n.get('subject')}"
        elif status == "undeliverable":
            told = (f"UNDELIVERABLE {at} to the {recipient}: {n.get('subject')} — "
                    f"{n.get('problem')}{f'; told instead: {to}' if to else ''}")
        elif status == "failed":
            told = f"NOT TOLD {at} the {recipient}: {n.get('subject')} — {n.get('problem')}"
        else:
            told = f"to tell   the {recipient}: {n.get('subject')} ({status})"
        lines.append(visible(told))
    return "".join(f"\n{line}" for line in lines)


def _brief(payload: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in payload.items()
                     if k not in ("rationale",))
    return text if len(text) <= 110 else text[:107] + "…"


def timeline(events: Sequence[StoredEvent]) -> str:
    if not events:
        return "no events"
    return "\n".join(visible(f"v{e.version:<3} {when(e.occurred_at)}  {e.actor:<24} "
                             f"{e.type:<32} {_brief(e.payload)}") for e in events)


def table(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    if not rows:
        return "no cases"
    rows = [{c: visible(r.get(c, "")) for c in columns} for r in rows]
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}
    header = "  ".join(c.upper().ljust(widths[c]) for c in columns)
    body = ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join([header, *body])


def event_json(event: StoredEvent) -> dict[str, Any]:
    return {"position": event.position, "case_id": event.case_id, "version": event.version,
            "event_id": event.event_id, "type": event.type,
            "schema_version": event.schema_version,
            "occurred_at": event.occurred_at.isoformat(), "actor": event.actor,
            "payload": event.payload, "prev_hash": event.prev_hash, "hash": event.hash}
