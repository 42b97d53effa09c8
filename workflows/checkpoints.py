"""RecordCheckpoint: run by a Temporal schedule, records every case's head and a Merkle root."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import RECORD_CHECKPOINT, CheckpointRequest, CheckpointSummary


@workflow.defn
class RecordCheckpoint:
    @workflow.run
    async def run(self) -> CheckpointSummary:
        request = CheckpointRequest(event_id=str(workflow.uuid4()), at=workflow.now())
        summary: CheckpointSummary = await workflow.execute_activity(
            RECORD_CHECKPOINT, request, result_type=CheckpointSummary,
            start_to_close_timeout=timedelta(minutes=5))
        return summary
