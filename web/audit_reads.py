"""What the council's and the auditor's pages read that no other module hands them whole.

The council's pages read the read models (caught up first, as `application.cases.list_cases`
does) together with the state each summary was worked out from: what is due from the council
needs the proposed team, the reports and the missed deadlines, not only the summary's columns.

The auditor's pages read the store itself and never the workflow: a case's rows, the fold of
them up to a moment (`domain.timeline`, the workflow's own fold), the chain's verdict
(`eventstore.verify.verify`) and the bundle `cases export --bundle` writes
(`eventstore.export.write_bundle`), zipped in memory.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from domain.checkpoints import CHECKPOINT_STREAM
from domain.read_models import CaseSummary
from domain.recorded import Recorded
from domain.state import CaseState
from eventstore.checkpoint_files import checkpoint_directory, default_public_key
from eventstore.export import write_bundle
from eventstore.projections import Projector, case_rows, require_sound
from eventstore.records import StoredEvent
from eventstore.schema import case_summaries
from eventstore.store import EventStore
from eventstore.verify import Problem, read_for_verification, verify

CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
"""What the API takes as a case id: also what makes a safe file name for the bundle."""


def is_case_id(text: str) -> bool:
    """A case id the pages look up; the checkpoints' stream is no case."""
    return bool(CASE_ID.match(text)) and text != CHECKPOINT_STREAM


# --- the council's cases, from the read models ---------------------------------------------

@dataclass(frozen=True)
class CaseOnRecord:
    """A case's read-model summary with the folded state it was worked out from."""

    summary: CaseSummary
    state: CaseState


def cases_of_council(store: EventStore, council: str) -> list[CaseOnRecord]:
    """The council's cases, open and ended, soonest deadline first; raises ProjectionBroken
    when the read models stopped on a gap or a broken link (nothing is served from them)."""
    Projector(store).catch_up()
    require_sound(store.engine)
    rows = case_rows(store.engine, council=council, include_ended=True)
    states = _states(store, [row.case_id for row in rows])
    return [CaseOnRecord(row, states[row.case_id]) for row in rows if row.case_id in states]


def case_of_council(store: EventStore, council: str, case_id: str) -> CaseOnRecord | None:
    """One case of the council; None for another council's case or a case that does not
    exist, which the council is told alike."""
    return next((case for case in cases_of_council(store, council)
                 if case.summary.case_id == case_id), None)


def _states(store: EventStore, case_ids: Sequence[str]) -> dict[str, CaseState]:
    states: dict[str, CaseState] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(case_ids), 500):
            chunk = list(case_ids[start:start + 500])
            for case_id, state in conn.execute(
                    sa.select(case_summaries.c.case_id, case_summaries.c.state)
                    .where(case_summaries.c.case_id.in_(chunk))):
                states[case_id] = CaseState.model_validate(state)
    return states


# --- one case, from the store --------------------------------------------------------------

@dataclass(frozen=True)
class StoredHistory:
    """A case's rows as stored, and their domain events when every row reads back."""

    events: list[StoredEvent]
    recorded: list[Recorded] | None
    unreadable: str | None
    """Why the rows cannot be read back as events (None when they can)."""


def stored_history(store: EventStore, case_id: str) -> StoredHistory | None:
    """The case's rows in version order, None when the store holds none. A row written
    behind the store's back that cannot be read is shown as stored, with why."""
    try:
        rows = store.read_case(case_id)
    except (RecursionError, ValueError):
        rows = read_for_verification(store, case_id)
        return StoredHistory(rows, None, "a payload cannot be read back as JSON") if rows else None
    if not rows:
        return None
    try:
        return StoredHistory(rows, [row.to_recorded() for row in rows], None)
    except (RecursionError, ValueError) as unreadable:
        first = str(unreadable).splitlines()[0] if str(unreadable) else type(unreadable).__name__
        return StoredHistory(rows, None, f"an event cannot be read back: {first}")


@dataclass(frozen=True)
class ChainVerdict:
    """`verify`'s verdict on one case, with the head the store holds now."""

    events: int
    problem: Problem | None
    """The first bad event, when there is one."""
    head_version: int
    head_hash: str

    @property
    def intact(self) -> bool:
        return self.problem is None


def chain_verdict(store: EventStore, case_id: str) -> ChainVerdict:
    """Every hash recomputed and every link walked, as `cases verify CASE` does."""
    verdict = verify(store, case_id)
    version, head_hash = store.head(case_id)
    return ChainVerdict(events=verdict.events, problem=verdict.first_problem,
                        head_version=version, head_hash=head_hash)


def bundle_zip(store: EventStore, case_id: str) -> bytes:
    """The case's audit bundle as `cases export --bundle` writes it, zipped under one folder
    (`CASE-bundle/`). Raises NoSuchCase or UnreadableCase as `write_bundle` does."""
    url = store.engine.url
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        where = write_bundle(store, case_id, Path(scratch) / "bundle",
                             checkpoint_dir=checkpoint_directory(
                                 url.database if url.get_backend_name() == "sqlite" else None),
                             public_key=default_public_key())
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(where.iterdir()):
                member = zipfile.ZipInfo.from_file(path, f"{case_id}-bundle/{path.name}")
                member.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(member, path.read_bytes())
    return buffer.getvalue()
