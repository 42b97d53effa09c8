"""Activities that write to the event store. At-least-once safe: appends are idempotent."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    APPEND_EVENTS,
    LOAD_CASE,
    RECORD_CHECKPOINT,
    Appended,
    AppendEvents,
    CaseToLoad,
    CheckpointRequest,
    CheckpointSummary,
    LoadedCase,
    LoadedEvent,
)
from eventstore import (
    EventIdConflict,
    EventStore,
    NewEvent,
    OutboxMessage,
    VersionConflict,
    checkpoint_files,
    checkpoints,
)
from runtime.telemetry import engine_metrics

log = structlog.get_logger("activities")


class StoreActivities:
    """Bound to one store; registered on the worker as plain (thread-run) activities.

    `pause_after_append` (env CASES_FAULT_PAUSE_AFTER_APPEND, seconds) is a fault-injection
    point for the crash tests: it holds the activity after its commit, so a worker killed
    then dies between "stored" and "the workflow knows it is stored".
    """

    def __init__(self, store: EventStore, pause_after_append: float | None = None) -> None:
        self.store = store
        if pause_after_append is None:
            pause_after_append = float(os.environ.get("CASES_FAULT_PAUSE_AFTER_APPEND", "0"))
        self.pause_after_append = pause_after_append

    @activity.defn(name=LOAD_CASE)
    def load_case(self, request: CaseToLoad) -> LoadedCase:
        """The case's events as stored, for a workflow taking up an imported case."""
        return LoadedCase(events=[
            LoadedEvent(version=e.version, event_id=e.event_id, type=e.type,
                        schema_version=e.schema_version, occurred_at=e.occurred_at,
                        actor=e.actor, payload=e.payload)
            for e in self.store.read_case(request.case_id)])

    @activity.defn(name=APPEND_EVENTS)
    def append_events(self, request: AppendEvents) -> Appended:
        info = activity.info()
        bound = log.bind(case_id=request.case_id, workflow_id=info.workflow_id,
                         attempt=info.attempt)
        started = time.perf_counter()
        try:
            stored = self.store.append(
                request.case_id, request.expected_version,
                [NewEvent(event_id=e.event_id, type=e.type, schema_version=e.schema_version,
                          occurred_at=e.occurred_at, actor=e.actor, payload=e.payload)
                 for e in request.events],
                [OutboxMessage(event_id=n.event_id, recipient=n.recipient, subject=n.subject,
                               body=n.body, notice=n.notice) for n in request.notifications],
            )
        except (VersionConflict, EventIdConflict) as conflict:
            bound.error("append refused", error=str(conflict))
            raise ApplicationError(str(conflict), type=type(conflict).__name__,
                                   non_retryable=True) from conflict
        # (a retry that finds its events already stored counts them again: rare, and said
        # in docs/observability.md)
        engine_metrics().appended([(e.type, e.payload) for e in request.events],
                                  timedelta(seconds=time.perf_counter() - started))
        if self.pause_after_append:
            time.sleep(self.pause_after_append)
        last = stored[-1]
        # The workflow logs every action once ("case recorded"); the activity speaks up at
        # INFO only when it is a retry, which is worth an operator's eye.
        report = bound.info if info.attempt > 1 else bound.debug
        report("events appended", version=last.version,
               types=[e.type for e in request.events], actor=request.events[-1].actor)
        return Appended(version=last.version, hash=last.hash, last_position=last.position,
                        occurred_at=[e.occurred_at for e in stored])

    @activity.defn(name=RECORD_CHECKPOINT)
    def record_checkpoint(self, request: CheckpointRequest) -> CheckpointSummary:
        """Record a checkpoint and, with CASES_SIGNING_KEY set, publish it as a signed file in
        CASES_CHECKPOINT_DIR. The key is read first, so a bad key records nothing; a retry
        finds the checkpoint recorded and writes its file if the first attempt did not."""
        try:
            signing_key = checkpoint_files.signing_key_from_environment()
        except checkpoint_files.SigningKeyProblem as bad:
            raise ApplicationError(str(bad), type="SigningKeyProblem",
                                   non_retryable=True) from None
        try:
            stored = checkpoints.record_checkpoint(
                self.store, event_id=request.event_id, at=request.at,
                actor="system:checkpoint", publish_to=request.publish_to)
        except checkpoints.CheckpointRefused as refused:
            log.error("checkpoint refused", error=str(refused))
            raise ApplicationError(str(refused), type="CheckpointRefused",
                                   non_retryable=True) from None
        path = key_digest = None
        if signing_key is not None:
            url = self.store.engine.url
            directory = checkpoint_files.checkpoint_directory(
                url.database if url.get_backend_name() == "sqlite" else None)
            try:
                path = str(checkpoint_files.write_checkpoint_file(
                    directory, checkpoints.statement_of(stored), signing_key))
            except OSError as failure:
                raise ApplicationError(
                    f"checkpoint {stored.version} is recorded but its file could not be "
                    f"written in {directory}: {failure.strerror or failure}", type="NotPublished",
                    non_retryable=True) from None
            key_digest = checkpoint_files.public_key_sha256(signing_key.public_key())
        summary = CheckpointSummary(checkpoint=stored.version,
                                    cases=len(stored.payload["heads"]),
                                    merkle_root=stored.payload["merkle_root"],
                                    last_position=stored.payload["last_position"],
                                    path=path, public_key_sha256=key_digest)
        log.info("checkpoint recorded", **summary.model_dump())
        return summary
