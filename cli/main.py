"""`cases`: the command line of case officers and auditors.

Exit codes: 0 done; 2 bad input or an action the case refused (nothing was recorded);
3 verification found a bad event; 1 anything else (say, Temporal unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cli import render
from cli.actions import BadInput, add_action_parsers, command_from_args, describe
from cli.client import ActionRefused, CaseClient, CaseNotFound
from domain.deadlines import DeadlinePolicy
from domain.state import fold
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore, open_store
from eventstore.checkpoints import load_checkpoint, verify_against
from eventstore.config import database_url
from eventstore.verify import verify, verify_all
from runtime import logging as case_logging
from runtime.process import exit_now
from runtime.temporal import connect
from workflows.audit_replay import audit_replay
from workflows.checkpoints import SCHEDULE_ID, RecordCheckpoint, schedule_checkpoints
from workflows.messages import TASK_QUEUE, CaseView

EXIT_BAD_INPUT = 2
EXIT_TAMPERED = 3
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
    history = sub.add_parser("history", parents=[common], help="a case's timeline, from the store")
    history.add_argument("case", metavar="CASE")
    check = sub.add_parser("verify", parents=[common],
                           help="recompute every hash; exit 3 naming the first bad event")
    check.add_argument("case", metavar="CASE", nargs="?")
    check.add_argument("--against-checkpoint", metavar="N", nargs="?", type=int, const=0,
                       help="also compare with checkpoint N (default: the newest), which "
                            "catches a truncated tail and a whole case deleted")
    audit = sub.add_parser("audit", parents=[common],
                           help="replay a case's Temporal history and match it to the store")
    audit.add_argument("what", choices=["replay"])
    audit.add_argument("case", metavar="CASE")
    points = sub.add_parser("checkpoint", parents=[common],
                            help="record every case's head and a Merkle root")
    points.add_argument("when", choices=["now", "schedule"],
                        help="now: record one; schedule: record one every --every minutes")
    points.add_argument("--every", type=int, default=60, metavar="MINUTES")
    return parser


def _actor(args: argparse.Namespace) -> str:
    actor = getattr(args, "actor", None) or os.environ.get("CASES_ACTOR")
    return actor or f"officer:{getpass.getuser()}"


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print(text)


def _view_json(view: CaseView) -> Any:
    return view.model_dump(mode="json")


async def _start(args: argparse.Namespace, store: EventStore) -> int:
    if not _GSS.match(args.council):
        raise BadInput(f"--council {args.council!r}: expected a GSS code like E06000001")
    if args.demo_deadlines is not None and not 1 <= args.demo_deadlines <= 3600:
        raise BadInput("--demo-deadlines: between 1 and 3600 seconds")
    policy = DeadlinePolicy.demo(args.demo_deadlines) if args.demo_deadlines else None
    cases = CaseClient(await connect(), store=store)
    view = await cases.start(council=args.council, kind=CaseKind(args.kind), reason=args.reason,
                             actor=_actor(args), policy=policy,
                             scope=[s.strip() for s in args.scope.split(",") if s.strip()],
                             budget_gap_pence=args.budget_gap_pence)
    _print(args, _view_json(view), render.status(view))
    return 0


async def _act(args: argparse.Namespace, store: EventStore) -> int:
    command = command_from_args(args, _actor(args))
    cases = CaseClient(await connect(), store=store)
    view = await cases.act(args.case, command)
    _print(args, _view_json(view), render.status(view))
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
    _print(args, _view_json(view), render.status(view))
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
    _print(args, rows, render.table(rows, columns))
    return 0


def _history(args: argparse.Namespace, store: EventStore) -> int:
    events = store.read_case(args.case)
    if not events:
        raise CaseNotFound(f"no case {args.case} in the store")
    _print(args, [render.event_json(e) for e in events], render.timeline(events))
    return 0


def _verify(args: argparse.Namespace, store: EventStore) -> int:
    verdict = verify(store, args.case) if args.case else verify_all(store)
    if args.case and verdict.events == 0 and args.against_checkpoint is None:
        raise CaseNotFound(f"no case {args.case} in the store")
    if args.against_checkpoint is not None:
        number = args.against_checkpoint or None
        point = load_checkpoint(store, number)
        if point is None:
            raise CaseNotFound(f"no checkpoint {number or ''} in the store; record one with "
                               "`cases checkpoint now`".replace("  ", " "))
        found = verify_against(store, point)
        if args.case:
            found = [p for p in found if p.case_id == args.case]
        verdict.problems += [p for p in found if p not in verdict.problems]
    data = {"ok": verdict.ok, "cases": verdict.cases, "events": verdict.events,
            "problems": [vars(p) for p in verdict.problems]}
    text = (f"intact: {verdict.cases} case(s), {verdict.events} event(s), every hash and link "
            "verified" if verdict.ok else "\n".join(f"TAMPERED: {p}" for p in verdict.problems))
    _print(args, data, text)
    return 0 if verdict.ok else EXIT_TAMPERED


async def _checkpoint(args: argparse.Namespace) -> int:
    client = await connect()
    if args.when == "schedule":
        if not 1 <= args.every <= 7 * 24 * 60:
            raise BadInput("--every: between 1 minute and a week")
        await schedule_checkpoints(client, timedelta(minutes=args.every), TASK_QUEUE)
        _print(args, {"schedule": SCHEDULE_ID, "every_minutes": args.every},
               f"checkpoint schedule {SCHEDULE_ID}: every {args.every} minutes")
        return 0
    summary = await client.execute_workflow(RecordCheckpoint.run,
                                            id=f"cases-checkpoint-{uuid.uuid4()}",
                                            task_queue=TASK_QUEUE)
    _print(args, summary.model_dump(), f"checkpoint {summary.checkpoint}: {summary.cases} "
           f"cases up to position {summary.last_position}, Merkle root {summary.merkle_root}")
    return 0


async def _audit_replay(args: argparse.Namespace, store: EventStore) -> int:
    client = await connect()
    try:
        audit = await audit_replay(client, store, args.case)
    except LookupError as unknown:
        raise CaseNotFound(str(unknown)) from None
    data = {"ok": audit.ok, "case": audit.case_id, "workflow_id": audit.workflow_id,
            "run_id": audit.run_id, "appended": audit.appended, "stored": audit.stored,
            "differences": audit.differences}
    text = (f"replayed {audit.workflow_id} ({audit.run_id}) against today's code: "
            f"{audit.appended} events appended, {audit.stored} stored, "
            + ("identical" if audit.ok else "DIFFERENT:\n  " + "\n  ".join(audit.differences)))
    _print(args, data, text)
    return 0 if audit.ok else EXIT_TAMPERED


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "dev":
        from cli.dev import run_dev

        return await run_dev(args.port, args.db_file, args.ui)
    if args.command == "demo":
        from cli.demo import run_demo

        return await run_demo(args.unit_seconds)
    if args.command == "checkpoint":
        return await _checkpoint(args)
    store = open_store()
    try:
        if args.command == "start":
            store.migrate()
            return await _start(args, store)
        if args.command == "status":
            return await _status(args, store)
        if args.command == "list":
            return await _list(args)
        if args.command == "history":
            return _history(args, store)
        if args.command == "verify":
            return _verify(args, store)
        if args.command == "audit":
            return await _audit_replay(args, store)
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
