"""HTML forms made from the domain's command classes, so a page can neither offer a field a
command does not take nor leave out one it needs (cli/actions.py does the same for the
command line, api/bodies.py for the API).

Every field of a command but its actor (the signed-in user, never typed), its case (the page's)
and its action becomes a field of the form, labelled by its name and hinted by its pydantic
description: dates as GOV.UK date inputs (day, month, year), choices as radios, free text as a
textarea, areas as comma-separated text, reasons as one a line, a peer team as lines of
`peer_id|name|role|home council` (as the command line's `--peer`). `read_form` turns what a
browser sent back into the command's input, or into errors by field, in the words GOV.UK
pages use; the limits named are the command's own."""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from domain import commands as cmd
from domain.events import PeerPlace
from domain.permissions import DOING, SENSITIVE
from domain.vocabulary import ScopeArea, Sha256, Url

Widget = Literal["text", "textarea", "date", "radios", "areas", "lines", "team", "url",
                 "sha256"]
NOT_TYPED = frozenset({"actor", "case_id", "action"})
"""Never a field of a form: the signed-in user, the page's case, the form's own action."""
MAX_SENT = 20_000
"""What is read of one value a browser sends: far above every limit of the commands (so an
over-long text is refused naming its limit), short of holding a page's worth of junk."""

_URL_PATTERN = typing.get_args(Url)[1].pattern
_SHA256_PATTERN = typing.get_args(Sha256)[1].pattern
_PEER_ROLES: tuple[str, ...] = typing.get_args(PeerPlace.model_fields["role"].annotation)
LABELS = {"document_sha256": "Document SHA-256", "url": "Address (URL)",
          "request_id": "Request", "peer_id": "Peer", "visit_mode": "How the team visits",
          "mode": "How it is held", "team": "Peer team", "rationale": "Why these peers",
          "scope": "Areas", "council": "Council", "kind": "Kind of case",
          "requested_on": "Requested on"}
"""Labels where a field's name in words would not do; the rest are the name in words."""
NOUNS = {"url": "the address, starting https://", "reason": "the reason",
         "summary": "a summary", "comments": "the comments", "request_id": "the request",
         "peer_id": "the peer's id", "council": "a council's name or GSS code",
         "kind": "the kind of case"}
"""How an error names a field where its description does not read as a noun."""
CHOICE_WORDS = {"on_site": "On site", "remote": "Remote",
                "childrens_services": "Children's services"}
"""Choices in words where the value with spaces for underscores would not do."""


@dataclass(frozen=True)
class FormField:
    """One field of a command, as a form shows it."""

    name: str
    label: str
    hint: str
    widget: Widget
    required: bool
    choices: tuple[tuple[str, str], ...] = ()
    """(value, words) for radios."""
    max_length: int | None = None
    noun: str = ""
    """The field as an error names it (`Enter the visit's first day`)."""

    def dom_id(self, prefix: str) -> str:
        return f"{prefix}-{self.name.replace('_', '-')}"

    def anchor(self, prefix: str) -> str:
        """Where an error summary's link lands: a date input's first box."""
        return self.dom_id(prefix) + ("-day" if self.widget == "date" else "")


@dataclass(frozen=True)
class ActionForm:
    """A command as a form: its fields in the command's order, and a model of just those
    fields that validates them with the command's own types and limits."""

    action: str
    command: type[cmd.Command]
    title: str
    summary: str
    fields: tuple[FormField, ...]
    model: type[BaseModel]

    @property
    def sensitive(self) -> bool:
        return self.action in SENSITIVE

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass
class Submitted:
    """What a browser sent for one form: the values as typed (to show again), the input the
    command is made from, and the errors found so far, by field."""

    values: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class FormErrors(ValueError):
    """Input refused before anything was sent: the message for each field at fault."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


# --- forms from commands ----------------------------------------------------------------------

def _unwrapped(annotation: Any) -> tuple[Any, list[Any]]:
    """`X | None` → X; `Annotated[X, …]` → X, with the metadata met on the way."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, metadata
            annotation = args[0]
        elif origin is typing.Annotated:
            annotation, *more = typing.get_args(annotation)
            metadata += more
        else:
            return annotation, metadata


def _string_limits(metadata: Sequence[Any]) -> tuple[int | None, str | None]:
    longest = pattern = None
    for item in metadata:
        longest = getattr(item, "max_length", None) or longest
        pattern = getattr(item, "pattern", None) or pattern
    return longest, pattern


