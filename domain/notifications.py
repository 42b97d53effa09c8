"""Who is told what when an event is recorded. Pure: the store writes them with the event."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain.state import CaseState


class Notification(BaseModel):
    model_config = ConfigDict(frozen=True)

    recipient: str
    subject: str
    body: str


def notifications_for(state: CaseState, event: ev.Event) -> list[Notification]:
    """The notifications `event` causes on a case that stood at `state` before it."""
    case, council = state.case_id, state.council or "the council"
    match event:
        case ev.PeerTeamProposed(team=team):
            names = ", ".join(f"{p.name} ({p.role.replace('_', ' ')})" for p in team)
            return [Notification(recipient=f"council contact, {council}",
                                 subject=f"{case}: proposed peer team",
                                 body=f"Proposed peers: {names}. You may object to a peer, "
                                      "with a reason.")]
        case ev.PeerTeamCannotBeFilled(requirement=requirement, reason=reason):
            return [Notification(recipient=f"case officer for {case}",
                                 subject=f"{case}: the peer team cannot be filled",
                                 body=f"The selection ran out of eligible peers for "
                                      f"{requirement.replace('_', ' ')}: {reason}")]
        case ev.ReportDrafted(sent_on=sent_on):
            return [Notification(recipient=f"council contact, {council}",
                                 subject=f"{case}: draft report for factual-accuracy check",
                                 body=f"The draft report was sent on {sent_on}. Please check "
                                      "it for factual accuracy.")]
        case ev.DeadlineMissed(deadline=deadline, due_at=due_at):
            return [Notification(recipient=f"case officer for {case}",
                                 subject=f"{case}: {deadline.label} deadline missed",
                                 body=f"The {deadline.label} deadline of {due_at:%Y-%m-%d %H:%M} "
                                      f"UTC lapsed for {council}.")]
        case ev.EscalationRaised(deadline=deadline, level=level, recipient=recipient):
            return [Notification(recipient=recipient,
                                 subject=f"{case}: escalation level {level} ({deadline.label})",
                                 body=f"{council} has let the {deadline.label} deadline lapse. "
                                      f"This is escalation level {level} of 3.")]
        case ev.EscalationResolved(deadline=deadline, level=level):
            return [Notification(recipient=f"case officer for {case}",
                                 subject=f"{case}: escalation resolved ({deadline.label})",
                                 body=f"{council} complied; the escalation at level {level} "
                                      "is resolved.")]
        case _:
            return []
