"""`cases db backup PATH`: a consistent copy of a SQLite store while it runs.

SQLite's online backup API (Python's `sqlite3.Connection.backup`) copies the database as one
read transaction sees it: every append committed before it started, none after, none half
written, while workers go on appending (the store runs in WAL mode, so readers do not block its
writer). Copying `cases.db` with `cp` is not that: it misses what is still in `cases.db-wal`,
or catches a page half way through a checkpoint. The `sqlite3` shell's `.backup` does the same
as this command, where that shell is installed.

PATH is created new, readable by its owner only (0600), never over an existing file and never
through a symbolic link. The copy is checked (`PRAGMA quick_check`) and its newest checkpoint
named, so the operator knows which published checkpoint file a restore of it must verify
against (docs/operations.md). PostgreSQL is backed up with `pg_dump`, not here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cli.output import EXIT_BAD_INPUT, emit
from domain.checkpoints import CHECKPOINT_STREAM
from eventstore.config import database_url, normalise_url, shown_url


class BackupRefused(ValueError):
    """Nothing was written: the store is not a SQLite file, or PATH is taken."""


def add_parser(what: Any, common: argparse.ArgumentParser) -> None:
    backup = what.add_parser(
        "backup", parents=[common],
        help="copy a SQLite store, consistently, while it runs, to a new file PATH (0600); "
             "PostgreSQL: pg_dump, see docs/operations.md")
    backup.add_argument("path", type=Path, metavar="PATH",
                        help="the new file (never overwritten)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 copied; 2 refused, nothing written; 1 the copy failed, nothing left behind."""
    url = database_url()
    try:
        source = _sqlite_file(url)
        _create_private(args.path)
    except BackupRefused as refused:
        print(f"cases: db backup: {refused}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        summary = _copy(source, args.path)
    except (sqlite3.Error, OSError, ValueError) as failure:
        _remove(args.path)
        print(f"cases: db backup: copying {source} to {args.path} failed: {failure}; "
              "nothing was kept", file=sys.stderr)
        return 1
    newest = summary["checkpoint"]
    said = ("no checkpoint in it yet" if newest is None else
            f"its newest checkpoint is {newest['number']} (root {newest['merkle_root']}): "
            f"after a restore, verify it with `cases verify --anchor "
            f"checkpoint-{newest['number']:06d}.json --public-key KEY.pub`")
    emit(args, {"database": shown_url(url), **summary},
         f"backed up {shown_url(url)} to {args.path} (readable by you only): "
         f"{summary['events']} events, {summary['bytes']} bytes; {said}")
    return 0


def _sqlite_file(url: str) -> Path:
    parsed = sa.make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        raise BackupRefused(
            f"{shown_url(url)} is not a SQLite store; back up PostgreSQL with "
            "`pg_dump --format=custom` (docs/operations.md)")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupRefused("the store is in memory: there is no file to copy")
    path = Path(parsed.database)
    if not path.is_file():
        raise BackupRefused(f"no database file at {path} (CASES_DATABASE_URL={shown_url(url)})")
    return path


_SIDECARS = ("-journal", "-wal", "-shm")
"""SQLite's files beside a database: one left from another database of that name would be
read as this one's."""


def _create_private(path: Path) -> None:
    for sidecar in _SIDECARS:
        beside = path.with_name(path.name + sidecar)
        if beside.exists() or beside.is_symlink():
            raise BackupRefused(f"{beside} exists: move it away first")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise BackupRefused(f"{path} exists: a backup is never written over a file") from None
    except OSError as error:
        raise BackupRefused(f"{path}: cannot create it ({error.strerror or error})") from None
    os.close(descriptor)


def _copy(source: Path, target: Path) -> dict[str, Any]:
    """Copy in one step (one read transaction: a stepwise copy restarts whenever a worker
    appends), check the copy, and say what it holds."""
    reading = sqlite3.connect(f"{source.absolute().as_uri()}?mode=rw", uri=True)
    try:
        reading.execute("PRAGMA busy_timeout = 30000")
        writing = sqlite3.connect(target)
        try:
            reading.backup(writing)
            [verdict] = writing.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"the copy does not check out: {verdict}")
            summary = _contents(writing)
        finally:
            writing.close()
    finally:
        reading.close()
    with open(target, "rb") as written:
        os.fsync(written.fileno())
    return {"path": str(target), "bytes": target.stat().st_size, **summary}


def _contents(conn: sqlite3.Connection) -> dict[str, Any]:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
                    ).fetchone() is None:
        return {"events": 0, "checkpoint": None}
    [count] = conn.execute("SELECT count(*) FROM events").fetchone()
    row = conn.execute("SELECT version, occurred_at, payload FROM events WHERE case_id = ? "
                       "ORDER BY version DESC LIMIT 1", (CHECKPOINT_STREAM,)).fetchone()
    newest = None
    if row is not None:
        payload = json.loads(row[2])
        newest = {"number": row[0], "recorded_at": row[1],
                  "merkle_root": payload.get("merkle_root"),
                  "cases": len(payload.get("heads", []))}
    return {"events": count, "checkpoint": newest}


def _remove(path: Path) -> None:
    for leftover in (path, *(path.with_name(path.name + sidecar) for sidecar in _SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
