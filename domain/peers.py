"""Peers who may sit on a peer team, and the rules their selection follows.

A peer is a councillor or an officer of a council, or one of the LGA's own peer challenge
managers (`kind="challenge_manager"`, no home council). A peer challenge manager runs the
team but is not one of its peers: the team size (4 to 7 by default) counts councillors and
officers only, and the manager is added on top when the kind of case calls for one.

A peer's personal data (name, political group, declared interests) can be erased from the
pool on request (see docs/data-protection.md). An erased peer stays in the pool as the rest of
its row, `erased` set, named `ERASED_NAME`, with no group and no interests: what the rules
read from those fields is then known only from the selections that recorded it.

`synthetic_pool` makes a reproducible pool over any councils, for demos, tests and benchmarks.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.councils import BUILT_IN_COUNCILS, Council
from domain.vocabulary import CORE_ELEMENTS, CaseKind, GssCode, ScopeArea, ShortText


class PeerKind(StrEnum):
    COUNCILLOR = "councillor"
    OFFICER = "officer"
    CHALLENGE_MANAGER = "challenge_manager"
    """An LGA officer who manages the peer challenge; has no home council."""


class Seniority(StrEnum):
    """An officer's rank, most senior first."""

    CHIEF_EXECUTIVE = "chief_executive"
    DIRECTOR = "director"
    HEAD_OF_SERVICE = "head_of_service"
    OFFICER = "officer"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


DateRange = tuple[date, date]
"""First and last day, both included."""

PERSONAL_FIELDS = ("name", "political_group", "declared_interests")
"""What erasure removes from the pool: who the peer is, their political opinion (special
category data) and the councils they declared an interest in."""

ERASED_NAME = "(erased)"
"""The name an erased peer is shown by."""


class Peer(BaseModel):
    """One person in the peer pool, as the selection rules need to see them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peer_id: ShortText
    name: ShortText
    kind: PeerKind
    home_council: GssCode | None = None
    """The council the peer serves; None only for an LGA challenge manager."""
    political_group: ShortText | None = None
    """Councillors only, e.g. `labour`, `conservative`, `independent`."""
    seniority: Seniority | None = None
    """Officers only."""
    specialisms: list[ScopeArea] = Field(default_factory=list, max_length=40)
    accredited_until: date | None = None
    """Last day of the peer's LGA accreditation; None if never accredited."""
    unavailable: list[DateRange] = Field(default_factory=list, max_length=400)
    days_served_last_3_years: int = Field(default=0, ge=0, le=3 * 366)
    """Days on peer teams within the fairness window (see `SelectionRules`), as of selection."""
    former_employers: list[tuple[GssCode, date]] = Field(default_factory=list, max_length=100)
    """(council, last day employed there)."""
    declared_interests: list[GssCode] = Field(default_factory=list, max_length=100)
    erased: bool = Field(default=False, exclude=True)
    """The personal fields were erased: `name` is `ERASED_NAME`, the group and interests
    unknown. Never part of a dump: a pool file or a digest holds only real peers."""

    @field_validator("unavailable")
    @classmethod
    def _ranges_in_order(cls, ranges: list[DateRange]) -> list[DateRange]:
        for first, last in ranges:
            if last < first:
                raise ValueError(f"unavailable range ends ({last}) before it starts ({first})")
        return ranges

    @model_validator(mode="after")
    def _consistent_with_kind(self) -> Self:
        if self.erased:
            if (self.name, self.political_group, self.declared_interests) != (ERASED_NAME,
                                                                              None, []):
                raise ValueError("an erased peer keeps no name, group or interests")
        elif self.name == ERASED_NAME:
            raise ValueError(f"{ERASED_NAME} is the name of an erased peer")
        if self.kind == PeerKind.CHALLENGE_MANAGER:
            if self.home_council is not None:
                raise ValueError("a challenge manager works for the LGA: no home council")
        elif self.home_council is None:
            raise ValueError(f"a {self.kind.value} peer needs a home council")
        if self.kind == PeerKind.COUNCILLOR:
            if self.political_group is None and not self.erased:
                raise ValueError("a councillor peer needs a political group")
            if self.seniority is not None:
                raise ValueError("seniority is for officers; a councillor has a group")
        else:
            if self.political_group is not None:
                raise ValueError(f"a political group is for councillors, not a {self.kind.value}")
            if self.kind == PeerKind.OFFICER and self.seniority is None:
                raise ValueError("an officer peer needs a seniority")
        return self

    def without_personal_data(self) -> Peer:
        """This peer as the pool holds them once their personal data is erased."""
        return Peer.model_validate({**self.model_dump(), "name": ERASED_NAME,
                                    "political_group": None, "declared_interests": [],
                                    "erased": True})


