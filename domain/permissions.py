"""The role table: which role may issue which command. One table, read by the rules that the
workflow's validator runs, so a forged update gets no further than the API would let it.

A council user acts only on its own council's cases, and only as a council does. Auditors
and admins act on no case; `system:` actors act only inside the workflow, never by command.
"""

from __future__ import annotations

from domain import commands as cmd
from domain.actors import NotAnActor, Principal, Role, parse_actor

OFFICERS_MAY: frozenset[str] = frozenset({
    "request", "scope", "select_team", "propose_team", "confirm_team", "schedule_visit",
    "record_visit", "give_feedback", "draft_report", "finalise_report", "correct_report",
    "publish_report", "publish_action_plan", "hold_progress_review", "publish_progress_review",
    "withdraw", "close", "approve", "decline",
})
COUNCILS_MAY: frozenset[str] = frozenset({
    "object_to_peer", "factual_accuracy_comments", "publish_report", "publish_action_plan",
    "publish_progress_review",
})

MAY: dict[Role, frozenset[str]] = {
    Role.CASE_OFFICER: OFFICERS_MAY,
    Role.LGA_ADVISER: OFFICERS_MAY,
    Role.COUNCIL: COUNCILS_MAY,
    Role.AUDITOR: frozenset(),
    Role.ADMIN: frozenset(),
    Role.SYSTEM: frozenset(),
}
"""Role → the actions (a command's `action`) it may issue. Everything else is refused."""

MAY_IMPORT_HISTORY: frozenset[Role] = frozenset({Role.CASE_OFFICER, Role.LGA_ADVISER})
"""Who may bring past peer challenges in (`cases import-history`): they start cases."""

SENSITIVE: frozenset[str] = frozenset({"correct_report", "withdraw", "propose_team"})
"""Take effect only once a second person approves (the four-eyes rule, BRIEF §5)."""

DOING: dict[str, str] = {
    "request": "request a case", "scope": "scope the case", "select_team": "select a peer team",
    "propose_team": "propose a peer team", "object_to_peer": "object to a peer",
    "confirm_team": "confirm the peer team", "schedule_visit": "schedule the visit",
    "record_visit": "record the visit", "give_feedback": "record feedback",
    "draft_report": "send the draft report",
    "factual_accuracy_comments": "submit factual-accuracy comments",
    "finalise_report": "make the report final", "correct_report": "correct the report",
    "publish_report": "record the report's publication",
    "publish_action_plan": "record the action plan",
    "hold_progress_review": "record the progress review",
    "publish_progress_review": "record the progress review report",
    "withdraw": "withdraw the case", "close": "close the case",
    "approve": "approve a request", "decline": "decline a request",
}
"""Each action in a case officer's words, for refusals."""


class NotPermitted(ValueError):
    """The role table refuses: the actor's role may not issue this command here."""


def roles_that_may(action: str) -> list[Role]:
    return [role for role, actions in MAY.items() if action in actions]


def who_may(action: str) -> str:
    words = [r.words for r in roles_that_may(action)]
    if not words:
        return "nobody"
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def check_permitted(command: cmd.Command, council_of_case: str | None) -> Principal:
    """The command's principal, if the role table lets it issue the command on a case of
    `council_of_case`; else NotPermitted saying which rule refused."""
    action = str(getattr(command, "action"))  # noqa: B009 - every concrete command has one
    doing = DOING.get(action, action)
    try:
        principal = parse_actor(command.actor)
    except NotAnActor as bad:
        raise NotPermitted(f"cannot {doing}: {bad}") from None
    if action not in MAY[principal.role]:
        raise NotPermitted(f"cannot {doing}: only {who_may(action)} may, not {command.actor}")
    if principal.role == Role.COUNCIL and principal.council != council_of_case:
        raise NotPermitted(f"cannot {doing}: {command.actor} is not the council of this case "
                           f"(council:{council_of_case})")
    return principal
