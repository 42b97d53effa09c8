"""The auditors' commands: read-only over the store (SELECT is all they need), except
`checkpoint`, which asks the worker to record one, and `audit replay`, which reads Temporal."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from application.errors import CaseNotFound
from application.notices import case_notices
from cli import render
from cli.actions import BadInput
from cli.output import EXIT_TAMPERED, emit, visible
from cli.projections import lag_note
from domain.checkpoints import CHECKPOINT_STREAM
from domain.figures import calendar_year, cases_by_stage_on, financial_year
from domain.timeline import as_of, diff, parse_moment
from eventstore import EventStore
from eventstore.charts import ChartRefused, annual_chart, write_chart
from eventstore.checkpoints import (
    load_checkpoint,
    verify_against,
    verify_anchored,
    verify_chain,
)
from eventstore.config import shown_url
from eventstore.export import NoSuchCase, export_csv, export_json, write_bundle
from eventstore.projections import ProjectionStatus, all_facts, figures_for_period, require_sound
from eventstore.verify import verify, verify_all
from workflows.messages import TASK_QUEUE, CaseView

# Temporal is imported by the two commands that use it (audit replay, checkpoint), not by
# every auditor's read: the SDK takes most of a second to import.


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    history = sub.add_parser("history", parents=[common], help="a case's timeline, from the store")
    history.add_argument("case", metavar="CASE", help="case id, e.g. cpc-E06000001-2026")
    history.add_argument("--as-of", metavar="DATE|TIME",
                         help="the case as it stood then (a date means the end of that day, UTC)")
    changes = sub.add_parser("diff", parents=[common], help="what changed in a case between two "
                             "moments")
    changes.add_argument("case", metavar="CASE", help="case id, e.g. cpc-E06000001-2026")
    changes.add_argument("--from", dest="start", required=True, metavar="DATE|TIME",
                         help="the earlier moment (a date means the end of that day, UTC)")
    changes.add_argument("--to", dest="end", required=True, metavar="DATE|TIME",
                         help="the later moment (a date means the end of that day, UTC)")
    export = sub.add_parser("export", parents=[common],
                            help="a case's events as JSON or CSV, or a self-verifying bundle")
    export.add_argument("case", metavar="CASE", help="case id, e.g. cpc-E06000001-2026")
    export.add_argument("--format", choices=["json", "csv"], default="json",
                        help="how the events are printed (default json)")
    export.add_argument("--bundle", type=Path, metavar="DIR",
                        help="write events, hashes, the rule, a standalone verifier and the "
                             "case's proof in the newest checkpoint to DIR (a new or empty "
                             "directory, readable by you only; never a symlink)")
    export.add_argument("--force", action="store_true",
                        help="with --bundle: replace an earlier bundle's files in DIR")
    report = sub.add_parser("report", parents=[common],
                            help="the programme's figures for a year, from the events alone")
    report.add_argument("which", choices=["annual"], help="annual: the figures for a year")
    report.add_argument("--financial-year", type=int, metavar="YEAR",
                        help="the programme's year: 2019 is 1 April 2019 to 31 March 2020 "
                             "(2019/20)")
    report.add_argument("--year", type=int, help="the calendar year the figures are for")
    report.add_argument("--from", dest="start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the period's first day, instead of --year")
    report.add_argument("--to", dest="end", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the period's last day, instead of --year")
    report.add_argument("--csv", action="store_true", help="print the figures as CSV")
    report.add_argument("--chart", type=Path, metavar="FILE.svg",
                        help="also draw cases by stage and days from visit to publication, "
                             "into a new file (never through a symlink)")
    report.add_argument("--force", action="store_true",
                        help="replace an existing --chart file")
    check = sub.add_parser("verify", parents=[common],
                           help="recompute every hash; exit 3 naming the first bad event")
    check.add_argument("case", metavar="CASE", nargs="?",
                       help="only this case (default: every case)")
    check.add_argument("--against-checkpoint", metavar="N", nargs="?", type=int, const=0,
                       help="also compare with checkpoint N (default: the newest) and each "
                            "stored checkpoint with the one before it, which catches a "
                            "truncated tail, a whole case deleted and a rewrite under a fresh "
                            "checkpoint")
    check.add_argument("--anchor", type=Path, metavar="FILE",
                       help="also check that the store still extends this published, signed "
                            "checkpoint file (catches a rewrite of the checkpoint rows too)")
    check.add_argument("--public-key", type=Path, metavar="KEY.pub",
                       help="the public key you hold to check --anchor's signature with "
                            "(default: the .pub beside CASES_SIGNING_KEY)")
    check.add_argument("--no-temporal", action="store_true",
                       help="do not ask Temporal which open cases still have a running "
                            "workflow (asked when TEMPORAL_ADDRESS answers)")
    audit = sub.add_parser("audit", parents=[common],
                           help="replay a case's Temporal history and match it to the store")
    audit.add_argument("what", choices=["replay"],
                       help="replay: its Temporal history through today's code, against the store")
    audit.add_argument("case", metavar="CASE", help="case id, e.g. cpc-E06000001-2026")
    points = sub.add_parser("checkpoint", parents=[common],
                            help="record every case's head and a Merkle root, chained to the "
                                 "checkpoint before; signed and written to a file when the "
                                 "worker has CASES_SIGNING_KEY")
    points.add_argument("when", choices=["now", "schedule"],
                        help="now: record one; schedule: record one every --every minutes")
    points.add_argument("--every", type=int, default=60, metavar="MINUTES",
                        help="with schedule: how often (default 60)")


COMMANDS = {"history", "diff", "export", "report", "verify", "audit", "checkpoint"}


async def dispatch(args: argparse.Namespace, store: EventStore) -> int:
    if args.command == "audit":
        return await _audit_replay(args, store)
    if args.command == "checkpoint":
        return await _checkpoint(args)
    if args.command == "verify":
        return await _verify(args, store)
    handler = {"history": _history, "diff": _diff, "export": _export, "report": _report,
               }[args.command]
    return handler(args, store)


async def _stuck(store: EventStore) -> tuple[list[Any] | None, str]:
    """The cases left open whose workflow has ended, or None if Temporal did not answer.
    Temporal is asked only if it answers; the record's verdict never depends on it."""
    import asyncio

    from application.stuck_cases import stuck_cases
    from runtime.temporal import connect, connect_options

    try:
        client = await asyncio.wait_for(connect(signing=False), timeout=5)
        stuck = await asyncio.wait_for(stuck_cases(client, store), timeout=120)
    except Exception:
        where = shown_url(str(connect_options().get("target_host")))
        return None, f"(open cases not checked against Temporal at {where}: it did not answer)"
    return stuck, "\n".join(f"STUCK: {case}" for case in stuck)


