"""Peer pools in the store: versions never edited, personal data held apart and erasable, on
SQLite and on PostgreSQL; and pools imported before sealing (migration 0006) sealed by it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from domain.councils import BUILT_IN_COUNCILS
from domain.peer_register import pool_digest, sealed_pool_digest
from domain.peers import ERASED_NAME, Peer, PeerKind, synthetic_pool
from eventstore import EventStore, open_store
from eventstore.migrate import MIGRATIONS
from eventstore.peers import (
    NothingToErase,
    PoolAltered,
    UnknownPool,
    current_pool_version,
    erase_peer,
    erasure_mark,
    erasures,
    import_pool,
    load_pool,
    pool_version,
    pool_versions,
)
from eventstore.schema import peer_erasures, peer_personal, peer_pools, peers
from tests.conftest import (
    POSTGRES_URL,
    drop_schema,
    new_postgres_schema,
    postgres_store_in_new_schema,
)

AS_OF = date(2026, 6, 1)


def pool(seed: int, size: int = 120) -> list[Peer]:
    return synthetic_pool(list(BUILT_IN_COUNCILS.values()), size, seed, as_of=AS_OF,
                          challenge_managers=4)


def rows(store: EventStore) -> tuple[int, int]:
    with store.engine.connect() as conn:
        pools = conn.execute(sa.select(sa.func.count()).select_from(peer_pools)).scalar_one()
        stored = conn.execute(sa.select(sa.func.count()).select_from(peers)).scalar_one()
    return int(pools), int(stored)


def sealed_rows(store: EventStore, version: int) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r.data) for r in conn.execute(
            sa.select(peers.c.data).where(peers.c.pool_version == version))]


def a_councillor(peers_: list[Peer]) -> Peer:
    return next(p for p in peers_ if p.kind == PeerKind.COUNCILLOR and p.declared_interests)


class PeerPoolContract:
    """Every backend's test class inherits this and provides `store`."""

    @pytest.fixture
    def store(self) -> Iterator[EventStore]:
        raise NotImplementedError

    def test_an_import_makes_version_1_and_loads_back_sorted(self, store: EventStore) -> None:
        assert current_pool_version(store) is None and pool_versions(store) == []
        first = pool(1)
        version = import_pool(store, reversed(first), "pool-1.csv")
        assert (version.version, version.new, version.peer_count) == (1, True, 124)
        assert version.digest == sealed_pool_digest(sealed_rows(store, 1))
        assert version.source == "pool-1.csv" and version.imported_at.tzinfo is not None
        assert load_pool(store, 1) == sorted(first, key=lambda p: p.peer_id)
        assert current_pool_version(store) == pool_version(store, 1)
        assert pool_version(store, 1).new is False

    def test_the_pool_rows_hold_no_personal_data_only_its_salted_hash(
            self, store: EventStore) -> None:
        first = pool(1)
        import_pool(store, first, "pool-1.csv")
        text = json.dumps(sealed_rows(store, 1), ensure_ascii=False)
        assert all(row.keys().isdisjoint({"name", "political_group", "declared_interests"})
                   and len(row["personal_sha256"]) == 64 for row in sealed_rows(store, 1))
        assert not any(p.name in text for p in first)
        assert '"labour"' not in text and '"conservative"' not in text
        # the same peers imported into a fresh store seal to other hashes: fresh salts
        assert pool_digest(first) != pool_version(store, 1).digest

    def test_the_same_pool_again_writes_nothing(self, store: EventStore) -> None:
        first = import_pool(store, pool(1), "pool-1.csv")
        before = rows(store)
        again = import_pool(store, sorted(pool(1), key=lambda p: p.name), "copy-of-pool-1.csv")
        assert again.new is False
        assert (again.version, again.digest, again.source) == (1, first.digest, "pool-1.csv")
        assert rows(store) == before == (1, 124)

    def test_a_new_pool_is_a_new_version_and_the_old_one_still_loads_exactly(
            self, store: EventStore) -> None:
        first = import_pool(store, pool(1), "pool-1.csv")
        changed = [*pool(1)[:-1], pool(1)[-1].model_copy(update={"days_served_last_3_years": 9})]
        second = import_pool(store, changed, "pool-2.csv")
        assert (second.version, second.new) == (2, True)
        assert current_pool_version(store) == pool_version(store, 2)
        assert load_pool(store, 1) == sorted(pool(1), key=lambda p: p.peer_id)
        assert load_pool(store, 2) == sorted(changed, key=lambda p: p.peer_id)
        assert [v.digest for v in pool_versions(store)] == [first.digest, second.digest]

    def test_going_back_to_an_older_pool_makes_it_current_as_a_new_version(
            self, store: EventStore) -> None:
        import_pool(store, pool(1), "a.csv")
        import_pool(store, pool(2), "b.csv")
        back = import_pool(store, pool(1), "a.csv")
        assert (back.version, back.new) == (3, True)
        assert [v.version for v in pool_versions(store)] == [1, 2, 3]
        assert load_pool(store, 3) == load_pool(store, 1)

    def test_an_unknown_version_is_refused_by_name(self, store: EventStore) -> None:
        with pytest.raises(UnknownPool, match="no pool has been imported yet"):
            load_pool(store, 1)
        import_pool(store, pool(1), "a.csv")
        with pytest.raises(UnknownPool, match=r"no peer pool version 5 \(the newest is 1\)"):
            load_pool(store, 5)

    def test_a_peer_id_twice_is_refused(self, store: EventStore) -> None:
        twice = pool(1)
        with pytest.raises(ValueError, match="appears twice"):
            import_pool(store, [*twice, twice[0]], "twice.csv")
        assert rows(store) == (0, 0)

    def test_a_pool_cannot_be_edited_in_place(self, store: EventStore) -> None:
        import_pool(store, pool(1), "a.csv")
        for statement in (peers.update().values(data={}), peers.delete(),
                          peer_pools.update().values(source="x"), peer_pools.delete()):
            with pytest.raises(sa.exc.DBAPIError, match="never edited"), \
                    store.engine.begin() as conn:
                conn.execute(statement)
        assert rows(store) == (1, 124)

    def test_personal_data_is_never_edited_and_never_deleted_without_a_record(
            self, store: EventStore) -> None:
        """The attack: an owner quietly rewrites a peer's group, or deletes someone's data
        without it showing as an erasure. The first is refused outright; the second unless an
        erasure is recorded first, as `cases peers erase` does."""
        import_pool(store, pool(1), "a.csv")
        with pytest.raises(sa.exc.DBAPIError, match="never edited, only erased"), \
                store.engine.begin() as conn:
            conn.execute(peer_personal.update().values(data={}))
        with pytest.raises(sa.exc.DBAPIError, match="only with a record of the erasure"), \
                store.engine.begin() as conn:
            conn.execute(peer_personal.delete().where(peer_personal.c.peer_id == "P000"))
        erase_peer(store, "P000", "request 1", pool=1)
        for statement in (peer_erasures.update().values(reason="x"), peer_erasures.delete()):
            with pytest.raises(sa.exc.DBAPIError, match="never edited"), \
                    store.engine.begin() as conn:
                conn.execute(statement)
        assert [e.peer_id for e in erasures(store)] == ["P000"]

    def test_a_pool_altered_behind_the_stores_back_does_not_load(
            self, store: EventStore) -> None:
        import_pool(store, pool(1), "a.csv")
        self.without_guards(store, "peers", "UPDATE peers SET data = '{\"peer_id\": \"P000\"}' "
                                            "WHERE peer_id = 'P000'")
        with pytest.raises(PoolAltered, match="version 1 was imported with digest"):
            load_pool(store, 1)

    def test_personal_data_altered_behind_the_stores_back_does_not_load(
            self, store: EventStore) -> None:
        """The attack: someone with the database rewrites a councillor's political group."""
        peers_ = pool(1)
        councillor = a_councillor(peers_)
        import_pool(store, peers_, "a.csv")
        with store.engine.connect() as conn:
            data = dict(conn.execute(sa.select(peer_personal.c.data).where(
                peer_personal.c.peer_id == councillor.peer_id)).scalar_one())
        data["political_group"] = "made_up"
        self.without_guards(store, "peer_personal",
                            f"UPDATE peer_personal SET data = '{json.dumps(data)}' "
                            f"WHERE peer_id = '{councillor.peer_id}'")
        with pytest.raises(PoolAltered, match=f"personal data of peer {councillor.peer_id} "
                                              "does not match the salted hash"):
            load_pool(store, 1)

    def test_erasure_removes_the_personal_data_and_every_digest_still_verifies(
            self, store: EventStore) -> None:
        peers_ = pool(1)
        councillor = a_councillor(peers_)
        first = import_pool(store, peers_, "a.csv")
        changed = [*peers_[:-1], peers_[-1].model_copy(update={"days_served_last_3_years": 9})]
        second = import_pool(store, changed, "b.csv")
        mark = erasure_mark(store)

        done = erase_peer(store, councillor.peer_id, "erasure request 2026-17", pool=None)
        assert [e.pool_version for e in done] == [1, 2]
        assert erasure_mark(store) > mark
        for version in (first, second):
            loaded = {p.peer_id: p for p in load_pool(store, version.version)}  # verifies
            assert loaded[councillor.peer_id] == councillor.without_personal_data()
            assert loaded[councillor.peer_id].name == ERASED_NAME
            assert sum(p.erased for p in loaded.values()) == 1
            assert sealed_pool_digest(sealed_rows(store, version.version)) == version.digest
        with store.engine.connect() as conn:
            held = conn.execute(sa.select(sa.func.count()).select_from(peer_personal).where(
                peer_personal.c.peer_id == councillor.peer_id)).scalar_one()
        assert held == 0, "the data and its salt are gone, so the hash tests no guess"
        assert [(e.pool_version, e.reason) for e in erasures(store, councillor.peer_id)] == [
            (1, "erasure request 2026-17"), (2, "erasure request 2026-17")]
        with pytest.raises(NothingToErase, match="erased already"):
            erase_peer(store, councillor.peer_id, "again")
        with pytest.raises(NothingToErase):
            erase_peer(store, "nobody", "typo")
        with pytest.raises(UnknownPool):
            erase_peer(store, "P001", "no such pool", pool=9)

    def test_erasure_from_one_pool_version_leaves_the_others(self, store: EventStore) -> None:
        peers_ = pool(1)
        import_pool(store, peers_, "a.csv")
        import_pool(store, pool(2), "b.csv")
        erase_peer(store, "P003", "request", pool=2)
        assert not next(p for p in load_pool(store, 1) if p.peer_id == "P003").erased
        assert next(p for p in load_pool(store, 2) if p.peer_id == "P003").erased

    def test_importing_an_erased_peers_row_again_is_a_new_version(
            self, store: EventStore) -> None:
        """The file still holding them brings their data back: take them out of it too."""
        import_pool(store, pool(1), "a.csv")
        erase_peer(store, "P003", "request", pool=1)
        again = import_pool(store, pool(1), "a.csv")
        assert (again.version, again.new) == (2, True)
        without = [p for p in pool(1) if p.peer_id != "P003"]
        assert import_pool(store, without, "a-without-P003.csv").version == 3

    def test_5000_peers_import_and_load_whole(self, store: EventStore) -> None:
        large = pool(4, size=5000)
        version = import_pool(store, large, "large.csv")
        assert version.peer_count == 5004
        assert load_pool(store, version.version) == sorted(large, key=lambda p: p.peer_id)

    def without_guards(self, store: EventStore, table: str, sql: str) -> None:
        raise NotImplementedError


