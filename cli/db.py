"""`cases db roles|upgrade|current`: a PostgreSQL database's three roles; migrations, as the owner.

See docs/database-roles.md. Every URL printed here hides its password.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from cli import backup
from cli.output import EXIT_BAD_INPUT, emit
from eventstore import open_store
from eventstore.config import database_url, failure_said, normalise_url
from eventstore.db_roles import (
    DEFAULT_SCHEMA,
    RoleProblem,
    Roles,
    application_url,
    apply_roles,
    grants_summary,
    plan_roles,
)

_DEFAULTS = Roles()


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    db = sub.add_parser("db", parents=[common],
                        help="set up the database: its three PostgreSQL roles, its migrations")
    what = db.add_subparsers(dest="db_command", required=True, metavar="WHAT")
    roles = what.add_parser(
        "roles", parents=[common],
        help="create the owner, application and auditor roles and set their privileges "
             "(PostgreSQL; run as a superuser; safe to run again)")
    roles.add_argument("--schema", default=DEFAULT_SCHEMA,
                       help=f"the store's schema (default {DEFAULT_SCHEMA})")
    roles.add_argument("--owner", default=_DEFAULTS.owner,
                       help=f"the role that owns the tables and migrates (default "
                            f"{_DEFAULTS.owner})")
    roles.add_argument("--app", default=_DEFAULTS.app,
                       help=f"the worker's and the API's role: SELECT and INSERT only "
                            f"(default {_DEFAULTS.app})")
    roles.add_argument("--auditor", default=_DEFAULTS.auditor,
                       help=f"the auditors' role: SELECT only (default {_DEFAULTS.auditor})")
    roles.add_argument("--print", dest="print_only", action="store_true",
                       help="print the SQL for this database without running it")
    what.add_parser("upgrade", parents=[common], aliases=["migrate"],
                    help="bring the schema to the newest migration (run as the owner; safe "
                         "to run again); workers and the API never migrate by themselves")
    backup.add_parser(what, common)
    what.add_parser("current", parents=[common],
                    help="the migration the store is at, and the newest this version has; "
                         "exit 0 when they are the same, 1 when an upgrade is due")


def dispatch(args: argparse.Namespace) -> int:
    """Exit 0 done; 2 refused (SQLite, a bad name, a role that could do too much), nothing
    changed; 1 the database failed (unreachable, permission denied), nothing changed."""
    if args.db_command == "backup":
        return backup.run(args)
    url = sa.make_url(database_url())
    shown = url.render_as_string(hide_password=True)
    try:
        if args.db_command in ("upgrade", "migrate"):
            return _migrate(args, shown)
        if args.db_command == "current":
            return _current(args, shown)
        return _roles(args, url, shown)
    except RoleProblem as refused:
        print(f"cases: db {args.db_command}: {refused}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SQLAlchemyError as failure:
        print(f"cases: db {args.db_command}: {shown}: {failure_said(failure)}; nothing was "
              "changed",
              file=sys.stderr)
        return 1


def _roles(args: argparse.Namespace, url: sa.URL, shown: str) -> int:
    target = sa.make_url(normalise_url(url.render_as_string(hide_password=False)))
    if target.get_backend_name() != "postgresql":
        raise RoleProblem("database roles are a PostgreSQL feature; on SQLite the store's "
                          "protection is the database file's permissions")
    roles = Roles(owner=args.owner, app=args.app, auditor=args.auditor)
    engine = sa.create_engine(target)
    try:
        if args.print_only:
            catalogue, statements = plan_roles(engine, args.schema, roles)
        else:
            catalogue, statements = apply_roles(engine, args.schema, roles)
    finally:
        engine.dispose()
    sql = "\n".join(f"{statement};" for statement in statements)
    app_url = application_url(url, args.schema, roles)
    data = {"database": shown, "schema": args.schema, "owner": roles.owner, "app": roles.app,
            "auditor": roles.auditor, "applied": not args.print_only,
            "statements": statements, "application_url": app_url}
    if args.print_only:
        emit(args, data, f"-- cases db roles for schema {args.schema} of {shown}, as it "
                         f"stands now (nothing was run)\n{sql}")
        return 0
    missing = "" if "events" in catalogue.table_owners else (
        f"\nThe store is not migrated yet: migrate as {roles.owner} (`cases db migrate`), "
        f"then run `cases db roles` again to grant on the new tables.")
    emit(args, data,
         f"Roles set on schema {args.schema} of {shown}:\n"
         + "".join(f"  {line}\n" for line in grants_summary(roles))
         + f"Ran, in one transaction:\n{sql}\n"
         f"Set passwords with ALTER ROLE … PASSWORD (none are set here). Run the worker and "
         f"the API with\n  CASES_DATABASE_URL={app_url}\nand migrations as {roles.owner}."
         + missing)
    return 0


def _current(args: argparse.Namespace, shown: str) -> int:
    store = open_store()
    try:
        found = store.schema_status()
    finally:
        store.dispose()
    data = {"database": shown, "current": found.current, "newest": found.newest,
            "at_newest_migration": found.is_newest}
    if found.is_newest:
        said = f"{shown}: at migration {found.current}, the newest"
    elif found.current is None:
        said = f"{shown}: no tables yet (newest migration {found.newest}): run `cases db upgrade`"
    elif not found.known:
        said = (f"{shown}: at migration {found.current}, which this version does not know (its "
                f"newest is {found.newest}): a newer version of the engine migrated it")
    else:
        said = (f"{shown}: at migration {found.current}; the newest is {found.newest}: run "
                "`cases db upgrade`")
    emit(args, data, said)
    return 0 if found.is_newest else 1


def _migrate(args: argparse.Namespace, shown: str) -> int:
    store = open_store()
    try:
        before = store.schema_status().current
        store.migrate()
        after = store.schema_status().current
        with store.engine.connect() as conn:
            who = (conn.exec_driver_sql("SELECT current_user").scalar_one()
                   if conn.dialect.name == "postgresql" else None)
    finally:
        store.dispose()
    emit(args, {"database": shown, "at_newest_migration": True, "as": who, "from": before,
                "to": after},
         f"{shown}: the schema is at the newest migration, {after}"
         + (f" (upgraded from {before or 'nothing'})" if before != after else " (unchanged)")
         + (f" (connected as {who})" if who else ""))
    return 0
