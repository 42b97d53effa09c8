"""`cases peers import|list|pools|explain|erase`: the pool peer teams are chosen from, in
versions; any recorded selection re-run from its event; a peer's personal data erased on
request (see docs/data-protection.md)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from application.peers import SelectionUnexplained, explain_selections
from cli import render
from cli.actions import BadInput
from cli.output import EXIT_TAMPERED, emit
from domain.councils import Council
from domain.peer_register import PeerFileError, parse_peers
from domain.peers import Peer, PeerKind, demo_pool
from domain.vocabulary import Text
from eventstore import EventStore
from eventstore.councils import known_councils
from eventstore.peers import (
    NothingToErase,
    PoolAltered,
    PoolVersion,
    UnknownPool,
    current_pool_version,
    erase_peer,
    import_pool,
    load_pool,
    pool_version,
    pool_versions,
)

_GSS = re.compile(r"^[EKNSW][0-9]{8}$")
_NO_POOL = ("no peer pool yet: import one with `cases peers import PATH.csv` "
            "(or `cases peers import --demo`)")
_REASON: TypeAdapter[str] = TypeAdapter(Text)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    peers = sub.add_parser("peers", parents=[common],
                           help="import the peer pool, list its peers and its versions, "
                                "explain a selection, erase a peer's personal data")
    verbs = peers.add_subparsers(dest="what", required=True, metavar="VERB")
    importing = verbs.add_parser("import", parents=[common],
                                 help="import a new version of the pool from a CSV file")
    importing.add_argument("path", nargs="?", metavar="PATH.csv",
                           help="a pool file, one peer a row (see README.md)")
    importing.add_argument("--demo", action="store_true",
                           help="a made-up pool over the built-in councils, no file")
    listing = verbs.add_parser("list", parents=[common], help="the peers of a pool version")
    listing.add_argument("--pool", type=int, metavar="N",
                         help="this pool version (default: the newest)")
    listing.add_argument("--council", metavar="GSS", help="peers of this home council")
    listing.add_argument("--kind", choices=[k.value for k in PeerKind],
                         help="councillors, officers or challenge managers only")
    verbs.add_parser("pools", parents=[common],
                     help="every pool version: when, how many peers, digest, source")
    explain = verbs.add_parser("explain", parents=[common],
                               help="re-run every team proposal of a case from its event; "
                                    "exit 3 when one is not reproduced")
    explain.add_argument("case", nargs="?", metavar="CASE",
                         help="the case id, e.g. cpc-E06000001-2026")
    erase = verbs.add_parser("erase", parents=[common],
                             help="erase a peer's personal data from the pool, on request")
    erase.add_argument("peer_id", nargs="?", metavar="PEER_ID", help="the peer's id, e.g. P012")
    erase.add_argument("--pool", type=int, metavar="N",
                       help="from this pool version only")
    erase.add_argument("--all-pools", action="store_true",
                       help="from every pool version that holds the peer")
    erase.add_argument("--reason", metavar="TEXT",
                       help="why, as recorded with the erasure (e.g. the request's "
                            "reference; not the person's name)")


def dispatch(args: argparse.Namespace, store: EventStore) -> int:
    return _COMMANDS[args.what](args, store)


def _import(args: argparse.Namespace, store: EventStore) -> int:
    if args.demo == (args.path is not None):
        raise BadInput("peers import: give a pool file's PATH.csv, or --demo (not both)")
    if args.demo:
        today = datetime.now(UTC).date()
        chosen, source = demo_pool(today), f"demo pool as of {today}"
    else:
        chosen, source = _read(Path(args.path), known_councils(store)), str(args.path)
        if not chosen:
            raise BadInput(f"{args.path}: nothing imported: no peers in it (a pool file "
                           "has a header row and a row for each peer)")
    store.require_newest_schema()
    version = import_pool(store, chosen, source)
    said = (f"imported peer pool version {version.version}" if version.new else
            f"unchanged: peer pool version {version.version} already holds these peers")
    emit(args, _pool_json(version),
         f"{said}: {version.peer_count} peers from {version.source}, digest {version.digest}")
    return 0


def _read(path: Path, councils: dict[str, Council]) -> list[Peer]:
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
        with path.open(newline="", encoding="utf-8-sig") as file:
            return parse_peers(csv.DictReader(file), councils)
    except OSError as error:
        raise BadInput(f"{path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise BadInput(f"{path}: nothing imported: not UTF-8 text ({error.reason} at byte "
                       f"{error.start})") from None
    except PeerFileError as invalid:
        raise BadInput(_problems(path, invalid)) from None


def _problems(path: Path, invalid: PeerFileError, shown: int = 50) -> str:
    """Every problem on a line of its own, as a person fixes them in the spreadsheet."""
    count = len(invalid.problems)
    lines = [f"{path}: nothing imported: {count} problem{'s' * (count != 1)}:",
             *(f"  {problem}" for problem in invalid.problems[:shown])]
    if count > shown:
        lines.append(f"  and {count - shown} more")
    return "\n".join(lines)


def _list(args: argparse.Namespace, store: EventStore) -> int:
    if args.council is not None and not _GSS.match(args.council):
        raise BadInput(f"--council {args.council!r}: expected a GSS code like E06000001")
    version = _chosen_pool(args, store)
    if version is None:
        emit(args, {"pool": None, "peers": []}, _NO_POOL)
        return 0
    try:
        pool = load_pool(store, version.version)
    except PoolAltered as altered:
        print(f"cases: {altered}", file=sys.stderr)
        return EXIT_TAMPERED
    chosen = [p for p in pool
              if (args.council is None or p.home_council == args.council)
              and (args.kind is None or p.kind == args.kind)]
    names = {gss: c.short_name for gss, c in known_councils(store).items()}
    rows = [_peer_row(p, names) for p in chosen]
    heading = (f"peer pool version {version.version} ({version.source}): "
               f"{len(chosen)} of {version.peer_count} peers")
    columns = ["id", "name", "kind", "home council", "group or rank", "accredited until",
               "days served"]
    erased = sum(p.erased for p in chosen)
    if erased:
        heading += f" ({erased} with personal data erased)"
    emit(args, {"pool": _pool_json(version), "peers": [_peer_json(p) for p in chosen]},
         heading + ("\n" + render.table(rows, columns) if rows else ""))
    return 0


def _peer_json(peer: Peer) -> dict[str, Any]:
    """The peer as JSON; an erased peer's personal fields are null (unknown, not empty)."""
    if peer.erased:
        return peer.model_dump(mode="json") | {"name": None, "political_group": None,
                                               "declared_interests": None, "erased": True}
    return peer.model_dump(mode="json") | {"erased": False}


