"""Backup and restore of the store, as docs/operations.md tells an operator to do them, and
the proof that a restore worked: the restored store verifies against the last checkpoint
taken before the backup.

Each test builds a store of several cases, records a signed checkpoint (what the worker's
activity does), backs the store up, lets the live store move on (more events, a newer
checkpoint), restores the backup somewhere new and checks it with the real commands:
`cases verify --against-checkpoint` and `cases verify --anchor FILE --public-key KEY.pub`
pass for the checkpoint before the backup, the newer checkpoint is reported gone, and one
payload changed by SQL in the restored store fails both checks.

SQLite: `cases db backup PATH` (the sqlite3 backup API). PostgreSQL: `pg_dump
--format=custom` as the owner, and into a fresh database `cases db roles`, `pg_restore` as
the owner, `cases db roles` again; then verification as the auditor.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from activities.contracts import CheckpointRequest
from activities.store_activities import StoreActivities
from domain.checkpoints import merkle_root
from eventstore import EventStore, open_store
from eventstore.checkpoint_files import generate_key_pair, read_checkpoint_file
from eventstore.checkpoints import current_heads, load_checkpoint, statement_of
from eventstore.db_roles import Roles
from tests.conftest import POSTGRES_URL, need_postgres
from tests.support import T0, new_event, run_cli

CASES = {"cpc-E06000001-2026": 5, "cpc-E08000025-2026": 3, "fin-E09000008-2026": 2}
TAMPERED = ("cpc-E08000025-2026", 2)


@dataclass
class Published:
    """Where the worker publishes signed checkpoints, and the auditor's public key."""

    directory: Path
    public_key: Path


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Published:
    key = tmp_path / "keys" / "checkpoints.key"
    public_key, _ = generate_key_pair(key)
    directory = tmp_path / "published"
    monkeypatch.setenv("CASES_SIGNING_KEY", str(key))
    monkeypatch.setenv("CASES_CHECKPOINT_DIR", str(directory))
    return Published(directory, public_key)


def fill(store: EventStore) -> None:
    for case_id, count in CASES.items():
        store.append(case_id, 0, [new_event(case_id, n) for n in range(1, count + 1)])


def move_on(store: EventStore) -> None:
    """What the live store does after the backup: more events, a case that is new."""
    store.append("cpc-E06000001-2026", 5, [new_event("cpc-E06000001-2026", 6)])
    store.append("cpc-E06000047-2026", 0, [new_event("cpc-E06000047-2026", 1)])


def record_checkpoint(store: EventStore) -> Path:
    """What the worker's checkpoint activity does (the hourly schedule, `cases checkpoint
    now`): record every case's head and publish the signed file."""
    summary = StoreActivities(store).record_checkpoint(
        CheckpointRequest(event_id=str(uuid.uuid4()), at=T0))
    assert summary.path is not None
    return Path(summary.path)


def verify(monkeypatch: pytest.MonkeyPatch, url: str, *options: str) -> int:
    monkeypatch.setenv("CASES_DATABASE_URL", url)
    return run_cli(["verify", *options, "--no-temporal"])


def check_restored(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   url: str, restored: EventStore, before: Path, after: Path,
                   public_key: Path) -> None:
    """The proof of a restore: the restored store holds exactly what checkpoint `before` (the
    last before the backup) vouched for, verifies intact against it, and lacks `after`."""
    statement, _, _ = read_checkpoint_file(before)
    newest = load_checkpoint(restored)
    assert newest is not None and statement_of(newest) == statement
    heads, _ = current_heads(restored)
    assert [head.model_dump() for head in heads] == statement["heads"]
    assert merkle_root(heads) == statement["merkle_root"]

    capsys.readouterr()
    assert verify(monkeypatch, url, "--against-checkpoint") == 0
    assert verify(monkeypatch, url, "--anchor", str(before), "--public-key", str(public_key)) == 0
    said = capsys.readouterr().out
    assert f"intact: {len(CASES) + 1} case(s)" in said
    assert (f"the store extends published checkpoint {statement['number']} "
            f"({statement['recorded_at']}, root {statement['merkle_root']})") in said

    assert verify(monkeypatch, url, "--anchor", str(after), "--public-key", str(public_key)) == 3
    assert f"published checkpoint {statement['number'] + 1} is gone from the store" in (
        capsys.readouterr().out)


def check_tampered(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   url: str, before: Path, public_key: Path) -> None:
    """After one payload of the restored store was changed by SQL, both checks fail and
    name the event."""
    case_id, version = TAMPERED
    capsys.readouterr()
    assert verify(monkeypatch, url, "--against-checkpoint") == 3
    assert verify(monkeypatch, url, "--anchor", str(before), "--public-key", str(public_key)) == 3
    said = capsys.readouterr().out
    assert said.count(f"TAMPERED: case {case_id} version {version}: altered") == 2, said
    assert "the store extends" not in said