class TeamShape(BaseModel):
    """Who a team of one kind of case needs, besides the size bounds of `SelectionRules`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lead_member: bool = True
    """A councillor leads for the members."""
    lead_officer_ranks: tuple[Seniority, ...] = (Seniority.CHIEF_EXECUTIVE,)
    """Ranks a lead officer peer may hold; empty for no lead officer."""
    member_peers: int = Field(default=2, ge=0, le=7)
    """Councillors on the team, the lead member included."""
    political_balance: bool = True
    """No single political group holds a majority of the member peers."""
    cover_scope: bool = True
    """Every area of the case's scope is a specialism of at least one officer peer."""
    challenge_manager: bool = True
    """An LGA peer challenge manager joins the team (not counted in its size)."""

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.lead_member and self.member_peers < 1:
            raise ValueError("a lead member is one of the member peers: member_peers >= 1")
        if self.political_balance and self.member_peers == 1:
            raise ValueError("one member peer cannot be politically balanced: "
                             "use 0 or at least 2, or turn political_balance off")
        return self


CORPORATE_PEER_CHALLENGE_SHAPE = TeamShape()
"""A lead member peer, a lead officer peer of chief-executive rank, a second member peer from
another political group, officer peers covering the scope, and an LGA challenge manager."""

SERVICE_CHALLENGE_SHAPE = TeamShape(
    lead_officer_ranks=(Seniority.CHIEF_EXECUTIVE, Seniority.DIRECTOR),
    member_peers=1, political_balance=False,
)
"""Finance, service and recovery reviews: led by a chief executive or a director, one member
peer, officer peers covering the scope, and a challenge manager."""

DEFAULT_SHAPES: Mapping[CaseKind, TeamShape] = MappingProxyType({
    kind: CORPORATE_PEER_CHALLENGE_SHAPE if kind == CaseKind.CORPORATE_PEER_CHALLENGE
    else SERVICE_CHALLENGE_SHAPE
    for kind in CaseKind
})


class SelectionRules(BaseModel):
    """The configurable part of peer selection. No floats, so it can be recorded in an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_distance_km: int = Field(default=50, ge=0, le=2000)
    """A peer's council must be at least this far from the subject council."""
    cooling_off_years: int = Field(default=5, ge=0, le=50)
    """No peer who worked for the subject council within this many years before the visit."""
    min_team_size: int = Field(default=4, ge=1, le=11)
    max_team_size: int = Field(default=7, ge=1, le=11)
    """Bounds on the peers (councillors and officers); a challenge manager comes on top (so a
    team never exceeds the 12 places of `PeerTeamProposed`)."""
    fairness_window_years: int = Field(default=3, ge=1, le=10)
    """The window `Peer.days_served_last_3_years` is counted over (by whoever loads the pool)."""
    shapes: dict[CaseKind, TeamShape] = Field(default_factory=lambda: dict(DEFAULT_SHAPES))

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.max_team_size < self.min_team_size:
            raise ValueError(f"max_team_size {self.max_team_size} < min_team_size "
                             f"{self.min_team_size}")
        for kind in CaseKind:
            shape = self.shape(kind)
            needed = shape.member_peers + int(bool(shape.lead_officer_ranks))
            if needed > self.max_team_size:
                raise ValueError(f"the {kind.value} team needs {needed} peers, more than "
                                 f"max_team_size {self.max_team_size}")
        return self

    def shape(self, kind: CaseKind) -> TeamShape:
        return self.shapes.get(kind, DEFAULT_SHAPES[kind])


# --- synthetic pools ------------------------------------------------------------------------

SPECIALISMS = (
    *CORE_ELEMENTS,
    "finance", "governance", "childrens_services", "adult_social_care", "planning",
    "housing", "communications", "economic_development", "climate", "digital", "workforce",
)
"""The specialisms `synthetic_pool` gives its officers (the five core elements among them)."""

