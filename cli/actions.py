"""One subcommand per action, made from the domain's command classes so they cannot drift.

Each field of a command becomes an option: dates as YYYY-MM-DD, lists comma-separated,
peers as repeated `--peer ID|NAME|ROLE|GSS`, and `--document PATH` for a document's SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import types
import typing
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from domain import commands as cmd
from domain.events import PeerPlace

ACTIONS: dict[str, type[cmd.Command]] = {
    typing.get_args(c.model_fields["action"].annotation)[0].replace("_", "-"): c
    for c in typing.get_args(typing.get_args(cmd.AnyCommand)[0])
    if c is not cmd.RequestCase
}
"""Subcommand name → command class, e.g. `publish-report` → PublishReport."""

_SKIPPED = {"action", "actor", "case_id"}
"""Not options: the action names its kind, the actor is the signed-in user, the case is CASE."""
_CHECKING_ONLY = "case_officer:cli"
"""Stands for the signed-in user while the input is checked here; never sent (the API records
the user its token or session proves)."""
_COMMAND = TypeAdapter(cmd.AnyCommand)


class BadInput(ValueError):
    """Input the CLI refuses before sending anything (exit 2)."""


def _base_type(annotation: Any) -> Any:
    """`X | None` → X; Annotated[X, ...] → X."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else annotation
    if origin is typing.Annotated:
        return _base_type(typing.get_args(annotation)[0])
    return annotation


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


IDEMPOTENCY_KEY_HELP = ("this request's own id (8 to 100 of A-Z a-z 0-9 . _ : -): sent again "
                        "with the same key, it is recorded once and answers as the first did "
                        "(default: a new key for each run)")


def _idempotency_key(text: str) -> str:
    if not 8 <= len(text) <= 100 or not all(c.isascii() and (c.isalnum() or c in "._:-")
                                            for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: 8 to 100 of A-Z a-z 0-9 . _ : -")
    return text


def add_idempotency_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idempotency-key", type=_idempotency_key, metavar="KEY",
                        help=IDEMPOTENCY_KEY_HELP)


def add_action_parsers(subparsers: Any, common: argparse.ArgumentParser) -> None:
    for action, command_class in ACTIONS.items():
        doc = inspect.cleandoc(command_class.__doc__ or "")
        summary = doc.splitlines()[0].removesuffix(".")
        parser = subparsers.add_parser(action, parents=[common], description=doc,
                                       help=summary[:1].lower() + summary[1:])
        parser.add_argument("case", metavar="CASE", help="case id, e.g. cpc-E06000001-2026")
        add_idempotency_key(parser)
        for name, info in command_class.model_fields.items():
            if name not in _SKIPPED:
                _add_field(parser, name, info)
        parser.set_defaults(action=action)


def _add_field(parser: argparse.ArgumentParser, name: str, info: FieldInfo) -> None:
    base = _base_type(info.annotation)
    required = info.is_required()
    if name == "document_sha256":
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--document", type=Path, help="the document; its SHA-256 is recorded")
        group.add_argument(_option(name), help="the document's SHA-256, if you have only that")
        return
    if typing.get_origin(base) is list and _base_type(typing.get_args(base)[0]) is PeerPlace:
        parser.add_argument("--peer", dest=name, action="append", required=required,
                            metavar="ID|NAME|ROLE|GSS",
                            help="a seat on the team; repeat for each peer")
        return
    kwargs: dict[str, Any] = {"required": required, "dest": name}
    if isinstance(base, type) and issubclass(base, Enum):
        kwargs["choices"] = [m.value for m in base]
    elif base is date:
        kwargs["metavar"] = "YYYY-MM-DD"
    elif typing.get_origin(base) is list:
        kwargs["metavar"] = "A,B,…"
    parser.add_argument(_option(name), help=info.description, **kwargs)


def _peer(text: str) -> dict[str, Any]:
    parts = text.split("|")
    if len(parts) not in (3, 4):
        raise BadInput(f"--peer {text!r}: expected ID|NAME|ROLE|GSS (GSS may be left off "
                       "for the LGA's peer challenge manager)")
    peer_id, name, role = parts[:3]
    return {"peer_id": peer_id, "name": name, "role": role,
            "home_council": parts[3] if len(parts) == 4 and parts[3] else None}


def body_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """What the API is sent for the action typed: checked here by the domain's own models, so
    bad input is refused before anything is sent."""
    command = command_from_args(args, _CHECKING_ONLY)
    return command.model_dump(mode="json", exclude={"actor", "case_id"})


def command_from_args(args: argparse.Namespace, actor: str) -> cmd.AnyCommand:
    """The command the user typed, validated by the domain's own models."""
    command_class = ACTIONS[args.action]
    data: dict[str, Any] = {"action": command_class.model_fields["action"].default,
                            "actor": actor}
    for name, info in command_class.model_fields.items():
        if name in _SKIPPED:
            continue
        if name == "document_sha256":
            data[name] = _document_sha256(args)
            continue
        value = getattr(args, name, None)
        if value is None:
            continue
        base = _base_type(info.annotation)
        if typing.get_origin(base) is list:
            item = _base_type(typing.get_args(base)[0])
            value = [_peer(v) for v in value] if item is PeerPlace else [
                v.strip() for v in value.split(",") if v.strip()]
        data[name] = value
    return parse_command(data)


def parse_command(data: dict[str, Any]) -> cmd.AnyCommand:
    try:
        command: cmd.AnyCommand = _COMMAND.validate_python(data)
    except ValidationError as invalid:
        raise BadInput(describe(invalid)) from None
    return command


def describe(invalid: ValidationError) -> str:
    """A pydantic error as a person reads it: which option, what is wrong."""
    lines = []
    for error in invalid.errors():
        where = [str(p) for p in error["loc"] if not isinstance(p, int)]
        where = [w for w in where if w not in ACTION_NAMES]
        option = _option(where[-1]) if where else "input"
        lines.append(f"{option}: {error['msg']}")
    return "; ".join(lines)


ACTION_NAMES = {typing.get_args(c.model_fields["action"].annotation)[0]
                for c in typing.get_args(typing.get_args(cmd.AnyCommand)[0])}


def _document_sha256(args: argparse.Namespace) -> str:
    path: Path | None = getattr(args, "document", None)
    if path is None:
        return str(args.document_sha256)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise BadInput(f"--document {path}: {error.strerror}") from None


def model_summary(model: BaseModel) -> str:
    return ", ".join(f"{k}={v}" for k, v in model.model_dump(mode="json").items())
