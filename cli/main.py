"""`cases`: the command line of case officers and auditors.

Exit codes: 0 done; 2 bad input or an action the case refused (nothing was recorded);
3 verification found a bad event; 1 anything else (say, Temporal unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError

from application.errors import ActionRefused, CaseNotFound
from cli import (
    auditing,
    contacts,
    councils,
    db,
    namespace,
    outbox,
    peers,
    projections,
    render,
    users,
)
from cli.actions import (
    ACTIONS,
    BadInput,
    add_action_parsers,
    add_idempotency_key,
    body_from_args,
    describe,
)
from cli.api_client import ApiClient, ApiRefused, ApiUnavailable
from cli.output import EXIT_BAD_INPUT, emit, visible
from domain.policies import STANDARD, demo_policy_name
from domain.vocabulary import CaseKind, Stage
from eventstore import open_store
from eventstore.config import database_url, failure_said, shown_url
from eventstore.errors import UnsupportedDatabase, missing_table
from eventstore.migrate import SchemaNotCurrent
from eventstore.projections import ProjectionBroken
from runtime import logging as case_logging
from runtime.process import exit_now
from runtime.settings_problems import TelemetryProblem
from workflows.messages import CaseView

_GSS = re.compile(r"^[EKNSW][0-9]{8}$")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print machine-readable JSON")
    common.add_argument("--log-format", choices=["console", "json"], default=argparse.SUPPRESS,
                        help="how log lines are written (default console)")
    return common


def _processes(text: str) -> int:
    """1 to 64 processes: argparse's refusal, rather than a failure once they start."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 64")
    return value


