"""`cases db roles`: the database itself holds each role to what it may do.

Each test works in a fresh schema, with roles named for the test run, dropped at the end.
The roles are taken with `SET ROLE` on connections opened as the test's superuser, so the
tests need no password and no login rule for the new roles.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from cli import db
from eventstore import EventStore, OutboxMessage, open_store
from eventstore.db_roles import RoleProblem, Roles, apply_roles
from eventstore.deliveries import notices_for_case
from eventstore.verify import verify
from tests.conftest import (
    POSTGRES_URL,
    drop_schema,
    need_postgres,
    postgres_store_in_new_schema,
)
from tests.support import new_event

CASE = "cpc-E09000008-2026"


@dataclass
class Database:
    """A migrated store in a fresh schema, its superuser's engine, and the roles' names."""

    store: EventStore
    schema: str
    roles: Roles
    admin: sa.Engine
    opened: list[EventStore] = field(default_factory=list)

    def as_role(self, role: str) -> EventStore:
        """The store as the worker would open it, but acting as `role`."""
        store = open_store(POSTGRES_URL, connect_args={"options": f"-csearch_path={self.schema}"})
        event.listen(store.engine, "connect", _set_role(role))
        self.opened.append(store)
        return store

    def refusal(self, role: str, sql: str) -> str:
        """What PostgreSQL answers `role` running `sql`; fails the test if it is allowed."""
        with self.as_role(role).engine.connect() as conn:
            try:
                conn.exec_driver_sql(sql)
            except sa.exc.DBAPIError as refused:
                return str(refused.orig)
        raise AssertionError(f"{role} was allowed to run {sql}")

    def run(self, role: str, sql: str) -> list[Any]:
        """Run `sql` as `role` and commit; the rows it returns."""
        with self.as_role(role).engine.begin() as conn:
            result = conn.exec_driver_sql(sql)
            return list(result) if result.returns_rows else []

    def privileges(self) -> list[tuple[Any, ...]]:
        """Owners and access lists of the schema, its tables, sequences and functions, and
        the default privileges: what running the roles again must leave as it was."""
        with self.admin.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(
                "SELECT 'schema', nspname, pg_get_userbyid(nspowner), nspacl::text "
                "  FROM pg_namespace WHERE nspname = :s "
                "UNION ALL SELECT 'relation', c.relname, pg_get_userbyid(c.relowner), "
                "  c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "  WHERE n.nspname = :s AND c.relkind IN ('r', 'S') "
                "UNION ALL SELECT 'function', p.proname, pg_get_userbyid(p.proowner), "
                "  p.proacl::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "  WHERE n.nspname = :s "
                "UNION ALL SELECT 'default', d.defaclobjtype::text, "
                "  pg_get_userbyid(d.defaclrole), d.defaclacl::text FROM pg_default_acl d "
                "  JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = :s "
                "ORDER BY 1, 2"), {"s": self.schema})]


def _set_role(role: str) -> Any:
    def set_role(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {role}")
        dbapi_connection.commit()
    return set_role


def fresh_roles() -> Roles:
    suffix = uuid.uuid4().hex[:8]
    return Roles(owner=f"cases_owner_{suffix}", app=f"cases_app_{suffix}",
                 auditor=f"cases_auditor_{suffix}")


def drop_roles(admin: sa.Engine, roles: Roles) -> None:
    with admin.begin() as conn:
        for role in (roles.owner, roles.app, roles.auditor):
            if conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                            {"r": role}).first() is not None:
                conn.exec_driver_sql(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
                conn.exec_driver_sql(f"DROP OWNED BY {role}")
                conn.exec_driver_sql(f"DROP ROLE {role}")


@pytest.fixture
def database() -> Iterator[Database]:
    store, schema = postgres_store_in_new_schema()
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        # Stand-ins for the user tables that are coming, if their migration is not here yet.
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {schema}.users (id text)")
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {schema}.api_tokens (id text)")
    roles = fresh_roles()
    world = Database(store=store, schema=schema, roles=roles, admin=admin)
    try:
        apply_roles(admin, schema, roles)
        yield world
    finally:
        for opened in world.opened:
            opened.dispose()
        drop_schema(store, schema)
        drop_roles(admin, roles)
        admin.dispose()


# --- the application role: the worker and the API -------------------------------------------

@pytest.mark.postgres
def test_the_application_role_appends_events_and_notifications_and_reads_them(
    database: Database,
) -> None:
    app = database.as_role(database.roles.app)
    app.migrate()  # the worker migrates on start: on a current schema, as the app, a no-op
    first = new_event(CASE, 1)
    app.append(CASE, 0, [first], [OutboxMessage(event_id=first.event_id,
                                                recipient="chief executive",
                                                subject="case opened", body="…")])
    app.append(CASE, 1, [new_event(CASE, 2), new_event(CASE, 3)])
    assert [e.version for e in app.read_case(CASE)] == [1, 2, 3]
    assert verify(app, CASE).ok
    assert [n.subject for n in notices_for_case(app, CASE)] == ["case opened"]
    assert database.run(database.roles.app, "SELECT current_user") == [(database.roles.app,)]


@pytest.mark.postgres
@pytest.mark.parametrize("table, sql", [
    ("events", "UPDATE events SET actor = 'officer:mallory'"),
    ("events", "DELETE FROM events"),
    ("events", "TRUNCATE events"),
    ("outbox", "UPDATE outbox SET body = 'forged'"),
    ("outbox", "DELETE FROM outbox"),
])
def test_the_application_role_may_not_change_or_remove_a_row(
    database: Database, table: str, sql: str
) -> None:
    """Refused for want of the privilege, before the append-only trigger is reached."""
    database.store.append(CASE, 0, [new_event(CASE, 1)])
    assert f"permission denied for table {table}" in database.refusal(database.roles.app, sql)
    assert len(database.store.read_case(CASE)) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("sql, answer", [
    ("DROP TRIGGER events_append_only ON events", "must be owner of relation events"),
    ("DROP TRIGGER events_no_truncate ON events", "must be owner of relation events"),
    ("ALTER TABLE events DISABLE TRIGGER events_append_only", "must be owner of table events"),
    ("DROP TABLE events", "must be owner of table events"),
    ("DROP FUNCTION events_are_append_only() CASCADE",
     "must be owner of function events_are_append_only"),
    ("CREATE TABLE shadow_events (position bigint)", "permission denied for schema"),
    ("CREATE INDEX ix_sneaky ON events (actor)", "must be owner of table events"),
])
def test_the_application_role_cannot_remove_the_triggers_or_change_the_schema(
    database: Database, sql: str, answer: str
) -> None:
    assert answer in database.refusal(database.roles.app, sql)


@pytest.mark.postgres
def test_the_application_role_records_deliveries_and_never_removes_one(
    database: Database
) -> None:
    """The relay (in the worker) claims and records each notice's delivery; the outbox it
    reads stays append-only, and the contacts it reads are the owner's to import."""
    from datetime import UTC, datetime, timedelta

    from eventstore.deliveries import Outcome, claim_due, record_outcomes

    app = database.as_role(database.roles.app)
    first = new_event(CASE, 1)
    app.append(CASE, 0, [first], [OutboxMessage(event_id=first.event_id,
                                                recipient="council_contact",
                                                subject="proposed team", body="…")])
    now = datetime.now(UTC)
    [claimed] = claim_due(app, now=now, lease=timedelta(minutes=1), relay="relay-1")
    assert record_outcomes(app, [(claimed, Outcome(status="sent",
                                                   sent_to=["a@b.example.org"]))],
                           now=now, relay="relay-1") == 1
    assert "permission denied for table deliveries" in database.refusal(
        database.roles.app, "DELETE FROM deliveries")
    for table in ("contacts", "contact_imports"):
        database.run(database.roles.app, f"SELECT * FROM {table}")
        assert f"permission denied for table {table}" in database.refusal(
            database.roles.app, f"DELETE FROM {table}")


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["councils", "peer_pools", "peers", "alembic_version",
                                   "users"])
