"""Users: who may sign in, with which role, and proving it on every request.

API tokens are random (256 bits), shown once, and kept only as their SHA-256: a stolen
database gives no working token. Local accounts' passwords are kept as argon2 hashes. Every
comparison of a secret is constant-time; an unknown user costs the same as a wrong password.
Revocation is read on every request, so it takes effect on the next one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.actors import NotAnActor, Principal, Role, principal_for
from eventstore import EventStore
from eventstore.users import (
    UserExists,
    UserRow,
    find_user,
    insert_token,
    insert_user,
    list_users,
    revoke_user,
    set_password_hash,
    user_for_token,
)

TOKEN_PREFIX = "cases_"
_HASHER = PasswordHasher()
_DUMMY_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$"
               "qL9Wd1H1b+2xD0yVc7J4m9H7cG3fYkq6i8mQ1rT0dV8")
"""Verified against when the user is unknown, so that costs what a wrong password costs.
(A constant rather than hashed at import: hashing takes ~0.4 s, on every command.)"""
MIN_PASSWORD_LENGTH = 8


class NotSignedIn(Exception):
    """No valid credentials: missing, wrong, or revoked. Says which, never whose."""


class UserRefused(ValueError):
    """A user could not be created or changed as asked; nothing was changed."""


@dataclass(frozen=True)
class User:
    """A signed-in user: the principal the rules reason about, and how they signed in."""

    principal: Principal
    signed_in_by: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def actor(self) -> str:
        return self.principal.actor


@dataclass(frozen=True)
class UserSummary:
    name: str
    role: str
    council: str | None
    created_at: datetime
    revoked: bool
    live_tokens: int
    has_password: bool


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _principal(row: UserRow) -> Principal:
    return principal_for(Role(row.role), row.name, row.council)


def add_user(store: EventStore, name: str, role: Role, council: str | None = None,
             password: str | None = None) -> str:
    """Create a user and their first API token; returns the token (shown once, kept hashed)."""
    if role == Role.SYSTEM:
        raise UserRefused("system: actors are the engine's own; no user can be one")
    try:
        principal = principal_for(role, name, council)
    except NotAnActor as bad:
        raise UserRefused(str(bad)) from None
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise UserRefused(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    token = new_token()
    now = datetime.now(UTC)
    row = UserRow(name=principal.name, role=role.value, council=principal.council,
                  password_hash=_HASHER.hash(password) if password is not None else None,
                  created_at=now, revoked_at=None)
    try:
        insert_user(store, row, token_hash(token), now)
    except UserExists as taken:
        raise UserRefused(str(taken)) from None
    return token


def set_password(store: EventStore, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserRefused(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if not set_password_hash(store, name, _HASHER.hash(password)):
        raise UserRefused(f"no user named {name}")


def revoke(store: EventStore, name: str) -> None:
    """Revoke a user and all their tokens: refused from their next request on."""
    if not revoke_user(store, name, datetime.now(UTC)):
        raise UserRefused(f"no user named {name}")


def users(store: EventStore) -> list[UserSummary]:
    return [UserSummary(name=row.name, role=row.role, council=row.council,
                        created_at=row.created_at, revoked=row.revoked_at is not None,
                        live_tokens=live, has_password=row.password_hash is not None)
            for row, live in list_users(store)]


def user_for_api_token(store: EventStore, token: str) -> User:
    """The user a bearer token belongs to; NotSignedIn if it is unknown or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise NotSignedIn("not signed in: that is not an API token of this engine")
    wanted = token_hash(token)
    found = user_for_token(store, wanted)
    if found is None or not hmac.compare_digest(found[1], wanted):
        raise NotSignedIn("not signed in: the API token is not known (sign in again)")
    row, _, token_revoked = found
    if token_revoked or row.revoked_at is not None:
        raise NotSignedIn("not signed in: the API token has been revoked")
    return User(principal=_principal(row), signed_in_by="token")


def user_named(store: EventStore, name: str, signed_in_by: str) -> User:
    """A user already signed in (by a session): still there and not revoked?"""
    row = find_user(store, name)
    if row is None or row.revoked_at is not None:
        raise NotSignedIn("not signed in: the account is revoked or no longer exists")
    return User(principal=_principal(row), signed_in_by=signed_in_by)


def check_password(store: EventStore, name: str, password: str) -> User:
    """A local account's sign-in. The same work and the same answer whether the name is
    unknown, the password wrong or the account revoked."""
    row = find_user(store, name) if len(name) <= 120 else None
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    matched: bool
    try:
        matched = _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        matched = False
    if not matched or row is None or row.password_hash is None or row.revoked_at is not None:
        raise NotSignedIn("not signed in: wrong name or password")
    return User(principal=_principal(row), signed_in_by="password")


def issue_token(store: EventStore, user: User, label: str) -> str:
    """A new API token for a user who has just signed in (what `cases login` keeps)."""
    token = new_token()
    insert_token(store, user.name, token_hash(token), datetime.now(UTC), label[:200])
    return token


DEMO_PASSWORD = "demo-password"
"""The local password of the demo users that `cases dev` and `cases demo` create: for trying
the engine out, never for a real deployment."""

DEMO_USERS: tuple[tuple[str, Role, str | None], ...] = (
    ("demo-officer", Role.CASE_OFFICER, None),
    ("demo-adviser", Role.LGA_ADVISER, None),
    ("demo-auditor", Role.AUDITOR, None),
    ("contact-E09000008", Role.COUNCIL, "E09000008"),
    ("contact-E08000025", Role.COUNCIL, "E08000025"),
    ("contact-E06000001", Role.COUNCIL, "E06000001"),
)
"""An officer, an adviser (the second pair of eyes), an auditor, and a contact at each of
the demo's councils (Croydon, Birmingham, Hartlepool)."""


def ensure_demo_users(store: EventStore) -> list[tuple[str, Role, str | None]]:
    """Create the demo users that are missing (each with DEMO_PASSWORD); returns them all."""
    for name, role, council in DEMO_USERS:
        if find_user(store, name) is None:
            add_user(store, name, role, council, password=DEMO_PASSWORD)
    return list(DEMO_USERS)
