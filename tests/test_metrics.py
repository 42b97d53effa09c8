"""Metrics: with CASES_METRICS_PORT a worker serves Prometheus metrics, the Temporal SDK's and
the engine's, on one endpoint; a bad value is refused by name before anything starts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.journey import journey
from domain import commands as cmd
from domain.state import STAGE_AFTER_EVENT
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore, open_store
from runtime.telemetry import (
    TelemetryProblem,
    cases_by_stage,
    telemetry_from_environment,
)
from tests.mail_support import mail_sink_fixture  # noqa: F401
from tests.support import new_event, register_council
from workflows.messages import workflow_id_for_case

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def samples(text: str, name: str, **labels: str) -> list[float]:
    """The values of metric `name` whose labels include `labels`, from Prometheus text."""
    found = []
    for line in text.splitlines():
        matched = SAMPLE.match(line)
        if matched and matched.group(1) == name:
            have = dict(LABEL.findall(matched.group(2) or ""))
            if all(have.get(key) == value for key, value in labels.items()):
                found.append(float(matched.group(3)))
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(samples(text, name, **labels))


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text: str = answer.read().decode()
        return text


async def test_a_worker_serves_the_sdks_and_the_engines_metrics_on_one_port(
    dev_server_env: WorkflowEnvironment, tmp_path: Path, mail_sink: object
) -> None:
    """Promise: after a short journey on a real worker (`cases-worker`, a dev server, SQLite)
    with CASES_METRICS_PORT set, its endpoint shows the events appended and how long the
    appends took, the open case at its stage, the lapse of a deadline and the escalation it
    raised, the notices emailed, and the SDK's own metrics. With CASES_TRACING=console on the
    same worker, its spans are log lines (JSON like every other)."""
    port, database, log_file = free_port(), tmp_path / "cases.db", tmp_path / "worker.log"
    store = open_store(f"sqlite:///{database}")
    store.migrate()
    council = register_council(store, "E06000097")
    task_queue = f"metrics-{uuid.uuid4().hex[:8]}"
    environ = {**os.environ,
               "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
               "CASES_DATABASE_URL": f"sqlite:///{database}", "CASES_DEMO_MODE": "1",
               "CASES_METRICS_PORT": f"127.0.0.1:{port}", "CASES_METRICS_REFRESH_SECONDS": "0.5",
               "CASES_SMTP_URL": mail_sink.url,  # type: ignore[attr-defined]
               "CASES_ADMIN_EMAIL": "admin@cases.test", "CASES_TRACING": "console"}
    with log_file.open("wb") as log:
        worker = subprocess.Popen([str(BIN / "cases-worker"), "--log-format", "json",
                                   "--task-queue", task_queue], env=environ, stdout=log,
                                  stderr=log, start_new_session=True)
    cases = CaseClient(dev_server_env.client, task_queue=task_queue, store=store)
    case_id = None
    try:
        view = await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                 reason="Metrics test", actor="officer:metrics",
                                 deadline_policy="demo-1s")
        case_id = view.state.case_id
        for step in journey(council, datetime.now(UTC).date()):
            view = await cases.act(case_id, step)
            if isinstance(step, cmd.DraftReport):
                break  # the factual-accuracy check now lapses within 2 s and escalates
        assert view.state.stage == Stage.REPORT_DRAFTED
        text, deadline = scrape(port), time.monotonic() + 60
        while not (total(text, "cases_escalations_raised", level="1")
                   and samples(text, "cases_open_cases", stage="report_drafted") == [1]
                   and total(text, "cases_notices_sent")):
            assert time.monotonic() < deadline, text
            await asyncio.sleep(0.5)
            text = scrape(port)
    finally:
        if case_id is not None:
            await dev_server_env.client.get_workflow_handle(
                workflow_id_for_case(case_id)).terminate("test over")
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)

    assert total(text, "cases_events_appended", event_type="CaseRequested") == 1
    assert total(text, "cases_events_appended", event_type="ReportDrafted") == 1
    assert total(text, "cases_append_latency_count") >= 9  # the request and each action
    assert total(text, "cases_append_latency_sum") > 0
    assert samples(text, "cases_open_cases", stage="requested") == [0]
    assert total(text, "cases_deadlines_lapsed", deadline="factual_accuracy_check") == 1
    assert total(text, "cases_notices_failed") == 0
    assert total(text, "temporal_request") > 0  # the SDK's own, from the same runtime
    assert samples(text, "temporal_worker_task_slots_available")

    lines = [json.loads(line) for line in log_file.read_text().splitlines()]  # all JSON
    assert any(line["event"] == "serving metrics" for line in lines)
    spans = {line["name"] for line in lines if line["event"] == "span"}
    assert {"RunWorkflow:ImprovementCase", "RunActivity:append_events"} <= spans, spans


def test_stages_are_counted_from_the_store_without_folding(sqlite_store: EventStore) -> None:
    """A case stands at the stage of its newest stage-setting event; events that set none
    (a reminder, a lapse, an escalation) leave it there; ended cases count as such."""
    sqlite_store.append("case-a", 0, [new_event("case-a", 1, type="CaseRequested"),
                                      new_event("case-a", 2, type="CaseScoped"),
                                      new_event("case-a", 3, type="DeadlineMissed")])
    sqlite_store.append("case-b", 0, [new_event("case-b", 1, type="CaseRequested")])
    sqlite_store.append("case-c", 0, [new_event("case-c", 1, type="CaseRequested"),
                                      new_event("case-c", 2, type="CaseWithdrawn")])
    assert cases_by_stage(sqlite_store) == {Stage.SCOPED: 1, Stage.REQUESTED: 1,
                                            Stage.WITHDRAWN: 1}


def test_every_stage_has_the_event_that_sets_it() -> None:
    from domain.events import EVENT_CLASSES

    assert set(STAGE_AFTER_EVENT.values()) == set(Stage)
    assert set(STAGE_AFTER_EVENT) <= set(EVENT_CLASSES)


@pytest.mark.parametrize("value", ["port", "0", "70000", "host:", "9464.5"])
def test_a_bad_metrics_port_names_the_variable(value: str) -> None:
    with pytest.raises(TelemetryProblem, match=f"CASES_METRICS_PORT={value!r}"):
        telemetry_from_environment({"CASES_METRICS_PORT": value})


def test_a_metrics_port_may_name_its_host() -> None:
    assert telemetry_from_environment({}).metrics_address is None
    assert telemetry_from_environment(
        {"CASES_METRICS_PORT": "9464"}).metrics_address == "0.0.0.0:9464"
    assert telemetry_from_environment(
        {"CASES_METRICS_PORT": "127.0.0.1:9464"}).metrics_address == "127.0.0.1:9464"


def _worker_main(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import worker; worker.main([])"],
                          env={"PATH": "/usr/bin", "PYTHONDONTWRITEBYTECODE": "1", **environ},
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_worker_refuses_a_bad_metrics_port_in_one_line() -> None:
    """Exit 2, one line naming the variable, before connecting to anything."""
    done = _worker_main({"CASES_METRICS_PORT": "metrics"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "cases-worker: CASES_METRICS_PORT='metrics': expected a port (1-65535), or HOST:PORT; "
        "nothing was started"]


def test_the_worker_refuses_a_metrics_port_in_use_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _worker_main({"CASES_METRICS_PORT": f"127.0.0.1:{port}"})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"cases-worker: CASES_METRICS_PORT: cannot serve metrics at "
                           f"127.0.0.1:{port}: ") and "in use" in line, line