def test_the_application_role_reads_reference_data_and_users_and_writes_none(
    database: Database, table: str
) -> None:
    """Importing councils and peer pools, managing users and migrating are the owner's."""
    database.run(database.roles.app, f"SELECT * FROM {table}")
    assert f"permission denied for table {table}" in database.refusal(
        database.roles.app, f"INSERT INTO {table} DEFAULT VALUES")
    assert f"permission denied for table {table}" in database.refusal(
        database.roles.app, f"DELETE FROM {table}")


@pytest.mark.postgres
def test_the_application_role_issues_tokens_but_cannot_revoke_or_remove_them(
    database: Database
) -> None:
    """The API records the tokens it issues at sign-in; revoking one is the operator's."""
    assert "permission denied for table api_tokens" in database.refusal(
        database.roles.app, "UPDATE api_tokens SET revoked_at = now()")
    assert "permission denied for table api_tokens" in database.refusal(
        database.roles.app, "DELETE FROM api_tokens")


# --- the auditor --------------------------------------------------------------------------

@pytest.mark.postgres
def test_the_auditor_reads_every_table_and_writes_none(database: Database) -> None:
    database.store.append(CASE, 0, [new_event(CASE, 1)])
    auditor = database.roles.auditor
    for table in ("events", "outbox", "councils", "peer_pools", "peers", "alembic_version",
                  "users", "api_tokens", "contacts", "contact_imports", "deliveries"):
        database.run(auditor, f"SELECT * FROM {table}")
    assert verify(database.as_role(auditor), CASE).ok
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table events"):
        database.as_role(auditor).append(CASE, 1, [new_event(CASE, 2)])
    assert "permission denied for table councils" in database.refusal(
        auditor, "INSERT INTO councils VALUES ('E06000001', '{}', now())")
    assert "permission denied for sequence events_position_seq" in database.refusal(
        auditor, "SELECT nextval('events_position_seq')")
    assert "permission denied for schema" in database.refusal(auditor, "CREATE TABLE notes (x int)")


