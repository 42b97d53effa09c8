"""Telemetry: the process's Temporal runtime, Prometheus metrics, OpenTelemetry tracing.

One Temporal `Runtime` per process (`process_runtime()`), used by every client
(`runtime.temporal.connect`) and so by every worker on them. It always forwards the SDK core's
own log lines to the Python logger `temporalio.core`, which `runtime.logging` renders through
structlog, once per condition; never raw to stderr.

From the environment (`telemetry_from_environment`):

- CASES_METRICS_PORT (`PORT` or `HOST:PORT`; unset: no endpoint): the worker (and `cases dev`)
  serves Prometheus metrics at http://HOST:PORT/metrics (HOST defaults to 0.0.0.0): the SDK's
  own (`temporal_…`) and the engine's (`cases_…`, `EngineMetrics`), from the one runtime.
- CASES_METRICS_REFRESH_SECONDS (default 60): how often a worker counts the open cases by
  stage in the store for `cases_open_cases`.
- CASES_TRACING (`otlp` or `console`; unset: off): OpenTelemetry spans for every client call,
  workflow and activity, through Temporal's TracingInterceptor; `otlp` exports over OTLP/HTTP
  to OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; the standard OTEL_
  variables apply), naming the service OTEL_SERVICE_NAME (default `cases`); `console` writes
  each span as a log line, for a developer. Off, there is no interceptor at all.

docs/observability.md describes the metrics for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
import structlog
from temporalio.common import MetricMeter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from domain.state import STAGE_AFTER_EVENT
from domain.vocabulary import Stage
from eventstore.schema import events
from eventstore.store import EventStore
from runtime.settings_problems import TelemetryProblem as TelemetryProblem

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Interceptor

log = structlog.get_logger("telemetry")

METRICS_PORT = "CASES_METRICS_PORT"
METRICS_REFRESH = "CASES_METRICS_REFRESH_SECONDS"
TRACING = "CASES_TRACING"
DEFAULT_METRICS_HOST = "0.0.0.0"
DEFAULT_REFRESH_SECONDS = 60.0
DEFAULT_SERVICE_NAME = "cases"

CORE_LOGGER = "temporalio.core"
"""The Python logger the SDK core's log lines are forwarded to (runtime.logging renders the
`temporalio` loggers through structlog)."""

Tracing = Literal["otlp", "console"]

APPEND_LATENCY_BUCKETS_MS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
                             2500.0, 10000.0)
"""An append takes milliseconds; the SDK's default buckets start at 50 ms."""


@dataclass(frozen=True)
class TelemetrySettings:
    """What a process exports: metrics at `metrics_address` (None: no endpoint), spans by
    `tracing` (None: off)."""

    metrics_address: str | None = None
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    tracing: Tracing | None = None


def telemetry_from_environment(environ: Mapping[str, str] | None = None) -> TelemetrySettings:
    """Read CASES_METRICS_PORT, CASES_METRICS_REFRESH_SECONDS and CASES_TRACING; a bad value is
    a TelemetryProblem naming the variable, never a silent default."""
    env = os.environ if environ is None else environ
    return TelemetrySettings(metrics_address=_metrics_address(env.get(METRICS_PORT, "")),
                             refresh_seconds=_refresh_seconds(env.get(METRICS_REFRESH, "")),
                             tracing=_tracing(env.get(TRACING, "")))


def _metrics_address(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    host = host.strip("[]") or DEFAULT_METRICS_HOST
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise TelemetryProblem(f"{METRICS_PORT}={raw!r}: expected a port (1-65535), "
                               "or HOST:PORT")
    return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"


def _refresh_seconds(raw: str) -> float:
    raw = raw.strip()
    if not raw:
        return DEFAULT_REFRESH_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise TelemetryProblem(f"{METRICS_REFRESH}={raw!r}: expected a number of seconds") \
            from None
    if not 0.1 <= seconds <= 86_400:
        raise TelemetryProblem(f"{METRICS_REFRESH}={raw!r}: between 0.1 and 86400")
    return seconds


def _tracing(raw: str) -> Tracing | None:
    value = raw.strip().lower()
    if not value or value in ("0", "off", "none"):
        return None
    if value == "otlp":
        return "otlp"
    if value == "console":
        return "console"
    raise TelemetryProblem(f"{TRACING}={raw!r}: expected otlp or console (or unset: off)")


# --- the runtime ----------------------------------------------------------------------------

def make_runtime(settings: TelemetrySettings) -> Runtime:
    """A Temporal runtime forwarding the core's logs (WARN and above) to `temporalio.core`,
    and serving Prometheus metrics when `settings` asks (bound here: a port in use is a
    TelemetryProblem naming CASES_METRICS_PORT)."""
    forwarding = LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER),
                                     append_target_to_name=False,
                                     prepend_target_on_message=False,
                                     append_log_fields_to_message=False)
    metrics = None
    if settings.metrics_address is not None:
        metrics = PrometheusConfig(
            bind_address=settings.metrics_address,
            histogram_bucket_overrides={"cases_append_latency": APPEND_LATENCY_BUCKETS_MS})
    try:
        return Runtime(telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                                  forwarding=forwarding),
            metrics=metrics))
    except ValueError as failed:  # "Failed starting Prometheus exporter: Address in use"
        raise TelemetryProblem(f"{METRICS_PORT}: cannot serve metrics at "
                               f"{settings.metrics_address}: {failed}") from None