def _words(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def _field(name: str, info: FieldInfo) -> FormField:
    made = _made(name, info)
    said = (info.description or "").split(",")[0].split(" (")[0].strip()
    noun = NOUNS.get(name) or (said if said.startswith("the ") else made.label.lower())
    return dataclasses.replace(made, hint=made.hint[:1].upper() + made.hint[1:], noun=noun)


def _made(name: str, info: FieldInfo) -> FormField:
    base, metadata = _unwrapped(info.annotation)
    metadata += list(info.metadata)
    hint = info.description or ""
    required = info.is_required()
    label = _words(name)
    if base is date:
        return FormField(name, label, hint + ". For example, 27 3 2026", "date", required)
    if isinstance(base, type) and issubclass(base, Enum):
        choices = tuple((str(m.value), CHOICE_WORDS.get(str(m.value))
                         or str(m.value).replace("_", " ").capitalize()) for m in base)
        return FormField(name, label, hint, "radios", required, choices)
    if typing.get_origin(base) is list:
        item = typing.get_args(base)[0]
        if _unwrapped(item)[0] is PeerPlace:
            return FormField(name, label, hint + ". One peer a line: peer id|name|role|home "
                             "council's GSS code (leave the council off for the LGA's peer "
                             "challenge manager). Roles: " + ", ".join(_PEER_ROLES) + ".",
                             "team", required)
        if item == ScopeArea:
            return FormField(name, label, hint + ". Separate them with commas.", "areas",
                             required)
        longest, _ = _string_limits(_unwrapped(item)[1])
        return FormField(name, label, hint + ". One a line.", "lines", required,
                         max_length=longest)
    longest, pattern = _string_limits(metadata)
    if pattern == _URL_PATTERN:
        return FormField(name, label, hint.replace("http(s)://…", "https://…"), "url",
                         required)
    if pattern == _SHA256_PATTERN:
        return FormField(name, label, hint + " (64 characters, 0-9 and a-f)", "sha256",
                         required)
    if longest is not None and longest > 200:
        return FormField(name, label, f"{hint}. Up to {longest:,} characters.", "textarea",
                         required, max_length=longest)
    return FormField(name, label, hint, "text", required, max_length=longest)


def form_for(command_class: type[cmd.Command], only: Sequence[str] | None = None,
             action: str | None = None) -> ActionForm:
    """The form of a command: every field it takes from a person (or just `only`, in that
    order), and a model of them that checks them as the command does."""
    taken = {name: info for name, info in command_class.model_fields.items()
             if name not in NOT_TYPED}
    names = list(only) if only is not None else list(taken)
    fields = tuple(_field(name, taken[name]) for name in names)
    doc = inspect.cleandoc(command_class.__doc__ or "")
    action = action or str(command_class.model_fields["action"].default)
    definitions: dict[str, Any] = {name: (taken[name].annotation, taken[name]) for name in names}
    model = create_model(f"{command_class.__name__}Form", **definitions)
    title = DOING.get(action, action.replace("_", " "))
    return ActionForm(action=action, command=command_class, title=title[:1].upper() + title[1:],
                      summary=doc, fields=fields, model=model)


ACTION_FORMS: dict[str, ActionForm] = {
    form.action: form for form in (
        form_for(c) for c in typing.get_args(typing.get_args(cmd.AnyCommand)[0])
        if c is not cmd.RequestCase)}
"""Every action a case page can offer, by its `action`, in the journey's order."""


# --- reading what was sent --------------------------------------------------------------------

_DIGITS = re.compile(r"^[0-9]{1,4}$")


def _date(form_field: FormField, sent: Mapping[str, str], submitted: Submitted) -> None:
    parts = {}
    for part in ("day", "month", "year"):
        typed = sent.get(f"{form_field.name}-{part}", "").strip()[:10]
        submitted.values[f"{form_field.name}-{part}"] = typed
        parts[part] = typed
    if not any(parts.values()):
        return  # absent: the model says whether it was needed
    missing = [p for p, v in parts.items() if not v]
    if missing:
        submitted.errors[form_field.name] = (f"{form_field.label} must include a "
                                             f"{' and a '.join(missing)}")
        return
    try:
        if not all(_DIGITS.match(v) for v in parts.values()) or len(parts["year"]) != 4:
            raise ValueError
        submitted.data[form_field.name] = date(int(parts["year"]), int(parts["month"]),
                                               int(parts["day"]))
    except ValueError:
        submitted.errors[form_field.name] = f"{form_field.label} must be a real date"


def _team(form_field: FormField, typed: str, submitted: Submitted) -> None:
    seats = []
    for number, line in enumerate(typed.split("\n"), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (3, 4):
            submitted.errors[form_field.name] = (
                f"Line {number}: write each peer as peer id|name|role|home council")
            return
        seats.append({"peer_id": parts[0], "name": parts[1], "role": parts[2],
                      "home_council": parts[3] if len(parts) == 4 and parts[3] else None})
    submitted.data[form_field.name] = seats


def read_form(form: ActionForm, sent: Mapping[str, str]) -> Submitted:
    """The input a form's command is made from, as typed into its fields (or the errors that
    stop it being made): what the command's model is then asked to check."""
    submitted = Submitted()
    for form_field in form.fields:
        if form_field.widget == "date":
            _date(form_field, sent, submitted)
            continue
        typed = sent.get(form_field.name, "")[:MAX_SENT].replace("\r\n", "\n")
        submitted.values[form_field.name] = typed
        if form_field.widget == "team":
            _team(form_field, typed, submitted)
        elif form_field.widget == "areas":
            submitted.data[form_field.name] = [a.strip() for a in typed.split(",") if a.strip()]
        elif form_field.widget == "lines":
            submitted.data[form_field.name] = [x.strip() for x in typed.split("\n") if x.strip()]
        elif not typed.strip():
            continue  # absent: the model says whether it was needed
        elif form_field.widget == "url" and typed.strip().lower().startswith("http://"):
            submitted.errors[form_field.name] = ("Enter an address that starts with https://: "
                                                 "a published document is served securely")
        else:
            submitted.data[form_field.name] = (typed.strip() if form_field.widget != "textarea"
                                               else typed)
    return submitted


def checked(form: ActionForm, submitted: Submitted) -> BaseModel:
    """The form's input checked by the command's own types and limits (a model of the form's
    fields), or FormErrors naming each field at fault (the errors `read_form` found first)."""
    errors = dict(submitted.errors)
    try:
        valid = form.model.model_validate(
            {k: v for k, v in submitted.data.items() if k not in errors})
    except ValidationError as invalid:
        for error in invalid.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            target = form.field(name) or form.fields[0]
            errors.setdefault(target.name, message(target, error))
    if errors:
        raise FormErrors({f.name: errors[f.name] for f in form.fields if f.name in errors})
    return valid


def message(form_field: FormField, error: ErrorDetails) -> str:
    """A pydantic error as a GOV.UK page says it, naming the command's limit."""
    kind, ctx = error["type"], error.get("ctx") or {}
    inner = [p for p in error["loc"][1:]]
    where = ""
    if inner and isinstance(inner[0], int):
        unit = "Line" if form_field.widget in ("team", "lines") else "Area"
        where = f"{unit} {inner[0] + 1}" + (f", {inner[1]}" if len(inner) > 1 else "") + ": "
    subject = form_field.label if not where else ""
    if kind == "missing":
        if where:
            return f"{where}missing"
        verb = "Select" if form_field.widget == "radios" else "Enter"
        return f"{verb} {form_field.noun}"
    if kind == "string_too_long":
        return f"{where}{subject or 'it'} must be {ctx.get('max_length', 0):,} characters or fewer"
    if kind == "too_short":
        return (f"Enter at least {ctx.get('min_length', 1)} "
                f"{'area' if form_field.widget == 'areas' else 'line'}"
                if form_field.widget != "team" else "Enter at least one peer")
    if kind == "too_long":
        return f"{subject}: at most {ctx.get('max_length', 0):,} may be given"
    if kind in ("enum", "literal_error"):
        if where:
            return f"{where}must be one of {ctx.get('expected', '')}"
        return f"Select {form_field.noun}"
    if kind == "string_pattern_mismatch":
        if form_field.widget == "url":
            return "Enter the full address, starting https://, with no spaces"
        if form_field.widget == "sha256":
            return f"{subject} must be 64 characters, 0-9 and a-f (lowercase)"
        if form_field.widget == "areas":
            return (f"{where}an area is lowercase letters, digits and underscores, starting "
                    "with a letter (for example, finance)")
        if inner and inner[-1] == "home_council":
            return f"{where}a council's GSS code, like E09000008"
        return f"{where}{subject or 'it'} is not in the form expected"
    text = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{where}{subject or 'it'} {text}".strip()


def error_summary(form: ActionForm, errors: Mapping[str, str], refusal: str | None = None,
                  prefix: str | None = None) -> list[dict[str, str]]:
    """The items of a GOV.UK error summary: each error, linked to its field (or, for a
    refusal no one field is at fault for, to `#PREFIX-refused` above the form's fields)."""
    prefix = prefix or form.action.replace("_", "-")
    items = [{"text": errors[f.name], "href": f"#{f.anchor(prefix)}"}
             for f in form.fields if f.name in errors]
    if refusal:
        items.append({"text": refusal, "href": f"#{prefix}-refused"})
    return items


def field_at_fault(form: ActionForm, data: Mapping[str, Any], reason: str) -> str | None:
    """The field whose value a rule's refusal names (`2020-01-01 is before the case was
    requested`, `peer p-9 is not on the proposed team`): the refusal is shown beside it."""
    for form_field in form.fields:
        value = data.get(form_field.name)
        if isinstance(value, date | str) and len(shown := str(value)) >= 3 and shown in reason:
            return form_field.name
    return None
