"""Checking a pooled connection before use only when it has been idle: what `pool_pre_ping`
does on every checkout, a round trip each, costs a page that reads six things six round
trips more. A connection checked in less than `idle_seconds` ago was working then; one idle
longer (across a database restart, a firewall's timeout) is pinged first, and replaced if
the ping fails. A connection that breaks within the window fails its statement once, as a
transient error ("try again"), and SQLAlchemy then discards the pool's other connections."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

IDLE_SECONDS = 1.0


def ping_when_idle(engine: sa.Engine, idle_seconds: float = IDLE_SECONDS) -> None:
    """Install the check on `engine`, whose pool must not also pre-ping every checkout."""

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is not None and time.monotonic() - since < idle_seconds:
            return
        record.info["pings"] = record.info.get("pings", 0) + 1
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as failure:  # any DBAPI error: this connection is not usable
            raise sa.exc.DisconnectionError(f"stale connection: {failure}") from failure