def _chosen_pool(args: argparse.Namespace, store: EventStore) -> PoolVersion | None:
    if args.pool is None:
        return current_pool_version(store)
    try:
        return pool_version(store, args.pool)
    except UnknownPool as unknown:
        raise BadInput(str(unknown)) from None


def _peer_row(peer: Peer, names: dict[str, str]) -> dict[str, str]:
    home = peer.home_council or ""
    if home in names:
        home = f"{home} {names[home]}"
    rank = peer.seniority.label if peer.seniority else ""
    group = "(erased)" if peer.erased and peer.kind == PeerKind.COUNCILLOR else None
    return {"id": peer.peer_id, "name": peer.name, "kind": peer.kind.value.replace("_", " "),
            "home council": home, "group or rank": group or peer.political_group or rank,
            "accredited until": str(peer.accredited_until or "never"),
            "days served": str(peer.days_served_last_3_years)}


def _pools(args: argparse.Namespace, store: EventStore) -> int:
    versions = pool_versions(store)
    rows = [{"version": str(v.version), "imported": render.when(v.imported_at),
             "peers": str(v.peer_count), "digest": v.digest[:16] + "…", "source": v.source}
            for v in versions]
    emit(args, [_pool_json(v) for v in versions],
         render.table(rows, ["version", "imported", "peers", "digest", "source"])
         if rows else _NO_POOL)
    return 0


def _pool_json(version: PoolVersion) -> dict[str, Any]:
    return dataclasses.asdict(version) | {"imported_at": version.imported_at.isoformat()}


def _explain(args: argparse.Namespace, store: EventStore) -> int:
    """Re-run every team proposal of a case (application.peers.explain_selections): exit 0
    when each engine selection is reproduced, 3 when one is not."""
    if args.case is None:
        raise BadInput("peers explain: give the CASE, e.g. cpc-E06000001-2026")
    case_id = str(args.case)
    try:
        results = explain_selections(store, case_id)
    except SelectionUnexplained as refused:
        raise BadInput(str(refused)) from None
    failed = [r for r in results if r.get("reproduced") is False]
    emit(args, {"case_id": case_id, "proposals": results, "all_reproduced": not failed},
         _explanation(case_id, results))
    return EXIT_TAMPERED if failed else 0


