"""The server's named deadline policies. A case names one when it is opened; durations are
never sent by a caller. Demo deadlines (seconds instead of months) exist only on a server
that runs in demo mode (`cases dev`, or a worker with CASES_DEMO_MODE=1)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from domain.deadlines import DeadlinePolicy
from domain.peers import SelectionRules

STANDARD = "standard"
"""The LGA's published deadlines (BRIEF §2)."""

_DEMO = re.compile(r"^demo-([0-9]{1,4})s$")
MAX_DEMO_UNIT_SECONDS = 3600


def demo_policy_name(unit_seconds: int) -> str:
    """`demo-5s`: every deadline a few units of `unit_seconds` (see DeadlinePolicy.demo)."""
    return f"demo-{unit_seconds}s"


class UnknownPolicy(ValueError):
    pass


class PolicyBook(BaseModel):
    """The policies a server offers, by name."""

    model_config = ConfigDict(frozen=True)

    named: Mapping[str, DeadlinePolicy] = Field(
        default_factory=lambda: {STANDARD: DeadlinePolicy.standard()})
    demo_mode: bool = False
    selection_rules: Mapping[str, SelectionRules] = Field(default_factory=dict)
    """Selection rules of a policy that does not use the published ones."""

    def rules_for(self, name: str) -> SelectionRules:
        return self.selection_rules.get(name) or SelectionRules()

    def resolve(self, name: str) -> DeadlinePolicy:
        """The policy called `name`, or UnknownPolicy naming the ones there are."""
        policy = self.named.get(name)
        if policy is not None:
            return policy
        demo = _DEMO.match(name)
        if demo and self.demo_mode and 1 <= int(demo.group(1)) <= MAX_DEMO_UNIT_SECONDS:
            return DeadlinePolicy.demo(int(demo.group(1)))
        offered = ", ".join(sorted(self.named)) + (", demo-Ns" if self.demo_mode else "")
        why = ("demo deadlines need a server in demo mode" if demo and not self.demo_mode
               else f"the server's policies are: {offered}")
        raise UnknownPolicy(f"deadline policy {name!r} is not one of this server's ({why})")
