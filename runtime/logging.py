"""structlog set up once: readable in a terminal, JSON in production (`--log-format json`).

No log line shows a secret: the password of CASES_DATABASE_URL (and the pieces of it a driver
may quote as a host), the secrets the environment holds, and the password of any URL a line
happens to carry are replaced by `***` before it is written.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from eventstore.config import database_url, secrets_in, without_secrets

LogFormat = Literal["console", "json"]

SECRET_VARIABLES = ("TEMPORAL_API_KEY", "CASES_TOKEN", "CASES_OIDC_CLIENT_SECRET",
                    "CASES_SESSION_SECRET")
"""Settings whose whole value is a secret."""


def configure(log_format: LogFormat = "console", level: int = logging.INFO) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _WithoutSecrets(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_to_current_stderr,
        cache_logger_on_first_use=False,
    )


class _WithoutSecrets:
    """Every string of a log event with the secrets known when logging was configured, and the
    password of any URL in it, replaced by `***`."""

    def __init__(self) -> None:
        known = secrets_in(database_url())
        known += [os.environ[name] for name in SECRET_VARIABLES if os.environ.get(name)]
        self.secrets = sorted(set(known), key=len, reverse=True)

    def __call__(self, _logger: Any, _method: str,
                 event: MutableMapping[str, Any]) -> dict[str, Any]:
        return {key: self._scrub(value) for key, value in event.items()}

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return without_secrets(value, self.secrets)
        if isinstance(value, list | tuple):
            return [self._scrub(item) for item in value]
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        return value


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the moment of logging, never to a stream
    captured when logging was configured (which may since have been closed)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _to_current_stderr(*_args: object) -> _CurrentStderr:
    return _CurrentStderr()
