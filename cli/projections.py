"""`cases projections status|rebuild`: the read models that `list`, `councils due` and
`report annual` read, projected from the events by every worker."""

from __future__ import annotations

import argparse
from typing import Any

from cli.output import emit
from eventstore import EventStore
from eventstore.projections import ProjectionStatus, Projector, status


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    projections = sub.add_parser(
        "projections", parents=[common],
        help="the read models the lists and figures come from: where they stand, or rebuild")
    verbs = projections.add_subparsers(dest="what", required=True, metavar="VERB")
    verbs.add_parser("status", parents=[common],
                     help="the position reached, how far behind the store, and any problem")
    verbs.add_parser("rebuild", parents=[common],
                     help="drop every read model row and project every event again (the "
                          "workers catch up from where it stands)")


def lag_note(current: ProjectionStatus) -> str:
    """A line for readers when the read models have not yet applied the newest events."""
    if not current.behind:
        return ""
    return (f"\n(the read models are {current.behind} positions behind the store: is a worker "
            "running? `cases projections status` says more)")


def dispatch(args: argparse.Namespace, store: EventStore) -> int:
    store.require_newest_schema()
    if args.what == "rebuild":
        applied = Projector(store).rebuild()
        current = status(store.engine)
        emit(args, {"applied": applied, "position": current.position},
             f"read models rebuilt from nothing: {applied} events applied, up to position "
             f"{current.position}")
        return 0
    current = status(store.engine)
    emit(args, {"position": current.position, "last_position": current.last_position,
                "behind": current.behind, "problem": current.problem},
         f"read models at position {current.position} of {current.last_position} "
         f"({current.behind} behind)" + (f"; STOPPED: {current.problem}" if current.problem
                                          else ""))
    return 1 if current.problem else 0
