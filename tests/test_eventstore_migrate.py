"""Migrating is safe when several processes do it at once on a fresh database.

A worker and a `cases` command started together on a new store both migrate on start; the
second must wait for the first and then find the schema current, not fail with "database is
locked" or "table already exists".
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from eventstore import open_store
from tests.conftest import POSTGRES_URL, need_postgres

PROJECT = Path(__file__).resolve().parents[1]
MIGRATE_AT = """
import sys, time
from eventstore import open_store
store = open_store(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start migrating together
store.migrate()
"""
MIGRATORS = 4


def migrate_together(url: str) -> list[subprocess.CompletedProcess[str]]:
    at = time.time() + 3.0  # after every process has imported
    running = [subprocess.Popen([sys.executable, "-c", MIGRATE_AT, url, str(at)], cwd=PROJECT,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(MIGRATORS)]
    done = []
    for process in running:
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def newest_revision() -> str:
    versions = PROJECT / "eventstore" / "migrations" / "versions"
    return max(path.name.split("_")[0] for path in versions.glob("0*.py"))


def test_processes_migrating_a_fresh_sqlite_store_together_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cases.db"
    for done in migrate_together(url):
        assert done.returncode == 0, done.stderr[-2000:]
    store = open_store(url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == (
            newest_revision())
    assert store.last_position() == 0
    store.dispose()


def test_processes_migrating_a_fresh_postgres_schema_together_all_succeed() -> None:
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        for done in migrate_together(url):
            assert done.returncode == 0, done.stderr[-2000:]
        with admin.connect() as conn:
            assert conn.exec_driver_sql(
                f"SELECT version_num FROM {schema}.alembic_version").scalar_one() == (
                newest_revision())
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def test_a_fresh_sqlite_store_opens_while_another_connection_holds_its_write_lock(
        tmp_path: Path) -> None:
    """A migrator's BEGIN IMMEDIATE on a database still in rollback mode makes SQLite refuse
    the switch to WAL at once, busy timeout or not: opening the store waits for the lock
    instead of failing with "database is locked"."""
    path = tmp_path / "cases.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, holder.execute, ["COMMIT"])
    release.start()
    store = open_store(f"sqlite:///{path}")
    try:
        started = time.monotonic()
        with store.engine.connect() as conn:
            waited = time.monotonic() - started
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert waited >= 0.3  # it did wait for the holder, rather than find no lock
    finally:
        release.join()
        holder.close()
        store.dispose()
