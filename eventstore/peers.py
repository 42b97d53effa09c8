"""The peer pool in the database: whole versions, never edited, so a past selection can be
re-run on the very pool it used (named by its version and its digest)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from domain.peer_register import pool_digest, pool_digest_of_json
from domain.peers import Peer
from eventstore.errors import StoreError
from eventstore.records import as_utc
from eventstore.schema import peer_pools, peers
from eventstore.store import EventStore

_NOT_MIGRATED = (sa.exc.OperationalError, sa.exc.ProgrammingError)
"""What reading a table that does not exist yet raises; read commands never migrate."""


@dataclass(frozen=True)
class PoolVersion:
    """One imported pool: its version (1, 2, 3 …), what it holds and where it came from."""

    version: int
    digest: str
    """`domain.peer_register.pool_digest` of its peers."""
    peer_count: int
    source: str
    """The file it was imported from, or how it was made (`demo pool as of …`)."""
    imported_at: datetime
    new: bool = False
    """True only in `import_pool`'s answer, when this import made the version."""


class UnknownPool(StoreError):
    """No pool has this version."""

    def __init__(self, version: int, newest: int | None) -> None:
        known = f"the newest is {newest}" if newest else "no pool has been imported yet"
        super().__init__(f"no peer pool version {version} ({known}); `cases peers pools` "
                         "lists them")
        self.version = version


class PoolAltered(StoreError):
    """A stored pool no longer has the digest it was imported with."""

    def __init__(self, version: int, recorded: str, found: str) -> None:
        super().__init__(f"peer pool version {version} was imported with digest {recorded} "
                         f"but now holds {found}: its rows were altered after import")
        self.version = version


def import_pool(store: EventStore, imported: Iterable[Peer], source: str) -> PoolVersion:
    """Store these peers as a new pool version, all in one transaction.

    If the newest pool already holds exactly these peers (same digest), nothing is written
    and that version is returned (`new` False): importing a file twice is harmless.
    Raises ValueError if a peer id appears twice. The store must be migrated."""
    pool = sorted(imported, key=lambda peer: peer.peer_id)
    for before, after in itertools.pairwise(pool):
        if before.peer_id == after.peer_id:
            raise ValueError(f"peer {before.peer_id} appears twice in the pool")
    digest = pool_digest(pool)
    # One import at a time, so the newest version is the one last committed and two imports
    # of the same file make one version.
    with store.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, \
            conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE peer_pools IN EXCLUSIVE MODE")
        newest = conn.execute(_newest()).first()
        if newest is not None and newest.digest == digest:
            return _version(newest)
        imported_at = datetime.now(UTC)
        version = conn.execute(
            peer_pools.insert().returning(peer_pools.c.version),
            {"digest": digest, "source": source, "peer_count": len(pool),
             "imported_at": imported_at}).scalar_one()
        if pool:
            conn.execute(peers.insert(), [
                {"pool_version": version, "peer_id": peer.peer_id,
                 "data": peer.model_dump(mode="json")} for peer in pool])
    return PoolVersion(version=version, digest=digest, peer_count=len(pool), source=source,
                       imported_at=imported_at, new=True)


def current_pool_version(store: EventStore) -> PoolVersion | None:
    """The pool in use (the newest version), or None when none has been imported."""
    try:
        with store.engine.connect() as conn:
            newest = conn.execute(_newest()).first()
    except _NOT_MIGRATED:
        return None
    return None if newest is None else _version(newest)


def pool_version(store: EventStore, version: int) -> PoolVersion:
    """What version `version` holds; raises UnknownPool if there is none."""
    try:
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(peer_pools)
                               .where(peer_pools.c.version == version)).first()
    except _NOT_MIGRATED:
        row = None
    if row is None:
        newest = current_pool_version(store)
        raise UnknownPool(version, newest.version if newest else None)
    return _version(row)


def pool_versions(store: EventStore) -> list[PoolVersion]:
    """Every imported pool, oldest first; empty before the first import."""
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(peer_pools).order_by(peer_pools.c.version)).all()
    except _NOT_MIGRATED:
        return []
    return [_version(row) for row in rows]


def load_pool(store: EventStore, version: int) -> list[Peer]:
    """The peers of pool `version`, sorted by peer id, exactly as they were imported.

    Raises UnknownPool if there is no such version, and PoolAltered if its stored rows no
    longer match the digest recorded at import."""
    recorded = pool_version(store, version)
    with store.engine.connect() as conn:
        data = [row.data for row in conn.execute(
            sa.select(peers.c.data).where(peers.c.pool_version == version))]
    found = pool_digest_of_json(data)
    if found != recorded.digest:
        raise PoolAltered(version, recorded.digest, found)
    pool = [Peer.model_validate(item) for item in data]
    return sorted(pool, key=lambda peer: peer.peer_id)


def _newest() -> sa.Select[tuple[int, str, str, int, datetime]]:
    return sa.select(peer_pools).order_by(peer_pools.c.version.desc()).limit(1)


def _version(row: sa.Row[tuple[int, str, str, int, datetime]]) -> PoolVersion:
    return PoolVersion(version=row.version, digest=row.digest, peer_count=row.peer_count,
                       source=row.source, imported_at=as_utc(row.imported_at))
