"""The people notices go to, by scope and role; several may share one, and all receive
(BRIEF §5, recipients).

A scope is a council's GSS code, for the council's own officers, or `lga:REGION` (a region
as the register spells it, such as `lga:North West`), for the LGA's people in that region;
`lga:England` holds the LGA's people for every region (the improvement board, say), looked
up when a region has none of its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from enum import StrEnum
from functools import cached_property
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.table_rows import CellProblem, RowReader


class ContactRole(StrEnum):
    CHIEF_EXECUTIVE = "chief_executive"
    MONITORING_OFFICER = "monitoring_officer"
    COUNCIL_CONTACT = "council_contact"
    PRINCIPAL_ADVISER = "principal_adviser"
    IMPROVEMENT_BOARD = "improvement_board"

    @property
    def of_the_lga(self) -> bool:
        """Held per LGA region rather than per council."""
        return self in (ContactRole.PRINCIPAL_ADVISER, ContactRole.IMPROVEMENT_BOARD)

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    ContactRole.CHIEF_EXECUTIVE: "chief executive",
    ContactRole.MONITORING_OFFICER: "monitoring officer",
    ContactRole.COUNCIL_CONTACT: "council contact",
    ContactRole.PRINCIPAL_ADVISER: "LGA principal adviser",
    ContactRole.IMPROVEMENT_BOARD: "improvement board",
}

LGA_SCOPE_PREFIX = "lga:"
NATIONAL_SCOPE = "lga:England"
"""The scope of the LGA's people for every region, looked up after the council's region."""


def lga_scope(region: str) -> str:
    return f"{LGA_SCOPE_PREFIX}{region}"


# --- who they are ---------------------------------------------------------------------------

ENGLISH_REGIONS = (
    "East Midlands", "East of England", "London", "North East", "North West", "South East",
    "South West", "West Midlands", "Yorkshire and The Humber",
)
"""England's nine regions as the register spells them: the LGA's regions are known before the
register is imported (the built-in councils cover eight of them)."""

CONTACT_COLUMNS = ("scope", "role", "name", "email")
"""The columns of a contacts file, exactly these."""

MAX_NAME = 200
MAX_EMAIL = 254
"""The longest address SMTP carries (RFC 5321's 256-octet path, less its angle brackets)."""
MAX_LOCAL_PART = 64

_COUNCIL_SCOPE = re.compile(r"^[EKNSW][0-9]{8}$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
"""RFC 5322's dot-atom: what an address may hold before its @ without quoting (quoted local
parts, legal but never a council's, are refused: they would need quoting in every header)."""
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


def _hidden_character(text: str) -> str | None:
    """The first character of `text` that moves or hides what a reader sees (a control, a line
    separator, a bidirectional override), or None: a name is printed in emails and tables."""
    for character in text:
        if unicodedata.category(character) in ("Cc", "Zl", "Zp") or character in _BIDI_CONTROLS:
            return character
    return None


def email_problem(text: str) -> str | None:
    """Why `text` is not an address mail can be sent to, or None when it is one.

    Checked by its shape alone (no DNS): one @, a dot-atom before it, a host name of
    letters, digits and hyphens with at least one dot after it, 254 characters at most."""
    if len(text) > MAX_EMAIL:
        return f"is longer than {MAX_EMAIL} characters ({len(text)})"
    if any(c.isspace() or _hidden_character(c) for c in text):
        return "has a space or a control character in it"
    if text.count("@") != 1:
        return "is not an email address: it needs exactly one @"
    local, domain = text.split("@")
    if not local:
        return "is not an email address: nothing before the @"
    if not domain:
        return "is not an email address: no domain after the @"
    if len(local) > MAX_LOCAL_PART:
        return f"has more than {MAX_LOCAL_PART} characters before the @"
    if not _LOCAL_PART.match(local):
        return ("has a character an address cannot have before the @ (letters, digits and "
                ".!#$%&'*+-/=?^_`{|}~ only, no dot at either end or two together)")
    labels = domain.split(".")
    if len(labels) < 2:
        return "has a domain without a dot (like example.org) after the @"
    if not all(_DOMAIN_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return ("has a domain that is not a host name: dot-separated parts of letters, digits "
                "and hyphens (not first or last), like council.gov.uk")
    return None


def is_email_address(text: str) -> bool:
    """Whether `text` is, by its shape, an address mail can be sent to (`email_problem`)."""
    return email_problem(text) is None


def _name_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters ({len(name)})"
    hidden = _hidden_character(name)
    if hidden is not None:
        return f"has a control character in it (U+{ord(hidden):04X})"
    return None


class Contact(BaseModel):
    """A person notices of one role go to, for a council or an LGA region. Frozen; the domain
    of the address is lower-cased (it is case-blind; the part before the @ may not be)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: str = Field(min_length=1, max_length=60)
    """A council's GSS code, or `lga:REGION` / `lga:England` (`lga_scope`)."""
    role: ContactRole
    name: str
    email: str

    @field_validator("name")
    @classmethod
    def _a_name(cls, name: str) -> str:
        problem = _name_problem(name)
        if problem:
            raise ValueError(f"the name {problem}")
        return name

    @field_validator("email")
    @classmethod
    def _an_address(cls, email: str) -> str:
        problem = email_problem(email)
        if problem:
            raise ValueError(f"the address {problem}")
        local, domain = email.split("@")
        return f"{local}@{domain.lower()}"

    @model_validator(mode="after")
    def _role_fits_scope(self) -> Self:
        of_the_lga = self.scope.startswith(LGA_SCOPE_PREFIX)
        if not of_the_lga and not _COUNCIL_SCOPE.match(self.scope):
            raise ValueError(f"scope {self.scope!r} is neither a GSS code nor lga:REGION")
        if of_the_lga and not self.scope.removeprefix(LGA_SCOPE_PREFIX):
            raise ValueError("scope lga: names no region")
        if of_the_lga != self.role.of_the_lga:
            raise ValueError(f"a {self.role.value} is {_whose(self.role)}, not for scope "
                             f"{self.scope}")
        return self


def _whose(role: ContactRole) -> str:
    return "the LGA's (lga:REGION or lga:England)" if role.of_the_lga else "a council's"


class ContactBook(BaseModel):
    """One imported version of the contacts (the highest is in force), or none (`version`
    None) before the first import: who a notice is sent to is looked up here when it is sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int | None = None
    contacts: tuple[Contact, ...] = ()

    def find(self, scope: str, role: ContactRole) -> list[Contact]:
        """Everyone holding `role` for `scope`, in the file's order: all of them receive."""
        return list(self._by_scope_and_role.get((scope, role), ()))

    @cached_property
    def _by_scope_and_role(self) -> dict[tuple[str, ContactRole], list[Contact]]:
        """Looked up once a notice: a register's worth of contacts is thousands of rows."""
        index: dict[tuple[str, ContactRole], list[Contact]] = {}
        for contact in self.contacts:
            index.setdefault((contact.scope, contact.role), []).append(contact)
        return index


# --- reading a contacts file ----------------------------------------------------------------


class ContactsRefused(ValueError):
    """A contacts file that cannot be imported; `problems` lists every one found, as
    `row N, column 'C': what is wrong`, so the whole file can be fixed at once."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"the contacts file has {count} problem{'s' * (count != 1)}: "
                         + "; ".join(self.problems))


class _Row(RowReader):
    """One contacts row, its cells found under the header's own spelling of each column."""

    def __init__(self, number: int, row: Mapping[str, str | None], keys: Mapping[str, str],
                 problems: list[CellProblem]) -> None:
        super().__init__(number, row, problems)
        self.keys = keys

    def text(self, column: str) -> str:
        value = self.row.get(self.keys[column])
        return "" if value is None else value.strip()

    def role(self) -> ContactRole | None:
        text = self.required("role")
        if not text:
            return None
        try:
            return ContactRole(text.lower())
        except ValueError:
            self.problem("role", _shown(text), "is not a role: expected one of "
                         + ", ".join(role.value for role in ContactRole))
            return None

    def scope(self, councils: Collection[str], regions: Mapping[str, str]) -> str | None:
        text = self.required("scope")
        if not text:
            return None
        if text[:len(LGA_SCOPE_PREFIX)].lower() == LGA_SCOPE_PREFIX:
            region = text[len(LGA_SCOPE_PREFIX):].strip().casefold()
            if region == NATIONAL_SCOPE.removeprefix(LGA_SCOPE_PREFIX).casefold():
                return NATIONAL_SCOPE
            if region in regions:
                return lga_scope(regions[region])
            self.problem("scope", _shown(text), "is not an LGA region: expected lga:England "
                         "or lga: and one of " + ", ".join(sorted(regions.values())))
            return None
        code = text.upper()
        if code in councils:
            return code
        if _COUNCIL_SCOPE.match(code):
            self.problem("scope", _shown(text), "is not a council the engine knows (import the "
                         "register with `cases councils import PATH.csv`)")
        else:
            self.problem("scope", _shown(text), "is neither a council's GSS code (like "
                         "E09000008) nor lga:REGION (like lga:London) nor lga:England")
        return None

    def checked(self, column: str, problem: Callable[[str], str | None]) -> str | None:
        text = self.required(column)
        said = problem(text) if text else None
        if said:
            self.problem(column, _shown(text), said)
        return text if text and not said else None


def _shown(value: str, longest: int = 80) -> str:
    """A cell as a problem quotes it: a whole paragraph pasted into a cell would bury the
    message."""
    return value if len(value) <= longest else value[:longest - 1] + "…"


def parse_contacts(header: Sequence[str] | None, rows: Iterable[Mapping[str, str | None]], *,
                   known_councils: Collection[str], regions: Collection[str]) -> list[Contact]:
    """The contacts of a file, in its order, from `csv.DictReader`'s `fieldnames` and rows.

    A file is taken whole or not at all: every problem (a missing, repeated or unknown column,
    an empty or malformed cell, a council the engine does not know, a region the register does
    not name, a role for the wrong kind of scope, the same person twice for a scope and role,
    no contacts at all) is collected and raised together as `ContactsRefused`. Rows are
    numbered as a spreadsheet shows them, the header being row 1 (`csv.DictReader` skips
    blank lines, so a file with blank lines numbers its later rows one lower). `regions` are
    spelled as the register does; `lga:` scopes are matched to them ignoring case.
    """
    problems: list[CellProblem] = []
    keys = _read_header(header, problems)
    by_fold = {region.casefold(): region for region in regions}
    councils = {code.upper() for code in known_councils}
    contacts: list[Contact] = []
    first_row_of: dict[tuple[str, ContactRole, str], int] = {}
    number = 1
    for number, raw in enumerate(rows, start=2):
        row = _Row(number, raw, keys, problems)
        before = len(problems)
        if None in raw:  # csv.DictReader files the cells beyond the header under None
            row.problem(None, "", f"has more cells than the header's {len(header or ())}")
        scope = row.scope(councils, by_fold)
        role = row.role()
        name = row.checked("name", _name_problem)
        email = row.checked("email", email_problem)
        if scope is not None and role is not None and (
                scope.startswith(LGA_SCOPE_PREFIX) != role.of_the_lga):
            row.problem("scope", scope, f"does not fit role {role.value}: a {role.value} is "
                        + ("the LGA's, for lga:REGION or lga:England" if role.of_the_lga else
                           "a council's, for its GSS code"))
        if len(problems) > before or scope is None or role is None or name is None \
                or email is None:
            continue
        same = (scope, role, email.casefold())
        if same in first_row_of:
            row.problem("email", email, f"repeats row {first_row_of[same]}: the same address "
                        f"for the same scope and role")
            continue
        first_row_of[same] = number
        try:
            contacts.append(Contact(scope=scope, role=role, name=name, email=email))
        except ValidationError as invalid:  # what the checks above let through, if anything
            row.problem(None, "", "; ".join(str(e["msg"]) for e in invalid.errors()))
    if number == 1:
        problems.append(CellProblem(2, None, "", "no contacts: the file has a header and no "
                                    "rows after it"))
    if problems:
        raise ContactsRefused([str(problem) for problem in problems])
    return contacts


def _read_header(header: Sequence[str] | None, problems: list[CellProblem]) -> dict[str, str]:
    """Each column's name as the header spells it (spaces around it, a byte-order mark before
    it and its case forgiven); raises at once when a column is missing or repeated, since no
    row can then be read."""
    if not header:
        raise ContactsRefused([str(CellProblem(1, None, "", "the file is empty: it needs a "
                                               "header row " + ",".join(CONTACT_COLUMNS)))])
    keys: dict[str, str] = {}
    fatal = False
    for place, spelled in enumerate(header, start=1):
        column = spelled.removeprefix("\ufeff").strip().lower()
        if column in keys:
            problems.append(CellProblem(1, column, "", "column appears twice in the header"))
            fatal = True
        elif column in CONTACT_COLUMNS:
            keys[column] = spelled
        elif not column:
            problems.append(CellProblem(1, None, "", f"column {place} of the header has no "
                                        "name; the columns are " + ", ".join(CONTACT_COLUMNS)))
        else:
            problems.append(CellProblem(1, _shown(spelled), "", "is not a column of a contacts "
                                        "file; the columns are " + ", ".join(CONTACT_COLUMNS)))
    for column in CONTACT_COLUMNS:
        if column not in keys:
            problems.append(CellProblem(1, column, "", "column is missing from the header"))
            fatal = True
    if fatal:
        raise ContactsRefused([str(problem) for problem in problems])
    return keys
