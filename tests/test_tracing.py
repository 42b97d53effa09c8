"""Tracing: with CASES_TRACING on, Temporal's TracingInterceptor gives spans for the client's
calls, the case's workflow and its activities; off, there is no interceptor."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.contracts import APPEND_EVENTS
from application.cases import CaseClient
from domain import commands as cmd
from domain.vocabulary import CaseKind, Stage, VisitMode
from eventstore import EventStore
from runtime.telemetry import (
    TelemetryProblem,
    TelemetrySettings,
    telemetry_from_environment,
    tracing_interceptor,
)
from tests.support import TEST_POLICIES, register_council
from worker import build_worker
from workflows.messages import workflow_id_for_case


async def test_a_traced_client_gives_spans_for_the_workflow_and_its_activities(
    time_skipping_env: WorkflowEnvironment, sqlite_store: EventStore
) -> None:
    """Promise: on a client with the tracing interceptor (as `connect()` makes one with
    CASES_TRACING set), starting a case and acting on it gives spans for the client's calls,
    the workflow's run and the append activity, in one trace per call."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    config = time_skipping_env.client.config()
    config["interceptors"] = [tracing_interceptor(provider)]
    client = Client(**config)
    task_queue = f"traced-{uuid.uuid4().hex[:8]}"
    council = register_council(sqlite_store, "E06000098")
    cases = CaseClient(client, task_queue=task_queue, store=sqlite_store)
    async with build_worker(client, sqlite_store, task_queue, policies=TEST_POLICIES):
        view = await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                 reason="Tracing test", actor="officer:trace")
        view = await cases.act(view.state.case_id, cmd.ScopeCase(
            actor="officer:trace", scope=["finance"], visit_mode=VisitMode.ON_SITE))
        assert view.state.stage == Stage.SCOPED
        await client.get_workflow_handle(
            workflow_id_for_case(view.state.case_id)).terminate("test over")
    provider.force_flush()
    names = {span.name for span in spans.get_finished_spans()}
    assert {"StartUpdateWithStartWorkflow:ImprovementCase", "RunWorkflow:ImprovementCase",
            "StartWorkflowUpdate:act", "HandleUpdate:act", f"StartActivity:{APPEND_EVENTS}",
            f"RunActivity:{APPEND_EVENTS}"} <= names, sorted(names)
    run_activity = next(s for s in spans.get_finished_spans()
                        if s.name == f"RunActivity:{APPEND_EVENTS}")
    assert run_activity.parent is not None, "the activity's span hangs off the workflow's"


def test_tracing_is_off_unless_asked_for() -> None:
    assert telemetry_from_environment({}) == TelemetrySettings()
    assert telemetry_from_environment({"CASES_TRACING": " OTLP "}).tracing == "otlp"
    assert telemetry_from_environment({"CASES_TRACING": "console"}).tracing == "console"
    assert telemetry_from_environment({"CASES_TRACING": "off"}).tracing is None


def test_a_bad_tracing_value_names_the_variable() -> None:
    with pytest.raises(TelemetryProblem, match="CASES_TRACING='jaeger'"):
        telemetry_from_environment({"CASES_TRACING": "jaeger"})
