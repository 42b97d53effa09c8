"""`cases serve`'s pool checks a connection before use only when it has been idle
(eventstore/pool_ping.py): a connection back within the window is used without a round trip;
one idle longer is pinged, and one that broke meanwhile is replaced, not handed out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from eventstore.pool_ping import ping_when_idle
from tests.conftest import POSTGRES_URL


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0.5)
    yield engine
    engine.dispose()


def _pings(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        pings: int = conn.connection._connection_record.info.get("pings", 0)
        conn.execute(sa.text("SELECT 1"))
    return pings


def test_a_connection_back_within_the_window_is_not_pinged(engine: sa.Engine) -> None:
    first = _pings(engine)  # a new connection: checked once
    for _ in range(5):
        assert _pings(engine) == first
    time.sleep(0.6)
    assert _pings(engine) == first + 1


def test_a_connection_that_died_while_idle_is_replaced(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    with sa.create_engine(POSTGRES_URL).connect() as admin:  # as a database restart would
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    time.sleep(0.6)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
