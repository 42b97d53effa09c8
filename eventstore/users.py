"""Users and API tokens in the database. Rows only: hashing and the rules live in
application/users.py. Managed by the operator (the owner role); the API only reads them and
records the tokens it issues at sign-in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from eventstore.schema import api_tokens, users
from eventstore.store import EventStore


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    council: str | None
    password_hash: str | None
    created_at: datetime
    revoked_at: datetime | None


class UserExists(ValueError):
    pass


def insert_user(store: EventStore, row: UserRow, token_hash: str | None, at: datetime) -> None:
    """A new user (and their first token) in one transaction; UserExists if the name is taken."""
    with store.engine.begin() as conn:
        taken = conn.execute(sa.select(users.c.name).where(users.c.name == row.name)).first()
        if taken is not None:
            raise UserExists(f"a user named {row.name} already exists")
        conn.execute(users.insert().values(
            name=row.name, role=row.role, council=row.council, password_hash=row.password_hash,
            created_at=row.created_at, revoked_at=None))
        if token_hash is not None:
            conn.execute(api_tokens.insert().values(token_hash=token_hash, user_name=row.name,
                                                    created_at=at, label="created with the user"))


def insert_token(store: EventStore, user_name: str, token_hash: str, at: datetime,
                 label: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(api_tokens.insert().values(token_hash=token_hash, user_name=user_name,
                                                created_at=at, label=label))


def _row(found: Any) -> UserRow:
    return UserRow(name=found[0], role=found[1], council=found[2], password_hash=found[3],
                   created_at=found[4], revoked_at=found[5])


_USER_COLUMNS = (users.c.name, users.c.role, users.c.council, users.c.password_hash,
                 users.c.created_at, users.c.revoked_at)


def find_user(store: EventStore, name: str) -> UserRow | None:
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.name == name)).first()
    return None if found is None else _row(found)


def user_for_token(store: EventStore, token_hash: str) -> tuple[UserRow, str, bool] | None:
    """The user a token hash belongs to, the stored hash, and whether the token is revoked."""
    query = (sa.select(*_USER_COLUMNS, api_tokens.c.token_hash, api_tokens.c.revoked_at)
             .join(api_tokens, api_tokens.c.user_name == users.c.name)
             .where(api_tokens.c.token_hash == token_hash))
    with store.engine.connect() as conn:
        found = conn.execute(query).first()
    if found is None:
        return None
    return _row(found), found[6], found[7] is not None


def list_users(store: EventStore) -> list[tuple[UserRow, int]]:
    """Every user with the number of their live tokens, by name."""
    live = (sa.select(sa.func.count()).where(api_tokens.c.user_name == users.c.name)
            .where(api_tokens.c.revoked_at.is_(None)).scalar_subquery())
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(*_USER_COLUMNS, live).order_by(users.c.name)).all()
    return [(_row(row), int(row[6])) for row in rows]


def revoke_user(store: EventStore, name: str, at: datetime) -> bool:
    """Revoke the user and every token of theirs; False if there is no such user."""
    with store.engine.begin() as conn:
        done = conn.execute(users.update().where(users.c.name == name)
                            .where(users.c.revoked_at.is_(None)).values(revoked_at=at))
        conn.execute(api_tokens.update().where(api_tokens.c.user_name == name)
                     .where(api_tokens.c.revoked_at.is_(None)).values(revoked_at=at))
        exists = conn.execute(sa.select(users.c.name).where(users.c.name == name)).first()
    return done.rowcount > 0 or exists is not None


def set_password_hash(store: EventStore, name: str, password_hash: str) -> bool:
    with store.engine.begin() as conn:
        done = conn.execute(users.update().where(users.c.name == name)
                            .values(password_hash=password_hash))
    return done.rowcount > 0
