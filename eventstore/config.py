"""Where the store lives: one setting, CASES_DATABASE_URL."""

from __future__ import annotations

import os

DEFAULT_DATABASE_URL = "sqlite:///cases.db"


def database_url() -> str:
    return os.environ.get("CASES_DATABASE_URL", DEFAULT_DATABASE_URL)


def normalise_url(url: str) -> str:
    """Plain `postgresql://` means psycopg 3 here, the only PostgreSQL driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
