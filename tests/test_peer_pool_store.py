"""Peer pools in the store: versions never edited, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.councils import BUILT_IN_COUNCILS
from domain.peer_register import pool_digest
from domain.peers import Peer, synthetic_pool
from eventstore import EventStore, open_store
from eventstore.peers import (
    PoolAltered,
    UnknownPool,
    current_pool_version,
    import_pool,
    load_pool,
    pool_version,
    pool_versions,
)
from eventstore.schema import peer_pools, peers
from tests.conftest import drop_schema, postgres_store_in_new_schema

AS_OF = date(2026, 6, 1)


def pool(seed: int, size: int = 120) -> list[Peer]:
    return synthetic_pool(list(BUILT_IN_COUNCILS.values()), size, seed, as_of=AS_OF,
                          challenge_managers=4)


def rows(store: EventStore) -> tuple[int, int]:
    with store.engine.connect() as conn:
        pools = conn.execute(sa.select(sa.func.count()).select_from(peer_pools)).scalar_one()
        stored = conn.execute(sa.select(sa.func.count()).select_from(peers)).scalar_one()
    return int(pools), int(stored)


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
        assert version.digest == pool_digest(first) and version.source == "pool-1.csv"
        assert version.imported_at.tzinfo is not None
        assert load_pool(store, 1) == sorted(first, key=lambda p: p.peer_id)
        assert current_pool_version(store) == pool_version(store, 1)
        assert pool_version(store, 1).new is False

    def test_the_same_pool_again_writes_nothing(self, store: EventStore) -> None:
        first = import_pool(store, pool(1), "pool-1.csv")
        before = rows(store)
        again = import_pool(store, sorted(pool(1), key=lambda p: p.name), "copy-of-pool-1.csv")
        assert again.new is False
        assert (again.version, again.digest, again.source) == (1, first.digest, "pool-1.csv")
        assert rows(store) == before == (1, 124)

    def test_a_new_pool_is_a_new_version_and_the_old_one_still_loads_exactly(
            self, store: EventStore) -> None:
        import_pool(store, pool(1), "pool-1.csv")
        changed = [*pool(1)[:-1], pool(1)[-1].model_copy(update={"days_served_last_3_years": 9})]
        second = import_pool(store, changed, "pool-2.csv")
        assert (second.version, second.new) == (2, True)
        assert current_pool_version(store) == pool_version(store, 2)
        assert load_pool(store, 1) == sorted(pool(1), key=lambda p: p.peer_id)
        assert load_pool(store, 2) == sorted(changed, key=lambda p: p.peer_id)
        assert [v.digest for v in pool_versions(store)] == [pool_digest(pool(1)),
                                                            pool_digest(changed)]

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

    def test_a_pool_altered_behind_the_stores_back_does_not_load(
            self, store: EventStore) -> None:
        import_pool(store, pool(1), "a.csv")
        self.without_guards(store, "UPDATE peers SET data = '{\"peer_id\": \"P000\"}' "
                                   "WHERE peer_id = 'P000'")
        with pytest.raises(PoolAltered, match="version 1 was imported with digest"):
            load_pool(store, 1)

    def test_5000_peers_import_and_load_whole(self, store: EventStore) -> None:
        large = pool(4, size=5000)
        version = import_pool(store, large, "large.csv")
        assert version.peer_count == 5004
        assert load_pool(store, version.version) == sorted(large, key=lambda p: p.peer_id)

    def without_guards(self, store: EventStore, sql: str) -> None:
        raise NotImplementedError


class TestSqlitePeerPool(PeerPoolContract):
    @pytest.fixture
    def store(self, sqlite_store: EventStore) -> EventStore:
        return sqlite_store

    def without_guards(self, store: EventStore, sql: str) -> None:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER peers_no_update")
            conn.exec_driver_sql(sql)


@pytest.mark.postgres
class TestPostgresPeerPool(PeerPoolContract):
    @pytest.fixture
    def store(self) -> Iterator[EventStore]:
        store, schema = postgres_store_in_new_schema()
        yield store
        drop_schema(store, schema)

    def without_guards(self, store: EventStore, sql: str) -> None:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE peers DISABLE TRIGGER peers_append_only")
            conn.exec_driver_sql(sql)


def test_before_migration_there_is_no_pool_and_nothing_is_created(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/fresh.db")
    try:
        assert current_pool_version(store) is None
        assert pool_versions(store) == []
        with pytest.raises(UnknownPool):
            load_pool(store, 1)
        assert not sa.inspect(store.engine).has_table("peer_pools")
    finally:
        store.dispose()
