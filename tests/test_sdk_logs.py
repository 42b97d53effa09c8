"""The Temporal SDK's own log lines (its Python loggers' and the Rust core's, forwarded by the
process's runtime) go through structlog, in the chosen format, once per condition."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli.dev_server import dev_server_command, stop
from eventstore import open_store
from runtime import logging as case_logging
from runtime.logging import OncePerCondition
from runtime.telemetry import CORE_LOGGER

BIN = Path(sys.executable).parent
RETRY = "gRPC call {call} retried {n} times"


def core_record(message: str, target: str = "temporalio_client::retry",
                level: int = logging.WARNING) -> logging.LogRecord:
    """A record as the runtime's log forwarding makes one (runtime/telemetry.py's settings:
    the bare message, the core's entry in `temporal_log`)."""
    record = logging.getLogger(CORE_LOGGER).makeRecord(
        CORE_LOGGER, level, "(sdk-core)", 0, message, (), None,
        extra={"temporal_log": SimpleNamespace(
            target=target, fields={"error": 'Status { code: Unavailable, message: "tcp '
                                            'connect error" }'})})
    return record


@pytest.fixture
def json_logs() -> Iterator[None]:
    case_logging.configure("json")
    yield
    case_logging.configure("console")


def test_a_retried_call_is_logged_once_not_once_a_retry(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Promise: 140 retry warnings of two pollers (the restart in the issue) are two lines,
    JSON like every other line, naming the core's target and its error."""
    core = logging.getLogger(CORE_LOGGER)
    for n in range(70):
        for call in ("poll_workflow_task_queue", "poll_activity_task_queue"):
            core.handle(core_record(RETRY.format(call=call, n=n + 6)))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    shown = [json.loads(line) for line in lines]
    assert [s["event"] for s in shown] == [RETRY.format(call="poll_workflow_task_queue", n=6),
                                          RETRY.format(call="poll_activity_task_queue", n=6)]
    for line in shown:
        assert line["level"] == "warning" and line["logger"] == CORE_LOGGER
        assert line["target"] == "temporalio_client::retry"
        assert "tcp connect error" in line["error"]
        assert line["timestamp"].endswith("Z")


def test_the_sdks_python_loggers_render_through_structlog_too(
    capsys: pytest.CaptureFixture[str]
) -> None:
    case_logging.configure("console")
    logging.getLogger("temporalio.worker._workflow").warning(
        "Failed activation on workflow %s with ID %s", "ImprovementCase", "improvement-case-x")
    logging.getLogger("temporalio.worker._worker").info("Beginning worker shutdown")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines  # the SDK's INFO lines are its own business
    assert "Failed activation on workflow ImprovementCase with ID improvement-case-x" \
        in lines[0]
    assert "temporalio.worker._workflow" in lines[0]


def test_a_condition_shows_again_after_the_window_with_what_was_dropped() -> None:
    now = [0.0]
    once = OncePerCondition(window=60, clock=lambda: now[0])
    passed = []
    for n in range(10):
        now[0] = n * 10.0  # 0 … 90 s
        record = core_record(RETRY.format(call="poll_workflow_task_queue", n=n))
        if once.filter(record):
            passed.append((now[0], getattr(record, "repeats_suppressed", 0)))
    assert passed == [(0.0, 0), (60.0, 5)]


def test_something_else_logged_ends_the_suppression() -> None:
    once = OncePerCondition(window=60, clock=lambda: 0.0)
    retry = RETRY.format(call="poll_workflow_task_queue", n=6)
    assert once.filter(core_record(retry))
    assert not once.filter(core_record(retry))
    assert not once.filter(core_record(retry))
    assert once.filter(core_record("Worker shutdown", target="temporalio_sdk_core::worker"))
    again = core_record(retry)
    assert once.filter(again) and getattr(again, "repeats_suppressed", None) == 2
    assert not once.filter(core_record(retry))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _until(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not callable(predicate) or not predicate():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.2)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_a_server_restart_costs_the_worker_a_line_or_two_all_json(tmp_path: Path) -> None:
    """Promise: while the Temporal server is down for 15 s, a worker with `--log-format json`
    writes only JSON lines, and the client's retry warnings once per poller, not once a
    retry (about 30 lines before)."""
    port, log_file = _free_port(), tmp_path / "worker.log"
    database = tmp_path / "cases.db"
    open_store(f"sqlite:///{database}").migrate()
    command = dev_server_command(port, tmp_path / "temporal.db", ui=False)

    def server() -> subprocess.Popen[bytes]:
        started = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        _until(lambda: _listening(port), 60, "the dev server")
        return started

    temporal = server()
    environ = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
               "CASES_DATABASE_URL": f"sqlite:///{database}"}
    environ.pop("CASES_METRICS_PORT", None)
    with log_file.open("wb") as log:
        worker = subprocess.Popen([str(BIN / "cases-worker"), "--log-format", "json",
                                   "--task-queue", "restart-logs"], env=environ,
                                  stdout=log, stderr=log, start_new_session=True)
    try:
        _until(lambda: b"worker starting" in log_file.read_bytes(), 60, "the worker")
        time.sleep(2)  # its pollers are polling
        stop(temporal)
        time.sleep(15)
        temporal = server()
        time.sleep(5)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        stop(temporal)
    lines = log_file.read_text().splitlines()
    shown = [json.loads(line) for line in lines]  # every line is JSON
    retries = [s for s in shown if "retried" in s["event"]]
    assert 1 <= len(retries) <= 4, [s["event"] for s in retries]
    assert all(s["logger"] == CORE_LOGGER for s in retries)
