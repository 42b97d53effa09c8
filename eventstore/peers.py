"""The peer pool in the database: whole versions, never edited, so a past selection can be
re-run on the very pool it used (named by its version and its digest).

Each peer is stored sealed (see migration 0006 and docs/data-protection.md): the pool row holds
every field the rules read but the personal ones, and a salted hash of those; the personal data
and its salt are a row of `peer_personal`, which `erase_peer` deletes on request. The digests
cover the pool rows alone, so erasure breaks no pool and no selection."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from domain.peer_register import (
    SealBroken,
    personal_data,
    sealed_pool_digest,
    sealed_row,
    unseal,
)
from domain.peers import Peer
from eventstore.errors import StoreError, missing_table
from eventstore.records import as_utc
from eventstore.schema import peer_erasures, peer_personal, peer_pools, peers
from eventstore.store import EventStore

_NOT_MIGRATED = (sa.exc.OperationalError, sa.exc.ProgrammingError)
"""What reading a table that does not exist yet raises; read commands never migrate."""


@dataclass(frozen=True)
class PoolVersion:
    """One imported pool: its version (1, 2, 3 …), what it holds and where it came from."""

    version: int
    digest: str
    """What selections on it record: `domain.peer_register.sealed_pool_digest` of its rows
    (`pool_digest` of its peers, for a pool imported before migration 0006)."""
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
    """A stored pool no longer has the digest it was imported with, or a peer's personal
    data no longer matches the salted hash its row keeps."""

    def __init__(self, version: int, recorded: str, found: str, *,
                 detail: str | None = None) -> None:
        super().__init__(detail or f"peer pool version {version} was imported with digest "
                                   f"{recorded} but now holds {found}: its rows were altered "
                                   "after import")
        self.version = version


class NothingToErase(StoreError):
    """No personal data of this peer is left where erasure was asked for."""


def import_pool(store: EventStore, imported: Iterable[Peer], source: str) -> PoolVersion:
    """Store these peers as a new pool version, sealed, all in one transaction.

    If the newest pool already holds exactly these peers, nothing is written and that version
    is returned (`new` False): importing a file twice is harmless. (A pool whose peer was
    erased since holds them no longer: importing their row again brings their data back as a
    new version, so take an erased peer out of the file too.) Raises ValueError if a peer id
    appears twice. The store must be migrated."""
    pool = sorted(imported, key=lambda peer: peer.peer_id)
    for before, after in itertools.pairwise(pool):
        if before.peer_id == after.peer_id:
            raise ValueError(f"peer {before.peer_id} appears twice in the pool")
    if any(peer.erased for peer in pool):
        raise ValueError("an erased peer cannot be imported: the pool file holds real peers")
    salts = [secrets.token_hex(32) for _ in pool]
    rows = [sealed_row(peer, salt) for peer, salt in zip(pool, salts, strict=True)]
    digest = sealed_pool_digest(rows)
    # One import at a time, so the newest version is the one last committed and two imports
    # of the same file make one version.
    with store.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, \
            conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE peer_pools IN EXCLUSIVE MODE")
        newest = conn.execute(_newest()).first()
        if newest is not None and _holds(conn, newest, pool):
            return _version(newest)
        imported_at = datetime.now(UTC)
        version = conn.execute(
            peer_pools.insert().returning(peer_pools.c.version),
            {"digest": digest, "sealed_digest": digest, "source": source,
             "peer_count": len(pool), "imported_at": imported_at}).scalar_one()
        if pool:
            conn.execute(peers.insert(), [
                {"pool_version": version, "peer_id": row["peer_id"], "data": row}
                for row in rows])
            conn.execute(peer_personal.insert(), [
                {"pool_version": version, "peer_id": peer.peer_id, "salt": salt,
                 "data": personal_data(peer)} for peer, salt in zip(pool, salts, strict=True)])
    return PoolVersion(version=version, digest=digest, peer_count=len(pool), source=source,
                       imported_at=imported_at, new=True)


def _holds(conn: sa.Connection, newest: sa.Row[Any], pool: list[Peer]) -> bool:
    """Whether pool version `newest` holds exactly `pool` (sorted by peer id)."""
    if newest.peer_count != len(pool):
        return False
    try:
        return _load(conn, newest) == pool
    except PoolAltered:
        return False


def current_pool_version(store: EventStore) -> PoolVersion | None:
    """The pool in use (the newest version), or None when none has been imported."""
    try:
        with store.engine.connect() as conn:
            newest = conn.execute(_newest()).first()
    except _NOT_MIGRATED as failure:
        if not missing_table(failure):
            raise
        return None
    return None if newest is None else _version(newest)


def pool_version(store: EventStore, version: int) -> PoolVersion:
    """What version `version` holds; raises UnknownPool if there is none."""
    try:
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(peer_pools)
                               .where(peer_pools.c.version == version)).first()
    except _NOT_MIGRATED as failure:
        if not missing_table(failure):
            raise
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
    except _NOT_MIGRATED as failure:
        if not missing_table(failure):
            raise
        return []
    return [_version(row) for row in rows]


def load_pool(store: EventStore, version: int) -> list[Peer]:
    """The peers of pool `version`, sorted by peer id, as they were imported, except that a
    peer whose personal data was erased comes without it (`Peer.erased`).

    Raises UnknownPool if there is no such version, and PoolAltered if its stored rows no
    longer match the digest recorded at import, or a peer's personal data no longer matches
    the salted hash its row keeps."""
    pool_version(store, version)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(peer_pools).where(peer_pools.c.version == version)).one()
        return _load(conn, row)


def _load(conn: sa.Connection, pool: sa.Row[Any]) -> list[Peer]:
    version = pool.version
    rows = [row.data for row in conn.execute(
        sa.select(peers.c.data).where(peers.c.pool_version == version))]
    if pool.sealed_digest is None:
        raise PoolAltered(version, pool.digest, "", detail=(
            f"peer pool version {version} did not match its digest {pool.digest} when it was "
            "sealed (migration 0006): its rows were altered after import"))
    found = sealed_pool_digest(rows)
    if found != pool.sealed_digest:
        raise PoolAltered(version, pool.sealed_digest, found)
    personal = {row.peer_id: (row.data, row.salt) for row in conn.execute(
        sa.select(peer_personal.c.peer_id, peer_personal.c.data, peer_personal.c.salt)
        .where(peer_personal.c.pool_version == version))}
    loaded: list[Peer] = []
    try:
        for row in rows:
            data, salt = personal.get(str(row["peer_id"]), (None, None))
            loaded.append(unseal(row, data, salt))
    except SealBroken as broken:
        raise PoolAltered(version, pool.sealed_digest, found,
                          detail=f"peer pool version {version}: {broken}") from None
    return sorted(loaded, key=lambda peer: peer.peer_id)


@dataclass(frozen=True)
class Erasure:
    """One pool version's copy of a peer's personal data, erased."""

    pool_version: int
    peer_id: str
    erased_at: datetime
    reason: str


def erase_peer(store: EventStore, peer_id: str, reason: str,
               pool: int | None = None) -> list[Erasure]:
    """Erase `peer_id`'s personal data (name, political group, declared interests, and the
    salt of their hash) from pool version `pool`, or from every version holding it (None),
    recording each erasure with `reason`; all in one transaction. Pool rows, digests and
    events are untouched, so everything still verifies. The owner's to run: the application
    role may not delete. Raises UnknownPool for a version that does not exist and
    NothingToErase when no such data is left there."""
    if pool is not None:
        pool_version(store, pool)
    erased_at = datetime.now(UTC)
    with store.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, \
            conn.begin():
        chosen = sa.select(peer_personal.c.pool_version).where(
            peer_personal.c.peer_id == peer_id)
        if pool is not None:
            chosen = chosen.where(peer_personal.c.pool_version == pool)
        versions = list(conn.execute(chosen.order_by(peer_personal.c.pool_version)).scalars())
        if not versions:
            where = f"pool version {pool}" if pool is not None else "any pool version"
            raise NothingToErase(f"no personal data of peer {peer_id} is held in {where} "
                                 "(never imported, or erased already): `cases peers list` "
                                 "shows who is held")
        done = [Erasure(version, peer_id, erased_at, reason) for version in versions]
        conn.execute(peer_erasures.insert(), [
            {"pool_version": e.pool_version, "peer_id": peer_id, "erased_at": erased_at,
             "reason": reason} for e in done])
        conn.execute(peer_personal.delete().where(peer_personal.c.peer_id == peer_id)
                     .where(peer_personal.c.pool_version.in_(versions)))
    return done


def erasures(store: EventStore, peer_id: str | None = None) -> list[Erasure]:
    """The record of erasures (of one peer, or all), oldest first; empty before migration."""
    query = sa.select(peer_erasures).order_by(peer_erasures.c.id)
    if peer_id is not None:
        query = query.where(peer_erasures.c.peer_id == peer_id)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(query).all()
    except _NOT_MIGRATED as failure:
        if not missing_table(failure):
            raise
        return []
    return [Erasure(row.pool_version, row.peer_id, as_utc(row.erased_at), row.reason)
            for row in rows]


def erasure_mark(store: EventStore) -> int:
    """A number that grows with every erasure (0 before any): a cache of loaded pools keyed by
    it never serves personal data erased since it was loaded."""
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(peer_erasures.c.id),
                                                               0))).scalar_one())
    except _NOT_MIGRATED as failure:
        if not missing_table(failure):
            raise
        return 0


def _newest() -> sa.Select[Any]:
    return sa.select(peer_pools).order_by(peer_pools.c.version.desc()).limit(1)


def _version(row: sa.Row[Any]) -> PoolVersion:
    return PoolVersion(version=row.version, digest=row.digest, peer_count=row.peer_count,
                       source=row.source, imported_at=as_utc(row.imported_at))