# --- SQLite ---------------------------------------------------------------------------------

def test_sqlite_a_restored_backup_verifies_against_the_last_checkpoint_before_it(
        tmp_path: Path, published: Published, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    live_path = tmp_path / "live" / "cases.db"
    live_path.parent.mkdir()
    live_url = f"sqlite:///{live_path}"
    live = open_store(live_url)
    live.migrate()
    fill(live)
    before = record_checkpoint(live)

    backup = tmp_path / "backups" / "cases-2026-03-02.db"
    backup.parent.mkdir()
    monkeypatch.setenv("CASES_DATABASE_URL", live_url)
    capsys.readouterr()
    assert run_cli(["db", "backup", str(backup)]) == 0
    said = capsys.readouterr().out
    assert "its newest checkpoint is 1" in said and "checkpoint-000001.json" in said
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    move_on(live)
    after = record_checkpoint(live)
    live.dispose()

    # The restore: the damaged file (and its -wal, -shm) moved aside, the backup copied back
    # into place the same way, so the copy is whole and private.
    restored_path = tmp_path / "restored" / "cases.db"
    restored_path.parent.mkdir()
    monkeypatch.setenv("CASES_DATABASE_URL", f"sqlite:///{backup}")
    assert run_cli(["db", "backup", str(restored_path)]) == 0
    restored_url = f"sqlite:///{restored_path}"
    restored = open_store(restored_url)
    try:
        check_restored(monkeypatch, capsys, restored_url, restored, before, after,
                       published.public_key)
    finally:
        restored.dispose()

    with sqlite3.connect(restored_path) as db:  # someone with the file: no trigger stops them
        db.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET payload = json_set(payload, '$.n', 99) "
                   "WHERE case_id = ? AND version = ?", TAMPERED)
    db.close()
    check_tampered(monkeypatch, capsys, restored_url, before, published.public_key)


