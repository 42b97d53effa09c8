"""The store's three PostgreSQL roles: the owner that migrates, the application, the auditor.

The database, not only our code, should refuse what a role must never do: the application
(the worker and the API) may add events and read, and cannot change or remove a row, nor
drop the triggers that refuse it; the auditor may only read. See docs/database-roles.md.

`read_catalogue` reads what the schema holds now, `role_statements` turns that into SQL
(pure: the same catalogue gives the same statements), and `apply_roles` runs them in one
transaction. Running it again changes nothing: roles are created only when missing, and each
role's privileges on the store's tables are revoked and granted afresh, so they end up exactly
as stated here whatever they were before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql

from eventstore.schema import metadata

DEFAULT_SCHEMA = "public"

APPEND_ONLY_TABLES = ("events", "outbox", "api_tokens")
"""The application INSERTs and SELECTs here, and nothing else: a case's history and the
notifications written with it are only ever added to, and so are the tokens the API issues
at sign-in (revoking one is the owner's: an UPDATE).

"""

APP_READ_ONLY_TABLES = ("councils", "peer_pools", "peers", "peer_personal", "peer_erasures",
                        "alembic_version", "users", "contact_imports", "contacts")
"""The application reads these and never writes them: reference data is imported, peers'
personal data erased, users managed, and migrations run, by the owner. (`users` and
`api_tokens` are granted when they exist.) `alembic_version` lets the worker's start-up
migration see that the schema is current and do nothing."""

APP_WORKING_TABLES = ("deliveries",)
"""The application reads, adds and updates rows here, and deletes none: the relay's record of
each notice's delivery (claimed, retried, sent), which is operational state beside the
history, not part of it."""

APP_READ_MODEL_TABLES = ("projections", "case_summaries", "council_summaries", "case_figures")
"""The application reads and writes these freely, DELETE included: the read models are derived
from the events and rebuilt from nothing (`cases projections rebuild`), never the record."""

STORE_TABLES = tuple(dict.fromkeys((*APPEND_ONLY_TABLES, *APP_READ_ONLY_TABLES,
                                    *APP_WORKING_TABLES, *APP_READ_MODEL_TABLES,
                                    *sorted(metadata.tables))))
"""Every table of the store: the owner takes them over and the auditor reads them all. Other
tables in the schema (a shared `public`) are left alone."""

ROLES_LOCK_KEY = 0x726F6C65
"""PostgreSQL advisory lock key ("role") held while the roles are set: two runs at once would
both see a role missing and both create it."""

_RESERVED_ROLE_NAMES = {"public", "none", "current_role", "current_user", "session_user"}
_MAX_NAME_BYTES = 63
_QUOTE = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]
"""PostgreSQL's quoting: a plain name stays plain in the printed SQL, any other is quoted."""


class RoleProblem(ValueError):
    """The roles cannot be set as asked; nothing was changed."""


@dataclass(frozen=True)
class Roles:
    """The three roles' names."""

    owner: str = "cases_owner"
    app: str = "cases_app"
    auditor: str = "cases_auditor"


@dataclass(frozen=True)
class ExistingRole:
    name: str
    superuser: bool
    bypasses_row_security: bool
    member_of_owner: bool


@dataclass(frozen=True)
class TriggerFunction:
    signature: str
    """schema.name(arguments), quoted as SQL needs."""
    owner: str


@dataclass(frozen=True)
class Catalogue:
    """What the schema holds now, as far as the roles are concerned."""

    schema: str
    schema_owner: str
    database_owner: str
    roles: dict[str, ExistingRole]
    """Those of the three roles that exist already, by name."""
    table_owners: dict[str, str]
    """The store's tables that exist, and who owns each."""
    sequences: dict[str, tuple[str, ...]]
    """Each table's own sequences (serial and identity columns), schema-qualified and quoted."""
    trigger_functions: tuple[TriggerFunction, ...]
    """The functions the store's triggers call (the append-only refusals)."""


def check_names(schema: str, roles: Roles) -> None:
    """Refuse names PostgreSQL would refuse, or that would make two roles one."""
    names = (roles.owner, roles.app, roles.auditor)
    if len(set(names)) != 3:
        raise RoleProblem(f"the owner, application and auditor roles must be three different "
                          f"roles, not {', '.join(names)}")
    for kind, name in (("schema", schema), ("owner", roles.owner), ("app", roles.app),
                       ("auditor", roles.auditor)):
        if not name or len(name.encode()) > _MAX_NAME_BYTES or "\x00" in name:
            raise RoleProblem(f"{kind} name {name!r}: 1 to {_MAX_NAME_BYTES} bytes")
        if name.startswith("pg_"):
            raise RoleProblem(f"{kind} name {name!r}: names starting pg_ are PostgreSQL's own")
        if kind != "schema" and name.lower() in _RESERVED_ROLE_NAMES:
            raise RoleProblem(f"{kind} name {name!r} is reserved by PostgreSQL")


def read_catalogue(conn: Connection, schema: str, roles: Roles) -> Catalogue:
    """The roles, tables, sequences and trigger functions `role_statements` works from."""
    owners = conn.execute(sa.text(
        "SELECT pg_get_userbyid(n.nspowner) AS schema_owner, pg_get_userbyid(d.datdba) "
        "  AS database_owner FROM pg_namespace n, pg_database d "
        "WHERE n.nspname = :schema AND d.datname = current_database()"),
        {"schema": schema}).first()
    if owners is None:
        raise RoleProblem(f"schema {schema!r} does not exist in this database")
    names = [roles.owner, roles.app, roles.auditor]
    existing = {
        row.rolname: ExistingRole(
            name=row.rolname, superuser=row.rolsuper, bypasses_row_security=row.rolbypassrls,
            member_of_owner=bool(row.member_of_owner))
        for row in conn.execute(sa.text(
            "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "
            "  CASE WHEN o.oid IS NOT NULL AND r.rolname <> o.rolname "
            "       THEN pg_has_role(r.oid, o.oid, 'MEMBER') END AS member_of_owner "
            "FROM pg_roles r LEFT JOIN pg_roles o ON o.rolname = :owner "
            "WHERE r.rolname = ANY(:names)"), {"names": names, "owner": roles.owner})}
    tables: dict[str, str] = dict(conn.execute(sa.text(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND c.relname = ANY(:tables)"),
        {"schema": schema, "tables": list(STORE_TABLES)}).all())
    sequences: dict[str, list[str]] = {}
    for table, sequence_schema, sequence in conn.execute(sa.text(
            "SELECT t.relname, sn.nspname, s.relname FROM pg_class s "
            "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
            "JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid "
            "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE s.relkind = 'S' AND n.nspname = :schema AND t.relname = ANY(:tables) "
            "ORDER BY t.relname, s.relname"),
            {"schema": schema, "tables": list(tables)}):
        sequences.setdefault(table, []).append(_qualified(sequence_schema, sequence))
    functions = tuple(
        TriggerFunction(f"{_qualified(schema, name)}({arguments})", owner)
        for name, arguments, owner in conn.execute(sa.text(
            "SELECT DISTINCT p.proname, pg_get_function_identity_arguments(p.oid), "
            "  pg_get_userbyid(p.proowner) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND n.nspname = :schema AND c.relname = ANY(:tables) "
            "  AND p.pronamespace = n.oid ORDER BY 1"),
            {"schema": schema, "tables": list(tables)}))
    return Catalogue(schema=schema, schema_owner=owners.schema_owner,
                     database_owner=owners.database_owner, roles=existing, table_owners=tables,
                     sequences={t: tuple(s) for t, s in sequences.items()},
                     trigger_functions=functions)


def check_roles(catalogue: Catalogue, roles: Roles) -> None:
    """Refuse to hand out an application or auditor role that could do more than stated: a
    superuser passes every check, a member of the owner acts as the owner, and the owner of
    the schema (or of the database, which owns `public`) may drop any table in it."""
    for name in (roles.app, roles.auditor):
        role = catalogue.roles.get(name)
        if role is None:
            continue
        if role.superuser:
            raise RoleProblem(f"role {name} is a superuser, so no grant can limit it: choose "
                              f"another name, or ALTER ROLE {name} NOSUPERUSER first")
        if role.bypasses_row_security:
            raise RoleProblem(f"role {name} has BYPASSRLS: choose another name, or ALTER ROLE "
                              f"{name} NOBYPASSRLS first")
        if role.member_of_owner:
            raise RoleProblem(f"role {name} is a member of the owner {roles.owner}, so it may "
                              f"do whatever the owner may: choose another name, or REVOKE "
                              f"{roles.owner} FROM {name} first")
        for what, owner in (("schema " + catalogue.schema, catalogue.schema_owner),
                            ("database", catalogue.database_owner)):
            if owner == name:
                raise RoleProblem(f"role {name} owns the {what}, so it could drop the store's "
                                  f"tables: choose another name, or ALTER … OWNER TO "
                                  f"{roles.owner} first")


def role_statements(catalogue: Catalogue, roles: Roles) -> list[str]:
    """The SQL that makes the three roles so, from what the schema holds now."""
    schema = _QUOTE.quote(catalogue.schema)
    owner, app, auditor = (_QUOTE.quote(r) for r in (roles.owner, roles.app, roles.auditor))
    statements = [f"CREATE ROLE {_QUOTE.quote(name)} LOGIN"
                  for name in (roles.owner, roles.app, roles.auditor)
                  if name not in catalogue.roles]
    statements += [
        f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {owner}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
        f"REVOKE ALL ON SCHEMA {schema} FROM {app}, {auditor}",
        f"GRANT USAGE ON SCHEMA {schema} TO {app}, {auditor}",
    ]
    tables = [t for t in STORE_TABLES if t in catalogue.table_owners]
    statements += [f"ALTER TABLE {_qualified(catalogue.schema, t)} OWNER TO {owner}"
                   for t in tables if catalogue.table_owners[t] != roles.owner]
    statements += [f"ALTER FUNCTION {f.signature} OWNER TO {owner}"
                   for f in catalogue.trigger_functions if f.owner != roles.owner]
    if tables:
        statements.append(f"REVOKE ALL ON TABLE {_listed(catalogue.schema, tables)} "
                          f"FROM {app}, {auditor}")
        appended = [t for t in APPEND_ONLY_TABLES if t in catalogue.table_owners]
        if appended:
            statements.append(f"GRANT SELECT, INSERT ON TABLE "
                              f"{_listed(catalogue.schema, appended)} TO {app}")
        working = [t for t in APP_WORKING_TABLES if t in catalogue.table_owners]
        if working:
            statements.append(f"GRANT SELECT, INSERT, UPDATE ON TABLE "
                              f"{_listed(catalogue.schema, working)} TO {app}")
        derived = [t for t in APP_READ_MODEL_TABLES if t in catalogue.table_owners]
        if derived:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "
                              f"{_listed(catalogue.schema, derived)} TO {app}")
        read = [t for t in APP_READ_ONLY_TABLES if t in catalogue.table_owners]
        if read:
            statements.append(f"GRANT SELECT ON TABLE {_listed(catalogue.schema, read)} "
                              f"TO {app}")
        statements.append(f"GRANT SELECT ON TABLE {_listed(catalogue.schema, tables)} "
                          f"TO {auditor}")
    every_sequence = [s for t in tables for s in catalogue.sequences.get(t, ())]
    if every_sequence:
        statements.append(f"REVOKE ALL ON SEQUENCE {', '.join(every_sequence)} "
                          f"FROM {app}, {auditor}")
    appended_sequences = [s for t in APPEND_ONLY_TABLES for s in catalogue.sequences.get(t, ())]
    if appended_sequences:
        statements.append(f"GRANT USAGE ON SEQUENCE {', '.join(appended_sequences)} TO {app}")
    statements.append(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
                      f"GRANT SELECT ON TABLES TO {app}, {auditor}")
    return statements


def plan_roles(engine: Engine, schema: str = DEFAULT_SCHEMA,
               roles: Roles | None = None) -> tuple[Catalogue, list[str]]:
    """What `apply_roles` would run, reading the database and changing nothing."""
    roles = roles or Roles()
    check_names(schema, roles)
    _check_postgresql(engine)
    with engine.connect() as conn:
        catalogue = read_catalogue(conn, schema, roles)
    check_roles(catalogue, roles)
    return catalogue, role_statements(catalogue, roles)


def apply_roles(engine: Engine, schema: str = DEFAULT_SCHEMA,
                roles: Roles | None = None) -> tuple[Catalogue, list[str]]:
    """Create the roles if missing and set their privileges, all in one transaction; returns
    what the schema held before and the statements run. Run it as a superuser: creating
    roles, taking over tables and granting on a schema it does not own need one."""
    roles = roles or Roles()
    check_names(schema, roles)
    _check_postgresql(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ROLES_LOCK_KEY})")
        catalogue = read_catalogue(conn, schema, roles)
        check_roles(catalogue, roles)
        statements = role_statements(catalogue, roles)
        for statement in statements:
            conn.exec_driver_sql(statement)
    return catalogue, statements