def _moment(option: str, text: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as error:
        raise BadInput(f"{option} {text!r}: {error}") from None


def _case_events(store: EventStore, case_id: str) -> list[Any]:
    events = store.read_case(case_id)
    if not events:
        raise CaseNotFound(f"no case {case_id} in the store")
    return events


def _history(args: argparse.Namespace, store: EventStore) -> int:
    events = _case_events(store, args.case)
    if args.as_of is None:
        try:
            told = [n.model_dump(mode="json") for n in case_notices(store, args.case)]
        except SQLAlchemyError:  # a store not yet migrated to notices: the events stand alone
            told = []
        emit(args, [render.event_json(e) for e in events], render.timeline(events)
             + (f"\n\nwho was told:{render.notices(told)}" if told else ""))
        return 0
    moment = _moment("--as-of", args.as_of)
    state = as_of([e.to_recorded() for e in events], moment)
    shown = events[:state.version]
    text = (f"as of {render.when(moment)}:\n" + render.status(CaseView(state=state))
            + "\n\n" + render.timeline(shown))
    emit(args, {"as_of": moment.isoformat(), "state": state.model_dump(mode="json"),
                "events": [render.event_json(e) for e in shown]}, text)
    return 0


def _diff(args: argparse.Namespace, store: EventStore) -> int:
    start, end = _moment("--from", args.start), _moment("--to", args.end)
    if start > end:
        raise BadInput(f"--from {args.start} is after --to {args.end}")
    events = _case_events(store, args.case)
    change = diff([e.to_recorded() for e in events], start, end)
    lines = [f"{args.case} from {render.when(start)} to {render.when(end)}:"]
    lines += [f"  {c.field}: {c.old} → {c.new}" for c in change.changes] or ["  no change"]
    lines += [f"  + v{r.version} {r.event.type_name()} by {r.actor}" for r in change.events]
    emit(args, change.to_json(), "\n".join(map(visible, lines)))
    return 0


def _export(args: argparse.Namespace, store: EventStore) -> int:
    import json

    from eventstore.checkpoint_files import checkpoint_directory, default_public_key
    from eventstore.export import BundleRefused, UnreadableCase

    if args.force and args.bundle is None:
        raise BadInput("--force goes with --bundle DIR")
    try:
        if args.bundle is None:
            print(export_json(store, args.case) if args.format == "json"
                  else export_csv(store, args.case), end="")
            return 0
        url = store.engine.url
        where = write_bundle(store, args.case, args.bundle, force=args.force,
                             checkpoint_dir=checkpoint_directory(
                                 url.database if url.get_backend_name() == "sqlite" else None),
                             public_key=default_public_key())
    except NoSuchCase as missing:
        raise CaseNotFound(str(missing)) from None
    except (FileExistsError, BundleRefused) as refused:
        raise BadInput(f"--bundle {args.bundle}: {refused}") from None
    except UnreadableCase as unreadable:
        print(f"cases: {visible(str(unreadable))}", file=sys.stderr)
        return EXIT_TAMPERED
    manifest = json.loads((where / "MANIFEST.json").read_text(encoding="utf-8"))
    emit(args, {"bundle": str(where), "verify_py_sha256": manifest["verify_py_sha256"],
                "anchor": manifest["anchor"], "anchor_note": manifest["anchor_note"]},
         f"bundle of {args.case} written to {where} (readable by you only); anyone can check "
         f"it with `python3 -I -S {where / 'verify.py'}`\n"
         f"verify.py SHA-256 {manifest['verify_py_sha256']} (docs/event-store.md publishes it)\n"
         f"{manifest['anchor_note']}")
    return 0


def _period(args: argparse.Namespace) -> tuple[date, date]:
    chosen = [option for option, given in (("--financial-year", args.financial_year),
                                            ("--year", args.year),
                                            ("--from/--to", args.start or args.end))
              if given is not None]
    if len(chosen) > 1:
        raise BadInput(f"give one of --financial-year, --year, or --from and --to, not "
                       f"{' and '.join(chosen)}")
    for option, year in (("--financial-year", args.financial_year), ("--year", args.year)):
        if year is not None and not 1990 <= year <= 2200:
            raise BadInput(f"{option} {year}: out of range (1990 to 2200)")
    if args.financial_year is not None:
        return financial_year(args.financial_year)
    if args.year is not None:
        return calendar_year(args.year)
    if args.start is None or args.end is None:
        raise BadInput("give --financial-year Y, --year Y, or both --from and --to")
    if args.start > args.end:
        raise BadInput(f"--from {args.start} is after --to {args.end}")
    return args.start, args.end


def _report(args: argparse.Namespace, store: EventStore) -> int:
    """From the read models (`case_figures`), never a fold of every event: only the cases the
    period can count are read (by their indexed dates), and each council's first corporate
    visit. A projection that stopped on a gap or a
    broken link serves nothing (exit 1, saying where)."""
    start, end = _period(args)
    current = require_sound(store.engine)
    figures = figures_for_period(store.engine, start, end)
    if args.chart is not None:  # every case's stage on the last day: all the facts
        chart = annual_chart(cases_by_stage_on(all_facts(store.engine), end),
                             figures.days_visit_to_publication,
                             title=f"Peer challenges {start} to {end}")
        try:
            write_chart(args.chart, chart, replace=args.force)
        except ChartRefused as refused:
            raise BadInput(f"--chart {refused}") from None
    if args.csv:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["figure", "label", "value", "case_ids"])
        writer.writerows((key, label, value, " ".join(figures.case_ids.get(key, ())))
                         for key, label, value in figures.rows())
        print(out.getvalue(), end="")
        _warn_lag(current)
        return 0
    rows = [{"figure": label, "value": "—" if value is None else str(value)}
            for _, label, value in figures.rows()]
    _emit_figures(args, {**figures.traced(), "projection": {"position": current.position,
                                                            "behind": current.behind}},
                  f"Figures from {start} to {end}, from the read models of the events "
                  "(`--json` names the cases behind each):\n"
                  + render.table(rows, ["figure", "value"]) + lag_note(current))
    return 0


