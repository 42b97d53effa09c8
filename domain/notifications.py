"""Who is told what when an event is recorded. Pure: the store writes them with the event,
and the relay turns each into an email to the people who hold its recipient's role.

A notice names its recipient by role (`ContactRole`), never by address: who holds the role
is looked up when it is sent, in the contacts in force then. Its `facts` are what the
email templates are written from.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain.contacts import ContactRole
from domain.state import CaseState
from domain.vocabulary import DeadlineName


class NoticeKind(StrEnum):
    TEAM_PROPOSED = "team_proposed"
    TEAM_UNFILLED = "team_unfilled"
    DRAFT_SENT = "draft_sent"
    DEADLINE_APPROACHING = "deadline_approaching"
    DEADLINE_MISSED = "deadline_missed"
    ESCALATION_RAISED = "escalation_raised"
    ESCALATION_RESOLVED = "escalation_resolved"


ESCALATION_RECIPIENTS = {
    1: ContactRole.CHIEF_EXECUTIVE,
    2: ContactRole.PRINCIPAL_ADVISER,
    3: ContactRole.IMPROVEMENT_BOARD,
}
"""Who hears of a lapse at each level of the ladder (BRIEF §2)."""


class Notification(BaseModel):
    model_config = ConfigDict(frozen=True)

    recipient: ContactRole
    kind: NoticeKind
    council: str | None = None
    """The case's council (GSS code): whose people, or whose region's, are told."""
    subject: str
    body: str
    """One plain sentence or two: the outbox row's summary, and the email's gist."""
    facts: dict[str, str] = {}
    """What the templates need beyond the case and council: deadline, due date, level."""

    @property
    def key(self) -> str:
        """The notice's recipient within its event: unique per event in the outbox."""
        return self.recipient.value


def notifications_for(state: CaseState, event: ev.Event) -> list[Notification]:
    """The notifications `event` causes on a case that stood at `state` before it."""
    return [n.model_copy(update={"council": state.council}) for n in _caused(state, event)]


def _caused(state: CaseState, event: ev.Event) -> list[Notification]:
    case, council = state.case_id, state.council or "the council"
    match event:
        case ev.PeerTeamProposed(team=team):
            names = ", ".join(f"{p.name} ({p.role.replace('_', ' ')})" for p in team)
            return [Notification(recipient=ContactRole.COUNCIL_CONTACT,
                                 kind=NoticeKind.TEAM_PROPOSED,
                                 subject=f"{case}: proposed peer team",
                                 body=f"Proposed peers: {names}. You may object to a peer, "
                                      "with a reason.")]
        case ev.PeerTeamCannotBeFilled(requirement=requirement, reason=reason):
            return [Notification(recipient=ContactRole.PRINCIPAL_ADVISER,
                                 kind=NoticeKind.TEAM_UNFILLED,
                                 subject=f"{case}: the peer team cannot be filled",
                                 body=f"The selection ran out of eligible peers for "
                                      f"{requirement.replace('_', ' ')}: {reason}")]
        case ev.ReportDrafted(sent_on=sent_on):
            return [Notification(recipient=ContactRole.COUNCIL_CONTACT,
                                 kind=NoticeKind.DRAFT_SENT,
                                 subject=f"{case}: draft report for factual-accuracy check",
                                 body=f"The draft report was sent on {sent_on}. Please check "
                                      "it for factual accuracy.",
                                 facts={"sent_on": sent_on.isoformat()})]
        case ev.DeadlineApproaching(deadline=deadline, due_at=due_at):
            return [Notification(recipient=ContactRole.COUNCIL_CONTACT,
                                 kind=NoticeKind.DEADLINE_APPROACHING,
                                 subject=f"{case}: {deadline.label} due on {due_at:%Y-%m-%d}",
                                 body=f"The {deadline.label} deadline for {council} falls "
                                      f"due at {due_at:%Y-%m-%d %H:%M} UTC.",
                                 facts=_deadline_facts(deadline, due_at))]
        case ev.DeadlineMissed(deadline=deadline, due_at=due_at):
            body = (f"The {deadline.label} deadline of {due_at:%Y-%m-%d %H:%M} UTC lapsed for "
                    f"{council}.")
            return [Notification(recipient=recipient, kind=NoticeKind.DEADLINE_MISSED,
                                 subject=f"{case}: {deadline.label} deadline missed",
                                 body=body, facts=_deadline_facts(deadline, due_at))
                    for recipient in (ContactRole.COUNCIL_CONTACT,
                                      ContactRole.PRINCIPAL_ADVISER)]
        case ev.EscalationRaised(deadline=deadline, level=level):
            missed_at = state.missed_due(deadline)
            when = {"due_at": missed_at.isoformat()} if missed_at else {}
            return [Notification(recipient=ESCALATION_RECIPIENTS[level],
                                 kind=NoticeKind.ESCALATION_RAISED,
                                 subject=f"{case}: escalation level {level} ({deadline.label})",
                                 body=f"{council} has let the {deadline.label} deadline lapse. "
                                      f"This is escalation level {level} of 3.",
                                 facts={"deadline": deadline.value, "level": str(level),
                                        **when})]
        case ev.EscalationResolved(deadline=deadline, level=level):
            return [Notification(recipient=ContactRole.PRINCIPAL_ADVISER,
                                 kind=NoticeKind.ESCALATION_RESOLVED,
                                 subject=f"{case}: escalation resolved ({deadline.label})",
                                 body=f"{council} complied; the escalation at level {level} "
                                      "is resolved.",
                                 facts={"deadline": deadline.value, "level": str(level)})]
        case _:
            return []


def _deadline_facts(deadline: DeadlineName, due_at: datetime) -> dict[str, str]:
    return {"deadline": deadline.value, "due_at": due_at.isoformat()}
