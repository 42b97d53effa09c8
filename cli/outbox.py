"""`cases outbox`: every notice the engine has to send, and what became of it — pending,
sent (to whom, the server's answer), undeliverable (why, and who was told instead) or
failed. Read from the store directly, like the auditors' commands."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from cli import render
from cli.output import emit, visible
from eventstore import EventStore
from eventstore.deliveries import NoticeDelivery, deliveries_of
from notices.compose import addressed

STATUSES = ("pending", "sent", "undeliverable", "failed")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    outbox = sub.add_parser("outbox", parents=[common],
                            help="the notices to send and what became of each")
    outbox.add_argument("--status", choices=STATUSES, help="only notices in this state")
    outbox.add_argument("--case", help="only this case's notices")
    outbox.add_argument("--limit", type=int, default=None,
                        help="at most this many (the oldest first)")


def dispatch(args: argparse.Namespace, store: EventStore) -> int:
    now = datetime.now(UTC)
    found = deliveries_of(store, case_id=args.case, status=args.status, now=now,
                          limit=args.limit)
    counts = {s: 0 for s in STATUSES}
    for d in found:
        counts[d.status] += 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    shown = (render.table([_row(d) for d in found],
                          ["id", "case", "recipient", "status", "told", "when"])
             if found else "no notices")
    problems = "".join(
        f"\n{d.status.upper()} #{d.notice.id} {d.notice.case_id}: {visible(d.problem)}"
        for d in found if d.status in ("undeliverable", "failed") and d.problem)
    emit(args, [as_json(d) for d in found],
         f"{shown}\n{len(found)} notice{'' if len(found) == 1 else 's'}: {summary}{problems}")
    return 0


def as_json(d: NoticeDelivery) -> dict[str, Any]:
    who = addressed(d.notice)
    return {"id": d.notice.id, "case_id": d.notice.case_id, "event_id": d.notice.event_id,
            "recipient": who.role.value, "council": who.council, "kind": who.kind or None,
            "subject": d.notice.subject, "created_at": d.notice.created_at.isoformat(),
            "status": d.status, "sending": d.sending, "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
            "message_id": d.message_id, "sent_to": list(d.sent_to), "answer": d.answer,
            "problem": d.problem, "contacts_version": d.contacts_version,
            "finished_at": d.finished_at.isoformat() if d.finished_at else None}


def _row(d: NoticeDelivery) -> dict[str, str]:
    who = addressed(d.notice)
    status: str = "sending" if d.sending else d.status
    if d.status == "pending" and d.attempts:
        status += f" (tried {d.attempts})"
    when = d.finished_at or d.notice.created_at
    return {"id": str(d.notice.id), "case": d.notice.case_id,
            "recipient": who.role.label + (f", {who.council}" if not who.role.of_the_lga
                                           and who.council else ""),
            "status": status, "told": ", ".join(d.sent_to),
            "when": when.strftime("%Y-%m-%d %H:%M")}
