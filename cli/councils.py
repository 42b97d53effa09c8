"""`cases councils import|list|due`: the register the rules and the figures know."""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli import render
from cli.actions import BadInput
from cli.output import emit
from cli.projections import lag_note
from domain.councils import Council, RegisterError, english_councils, parse_register
from domain.figures import councils_due_from_last_visits
from eventstore import EventStore
from eventstore.councils import import_councils, known_councils
from eventstore.projections import last_visits, require_sound


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    councils = sub.add_parser("councils", parents=[common],
                              help="import the register of councils, list them, see who is due")
    verbs = councils.add_subparsers(dest="what", required=True, metavar="VERB")
    importing = verbs.add_parser("import", parents=[common],
                                 help="import the register of councils from a CSV file")
    importing.add_argument("path", nargs="?", type=Path, metavar="PATH.csv",
                           help="a register in the format of uk_local_authorities_current.csv")
    importing.add_argument("--all", action="store_true",
                           help="past authorities too, with their end dates")
    verbs.add_parser("list", parents=[common], help="every council in the register")
    due = verbs.add_parser("due", parents=[common],
                           help="the English councils due a corporate peer challenge")
    due.add_argument("--years", type=int, default=5,
                     help="no corporate peer challenge in this many years (default 5)")


def dispatch(args: argparse.Namespace, store: EventStore) -> int:
    if args.what == "import":
        return _import(args, store)
    known = known_councils(store)
    if args.what == "list":
        rows = [_row(c) for c in sorted(known.values(), key=lambda c: c.gss_code)]
        emit(args, [c.model_dump(mode="json") for c in known.values()],
             render.table(rows, ["gss", "name", "type", "region"]))
        return 0
    if not 1 <= args.years <= 50:
        raise BadInput("--years: between 1 and 50")
    english = english_councils(known.values())
    current = require_sound(store.engine)
    due = councils_due_from_last_visits([c.gss_code for c in english], last_visits(store.engine),
                                        datetime.now(UTC).date(), years=args.years)
    names = {c.gss_code: c.short_name for c in english}
    rows = [{"gss": gss, "name": names[gss], "last corporate visit": str(last or "never")}
            for gss, last in due]
    emit(args, [{"gss_code": gss, "name": names[gss], "last_visit": last} for gss, last in due],
         f"{len(due)} of {len(english)} English councils have had no corporate peer challenge "
         f"in {args.years} years:\n" + render.table(rows, ["gss", "name", "last corporate visit"])
         + lag_note(current))
    return 0


def _row(council: Council) -> dict[str, str]:
    return {"gss": council.gss_code, "name": council.short_name, "type": council.type,
            "region": council.region or ""}


def _import(args: argparse.Namespace, store: EventStore) -> int:
    if args.path is None:
        raise BadInput("councils import: give the register's PATH.csv")
    try:
        with args.path.open(newline="", encoding="utf-8") as file:
            parsed = parse_register(csv.DictReader(file))
    except OSError as error:
        raise BadInput(f"{args.path}: {error.strerror}") from None
    except RegisterError as invalid:
        raise BadInput(f"{args.path}: nothing imported: {invalid}") from None
    chosen = parsed if args.all else [c for c in parsed if c.current]
    store.require_newest_schema()
    count = import_councils(store, chosen)
    english = len(english_councils(chosen))
    emit(args, {"imported": count, "english_councils": english},
         f"imported {count} councils ({english} current English councils) from {args.path}")
    return 0
