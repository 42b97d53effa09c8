"""Checking a case's opening on the server: the council is in the register and current, the
deadline policy is one of the server's. A workflow started by hand with a made-up council or
made-up deadlines is refused here, before anything is recorded."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import CHECK_OPENING, OpeningTerms, OpeningToCheck
from domain.policies import PolicyBook, UnknownPolicy
from eventstore import EventStore
from eventstore.councils import known_council

OPENING_REFUSED = "OpeningRefused"


class OpeningActivities:
    def __init__(self, store: EventStore, policies: PolicyBook) -> None:
        self.store = store
        self.policies = policies

    @activity.defn(name=CHECK_OPENING)
    def check_opening(self, opening: OpeningToCheck) -> OpeningTerms:
        council = known_council(self.store, opening.council)
        if council is None:
            raise _refused(f"council {opening.council} is not in the register; import it with "
                           "`cases councils import`")
        if not council.current:
            raise _refused(f"council {opening.council} ({council.name}) ended on "
                           f"{council.end_date}")
        try:
            policy = self.policies.resolve(opening.deadline_policy)
        except UnknownPolicy as unknown:
            raise _refused(str(unknown)) from None
        return OpeningTerms(policy=policy,
                            selection_rules=self.policies.rules_for(opening.deadline_policy))


def _refused(message: str) -> ApplicationError:
    return ApplicationError(f"cannot open the case: {message}; nothing was recorded",
                            type=OPENING_REFUSED, non_retryable=True)
