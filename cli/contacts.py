"""`cases contacts import|list|versions`: who escalations and reminders are emailed to, per
council and LGA region and role (BRIEF §5, recipients), imported in whole versions."""

from __future__ import annotations

import argparse
import csv
import getpass
import hashlib
import io
from pathlib import Path
from typing import Any

from cli import render
from cli.actions import BadInput
from cli.output import emit, visible
from domain.contacts import ENGLISH_REGIONS, Contact, ContactsRefused, parse_contacts
from eventstore import EventStore
from eventstore.contacts import (
    UnknownContactsVersion,
    contact_book,
    contact_versions,
    import_contacts,
)
from eventstore.councils import known_councils

_NONE_YET = ("no contacts imported yet: escalations and reminders have nobody to go to; "
             "import a file with `cases contacts import FILE.csv`")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    contacts = sub.add_parser("contacts", parents=[common],
                              help="import who notices are emailed to, list them, list the "
                                   "imported versions")
    contacts.add_argument("what", choices=list(_COMMANDS),
                          help="import a file, list the contacts, or list the versions")
    contacts.add_argument("path", nargs="?", type=Path, metavar="FILE.csv",
                          help="import: a CSV with the columns scope,role,name,email (scope: a "
                               "council's GSS code, lga:REGION or lga:England)")
    contacts.add_argument("--version", type=int, metavar="N",
                          help="list: this version (default: the one in force)")


def dispatch(args: argparse.Namespace, store: EventStore) -> int:
    return _COMMANDS[args.what](args, store)


def _import(args: argparse.Namespace, store: EventStore) -> int:
    if args.path is None:
        raise BadInput("contacts import: give the contacts file's FILE.csv")
    try:
        content = args.path.read_bytes()
    except OSError as error:
        raise BadInput(f"{args.path}: {error.strerror or error}") from None
    contacts = read_contacts(args.path, content, store)
    imported_by = f"operator:{_user()}"
    sha256 = hashlib.sha256(content).hexdigest()
    version = import_contacts(store, contacts, file_sha256=sha256, source=str(args.path),
                              imported_by=imported_by)
    emit(args, {"version": version, "contact_count": len(contacts), "source": str(args.path),
                "file_sha256": sha256, "imported_by": imported_by},
         f"imported contacts version {version}, now in force: {len(contacts)} contacts from "
         f"{args.path} (sha256 {sha256})")
    return 0


def read_contacts(path: Path, content: bytes, store: EventStore) -> list[Contact]:
    """The file's contacts, or BadInput naming every problem; the bytes are those hashed."""
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadInput(f"{path}: nothing imported: not UTF-8 text ({error.reason} at byte "
                       f"{error.start})") from None
    known = known_councils(store)
    regions = {*ENGLISH_REGIONS, *(c.region for c in known.values()
                                   if c.nation == "England" and c.region)}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return parse_contacts(reader.fieldnames, reader, known_councils=known.keys(),
                              regions=regions)
    except csv.Error as error:
        raise BadInput(f"{path}: nothing imported: row {reader.line_num} is not CSV "
                       f"({error})") from None
    except ContactsRefused as refused:
        count = len(refused.problems)
        raise BadInput("\n".join([
            f"{visible(str(path))}: nothing imported: {count} problem{'s' * (count != 1)}:",
            *(f"  {visible(problem)}" for problem in refused.problems)])) from None


def _user() -> str:
    """Who ran the import, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no password entry (a bare container)
        return "unknown"


def _list(args: argparse.Namespace, store: EventStore) -> int:
    if args.version is not None and args.version < 1:
        raise BadInput("--version: a contacts version is 1 or more")
    try:
        book = contact_book(store, args.version)
    except UnknownContactsVersion as unknown:
        raise BadInput(str(unknown)) from None
    if book.version is None:
        emit(args, {"version": None, "in_force": False, "contacts": []}, _NONE_YET)
        return 0
    versions = contact_versions(store)
    this = next(v for v in versions if v["version"] == book.version)
    in_force = book.version == versions[-1]["version"]
    people = [c.model_dump(mode="json") for c in book.contacts]
    state = "in force" if in_force else f"not in force: version {versions[-1]['version']} is"
    heading = (f"contacts version {book.version} ({state}), imported "
               f"{render.when(this['imported_at'])} by {this['imported_by']} from "
               f"{this['source']}: {len(people)} contacts")
    emit(args, {**_json(this), "in_force": in_force, "contacts": people},
         visible(heading) + "\n" + render.table(
             [{**p, "version": str(book.version)} for p in people],
             ["version", "scope", "role", "name", "email"]))
    return 0


def _versions(args: argparse.Namespace, store: EventStore) -> int:
    versions = contact_versions(store)
    if not versions:
        emit(args, [], _NONE_YET)
        return 0
    newest = versions[-1]["version"]
    rows = [{"version": str(v["version"]) + (" (in force)" if v["version"] == newest else ""),
             "imported": render.when(v["imported_at"]), "by": v["imported_by"],
             "contacts": str(v["contact_count"]), "source": v["source"],
             "sha256": v["file_sha256"]} for v in versions]
    emit(args, [_json(v) for v in versions],
         render.table(rows, ["version", "imported", "by", "contacts", "source", "sha256"]))
    return 0


def _json(version: dict[str, Any]) -> dict[str, Any]:
    return {**version, "imported_at": version["imported_at"].isoformat()}


_COMMANDS = {"import": _import, "list": _list, "versions": _versions}
