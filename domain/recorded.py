"""A domain event with the facts of its recording: which case, which version, when, by whom."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from domain.events import Event


class Recorded(BaseModel):
    """What the fold consumes: the same shape whether it comes from the workflow or the store."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int
    event_id: str
    occurred_at: datetime
    actor: str
    event: Event
