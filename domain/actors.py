"""Who acts: a person's role, name and (for a council's user) council, written as one actor.

The recorded actor is made from the signed-in user by the application layer, never typed:

    case_officer:NAME        an LGA case officer
    lga_adviser:NAME         an LGA principal adviser
    council:GSS:NAME         a user of the council with that GSS code
    auditor:NAME             an auditor (reads only)
    admin:NAME               an operator (manages users; acts on no case)
    system:NAME              the engine itself, inside the workflow only

Older events carry `officer:NAME` (read as a case officer) and `council:GSS` (a council,
no person named); both still parse, so every stored history folds as it did.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

_NAME = re.compile(r"^[^\s:]{1,120}$")
_GSS = re.compile(r"^[EKNSW][0-9]{8}$")


class Role(StrEnum):
    CASE_OFFICER = "case_officer"
    LGA_ADVISER = "lga_adviser"
    COUNCIL = "council"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"

    @property
    def words(self) -> str:
        return _WORDS[self]


_WORDS = {Role.CASE_OFFICER: "a case officer", Role.LGA_ADVISER: "an LGA principal adviser",
          Role.COUNCIL: "the council", Role.AUDITOR: "an auditor", Role.ADMIN: "an admin",
          Role.SYSTEM: "the engine"}

PERSON_ROLES = (Role.CASE_OFFICER, Role.LGA_ADVISER, Role.COUNCIL, Role.AUDITOR, Role.ADMIN)
"""The roles a user can be given; `system` is the engine's alone."""


class NotAnActor(ValueError):
    pass


class Principal(BaseModel):
    """One actor, taken apart: who the rules and the role table reason about."""

    model_config = ConfigDict(frozen=True)

    role: Role
    name: str
    """The user's name; empty only for a legacy council actor that named no person."""
    council: str | None = None
    """The council's GSS code, for a council user only."""

    @property
    def actor(self) -> str:
        if self.role == Role.COUNCIL:
            return f"council:{self.council}" + (f":{self.name}" if self.name else "")
        return f"{self.role.value}:{self.name}"

    @property
    def person(self) -> str:
        """Who, for the four-eyes rule: one person may not be both requester and approver,
        whatever role they hold."""
        return self.name


def principal_for(role: Role, name: str, council: str | None = None) -> Principal:
    """A principal from a user's record, checked: a council user needs a council, others none."""
    if not _NAME.match(name):
        raise NotAnActor(f"user name {name!r}: 1 to 120 characters, no spaces or colons")
    if role == Role.COUNCIL:
        if council is None or not _GSS.match(council):
            raise NotAnActor(f"a council user needs the council's GSS code, not {council!r}")
    elif council is not None:
        raise NotAnActor(f"only a council user is bound to a council, not {role.words}")
    return Principal(role=role, name=name, council=council)


def parse_actor(actor: str) -> Principal:
    """The principal an actor names; legacy spellings included."""
    head, _, rest = actor.partition(":")
    if head == "officer":
        head = Role.CASE_OFFICER.value
    try:
        role = Role(head)
    except ValueError:
        raise NotAnActor(f"{actor!r} is not an actor (like case_officer:NAME)") from None
    if role == Role.COUNCIL:
        council, _, name = rest.partition(":")
        if not _GSS.match(council) or (name and not _NAME.match(name)):
            raise NotAnActor(f"{actor!r} is not a council actor (like council:GSS:NAME)")
        return Principal(role=role, name=name, council=council)
    if not _NAME.match(rest):
        raise NotAnActor(f"{actor!r} is not an actor (like case_officer:NAME)")
    return Principal(role=role, name=rest)
