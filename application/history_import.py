"""`cases import-history`: past peer challenges brought in from a CSV file, whole or not at all.

The file is read and checked whole first (domain/history_import.py): one problem anywhere and
nothing is written. Then every new row's events are appended in one transaction, each case's
request recording the file's digest and row, the events marked as imported and recorded under
the importing user's name. Last, each challenge still under way gets its workflow, which takes
its events up and follows its deadlines from their real dates (so it may lapse and escalate at
once). A row already imported from this very file (its digest and row) is left as it is:
importing the same file again changes nothing, and starts only a workflow that a first import
could not start.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.commands import RequestCase
from domain.councils import Council
from domain.events import CaseRequested
from domain.history_import import (
    HistoryRefused,
    PastChallenge,
    Problem,
    events_of,
    provenance,
    read_history,
)
from domain.state import fold
from eventstore import EventStore, NewEvent
from eventstore.councils import known_councils
from workflows import search_attributes as sa
from workflows.improvement_case import ImprovementCase
from workflows.messages import TASK_QUEUE, CaseStart, case_id_for, workflow_id_for

MAX_BYTES = 5_000_000
_EVENT_IDS = uuid.UUID("6b1f4f3e-6c1d-4d7e-9a57-3f0c1e5c2a9b")
"""Namespace of imported events' ids: uuid5 of (file digest, row, index), so a retried import
writes the same events."""


@dataclass
class Imported:
    file_sha256: str
    rows: int
    imported: list[str] = field(default_factory=list)
    """Cases written by this import."""
    already: list[str] = field(default_factory=list)
    """Cases an earlier import of this file wrote; left as they were."""
    under_way: list[str] = field(default_factory=list)
    """Cases still under way, whose workflows follow their deadlines."""
    not_started: list[str] = field(default_factory=list)
    """Cases under way whose workflow could not be started (import the file again)."""


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_file(data: bytes, councils: dict[str, Council], today: datetime
               ) -> list[PastChallenge]:
    """The file's challenges, or HistoryRefused listing every problem."""
    if len(data) > MAX_BYTES:
        raise HistoryRefused([Problem(1, None, f"the file is over {MAX_BYTES} bytes; split it")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        raise HistoryRefused([Problem(1, None, f"not UTF-8 text (byte {bad.start})")]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        return read_history(reader, header, councils, today.date())
    except csv.Error as bad:
        raise HistoryRefused([Problem(reader.line_num, None, f"not CSV: {bad}")]) from None


def _event_id(digest: str, row: int, index: int) -> str:
    return str(uuid.uuid5(_EVENT_IDS, f"{digest}:{row}:{index}"))


def _case_for(store: EventStore, challenge: PastChallenge, digest: str,
              taken: set[str]) -> tuple[str, bool]:
    """The case id of a row: (id, already imported). The first free id of the kind, council
    and visit year, skipping ids this import gave out and ids holding other cases; a case
    that records this file's digest and this row is this row's, imported before."""
    attempt = 1
    while True:
        case_id = case_id_for(challenge.kind, challenge.council, challenge.visit_start.year,
                              attempt)
        attempt += 1
        if case_id in taken:
            continue
        first = store.read_case(case_id, up_to_version=1)
        if not first:
            return case_id, False
        if provenance(first[0].to_recorded().event) == (digest, challenge.row):
            return case_id, True


async def import_history(store: EventStore, client: Client, data: bytes, *, actor: str,
                         now: datetime | None = None,
                         task_queue: str = TASK_QUEUE) -> Imported:
    """Import the file `data` as `actor`; HistoryRefused (nothing written) when any row is
    wrong, or a challenge under way meets another case open in its slot."""
    moment = now or datetime.now(UTC)
    digest = file_digest(data)
    challenges = parse_file(data, known_councils(store), moment)
    result = Imported(file_sha256=digest, rows=len(challenges))
    taken: set[str] = set()
    appends: list[tuple[str, int, list[NewEvent]]] = []
    live: list[tuple[str, PastChallenge]] = []
    for challenge in challenges:
        case_id, already = _case_for(store, challenge, digest, taken)
        taken.add(case_id)
        (result.already if already else result.imported).append(case_id)
        if not challenge.finished:
            live.append((case_id, challenge))
        if already:
            continue
        events = events_of(challenge, digest)
        appends.append((case_id, 0, [
            NewEvent.of(event, event_id=_event_id(digest, challenge.row, index),
                        occurred_at=moment, actor=actor)
            for index, event in enumerate(events)]))
    await _no_open_case_in_the_way(client, store, live)
    store.append_cases(appends)
    for case_id, challenge in live:
        if await _take_up(client, store, case_id, challenge, task_queue):
            result.under_way.append(case_id)
        else:
            result.not_started.append(case_id)
    return result


async def _no_open_case_in_the_way(client: Client, store: EventStore,
                                   live: list[tuple[str, PastChallenge]]) -> None:
    """A challenge under way takes its council's slot for its kind: refused (nothing written)
    when another case holds it open."""
    problems = []
    for case_id, challenge in live:
        holder = await _slot_holder(client, challenge)
        if holder is not None and holder != case_id:
            problems.append(Problem(challenge.row, None, (
                f"{challenge.council} already has an open {challenge.kind.value} ({holder}); "
                "give this row its closed_on, or withdraw that case first")))
    if problems:
        raise HistoryRefused(problems)


async def _slot_holder(client: Client, challenge: PastChallenge) -> str | None:
    """The case the slot's running workflow holds, if one runs."""
    handle = client.get_workflow_handle(workflow_id_for(challenge.kind, challenge.council))
    try:
        described = await handle.describe()
    except Exception:
        return None
    if described.status is None or described.status.name != "RUNNING":
        return None
    value = described.typed_search_attributes.get(sa.CASE_ID)
    return str(value) if value else "a case"


async def _take_up(client: Client, store: EventStore, case_id: str, challenge: PastChallenge,
                   task_queue: str) -> bool:
    """Start the workflow that follows an imported case under way; True once it runs (now or
    from an earlier import). A case closed or withdrawn since needs none."""
    history = [e.to_recorded() for e in store.read_case(case_id)]
    state = fold(case_id, history)
    if not state.is_open:
        return True
    first = history[0].event
    assert isinstance(first, CaseRequested)
    request = RequestCase(actor=history[0].actor, case_id=case_id, council=first.council,
                          kind=first.kind, reason=first.reason,
                          deadline_policy=first.deadline_policy or "standard")
    try:
        await client.start_workflow(
            ImprovementCase.run, CaseStart(request=request, resume=True),
            id=workflow_id_for(challenge.kind, challenge.council), task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=sa.at_opening(case_id, challenge.council, challenge.kind.value))
    except WorkflowAlreadyStartedError:
        return await _slot_holder(client, challenge) == case_id
    return True