def _explanation(case_id: str, results: list[dict[str, Any]]) -> str:
    if not results:
        return f"case {case_id}: no peer team has been proposed yet"
    lines = [f"case {case_id}: {len(results)} proposal(s)"]
    for r in results:
        head = f"version {r['version']} by {r['actor']}: "
        if r["selected_by"] == "officer":
            lines.append(head + "HAND-PICKED by an officer; no rules chose this team")
        else:
            verdict = "NOT REPRODUCED"
            if r["reproduced"]:
                taken = r.get("from_record", [])
                verdict = "reproduced exactly" if not taken else (
                    f"reproduced, {len(taken)} decision(s) about peers whose personal data "
                    f"was erased taken from the record ({', '.join(taken)})")
            what = (f"{r['requirement']} could not be filled" if "requirement" in r
                    else "team proposed")
            lines.append(head + f"{what} by the engine (seed {r['seed']}, pool version "
                         f"{r['pool_version']}, objected to: "
                         f"{', '.join(r['excluded']) or 'none'}): {verdict}")
            lines += [f"  {d}" for d in r.get("differences", [])]
            if not r["reproduced"] and r.get("from_record"):
                lines.append(f"  note: {len(r['from_record'])} decision(s) rested on personal "
                             f"data erased since, taken from the record: "
                             f"{', '.join(r['from_record'])}")
            if r["register_changed"]:
                lines.append("  note: the council register has changed since this selection "
                             "(its digest differs); the locality rules read it")
        erased_team = set(r.get("erased_team", []))
        lines += [f"  {p['role'].replace('_', ' ')}: {p['peer_id']} {p['name']}"
                  + (f" ({p['home_council']})" if p["home_council"] else "")
                  + (" (as recorded; personal data since erased from the pool)"
                     if p["peer_id"] in erased_team else "")
                  for p in r.get("team", [])]
        candidates = r.get("candidates", [])
        if candidates:
            lines.append(f"  every candidate of pool version {r['pool_version']}, in words "
                         "derived from the pool now:")
            lines += [f"    {_candidate_line(c)}" for c in candidates]
    return "\n".join(lines)


def _candidate_line(candidate: dict[str, Any]) -> str:
    verdict = "admitted" if candidate["admitted"] else "excluded"
    seat = f"; selected as {candidate['role']}" if candidate["role"] else ""
    return (f"{candidate['peer_id']}: {verdict} ({candidate['reason_code']}) "
            f"{candidate['reason']}{seat}")


def _erase(args: argparse.Namespace, store: EventStore) -> int:
    """Erase a peer's personal data from the pool (the operator's, on a request): the pool
    rows, their digests and every case's events stay, so everything still verifies."""
    if args.peer_id is None:
        raise BadInput("peers erase: give the PEER_ID, e.g. P012")
    if (args.pool is None) == (not args.all_pools):
        raise BadInput("peers erase: say where from: --pool N (one pool version) or "
                       "--all-pools (every version holding the peer)")
    if args.reason is None:
        raise BadInput("peers erase: give --reason TEXT (why; it is recorded with the "
                       "erasure)")
    try:
        reason = _REASON.validate_python(args.reason)
    except ValidationError as invalid:
        message = str(invalid.errors()[0].get("msg", "is not valid"))
        raise BadInput(f"peers erase: --reason {message.removeprefix('Value error, ')}"
                       ) from None
    store.require_newest_schema()
    try:
        done = erase_peer(store, str(args.peer_id), reason, pool=args.pool)
    except (UnknownPool, NothingToErase) as refused:
        raise BadInput(str(refused)) from None
    versions = [e.pool_version for e in done]
    listed = ", ".join(map(str, versions))
    emit(args, {"peer_id": str(args.peer_id), "pool_versions": versions,
                "erased_at": done[0].erased_at.isoformat(), "reason": reason},
         f"erased the name, political group and declared interests of peer {args.peer_id} "
         f"from pool version{'s' * (len(versions) != 1)} {listed}; the pool rows, their "
         f"digests and every case still verify (`cases peers explain CASE` shows the peer "
         f"as erased)")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace, EventStore], int]] = {
    "import": _import,
    "list": _list,
    "pools": _pools,
    "explain": _explain,
    "erase": _erase,
}
"""Each `cases peers VERB` and the function that does it; a new one is an entry here and its
sub-command, with only its own options, in add_parsers."""