class TestSqlitePeerPool(PeerPoolContract):
    @pytest.fixture
    def store(self, sqlite_store: EventStore) -> EventStore:
        return sqlite_store

    def without_guards(self, store: EventStore, table: str, sql: str) -> None:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
            conn.exec_driver_sql(sql)


@pytest.mark.postgres
class TestPostgresPeerPool(PeerPoolContract):
    @pytest.fixture
    def store(self) -> Iterator[EventStore]:
        store, schema = postgres_store_in_new_schema()
        yield store
        drop_schema(store, schema)

    def without_guards(self, store: EventStore, table: str, sql: str) -> None:
        trigger = "peers_append_only" if table == "peers" else f"{table}_no_update"
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
            conn.exec_driver_sql(sql)


def test_before_migration_there_is_no_pool_and_nothing_is_created(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/fresh.db")
    try:
        assert current_pool_version(store) is None
        assert pool_versions(store) == []
        with pytest.raises(UnknownPool):
            load_pool(store, 1)
        assert not sa.inspect(store.engine).has_table("peer_pools")
        assert erasures(store) == [] and erasure_mark(store) == 0
    finally:
        store.dispose()


# --- pools imported before sealing ---------------------------------------------------------


def migrated_to(url: str, revision: str, **options: Any) -> EventStore:
    store = open_store(url, **options)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return store


def import_as_before_sealing(store: EventStore, peers_: list[Peer], digest: str) -> None:
    """What `import_pool` wrote under migration 0005: each peer whole, the pool's digest."""
    with store.engine.begin() as conn:
        conn.execute(sa.table("peer_pools", sa.column("digest"), sa.column("source"),
                              sa.column("peer_count"), sa.column("imported_at")).insert(),
                     {"digest": digest, "source": "old.csv", "peer_count": len(peers_),
                      "imported_at": datetime(2026, 1, 5, tzinfo=UTC)})
        conn.execute(peers.insert(), [{"pool_version": 1, "peer_id": p.peer_id,
                                       "data": p.model_dump(mode="json")} for p in peers_])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def before_sealing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """A store migrated only to 0005, before pools were sealed."""
    if request.param == "sqlite":
        store = migrated_to(f"sqlite:///{tmp_path}/old.db", "0005")
        yield store
        store.dispose()
        return
    schema = new_postgres_schema()
    store = migrated_to(POSTGRES_URL, "0005",
                        connect_args={"options": f"-csearch_path={schema}"})
    yield store
    drop_schema(store, schema)


def test_a_pool_imported_before_sealing_is_sealed_keeps_its_digest_and_can_be_erased(
        before_sealing: EventStore) -> None:
    old = pool(3)
    store = before_sealing
    import_as_before_sealing(store, old, pool_digest(old))
    store.migrate()
    version = pool_version(store, 1)
    assert version.digest == pool_digest(old), "selections recorded this digest"
    assert load_pool(store, 1) == sorted(old, key=lambda p: p.peer_id)
    assert all("name" not in row for row in sealed_rows(store, 1))
    councillor = a_councillor(old)
    erase_peer(store, councillor.peer_id, "request", pool=1)
    assert next(p for p in load_pool(store, 1) if p.peer_id == councillor.peer_id).erased
    assert pool_version(store, 1).digest == pool_digest(old)
    with pytest.raises(sa.exc.DBAPIError, match="never edited"), \
            store.engine.begin() as conn:  # the guards lifted for sealing are back
        conn.execute(peers.delete())


def test_a_pool_altered_before_sealing_still_does_not_load(before_sealing: EventStore) -> None:
    """The attack: rewrite a pool row under 0005, hoping sealing launders it."""
    store = before_sealing
    import_as_before_sealing(store, pool(3), pool_digest(pool(4)))
    store.migrate()
    with pytest.raises(PoolAltered, match=r"did not match its digest .* when it was sealed"):
        load_pool(store, 1)
