"""`cases`: the command line of case officers and auditors.

Exit codes: 0 done; 2 bad input or an action the case refused (nothing was recorded);
3 verification found a bad event; 1 anything else (say, Temporal unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from application.cases import ActionRefused, CaseClient, CaseNotFound
from cli import auditing, councils, db, peers, render
from cli.actions import BadInput, add_action_parsers, command_from_args, describe
from cli.output import EXIT_BAD_INPUT, emit
from domain.policies import STANDARD, demo_policy_name
from domain.state import fold
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore, open_store
from eventstore.config import database_url
from eventstore.councils import known_councils
from runtime import logging as case_logging
from runtime.process import exit_now
from runtime.temporal import connect
from workflows.messages import CaseView

_GSS = re.compile(r"^[EKNSW]\d{8}$")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print machine-readable JSON")
    common.add_argument("--log-format", choices=["console", "json"], default=argparse.SUPPRESS)
    common.add_argument("--actor", default=argparse.SUPPRESS,
                        help="who is acting, e.g. officer:siân.jones or council:E06000001 "
                             "(default: $CASES_ACTOR, else officer:$USER)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="cases", parents=[common], description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", parents=[common],
                         help="run the Temporal dev server and a worker (Ctrl-C stops both)")
    dev.add_argument("--port", type=int, default=7233)
    dev.add_argument("--db-file", type=Path, default=Path(".temporal/dev.db"),
                     help="where the dev server keeps its state")
    dev.add_argument("--ui", action="store_true", help="also serve the Temporal Web UI")

    demo = sub.add_parser("demo", parents=[common],
                          help="drive real councils' cases through every stage, then stop")
    demo.add_argument("--unit-seconds", type=int, default=2,
                      help="the demo policy's time unit (deadlines are a few units)")

    start = sub.add_parser("start", parents=[common], help="open a case for a council")
    start.add_argument("--council", required=True, metavar="GSS", help="e.g. E06000001")
    start.add_argument("--kind", required=True, choices=[k.value for k in CaseKind])
    start.add_argument("--reason", required=True)
    start.add_argument("--scope", default="", metavar="A,B,…")
    start.add_argument("--budget-gap-pence", type=int)
    start.add_argument("--demo-deadlines", type=int, metavar="SECONDS",
                       help="deadlines of a few SECONDS instead of months (for trying it out)")

    add_action_parsers(sub, common)

    status = sub.add_parser("status", parents=[common], help="where a case stands")
    status.add_argument("case", metavar="CASE")
    listing = sub.add_parser("list", parents=[common],
                             help="open cases with stage, next deadline and escalation level")
    listing.add_argument("--stage", choices=[s.value for s in Stage])
    listing.add_argument("--council", metavar="GSS")
    listing.add_argument("--kind", choices=[k.value for k in CaseKind])
    listing.add_argument("--escalated", action="store_true", help="only escalated cases")
    listing.add_argument("--all", action="store_true", help="closed cases too")
    auditing.add_parsers(sub, common)
    councils.add_parsers(sub, common)
    peers.add_parsers(sub, common)
    db.add_parsers(sub, common)
    return parser


def _actor(args: argparse.Namespace) -> str:
    actor = getattr(args, "actor", None) or os.environ.get("CASES_ACTOR")
    return actor or f"officer:{getpass.getuser()}"


def _view_json(view: CaseView) -> Any:
    return view.model_dump(mode="json")


async def _start(args: argparse.Namespace, store: EventStore) -> int:
    if not _GSS.match(args.council):
        raise BadInput(f"--council {args.council!r}: expected a GSS code like E06000001")
    council = known_councils(store).get(args.council)
    if council is None:
        raise BadInput(f"--council {args.council}: not a council this engine knows; import the "
                       "register with `cases councils import PATH.csv`")
    if not council.current:
        raise BadInput(f"--council {args.council}: {council.name} ended on {council.end_date}")
    if args.demo_deadlines is not None and not 1 <= args.demo_deadlines <= 3600:
        raise BadInput("--demo-deadlines: between 1 and 3600 seconds")
    policy = demo_policy_name(args.demo_deadlines) if args.demo_deadlines else STANDARD
    cases = CaseClient(await connect(), store=store)
    view = await cases.start(council=args.council, kind=CaseKind(args.kind), reason=args.reason,
                             actor=_actor(args), deadline_policy=policy,
                             scope=[s.strip() for s in args.scope.split(",") if s.strip()],
                             budget_gap_pence=args.budget_gap_pence)
    emit(args, _view_json(view), render.status(view))
    return 0


async def _act(args: argparse.Namespace, store: EventStore) -> int:
    command = command_from_args(args, _actor(args))
    cases = CaseClient(await connect(), store=store)
    view = await cases.act(args.case, command)
    emit(args, _view_json(view), render.status(view))
    return 0


async def _status(args: argparse.Namespace, store: EventStore) -> int:
    try:
        view = await CaseClient(await connect(), store=store).view(args.case)
    except (CaseNotFound, RuntimeError) as unavailable:
        events = store.read_case(args.case)
        if not events:
            raise CaseNotFound(f"no case {args.case} in Temporal or in the store") from None
        state = fold(args.case, [e.to_recorded() for e in events])
        view = CaseView(state=state)
        print(f"(from the store: {unavailable})", file=sys.stderr)
    emit(args, _view_json(view), render.status(view))
    return 0


async def _list(args: argparse.Namespace) -> int:
    client = await connect()
    clauses = ["WorkflowType = 'ImprovementCase'"]
    if not args.all:
        clauses.append("ExecutionStatus = 'Running'")
    if args.council:
        if not _GSS.match(args.council):
            raise BadInput(f"--council {args.council!r}: expected a GSS code like E06000001")
        clauses.append(f"CouncilCode = '{args.council}'")
    if args.stage:
        clauses.append(f"CaseStage = '{args.stage}'")
    if args.kind:
        clauses.append(f"CaseKind = '{args.kind}'")
    if args.escalated:
        clauses.append("EscalationLevel > 0")
    rows = []
    async for execution in client.list_workflows(" AND ".join(clauses)):
        attributes = execution.typed_search_attributes
        row = {"case": "", "council": "", "kind": "", "stage": "", "next deadline": "",
               "escalation": "", "status": execution.status.name if execution.status else ""}
        for pair in attributes:
            key = {"CaseId": "case", "CouncilCode": "council", "CaseKind": "kind",
                   "CaseStage": "stage", "NextDeadline": "next deadline",
                   "EscalationLevel": "escalation"}.get(pair.key.name)
            if key:
                row[key] = pair.value.strftime("%Y-%m-%d %H:%M") if hasattr(
                    pair.value, "strftime") else str(pair.value)
        rows.append(row)
    rows.sort(key=lambda r: (r["next deadline"] or "~", r["case"]))
    columns = ["case", "council", "kind", "stage", "next deadline", "escalation"]
    emit(args, rows, render.table(rows, columns))
    return 0


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "dev":
        from cli.dev import run_dev

        return await run_dev(args.port, args.db_file, args.ui)
    if args.command == "demo":
        from cli.demo import run_demo

        return await run_demo(args.unit_seconds)
    if args.command == "db":
        return db.dispatch(args)
    store = open_store()
    try:
        if args.command == "start":
            store.migrate()
            return await _start(args, store)
        if args.command == "status":
            return await _status(args, store)
        if args.command == "list":
            return await _list(args)
        if args.command == "councils":
            return councils.dispatch(args, store)
        if args.command == "peers":
            return peers.dispatch(args, store)
        if args.command in auditing.COMMANDS:
            return await auditing.dispatch(args, store)
        return await _act(args, store)
    finally:
        store.dispose()


def run(argv: Sequence[str] | None = None) -> int:
    """Parse, act, and answer with an exit code; every refusal is exit 2 with its reason."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as parse_error:  # argparse has printed the reason
        return int(parse_error.code or 0)
    quiet = args.command == "demo" and not hasattr(args, "log_format")
    case_logging.configure(getattr(args, "log_format", "console"),
                           level=logging.WARNING if quiet else logging.INFO)
    try:
        return asyncio.run(_dispatch(args))
    except (BadInput, ActionRefused, CaseNotFound) as refused:
        print(f"cases: {refused}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValidationError as invalid:
        print(f"cases: {describe(invalid)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SQLAlchemyError as failure:
        print(f"cases: cannot use the store at {database_url()}: "
              f"{str(failure).splitlines()[0]} (has `cases dev` or a worker run yet?)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except RuntimeError as failure:
        print(f"cases: {failure}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> None:
    exit_now(run(argv))