def _check_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise RoleProblem("database roles are a PostgreSQL feature; on SQLite the store's "
                          "protection is the database file's permissions")


def _qualified(schema: str, name: str) -> str:
    return f"{_QUOTE.quote(schema)}.{_QUOTE.quote(name)}"


def _listed(schema: str, tables: Iterable[str]) -> str:
    return ", ".join(_qualified(schema, t) for t in tables)


def application_url(url: sa.URL, schema: str, roles: Roles) -> str:
    """The URL the worker and the API use: this database, as the application role, with no
    password shown (set one with ALTER ROLE, or rely on peer or certificate authentication)."""
    query = dict(url.query)
    if schema != DEFAULT_SCHEMA:
        query["options"] = f"-csearch_path={schema}"
    app_url = sa.URL.create(url.drivername, username=roles.app, host=url.host, port=url.port,
                            database=url.database, query=query)
    return app_url.render_as_string(hide_password=True)


def grants_summary(roles: Roles) -> Sequence[str]:
    """What each role may do, in words, for the command's output."""
    return (
        f"{roles.owner}: owns the store's tables; runs migrations, imports councils and "
        f"peer pools, manages users",
        f"{roles.app}: SELECT and INSERT on {', '.join(APPEND_ONLY_TABLES)}; SELECT on "
        f"{', '.join(APP_READ_ONLY_TABLES)}; SELECT, INSERT and UPDATE on "
        f"{', '.join(APP_WORKING_TABLES)}; SELECT, INSERT, UPDATE and DELETE on the read "
        f"models ({', '.join(APP_READ_MODEL_TABLES)}); nothing else (the worker and the API)",
        f"{roles.auditor}: SELECT on every table of the store; nothing else",
    )
