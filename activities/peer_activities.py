"""The peer-selection activity: the pool is in the database, the rules are in `domain/`.

Reading only: it records nothing itself (the workflow appends what it returns), so retries
are harmless. Pool versions never change once imported, so each is loaded once per worker,
until a peer's personal data is erased: then it is loaded again, so no erased name is proposed.
What it returns (and Temporal keeps in the case's history) is the event: the team, named, and
every other pool peer as an id and a reason code only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import SELECT_PEER_TEAM, TeamOutcome
from domain.councils import register_digest
from domain.events import PeerSelectionRecord, PeerTeamProposed
from domain.peer_selection import ALGORITHM, PeerPool, propose_or_explain
from domain.rules import SelectionInputs
from eventstore import EventStore
from eventstore.councils import known_councils
from eventstore.peers import (
    PoolAltered,
    UnknownPool,
    current_pool_version,
    erasure_mark,
    load_pool,
    pool_version,
)

log = structlog.get_logger("activities")

POOLS_KEPT = 4
"""Pool versions kept in memory: the current one and a few that re-selections still use."""


class PeerSelectionActivities:
    """Bound to one store; a small cache of loaded pools, shared by the activity threads."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._pools: OrderedDict[int, tuple[int, str, PeerPool]] = OrderedDict()
        """Pool version: (the erasure mark it was loaded at, its digest, the pool)."""
        self._lock = threading.Lock()

    @activity.defn(name=SELECT_PEER_TEAM)
    def select_peer_team(self, inputs: SelectionInputs) -> TeamOutcome:
        """Select on the pool `inputs` names (the newest if none), by `domain.peer_selection`."""
        info = activity.info()
        bound = log.bind(workflow_id=info.workflow_id, council=inputs.council,
                         attempt=info.attempt)
        councils = known_councils(self.store)
        subject = councils.get(inputs.council)
        if subject is None:
            raise _refuse(f"council {inputs.council} is not in the register: import it with "
                          "`cases councils import`, then select again")
        version, digest, pool = self._pool(inputs.pool_version)
        record = PeerSelectionRecord(
            algorithm=ALGORITHM, seed=inputs.seed, pool_version=version, pool_digest=digest,
            scope=inputs.scope, visit_from=inputs.visit_from, visit_to=inputs.visit_to,
            rules=inputs.rules, excluded=inputs.excluded,
            councils_digest=register_digest(councils))
        outcome = propose_or_explain(record, subject, councils, pool, inputs.kind)
        if isinstance(outcome, PeerTeamProposed):
            bound.info("peer team selected", pool_version=version,
                       team=[p.peer_id for p in outcome.team])
            return TeamOutcome(proposed=outcome)
        bound.info("peer team cannot be filled", pool_version=version,
                   requirement=outcome.requirement)
        return TeamOutcome(unfilled=outcome)

    def _pool(self, wanted: int | None) -> tuple[int, str, PeerPool]:
        try:
            found = current_pool_version(self.store) if wanted is None else pool_version(
                self.store, wanted)
        except UnknownPool as unknown:
            raise _refuse(str(unknown)) from None
        if found is None:
            raise _refuse("no peer pool has been imported: `cases peers import PATH.csv` "
                          "(or `cases peers import --demo`), then select again")
        mark = erasure_mark(self.store)
        with self._lock:
            cached = self._pools.get(found.version)
            if cached is not None and cached[0] == mark:
                self._pools.move_to_end(found.version)
                return found.version, cached[1], cached[2]
        try:
            pool = PeerPool(load_pool(self.store, found.version))
        except PoolAltered as altered:
            raise _refuse(str(altered)) from None
        with self._lock:
            self._pools[found.version] = (mark, found.digest, pool)
            while len(self._pools) > POOLS_KEPT:
                self._pools.popitem(last=False)
        return found.version, found.digest, pool


def _refuse(message: str) -> ApplicationError:
    """A selection that cannot run: retrying will not help, the officer must act."""
    return ApplicationError(message, type="SelectionRefused", non_retryable=True)

