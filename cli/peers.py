"""`cases peers import|list|pools|explain`: the pool peer teams are chosen from, in versions,
and any recorded selection re-run from its event."""

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

from application.peers import SelectionUnexplained, explain_selections
from cli import render
from cli.actions import BadInput
from cli.output import EXIT_TAMPERED, emit
from domain.councils import Council
from domain.peer_register import PeerFileError, parse_peers
from domain.peers import Peer, PeerKind, demo_pool
from eventstore import EventStore
from eventstore.councils import known_councils
from eventstore.peers import (
    PoolAltered,
    PoolVersion,
    UnknownPool,
    current_pool_version,
    import_pool,
    load_pool,
    pool_version,
    pool_versions,
)

_GSS = re.compile(r"^[EKNSW][0-9]{8}$")
_NO_POOL = ("no peer pool yet: import one with `cases peers import PATH.csv` "
            "(or `cases peers import --demo`)")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    peers = sub.add_parser("peers", parents=[common],
                           help="import the peer pool, list its peers and its versions")
    peers.add_argument("what", choices=list(_COMMANDS))
    peers.add_argument("path", nargs="?", metavar="PATH.csv | CASE",
                       help="import: a pool file, one peer a row (see README.md); "
                            "explain: a case id")
    peers.add_argument("--demo", action="store_true",
                       help="import: a made-up pool over the built-in councils, no file")
    peers.add_argument("--pool", type=int, metavar="N",
                       help="list: this pool version (default: the newest)")
    peers.add_argument("--council", metavar="GSS", help="list: peers of this home council")
    peers.add_argument("--kind", choices=[k.value for k in PeerKind],
                       help="list: councillors, officers or challenge managers only")


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
    store.migrate()
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
    emit(args, {"pool": _pool_json(version), "peers": [p.model_dump(mode="json")
                                                       for p in chosen]},
         heading + ("\n" + render.table(rows, columns) if rows else ""))
    return 0


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
    return {"id": peer.peer_id, "name": peer.name, "kind": peer.kind.value.replace("_", " "),
            "home council": home, "group or rank": peer.political_group or rank,
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
    if args.path is None:
        raise BadInput("peers explain: give the CASE, e.g. cpc-E06000001-2026")
    case_id = str(args.path)
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
            verdict = "reproduced exactly" if r["reproduced"] else "NOT REPRODUCED"
            what = (f"{r['requirement']} could not be filled" if "requirement" in r
                    else "team proposed")
            lines.append(head + f"{what} by the engine (seed {r['seed']}, pool version "
                         f"{r['pool_version']}, objected to: "
                         f"{', '.join(r['excluded']) or 'none'}): {verdict}")
            lines += [f"  {d}" for d in r.get("differences", [])]
            if r["register_changed"]:
                lines.append("  note: the council register has changed since this selection "
                             "(its digest differs); the locality rules read it")
        lines += [f"  {p['role'].replace('_', ' ')}: {p['peer_id']} {p['name']}"
                  + (f" ({p['home_council']})" if p["home_council"] else "")
                  for p in r.get("team", [])]
    return "\n".join(lines)


_COMMANDS: dict[str, Callable[[argparse.Namespace, EventStore], int]] = {
    "import": _import,
    "list": _list,
    "pools": _pools,
    "explain": _explain,
}
"""Each `cases peers WHAT` and the function that does it; a new one is one entry here."""