def _emit_figures(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """`emit`, its JSON written by orjson where that is the same text. The JSON names every
    case behind each figure, some 330,000 ids at a million events, which json's indenting
    encoder (pure Python) took 0.3 s over, orjson 0.02 s."""
    encoded = _plain_json(data) if getattr(args, "json", False) else None
    if encoded is None:
        emit(args, data, text)
    else:
        print(encoded)


def _plain_json(data: dict[str, Any]) -> str | None:
    """`as_json(data)` by orjson, or None where it could differ: ASCII without DEL has nothing
    for `as_json` to escape, and orjson indents as `json.dumps(indent=2)` does."""
    try:
        encoded = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    except TypeError:  # orjson.JSONEncodeError: a value it will not write
        return None
    return encoded if encoded.isascii() and "\x7f" not in encoded else None


def _warn_lag(current: ProjectionStatus) -> None:
    note = lag_note(current)
    if note:
        print(note.strip(), file=sys.stderr)


def _signed_anchor(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """The statement of `--anchor FILE`, what to show of it, and why its signature does not
    hold under the auditor's own public key (None when it holds)."""
    from eventstore.checkpoint_files import (
        NotACheckpointFile,
        SigningKeyProblem,
        default_public_key,
        load_public_key,
        public_key_sha256,
        read_checkpoint_file,
        verify_checkpoint_signature,
    )

    key_path = args.public_key or default_public_key()
    if key_path is None:
        raise BadInput("--anchor: give --public-key KEY.pub, the public key you hold, or set "
                       "CASES_SIGNING_KEY (the .pub beside it is used)")
    try:
        statement, signature, named = read_checkpoint_file(args.anchor)
    except NotACheckpointFile as bad:
        raise BadInput(f"--anchor {bad}") from None
    try:
        pem = key_path.read_bytes()
        holds = public_key_sha256(load_public_key(pem))
    except OSError as error:
        raise BadInput(f"--public-key {key_path}: cannot read it "
                       f"({error.strerror or error})") from None
    except SigningKeyProblem as bad:
        raise BadInput(f"--public-key {key_path}: {bad}") from None
    shown = {"path": str(args.anchor), "number": statement["number"],
             "recorded_at": statement["recorded_at"], "merkle_root": statement["merkle_root"],
             "public_key": str(key_path), "public_key_sha256": holds}
    if verify_checkpoint_signature(statement, signature, pem):
        return statement, shown, None
    if named != holds:
        return statement, shown, (f"checkpoint file {args.anchor} was not signed by "
                                  f"{key_path}: it names another key (sha256 {named}), "
                                  f"yours is sha256 {holds}")
    return statement, shown, (f"checkpoint file {args.anchor}: its signature does not verify "
                              f"with {key_path}: the statement was altered or the signature "
                              "forged")


async def _verify(args: argparse.Namespace, store: EventStore) -> int:
    anchor: dict[str, Any] | None = None
    if args.anchor is not None:
        statement, anchor, bad_signature = _signed_anchor(args)
        if bad_signature is not None:
            emit(args, {"ok": False, "anchor": {**anchor, "signature": "bad"},
                        "problems": [bad_signature]}, f"TAMPERED: {bad_signature}")
            return EXIT_TAMPERED
        try:
            verdict = verify_anchored(store, statement, args.case)
        except ValueError as bad:
            raise BadInput(f"--anchor {args.anchor}: {bad}") from None
    else:
        verdict = verify(store, args.case) if args.case else verify_all(store)
    if args.against_checkpoint is not None:
        number = args.against_checkpoint or None
        point = load_checkpoint(store, number)
        if point is None:
            which = f"checkpoint {number}" if number else "checkpoint"
            raise CaseNotFound(f"no {which} in the store; record one with "
                               "`cases checkpoint now`")
        found = verify_against(store, point) + verify_chain(store)
        if args.case:
            found = [p for p in found if p.case_id in (args.case, CHECKPOINT_STREAM)]
        verdict.problems += [p for p in found if p not in verdict.problems]
    if args.case and verdict.events == 0 and verdict.ok:
        raise CaseNotFound(f"no case {args.case} in the store")
    data = {"ok": verdict.ok, "cases": verdict.cases, "events": verdict.events,
            "problems": [vars(p) for p in verdict.problems]}
    text = (f"intact: {verdict.cases} case(s), {verdict.events} event(s), every hash and link "
            "verified" if verdict.ok
            else "\n".join(f"TAMPERED: {visible(str(p))}" for p in verdict.problems))
    if anchor is not None:
        data["anchor"] = {**anchor, "signature": "good"}
        if verdict.ok:
            text += (f"; the store extends published checkpoint {anchor['number']} "
                     f"({anchor['recorded_at']}, root {anchor['merkle_root']}), signed by "
                     f"{anchor['public_key']}")
    stuck: list[Any] | None = None
    if verdict.ok and not args.case and not args.no_temporal:
        stuck, said = await _stuck(store)
        data["stuck"] = None if stuck is None else [vars(case) for case in stuck]
        text += f"\n{said}" if said else ""
    emit(args, data, text)
    return 0 if verdict.ok and not stuck else EXIT_TAMPERED


async def _audit_replay(args: argparse.Namespace, store: EventStore) -> int:
    from application.audit_replay import audit_replay
    from runtime.temporal import connect

    client = await connect(signing=False)
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
    emit(args, data, text)
    return 0 if audit.ok else EXIT_TAMPERED


async def _checkpoint(args: argparse.Namespace) -> int:
    from application.checkpoints import (
        SCHEDULE_ID,
        CheckpointFailed,
        checkpoint_now,
        schedule_checkpoints,
    )
    from runtime.temporal import connect

    client = await connect(signing=False)
    if args.when == "schedule":
        if not 1 <= args.every <= 7 * 24 * 60:
            raise BadInput("--every: between 1 minute and a week")
        await schedule_checkpoints(client, timedelta(minutes=args.every), TASK_QUEUE)
        emit(args, {"schedule": SCHEDULE_ID, "every_minutes": args.every},
             f"checkpoint schedule {SCHEDULE_ID}: every {args.every} minutes")
        return 0
    try:
        summary = await checkpoint_now(client)
    except CheckpointFailed as failed:
        if not failed.refused:
            raise RuntimeError(str(failed)) from None
        print(f"cases: {visible(str(failed))}", file=sys.stderr)
        return EXIT_TAMPERED
    published = (f"signed and written to {summary.path}" if summary.path else
                 "unsigned: the worker has no CASES_SIGNING_KEY, so no file was written "
                 "(`cases keys generate PATH` makes a key)")
    emit(args, summary.model_dump(), f"checkpoint {summary.checkpoint}: {summary.cases} cases "
         f"up to position {summary.last_position}, Merkle root {summary.merkle_root} "
         f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n{published}")
    return 0