# --- the owner ----------------------------------------------------------------------------

@pytest.mark.postgres
def test_the_owner_owns_the_store_so_migrations_run_as_the_owner(database: Database) -> None:
    owner = database.roles.owner
    owned = {(kind, name): who for kind, name, who, _ in database.privileges()
             if kind != "default"}
    assert {who for (kind, _), who in owned.items() if kind != "schema"} == {owner}
    assert owned["relation", "events_position_seq"] == owner
    assert owned["function", "events_are_append_only"] == owner
    database.as_role(owner).migrate()


@pytest.mark.postgres
def test_a_table_the_owner_adds_later_is_read_by_the_auditor_and_the_app_only(
    database: Database,
) -> None:
    """The default privileges: a new migration's table is readable at once; writing to it
    needs `cases db roles` to say so, and to be run again."""
    roles = database.roles
    database.run(roles.owner, "CREATE TABLE later_checkpoints (id int)")
    database.run(roles.auditor, "SELECT * FROM later_checkpoints")
    database.run(roles.app, "SELECT * FROM later_checkpoints")
    assert "permission denied for table later_checkpoints" in database.refusal(
        roles.app, "INSERT INTO later_checkpoints VALUES (1)")
    assert "permission denied for table later_checkpoints" in database.refusal(
        roles.auditor, "INSERT INTO later_checkpoints VALUES (1)")


# --- running it -----------------------------------------------------------------------------

@pytest.mark.postgres
def test_on_a_new_database_the_owner_migrates_and_a_second_run_grants_the_new_tables() -> None:
    """The first install: roles on an empty schema, migrations as the owner, roles again."""
    need_postgres()
    schema, roles = f"t_{uuid.uuid4().hex[:12]}", fresh_roles()
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    empty = Database(store=open_store(POSTGRES_URL), schema=schema, roles=roles, admin=admin)
    try:
        catalogue, _ = apply_roles(admin, schema, roles)
        assert catalogue.table_owners == {}
        empty.as_role(roles.owner).migrate()
        assert "permission denied for table events" in empty.refusal(
            roles.app, "INSERT INTO events DEFAULT VALUES")
        apply_roles(admin, schema, roles)
        app = empty.as_role(roles.app)
        app.append(CASE, 0, [new_event(CASE, 1)])
        assert verify(app, CASE).ok
    finally:
        for opened in empty.opened:
            opened.dispose()
        drop_schema(empty.store, schema)
        drop_roles(admin, roles)
        admin.dispose()


@pytest.mark.postgres
def test_running_the_roles_again_changes_nothing(database: Database) -> None:
    before = database.privileges()
    _, statements = apply_roles(database.admin, database.schema, database.roles)
    assert database.privileges() == before
    assert not [s for s in statements if s.startswith(("CREATE ROLE", "ALTER TABLE"))]


