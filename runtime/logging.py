"""structlog set up once: readable in a terminal, JSON in production (`--log-format json`).

No log line shows a secret: the password of CASES_DATABASE_URL (and the pieces of it a driver
may quote as a host), the secrets the environment holds, and the password of any URL a line
happens to carry are replaced by `***` before it is written.

The Temporal SDK's own log lines (the Python `temporalio` loggers, and the Rust core's, which
runtime/telemetry.py forwards to `temporalio.core`) are rendered the same way, in the same
format, WARNING and above, and once per condition (`OncePerCondition`): a server restart costs
a line or two, not one a retry.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
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
    _route_sdk_logs(renderer, level)


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


SDK_LOGGER = "temporalio"
"""The Temporal SDK's loggers: its Python code's, and `temporalio.core`, the Rust core's."""


def _route_sdk_logs(renderer: structlog.typing.Processor, level: int) -> None:
    """Render the records of the `temporalio` loggers through structlog's `renderer`, to
    the current stderr, once per condition; never Python's plain last-resort lines."""
    handler = _SdkLogHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name,
                           structlog.processors.add_log_level,
                           _record_time,
                           _sdk_fields],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    _WithoutSecrets(),
                    renderer]))
    handler.addFilter(OncePerCondition())
    sdk = logging.getLogger(SDK_LOGGER)
    for previous in [h for h in sdk.handlers if isinstance(h, _SdkLogHandler)]:
        sdk.removeHandler(previous)
    sdk.addHandler(handler)
    sdk.setLevel(max(level, logging.WARNING))  # the SDK's INFO lines are its own business
    sdk.propagate = False


class _SdkLogHandler(logging.Handler):
    """Writes each formatted record to whatever `sys.stderr` is at the moment of logging."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def _record_time(_logger: Any, _method: str,
                 event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The record's own time (the core's, for a forwarded line), as structlog's are shown."""
    record = event.get("_record")
    if isinstance(record, logging.LogRecord):
        event["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) \
            + f".{int(record.msecs * 1000):06d}Z"
    return event


def _sdk_fields(_logger: Any, _method: str,
                event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """How many repeats OncePerCondition dropped, and for a forwarded core line its Rust
    target and its fields (the error, say), as keys."""
    record = event.get("_record")
    dropped = getattr(record, "repeats_suppressed", None)
    if dropped:
        event["repeats_suppressed"] = dropped
    core = getattr(record, "temporal_log", None)
    if core is not None:
        event["target"] = str(getattr(core, "target", ""))
        fields = getattr(core, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                event.setdefault(str(key), value)
    return event


_NUMBERS = re.compile(r"\d+")


class OncePerCondition(logging.Filter):
    """Lets a repeated condition through once, then drops its repeats.

    A condition is a record's logger, its core target (for a forwarded core line) and its
    message template (`record.msg`, its numbers masked: "gRPC call poll_workflow_task_queue
    retried 6 times" and "… 7 times" are one condition). Its first record passes; its
    repeats are dropped until either a record of a different source (another logger or core
    target) is let through, which ends every suppression, or `window` seconds have passed
    since the condition last passed. The record that then passes carries `repeats_suppressed`,
    how many were dropped meanwhile. Different conditions of one source (the retry warnings of
    the workflow and the activity pollers, say) are each let through once.

    So while a Temporal server restarts, the Python client's retry warnings (about two a
    second per poller) cost a line a poller a minute instead of a line a retry.
    """

    def __init__(self, window: float = 60.0, remember: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.remember = remember
        self.clock = clock
        self._last_source: tuple[str, str] | None = None
        self._passed: OrderedDict[tuple[str, str, str], tuple[float, int]] = OrderedDict()
        """Condition → (when it last passed, repeats dropped since)."""

    def filter(self, record: logging.LogRecord) -> bool:
        core = getattr(record, "temporal_log", None)
        source = (record.name, str(getattr(core, "target", "")) if core is not None else "")
        condition = (*source, _NUMBERS.sub("#", str(record.msg)))
        now = self.clock()
        if source != self._last_source:  # something else happened: all may show again
            self._passed = OrderedDict((key, (-math.inf, dropped))
                                       for key, (_, dropped) in self._passed.items())
        seen = self._passed.get(condition)
        if seen is not None and now - seen[0] < self.window:
            self._passed[condition] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.repeats_suppressed = seen[1]
        self._passed[condition] = (now, 0)
        self._passed.move_to_end(condition)
        while len(self._passed) > self.remember:
            self._passed.popitem(last=False)
        self._last_source = source
        return True