@dataclass
class _Process:
    runtime: Runtime | None = None
    settings: TelemetrySettings | None = None
    metrics: EngineMetrics | None = None
    interceptors: list[Interceptor] | None = None
    tracer_provider: TracerProvider | None = None


_process = _Process()


def start_telemetry(settings: TelemetrySettings) -> EngineMetrics:
    """Make this process's runtime by `settings` (binding the metrics port now), before any
    client connects; returns the engine's metrics on it. Calling it again with the same
    settings changes nothing; with others, once a runtime exists, is a RuntimeError (a
    runtime's metrics cannot be changed, and its port stays bound for the process)."""
    if _process.runtime is not None:
        made = _process.settings or TelemetrySettings()
        if settings.metrics_address != made.metrics_address:
            raise RuntimeError("this process's Temporal runtime was made with other metrics "
                               "settings; start telemetry before connecting")
        if _process.interceptors is None:
            _process.settings = settings
        return engine_metrics()
    _process.runtime = make_runtime(settings)
    _process.settings = settings
    if settings.metrics_address is not None:
        _process.metrics = EngineMetrics(_process.runtime.metric_meter)
    return engine_metrics()


def process_runtime() -> Runtime:
    """This process's runtime: the one `start_telemetry` made, else (made on first use) one
    that forwards the core's logs and serves no metrics."""
    if _process.runtime is None:
        _process.runtime = make_runtime(TelemetrySettings())
    return _process.runtime


def engine_metrics() -> EngineMetrics:
    """The engine's metrics of this process: no-op until `start_telemetry` asked for an
    endpoint."""
    return _process.metrics or _NO_METRICS


# --- the engine's metrics -------------------------------------------------------------------

class EngineMetrics:
    """The engine's own metrics on a runtime's meter, so they share its Prometheus endpoint.
    Over `MetricMeter.noop` (metrics off) each call costs a call and nothing more."""

    def __init__(self, meter: MetricMeter) -> None:
        self.enabled = meter is not MetricMeter.noop
        self._appended = meter.create_counter(
            "cases_events_appended", "Domain events appended to the store, by event type")
        self._append_latency = meter.create_histogram_timedelta(
            "cases_append_latency", "Time to append one batch of events (the activity's store "
            "write), milliseconds", "ms")
        self._open_cases = meter.create_gauge(
            "cases_open_cases", "Open cases in the store by stage (the whole store, counted "
            "by each worker every CASES_METRICS_REFRESH_SECONDS)")
        self._lapsed = meter.create_counter(
            "cases_deadlines_lapsed", "Deadlines a council let lapse (DeadlineMissed), by "
            "deadline")
        self._escalated = meter.create_counter(
            "cases_escalations_raised", "Escalations raised (EscalationRaised), by level")
        self._sent = meter.create_counter(
            "cases_notices_sent", "Notices emailed, by status: sent to their recipient, or "
            "undeliverable (sent to stand-ins)")
        self._failed = meter.create_counter(
            "cases_notices_failed", "Notices that could not be sent to anybody")

    def appended(self, events_appended: Sequence[tuple[str, Mapping[str, object]]],
                 took: timedelta) -> None:
        """One append of (type, payload) events that took `took`; lapses and escalations
        among them are counted too."""
        if not self.enabled:
            return
        self._append_latency.record(took)
        for event_type, payload in events_appended:
            self._appended.add(1, {"event_type": event_type})
            if event_type == "DeadlineMissed":
                self._lapsed.add(1, {"deadline": str(payload.get("deadline", "unknown"))})
            elif event_type == "EscalationRaised":
                self._escalated.add(1, {"level": str(payload.get("level", "unknown"))})

    def notice_outcome(self, status: str) -> None:
        """A notice's delivery recorded: `sent`, `undeliverable` or `failed` (`pending`, to
        be tried again, is neither)."""
        if not self.enabled:
            return
        if status == "failed":
            self._failed.add(1)
        elif status in ("sent", "undeliverable"):
            self._sent.add(1, {"status": status})

    def open_cases(self, by_stage: Mapping[Stage, int]) -> None:
        for stage in Stage:
            if stage.is_open:
                self._open_cases.set(by_stage.get(stage, 0), {"stage": stage.value})