POLITICAL_GROUPS = (("labour", 34), ("conservative", 30), ("liberal_democrat", 14),
                    ("independent", 10), ("green", 6), ("reform", 6))
"""Groups and weights for `synthetic_pool`'s councillors."""

_RANKS = ((Seniority.CHIEF_EXECUTIVE, 14), (Seniority.DIRECTOR, 30),
          (Seniority.HEAD_OF_SERVICE, 30), (Seniority.OFFICER, 26))
_FIRST = ("Aisha", "Ben", "Ceri", "Dev", "Eleri", "Femi", "Gwen", "Hamid", "Iona", "Jack",
          "Kiran", "Lowri", "Mo", "Nia", "Owen", "Priya", "Rhys", "Siân", "Tom", "Una")
_LAST = ("Ahmed", "Baker", "Clarke", "Davies", "Evans", "Fletcher", "Green", "Hughes", "Iqbal",
         "Jones", "Khan", "Lewis", "Morgan", "Nolan", "Owen", "Patel", "Roberts", "Smith")


def synthetic_pool(councils: Sequence[Council], size: int, seed: int, *, as_of: date,
                   challenge_managers: int = 30) -> list[Peer]:
    """`size` made-up councillors and officers spread evenly over `councils` (peer `i` serves
    `councils[i % len(councils)]`), plus `challenge_managers` LGA managers. The same arguments
    always give the same pool. About 45% councillors; officers of every rank, 14% of them chief
    executives; accreditation ending at any day from four months before `as_of` to 30 months
    after it (3% never accredited); up to three unavailable spells of up to a month in the
    next 18 months; a former employer for 20% and a declared interest for 10%, among the same
    councils; 0 to 20 days served."""
    if not councils:
        raise ValueError("a pool needs at least one council")
    rng = random.Random(seed)
    groups = [g for g, _ in POLITICAL_GROUPS]
    group_weights = [w for _, w in POLITICAL_GROUPS]
    ranks = [r for r, _ in _RANKS]
    rank_weights = [w for _, w in _RANKS]
    peers: list[Peer] = []

    def common() -> dict[str, Any]:
        accredited = as_of + timedelta(days=rng.randint(-120, 900))
        unavailable: list[DateRange] = []
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            start = as_of + timedelta(days=rng.randint(0, 540))
            unavailable.append((start, start + timedelta(days=rng.randint(0, 30))))
        former: list[tuple[str, date]] = []
        if rng.random() < 0.2:
            former.append((rng.choice(councils).gss_code,
                           as_of - timedelta(days=rng.randint(30, 15 * 365))))
        interests = [rng.choice(councils).gss_code] if rng.random() < 0.1 else []
        return {
            "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            "accredited_until": accredited if rng.random() < 0.97 else None,
            "unavailable": unavailable,
            "days_served_last_3_years": rng.choice((0, 0, 0, 2, 3, 3, 5, 6, 8, 10, 12, 15, 20)),
            "former_employers": former,
            "declared_interests": interests,
        }

    width = len(str(max(size, 1)))
    for index in range(size):
        council = councils[index % len(councils)]
        base = common()
        peer_id = f"P{index:0{width}d}"
        if rng.random() < 0.45:
            peers.append(Peer(peer_id=peer_id, kind=PeerKind.COUNCILLOR,
                              home_council=council.gss_code,
                              political_group=rng.choices(groups, group_weights)[0],
                              specialisms=rng.sample(SPECIALISMS, rng.randint(0, 2)),
                              **base))
        else:
            peers.append(Peer(peer_id=peer_id, kind=PeerKind.OFFICER,
                              home_council=council.gss_code,
                              seniority=rng.choices(ranks, rank_weights)[0],
                              specialisms=rng.sample(SPECIALISMS, rng.randint(1, 4)),
                              **base))
    for index in range(challenge_managers):
        base = common()
        base["former_employers"] = []
        peers.append(Peer(peer_id=f"LGA{index:03d}", kind=PeerKind.CHALLENGE_MANAGER,
                          **base))
    return peers


def demo_pool(as_of: date, seed: int = 2026) -> list[Peer]:
    """A pool of 300 peers over the built-in councils, for demos without the register."""
    return synthetic_pool(list(BUILT_IN_COUNCILS.values()), 300, seed, as_of=as_of,
                          challenge_managers=6)