@pytest.mark.postgres
def test_running_the_roles_again_takes_back_a_privilege_granted_by_hand(
    database: Database,
) -> None:
    roles = database.roles
    with database.admin.begin() as conn:
        conn.exec_driver_sql(f"GRANT UPDATE, DELETE ON {database.schema}.events TO {roles.app}")
    apply_roles(database.admin, database.schema, roles)
    assert "permission denied for table events" in database.refusal(
        roles.app, "DELETE FROM events")


@pytest.mark.postgres
def test_a_superuser_or_a_member_of_the_owner_is_refused_as_the_app_and_nothing_changes(
    database: Database,
) -> None:
    with database.admin.connect() as conn:
        superuser = conn.exec_driver_sql("SELECT current_user").scalar_one()
    before = database.privileges()
    with pytest.raises(RoleProblem, match="superuser"):
        apply_roles(database.admin, database.schema,
                    Roles(owner=database.roles.owner, app=superuser,
                          auditor=database.roles.auditor))
    with database.admin.begin() as conn:
        conn.exec_driver_sql(f"GRANT {database.roles.owner} TO {database.roles.auditor}")
    with pytest.raises(RoleProblem, match="member of the owner"):
        apply_roles(database.admin, database.schema, database.roles)
    assert database.privileges() == before


# --- the command ----------------------------------------------------------------------------

def cases_db(argv: list[str]) -> int:
    """`cases db …` through its own parser and dispatch, as cli/main.py wires them."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="cases", parents=[common])
    db.add_parsers(parser.add_subparsers(dest="command", required=True), common)
    return db.dispatch(parser.parse_args(argv))


def url_with_a_password() -> tuple[str, str | None]:
    """The test database's URL with a password in it, if the server lets one through (trust
    authentication ignores it), so the test can see that it is never printed."""
    url = make_url(POSTGRES_URL)
    if url.password is not None:
        return POSTGRES_URL, str(url.password)
    candidate = url.set(password="never-printed-7c1f")
    engine = sa.create_engine(candidate)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError:
        return POSTGRES_URL, None
    finally:
        engine.dispose()
    return candidate.render_as_string(hide_password=False), "never-printed-7c1f"


@pytest.mark.postgres
def test_cases_db_roles_prints_then_sets_the_roles_and_a_second_run_is_harmless(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store, schema = postgres_store_in_new_schema()
    roles = fresh_roles()
    admin = sa.create_engine(POSTGRES_URL)
    url, password = url_with_a_password()
    monkeypatch.setenv("CASES_DATABASE_URL", url)
    names = ["--schema", schema, "--owner", roles.owner, "--app", roles.app,
             "--auditor", roles.auditor]
    try:
        assert cases_db(["db", "roles", *names, "--print"]) == 0
        printed = capsys.readouterr().out
        assert f"CREATE ROLE {roles.app} LOGIN;" in printed
        assert (f"GRANT SELECT, INSERT ON TABLE {schema}.events, {schema}.outbox, "
                f"{schema}.api_tokens TO {roles.app};") in printed
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pg_roles WHERE rolname = ANY(:r)"),
                                {"r": [roles.owner, roles.app, roles.auditor]}).scalar_one() == 0
        assert cases_db(["db", "roles", *names]) == 0
        first = capsys.readouterr()
        assert cases_db(["db", "roles", *names]) == 0
        second = capsys.readouterr()
        assert f"CASES_DATABASE_URL={make_url(url).drivername}://{roles.app}@" in first.out
        assert f"search_path%3D{schema}" in first.out
        assert "CREATE ROLE" in first.out and "CREATE ROLE" not in second.out
        if password is not None:
            assert password not in printed + first.out + first.err + second.out + second.err
        with admin.connect() as conn:
            owner = conn.execute(sa.text(
                "SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = 'events'"),
                {"s": schema}).scalar_one()
        assert owner == roles.owner
    finally:
        drop_schema(store, schema)
        drop_roles(admin, roles)
        admin.dispose()


def test_cases_db_roles_refuses_a_name_that_is_not_a_role_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CASES_DATABASE_URL", POSTGRES_URL)
    assert cases_db(["db", "roles", "--app", "public"]) == 2
    assert "reserved" in capsys.readouterr().err


def test_cases_db_roles_on_sqlite_says_roles_are_postgresql_s_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setenv("CASES_DATABASE_URL", f"sqlite:///{tmp_path}/cases.db")
    assert cases_db(["db", "roles"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "PostgreSQL feature" in err and "file's permissions" in err