def _port(text: str) -> int:
    """A TCP port, 1 to 65535: argparse's refusal, rather than a failure once servers start."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port}: a port is between 1 and 65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="cases", parents=[common], description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from importlib.metadata import version

    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {version('improvement-cases')} (improvement-cases), "
                                f"Temporal Python SDK {version('temporalio')}",
                        help="print the version of cases and of the Temporal SDK, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", parents=[common],
                         help="run the Temporal dev server, a worker and the API, with demo "
                              "users (Ctrl-C stops them)")
    dev.add_argument("--port", type=_port, default=7233, help="the Temporal dev server's port")
    dev.add_argument("--web-port", type=_port, default=8000, help="the API's port")
    dev.add_argument("--db-file", type=Path, default=Path(".temporal/dev.db"),
                     help="where the dev server keeps its state")
    dev.add_argument("--ui", action="store_true", help="also serve the Temporal Web UI")
    dev.add_argument("what", nargs="?", choices=["mail"],
                     help="mail: list what the mail sink kept (starts nothing)")
    dev.add_argument("--mail-sink", action="store_true",
                     help="also run a local SMTP server keeping what the engine mails")
    dev.add_argument("--mail-port", type=int, metavar="PORT",
                     help="the mail sink's port (default 1025)")

    demo = sub.add_parser("demo", parents=[common],
                          help="drive real councils' cases through every stage, then stop")
    demo.add_argument("--unit-seconds", type=int, default=2,
                      help="the demo policy's time unit (deadlines are a few units)")

    serve = sub.add_parser("serve", parents=[common],
                           help="serve the API alone (production: beside cases-worker)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000,
                       help="the port to listen on (default 8000)")
    serve.add_argument("--processes", type=_processes, default=1,
                       help="processes serving the port together (default 1; one uses one "
                            "core at most: up to the machine's cores)")
    serve.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)
    keys = sub.add_parser("keys", parents=[common], help="make the keys the engine signs with")
    key_verbs = keys.add_subparsers(dest="verb", required=True, metavar="VERB")
    command_key_parser = key_verbs.add_parser(
        "command-key", parents=[common],
        help="write a new command key (the API and the workers share it) to PATH")
    command_key_parser.add_argument("path", type=Path, help="where to write it (a new file)")
    signing_key_parser = key_verbs.add_parser(
        "generate", parents=[common],
        help="write a new Ed25519 checkpoint signing key to PATH and its public key to PATH.pub")
    signing_key_parser.add_argument("path", type=Path,
                                    help="where to write the private key (a new file)")

    start = sub.add_parser("start", parents=[common], help="open a case for a council")
    start.add_argument("--council", required=True, metavar="GSS",
                       help="the council's GSS code, e.g. E06000001")
    start.add_argument("--kind", required=True, choices=[k.value for k in CaseKind],
                       help="which kind of peer challenge")
    start.add_argument("--reason", required=True, help="why the council needs it")
    start.add_argument("--scope", default="", metavar="A,B,…",
                       help="the areas the challenge looks at, e.g. finance,governance")
    start.add_argument("--budget-gap-pence", type=int,
                       help="the council's budget gap, in pence")
    start.add_argument("--demo-deadlines", type=int, metavar="SECONDS",
                       help="deadlines of a few SECONDS instead of months (for trying it out)")

    start.add_argument("--requested-on", type=_day, metavar="YYYY-MM-DD",
                       help="the day the council asked for it, if not today")

    add_idempotency_key(start)
    history = sub.add_parser(
        "import-history", parents=[common],
        help="bring in past peer challenges from a CSV file, whole or not at all (case "
             "officers); the columns are in the README")
    history.add_argument("path", type=Path, metavar="FILE.csv",
                         help="one past peer challenge per row: council, kind, visit_start, "
                              "visit_end, report_published_on, action_plan_published_on, "
                              "progress_review_on, progress_review_published_on (+ optional "
                              "columns)")
    add_action_parsers(sub, common)

    status = sub.add_parser("status", parents=[common], help="where a case stands")
    status.add_argument("case", metavar="CASE", help="case id, e.g. cpc-E06000001-2026")
    listing = sub.add_parser("list", parents=[common],
                             help="open cases with stage, next deadline and escalation level")
    listing.add_argument("--stage", choices=[s.value for s in Stage],
                         help="only cases at this stage")
    listing.add_argument("--council", metavar="GSS", help="only this council's cases")
    listing.add_argument("--kind", choices=[k.value for k in CaseKind],
                         help="only cases of this kind")
    listing.add_argument("--escalated", action="store_true", help="only escalated cases")
    listing.add_argument("--all", action="store_true", help="closed cases too")
    auditing.add_parsers(sub, common)
    councils.add_parsers(sub, common)
    projections.add_parsers(sub, common)
    contacts.add_parsers(sub, common)
    outbox.add_parsers(sub, common)
    peers.add_parsers(sub, common)
    db.add_parsers(sub, common)
    namespace.add_parsers(sub, common)
    users.add_parsers(sub, common)
    return parser


def _view(answer: dict[str, Any]) -> CaseView:
    return CaseView.model_validate(answer)


def _start(args: argparse.Namespace) -> int:
    if not _GSS.match(args.council):
        raise BadInput(f"--council {args.council!r}: expected a GSS code like E06000001")
    if args.demo_deadlines is not None and not 1 <= args.demo_deadlines <= 3600:
        raise BadInput("--demo-deadlines: between 1 and 3600 seconds")
    policy = demo_policy_name(args.demo_deadlines) if args.demo_deadlines else STANDARD
    answer = ApiClient(idempotency_key=args.idempotency_key).start({
        "council": args.council, "kind": args.kind, "reason": args.reason,
        "scope": [s.strip() for s in args.scope.split(",") if s.strip()],
        "budget_gap_pence": args.budget_gap_pence, "deadline_policy": policy,
        "requested_on": args.requested_on.isoformat() if args.requested_on else None})
    emit(args, answer, render.status(_view(answer)))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _import_history(args: argparse.Namespace) -> int:
    try:
        data = args.path.read_bytes()
    except OSError as error:
        raise BadInput(f"{args.path}: {error.strerror}; nothing was imported") from None
    answer = ApiClient().import_history(data)
    lines = [f"{args.path}: {answer['rows']} past peer challenges (file SHA-256 "
             f"{answer['file_sha256']})",
             f"  imported now: {len(answer['imported'])}",
             f"  imported before from this file, left as they were: {len(answer['already'])}",
             f"  still under way, followed by the engine: {len(answer['under_way'])}"]
    if answer["not_started"]:
        lines.append(f"  under way but not yet followed (import the same file again): "
                     f"{', '.join(answer['not_started'])}")
    emit(args, answer, "\n".join(lines))
    return 1 if answer["not_started"] else 0


def _act(args: argparse.Namespace) -> int:
    answer = ApiClient(idempotency_key=args.idempotency_key).act(args.case,
                                                                 body_from_args(args))
    emit(args, answer, render.status(_view(answer)))
    return 0


def _status(args: argparse.Namespace) -> int:
    api = ApiClient()
    answer = api.case(args.case)
    notices = api.notices(args.case)
    emit(args, {**answer, "notices": notices},
         render.status(_view(answer)) + render.notices(notices))
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.council and not _GSS.match(args.council):
        raise BadInput(f"--council {args.council!r}: expected a GSS code like E06000001")
    rows = ApiClient().cases(stage=args.stage, council=args.council, kind=args.kind,
                             escalated=args.escalated, include_ended=args.all)
    shown = [{**row, "next deadline": _when(row.get("next_deadline")),
              "escalation": str(row.get("escalation_level") or "")} for row in rows]
    columns = ["case", "council", "kind", "stage", "next deadline", "escalation"]
    problems = "".join(f"\nSTUCK: {row['problem']}" for row in rows if row.get("problem"))
    emit(args, rows, render.table(shown, columns) + problems)
    return 0


def _when(value: Any) -> str:
    return str(value)[:16].replace("T", " ") if value else ""


def _keys(args: argparse.Namespace) -> int:
    from runtime.signing import write_key

    if args.verb == "generate":
        return _signing_key(args)
    try:
        write_key(args.path)
    except FileExistsError:
        raise BadInput(f"{args.path} exists: a command key is never overwritten") from None
    emit(args, {"path": str(args.path)},
         f"command key written to {args.path} (readable by you only); give the API and every "
         f"worker the same file in CASES_COMMAND_KEY_FILE")
    return 0


def _signing_key(args: argparse.Namespace) -> int:
    from eventstore.checkpoint_files import generate_key_pair

    try:
        public_path, digest = generate_key_pair(args.path)
    except FileExistsError as taken:
        raise BadInput(f"{taken}: a signing key is never overwritten") from None
    except OSError as error:
        raise BadInput(f"{args.path}: cannot write it ({error.strerror or error})") from None
    emit(args, {"path": str(args.path), "public_key": str(public_path),
                "public_key_sha256": digest},
         f"signing key written to {args.path} and its public key to {public_path} (both "
         f"readable by you only; public key sha256 {digest}); give the worker "
         f"CASES_SIGNING_KEY={args.path}, and auditors a copy of {public_path}")
    return 0


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "dev" and args.what == "mail":
        from cli.dev import show_mail

        return show_mail(args)
    if args.command == "dev":
        from cli.dev import mail_port, run_dev

        return await run_dev(args.port, args.db_file, args.ui, args.web_port,
                             mail_port=mail_port(args))
    if args.command == "serve":
        from cli.dev import run_api

        return await run_api(args.host, args.port, args.processes, shared=args.shared_port,
                             log_format=getattr(args, "log_format", None))
    if args.command == "demo":
        from cli.demo import run_demo

        return await run_demo(args.unit_seconds)
    if args.command == "db":
        return db.dispatch(args)
    if args.command == "setup":
        return await namespace.run_setup(args)
    if args.command == "keys":
        return _keys(args)
    if args.command in ("login", "logout", "whoami"):
        return users.dispatch_session(args)
    if args.command == "start":
        return _start(args)
    if args.command == "status":
        return _status(args)
    if args.command == "import-history":
        return _import_history(args)
    if args.command == "list":
        return _list(args)
    if args.command in ACTIONS:
        return _act(args)
    store = open_store()
    try:
        if args.command == "users":
            store.require_newest_schema()
            return users.dispatch_users(args, store)
        if args.command == "councils":
            return councils.dispatch(args, store)
        if args.command == "projections":
            return projections.dispatch(args, store)
        if args.command == "outbox":
            return outbox.dispatch(args, store)
        if args.command == "contacts":
            store.require_newest_schema()
            return contacts.dispatch(args, store)
        if args.command == "peers":
            return peers.dispatch(args, store)
        return await auditing.dispatch(args, store)
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
        # Ctrl-C interrupts at once, even inside a blocking call (asyncio's own handler
        # would only cancel the task, once the call returned): it stays installed because
        # it is not Python's default one. `cases dev` and `serve` set their own, to stop.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _interrupted)
        code = asyncio.run(_dispatch(args))
        sys.stdout.flush()  # here, so that a reader gone away is answered like any failure
        return code
    except (BadInput, ActionRefused, CaseNotFound, ApiRefused) as refused:
        print(f"cases: {refused}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ApiUnavailable as unavailable:
        print(f"cases: {unavailable}", file=sys.stderr)
        return 1
    except ValidationError as invalid:
        print(f"cases: {describe(invalid)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SQLAlchemyError as failure:
        print(f"cases: {store_failure(failure)}", file=sys.stderr)
        return 1
    except (UnsupportedDatabase, SchemaNotCurrent, ProjectionBroken) as unusable:
        print(f"cases: {unusable}", file=sys.stderr)
        return 1
    except TelemetryProblem as bad_setting:
        print(f"cases: {bad_setting}; nothing was recorded", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("cases: interrupted (Ctrl-C); nothing was recorded unless `cases status` shows "
              "it", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _quiet_stdout()
        print("cases: the output's reader went away (a closed pipe); nothing was recorded",
              file=sys.stderr)
        return 1
    except RuntimeError as failure:
        print(f"cases: {failure}", file=sys.stderr)
        return 1
    except Exception as failure:
        print(f"cases: unexpected {type(failure).__name__}: {_first_line(failure)}; nothing "
              "was recorded unless `cases status` shows it; try again, and report it if it "
              "recurs", file=sys.stderr)
        return 1


def store_failure(failure: SQLAlchemyError) -> str:
    """One line for a database that failed: unreachable (try again), or without its tables
    (migrate), or anything else it said; never the password, never a traceback."""
    where = visible(shown_url(database_url()))
    said = _first_line(failure)
    if missing_table(failure):
        return (f"the store at {where} has no tables yet ({said}): run `cases db upgrade` (as "
                "the database's owner), or `cases dev`; nothing was recorded")
    if isinstance(failure, OperationalError | InterfaceError | DisconnectionError):
        return (f"cannot reach the database at {where} ({said}): is it running? "
                "CASES_DATABASE_URL names it; nothing was recorded; try again")
    return f"the store at {where} failed: {said}; nothing was recorded; try again"


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _first_line(failure: Exception) -> str:
    """The first line of a failure's message, as a terminal may show it."""
    return visible(failure_said(failure))


def main(argv: Sequence[str] | None = None) -> None:
    exit_now(run(argv))