def test_sqlite_backup_is_consistent_while_a_write_is_in_progress(
        sqlite_store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Taken while another connection holds SQLite's write lock mid-transaction: the backup
    finishes, and holds every committed event and nothing of the uncommitted one."""
    fill(sqlite_store)
    live = Path(str(sqlite_store.engine.url.database))
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO events (case_id, version, event_id, type, schema_version, occurred_at, "
        "actor, payload, prev_hash, hash) VALUES ('cpc-E06000001-2026', 6, ?, 'CaseScoped', 1, "
        "'2026-03-02 10:00:00.000000', 'officer:x', '{}', ?, ?)",
        (str(uuid.uuid4()), "0" * 64, "f" * 64))
    backup = tmp_path / "copy.db"
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    try:
        assert run_cli(["db", "backup", "--json", str(backup)]) == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    copy = open_store(f"sqlite:///{backup}")
    try:
        assert [copy.head(case_id)[0] for case_id in CASES] == list(CASES.values())
        assert verify(monkeypatch, f"sqlite:///{backup}") == 0
    finally:
        copy.dispose()


def test_sqlite_backup_refuses_to_overwrite_and_to_copy_postgresql(
        sqlite_store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"somebody's file")
    stale = tmp_path / "fresh.db-wal"
    stale.write_bytes(b"a log left by another database")
    capsys.readouterr()
    assert run_cli(["db", "backup", str(taken)]) == 2
    assert run_cli(["db", "backup", str(tmp_path / "fresh.db")]) == 2
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "elsewhere.db")
    assert run_cli(["db", "backup", str(link)]) == 2
    monkeypatch.setenv("CASES_DATABASE_URL", "postgresql://cases_owner@db.example/cases")
    assert run_cli(["db", "backup", str(tmp_path / "pg.db")]) == 2
    said = capsys.readouterr().err
    assert f"{taken} exists: a backup is never written over a file" in said
    assert f"{stale} exists" in said
    assert "not a SQLite store; back up PostgreSQL with `pg_dump --format=custom`" in said
    assert taken.read_bytes() == b"somebody's file"
    assert not (tmp_path / "fresh.db").exists() and not (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "pg.db").exists()


# --- PostgreSQL -----------------------------------------------------------------------------

@dataclass
class Cluster:
    """A PostgreSQL server on which the test makes databases and roles of its own."""

    admin: sa.Engine
    roles: Roles
    databases: list[str]

    def create_database(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)

    def url(self, database: str, role: str | None = None) -> str:
        """The URL of `database`, connecting as the test's superuser and, with `role`, acting
        as that role from the start (so no password or login rule is needed for it)."""
        url = sa.make_url(POSTGRES_URL).set(database=database)
        if role is not None:
            url = url.update_query_dict({"options": f"-crole={role}"})
        return url.render_as_string(hide_password=False)

    def libpq_url(self, database: str) -> str:
        """The same, as pg_dump and pg_restore read it."""
        return (sa.make_url(POSTGRES_URL).set(drivername="postgresql", database=database)
                .render_as_string(hide_password=False))

    def store(self, database: str, role: str) -> EventStore:
        return open_store(self.url(database, role))


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    need_postgres()
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; the procedure needs it", pytrace=False)
    suffix = uuid.uuid4().hex[:8]
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    roles = Roles(owner=f"cases_owner_{suffix}", app=f"cases_app_{suffix}",
                  auditor=f"cases_auditor_{suffix}")
    made = Cluster(admin, roles, [])
    yield made
    with admin.connect() as conn:
        for name in made.databases:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (roles.owner, roles.app, roles.auditor):
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    admin.dispose()


def db_roles(monkeypatch: pytest.MonkeyPatch, cluster: Cluster, database: str) -> None:
    """`cases db roles` as a superuser, with the test's role names."""
    monkeypatch.setenv("CASES_DATABASE_URL", cluster.url(database))
    roles = cluster.roles
    assert run_cli(["db", "roles", "--owner", roles.owner, "--app", roles.app,
                    "--auditor", roles.auditor]) == 0


def run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{command[0]} exited {done.returncode}: {done.stderr}"


@pytest.mark.postgres
def test_postgresql_a_restored_dump_verifies_against_the_last_checkpoint_before_it(
        cluster: Cluster, published: Published, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    roles = cluster.roles
    source = f"cases_live_{roles.owner[-8:]}"
    target = f"cases_restored_{roles.owner[-8:]}"
    # The live database as docs/database-roles.md sets it up: roles, migrated by the owner,
    # written by the application role.
    cluster.create_database(source)
    db_roles(monkeypatch, cluster, source)
    owner = cluster.store(source, roles.owner)
    owner.migrate()
    owner.dispose()
    db_roles(monkeypatch, cluster, source)
    live = cluster.store(source, roles.app)
    try:
        fill(live)
        before = record_checkpoint(live)
        dump = tmp_path / "cases-2026-03-02.dump"
        run("pg_dump", "--format=custom", f"--role={roles.owner}", f"--file={dump}",
            cluster.libpq_url(source))
        move_on(live)
        after = record_checkpoint(live)
    finally:
        live.dispose()

    # The restore, into a new database: roles and schema grants first, the dump restored by
    # the owner (so the owner owns every table and trigger function again), then the grants
    # on the restored tables.
    cluster.create_database(target)
    db_roles(monkeypatch, cluster, target)
    run("pg_restore", f"--role={roles.owner}", "--no-owner", "--no-acl", "--exit-on-error",
        "--single-transaction", f"--dbname={cluster.libpq_url(target)}", str(dump))
    db_roles(monkeypatch, cluster, target)

    restored = cluster.store(target, roles.owner)
    try:
        with restored.engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace"
                " n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                "AND c.relkind IN ('r', 'S')").all() == [(roles.owner,)]
        auditor = cluster.url(target, roles.auditor)
        as_auditor = open_store(auditor)
        with as_auditor.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar_one() == roles.auditor
        as_auditor.dispose()
        check_restored(monkeypatch, capsys, auditor, restored, before, after,
                       published.public_key)
    finally:
        restored.dispose()

    # The restored store takes appends as the application role (grants and sequence back).
    app = cluster.store(target, roles.app)
    try:
        app.append("cpc-E06000047-2026", 0, [new_event("cpc-E06000047-2026", 1)])
    finally:
        app.dispose()
    assert verify(monkeypatch, auditor, "--against-checkpoint") == 0

    # A superuser can skip the append-only trigger; the check still tells.
    case_id, version = TAMPERED
    superuser = sa.create_engine(cluster.url(target))
    try:
        with superuser.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            changed: Any = conn.execute(
                sa.text("UPDATE events SET payload = CAST(:payload AS json) "
                        "WHERE case_id = :case_id AND version = :version"),
                {"payload": json.dumps({"scope": ["finance"], "n": 99}), "case_id": case_id,
                 "version": version})
            assert changed.rowcount == 1
    finally:
        superuser.dispose()
    check_tampered(monkeypatch, capsys, auditor, before, published.public_key)