_NO_METRICS = EngineMetrics(MetricMeter.noop)

def cases_by_stage(store: EventStore) -> dict[Stage, int]:
    """How many cases stand at each stage, from the store in one query (one pass over the
    events table, no folding): each case's newest stage-setting event."""
    newest = (sa.select(events.c.case_id, sa.func.max(events.c.version).label("version"))
              .where(events.c.type.in_(list(STAGE_AFTER_EVENT)))
              .group_by(events.c.case_id).subquery())
    query = (sa.select(events.c.type, sa.func.count().label("cases"))
             .join(newest, sa.and_(events.c.case_id == newest.c.case_id,
                                   events.c.version == newest.c.version))
             .group_by(events.c.type))
    with store.engine.connect() as conn:
        return {STAGE_AFTER_EVENT[row.type]: int(row.cases) for row in conn.execute(query)}


@contextlib.asynccontextmanager
async def observing(store: EventStore, settings: TelemetrySettings | None = None,
                    metrics: EngineMetrics | None = None) -> AsyncIterator[None]:
    """For the block (a worker's life): with metrics on, refresh `cases_open_cases` from the
    store every `refresh_seconds` (every worker exports the same whole-store figure); after
    it, send the spans still buffered (the worker leaves with os._exit, no atexit)."""
    metrics = metrics or engine_metrics()
    settings = settings or _process.settings or TelemetrySettings()
    task = None
    if metrics.enabled:
        log.info("serving metrics", url=f"http://{settings.metrics_address}/metrics",
                 open_cases_every_s=settings.refresh_seconds)
        task = asyncio.create_task(_refresh_open_cases(store, metrics, settings.refresh_seconds))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        flush_spans()


async def _refresh_open_cases(store: EventStore, metrics: EngineMetrics,
                              every: float) -> None:
    failing = False
    while True:
        try:
            metrics.open_cases(await asyncio.to_thread(cases_by_stage, store))
            failing = False
        except Exception as failure:  # the store down: say so once, keep the last figures
            if not failing:
                log.warning("cannot count open cases for the metrics; trying again",
                            error=f"{type(failure).__name__}: {str(failure).splitlines()[0]}"
                            if str(failure) else type(failure).__name__)
            failing = True
        await asyncio.sleep(every)


# --- tracing --------------------------------------------------------------------------------

def client_interceptors() -> list[Interceptor]:
    """The interceptors of this process's clients: Temporal's TracingInterceptor when
    CASES_TRACING is set (the tracer provider made once, on first use), else none. A bad
    CASES_TRACING is a TelemetryProblem."""
    if _process.interceptors is None:
        settings = _process.settings if _process.settings is not None \
            else telemetry_from_environment()
        if settings.tracing is None:
            _process.interceptors = []
        else:
            provider = tracer_provider(settings.tracing)
            _process.tracer_provider = provider
            _process.interceptors = [tracing_interceptor(provider)]
    return list(_process.interceptors)


def tracer_provider(tracing: Tracing) -> TracerProvider:
    """A tracer provider exporting by `tracing`: OTLP over HTTP in batches, or each span as a
    log line (`span`, through structlog: console or JSON like every other line) as it ends."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {
        SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    if tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(_logged_spans()))
    return provider


def _logged_spans() -> SpanExporter:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class LoggedSpans(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            for span in spans:
                context, parent = span.get_span_context(), span.parent
                took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
                log.info("span", name=span.name, trace_id=f"{context.trace_id:032x}"
                         if context else None, span_id=f"{context.span_id:016x}"
                         if context else None, parent_id=f"{parent.span_id:016x}"
                         if parent else None, duration_ms=round(took, 3),
                         status=span.status.status_code.name,
                         attributes=dict(span.attributes or {}))
            return SpanExportResult.SUCCESS

    return LoggedSpans()


def tracing_interceptor(provider: TracerProvider) -> Interceptor:
    """Temporal's TracingInterceptor over `provider`: spans for client calls, workflows
    (even those started without a span: by the CLI, a schedule, another worker) and
    activities. On a client, it applies to the workers built on it too."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor(provider.get_tracer("cases"), always_create_workflow_spans=True)


def flush_spans(timeout_seconds: float = 5.0) -> None:
    """Export the spans still buffered (a no-op with tracing off)."""
    if _process.tracer_provider is not None:
        started = time.monotonic()
        _process.tracer_provider.force_flush(int(timeout_seconds * 1000))
        log.debug("spans flushed", seconds=round(time.monotonic() - started, 3))
