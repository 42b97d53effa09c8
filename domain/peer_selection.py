"""Propose a peer team: who may sit on it, who is chosen, and why.

Pure and deterministic: the same subject, councils, pool, scope, kind, visit dates, rules,
seed and exclusions always give the same team and the same decisions, whatever order the
pool comes in. `random.Random(seed)` is the only source of chance.

Eligibility (each peer is assessed once; the first rule it breaks excludes it, in this order):
objected to by the council; from the subject council; home council not in the register; same
county; same combined authority; within `min_distance_km`; worked for the subject council
within `cooling_off_years` before the visit; declared an interest in it; not accredited through
the last visit day; unavailable on a visit day. The LGA's challenge managers have no home
council, so only the personal rules (objection, cooling-off, interest, accreditation,
availability) apply to them.

Fairness: the eligible peers are ordered by days served in the fairness window, fewest first;
ties fall in the order of a seeded shuffle of the whole pool (sorted by peer id, each position
given a 32-bit key by `random.Random(seed)`). The seed is recorded with the selection. Because
the shuffle covers the whole pool, excluding a peer after an objection leaves every other
peer's place in the order unchanged: a re-selection usually replaces only the objected peer
(others move only when the rules make them, e.g. a member peer taking the lead's seat).

Team (see `domain.peers.TeamShape`), filled in this order, each seat taking the first peer of
the fairness order who fits:

1. lead officer peer of one of the shape's ranks (chief executive for a corporate challenge);
2. lead member peer (a councillor);
3. further member peers up to the shape's number, no political group holding a majority of
   the member peers (with two member peers: two different groups);
4. officer peers until every scope area is a specialism of some officer on the team; while
   there are seats enough, the fairest officer with the first uncovered area, and once seats
   run short the officer covering the most uncovered areas (fairest among equals);
5. further peers, officers or councillors in fairness order (a councillor only if the member
   peers stay balanced), up to `min_team_size`;
6. an LGA challenge manager, outside the 4-7 count, if the shape asks for one.

A seat that nobody can fill raises `TeamCannotBeFilled` naming the requirement and counting,
among the peers who could have filled it, how many each rule excluded.

What an event records (`Selection.to_event`): the team, the inputs, and for every pool peer its
id and reason code, never the words; `reproduce` re-runs the selection from the pool the event
names and derives the words again. A peer whose personal data was erased from the pool since
(`Peer.erased`) cannot be chosen by a new selection (reason `erased`); in a re-run, what the
rules would have read from their erased fields (a declared interest, a political group) is taken
from the record instead, and the re-run says for whom (`Selection.from_record`).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import NamedTuple, overload

from domain.councils import Council, haversine_km
from domain.events import (
    MAX_REASONS,
    PeerPlace,
    PeerRole,
    PeerSelectionRecord,
    PeerTeamCannotBeFilled,
    PeerTeamProposed,
    ReasonCode,
    ReasonCodes,
)
from domain.peers import Peer, PeerKind, SelectionRules, Seniority, TeamShape
from domain.vocabulary import CaseKind

ALGORITHM = "peer-selection/1"
"""Named in every rationale's first line. Change it whenever a change to this module could
give a different team for the same inputs, so an old proposal is replayed knowingly."""

MAX_SEED = 2**53
"""Seeds run from 0 to 2**53 - 1, so one survives a round trip through any JSON reader."""

SHORT_SPELL_DAYS = 64
SPELL_REACH = timedelta(days=SHORT_SPELL_DAYS)

RATIONALE_LINE = 200
"""Longest rationale line, as `PeerTeamProposed.rationale` takes them."""


Rule = ReasonCode
"""The rule that decided a candidate: the first one it broke, or ELIGIBLE (its code is what an
event records)."""

_AFTER_INTEREST = frozenset({Rule.ACCREDITATION, Rule.AVAILABILITY})
"""The rules assessed after the declared-interest rule: an erased peer's declared interest
would have come before them."""

LEFT_THE_POOL = "personal data erased from the pool on request"
"""The reason of an erased peer in a new selection."""

WORDS_ERASED = "(words erased with the peer's personal data)"
"""The reason shown for an erased peer when a selection is re-run: the code stays, the words
that would say more about them do not."""


class CandidateDecision(NamedTuple):
    """Why one peer of the pool was admitted or excluded, and the seat they got, if any."""

    peer_id: str
    admitted: bool
    rule: Rule
    reason: str
    role: PeerRole | None = None

    def line(self) -> str:
        verdict = "admitted" if self.admitted else "excluded"
        seat = f"; selected as {self.role}" if self.role else ""
        return _clip(f"{self.peer_id}: {verdict} ({self.rule.value}) {self.reason}{seat}")


@dataclass(frozen=True)
class Selection:
    """A proposed team, every candidate's decision (in peer-id order), and the inputs that,
    with the same pool, reproduce it exactly."""

    team: list[PeerPlace]
    seed: int
    subject: str
    kind: CaseKind
    scope: tuple[str, ...]
    visit_from: date
    visit_to: date
    rules: SelectionRules
    excluded: tuple[str, ...]
    """Peer ids objected to, sorted."""
    decide: Callable[[], list[CandidateDecision]] = field(repr=False, compare=False)
    """Makes `considered` from what `select_team` worked out (see there)."""
    from_record: tuple[str, ...] = ()
    """Peers whose decision rested on erased data (theirs, or the group of an erased member
    already seated), taken from the record (a re-run only; sorted)."""

    @cached_property
    def considered(self) -> list[CandidateDecision]:
        """Every peer of the pool, in peer-id order, with the rule that admitted or excluded
        it and the seat it got. Every rule and reason is settled by `select_team`; the list
        itself is built on first use (it is the bulk of the work for a large pool)."""
        return self.decide()

    @property
    def peer_ids(self) -> list[str]:
        return [p.peer_id for p in self.team]

    def header(self) -> list[str]:
        """The first two rationale lines: algorithm, seed, case and visit; then the rules."""
        r = self.rules
        return [
            _clip(f"{ALGORITHM}; seed {self.seed}; {self.kind.value} at {self.subject}; visit "
                  f"{self.visit_from} to {self.visit_to}"),
            _clip(f"rules: {r.min_distance_km} km, {r.cooling_off_years}-year cooling off, "
                  f"{r.min_team_size}-{r.max_team_size} peers, days served over "
                  f"{r.fairness_window_years} years; {len(self.excluded)} objected to"),
        ]

    def rationale(self, max_lines: int = 10_000) -> list[str]:
        """Lines of at most 200 characters for `PeerTeamProposed.rationale`: the header, then
        one line per candidate (peer-id order). If that is more than `max_lines`, the header,
        the team's lines, a count of the excluded by rule, then the other admitted ones."""
        lines = [*self.header(), *(d.line() for d in self.considered)]
        if len(lines) <= max_lines:
            return lines
        seat = {place.peer_id: i for i, place in enumerate(self.team)}
        selected = [d.line() for d in sorted((d for d in self.considered if d.role is not None),
                                             key=lambda d: seat[d.peer_id])]
        admitted = [d.line() for d in self.considered if d.admitted and d.role is None]
        counts: dict[Rule, int] = {}
        for d in self.considered:
            if not d.admitted:
                counts[d.rule] = counts.get(d.rule, 0) + 1
        summary = [f"excluded by {rule.value}: {counts[rule]} peers"
                   for rule in Rule if rule in counts]
        return [*self.header(), *selected, *summary, *admitted][:max_lines]

    def reasons(self) -> ReasonCodes | None:
        """Every candidate's id under its reason code, for the event (None for a pool of more
        than `MAX_REASONS` peers)."""
        return codes_of(self.considered)

    def record(self, pool_version: int, pool_digest: str,
               councils_digest: str | None = None) -> PeerSelectionRecord:
        """Every input of this selection, for its event; the pool is named, not copied."""
        return PeerSelectionRecord(
            algorithm=ALGORITHM, seed=self.seed, pool_version=pool_version,
            pool_digest=pool_digest, scope=list(self.scope), visit_from=self.visit_from,
            visit_to=self.visit_to, rules=self.rules, excluded=list(self.excluded),
            councils_digest=councils_digest)

    def to_event(self, pool_version: int, pool_digest: str,
                 councils_digest: str | None = None) -> PeerTeamProposed:
        """The `PeerTeamProposed` event of this selection: the team, the header of the
        rationale, every candidate's reason code, and the inputs that reproduce it from pool
        `pool_version` (whose digest is `pool_digest`). No candidate's words: they would copy
        what the pool says about each peer into a record that is never erased."""
        return PeerTeamProposed(team=self.team, rationale=self.header(), selected_by="engine",
                                selection=self.record(pool_version, pool_digest,
                                                      councils_digest),
                                reasons=self.reasons())


def codes_of(considered: Sequence[CandidateDecision]) -> ReasonCodes | None:
    """Peer ids grouped under their reason codes (in the codes' order, ids in the order
    given); None for more than `MAX_REASONS` peers."""
    if len(considered) > MAX_REASONS:
        return None
    grouped: dict[ReasonCode, list[str]] = {}
    for decision in considered:
        grouped.setdefault(decision.rule, []).append(decision.peer_id)
    return {code: grouped[code] for code in ReasonCode if code in grouped}


@dataclass(frozen=True)
class RecordedOutcome:
    """What an event recorded, for re-running its selection on a pool from which some peers'
    personal data has since been erased: each peer's reason code, and the member peers (the
    lead member first, then the others in the order they were seated)."""

    codes: Mapping[str, ReasonCode]
    members: tuple[str, ...]

    @classmethod
    def of(cls, event: PeerTeamProposed | PeerTeamCannotBeFilled) -> RecordedOutcome:
        codes = {peer_id: code for code, ids in (event.reasons or {}).items()
                 for peer_id in ids}
        members = (tuple(p.peer_id for p in event.team if p.role in ("lead_member", "member"))
                   if isinstance(event, PeerTeamProposed) else ())
        return cls(codes, members)


class TeamCannotBeFilled(ValueError):
    """No eligible peer is left for a requirement of the team's shape.

    `requirement` is one of lead_officer, lead_member, member_peers, specialism:<area>,
    team_size, challenge_manager; `reason` says how the candidates for it ran out."""

    def __init__(self, requirement: str, reason: str, *, seed: int,
                 considered: Sequence[CandidateDecision],
                 recorded_reason: str | None = None) -> None:
        super().__init__(reason)
        self.requirement = requirement
        self.reason = reason
        self.recorded_reason = reason if recorded_reason is None else recorded_reason
        """The reason as the event records it: counts, and no political group by name."""
        self.seed = seed
        self.considered = list(considered)
        self.from_record: tuple[str, ...] = ()


# --- eligibility ----------------------------------------------------------------------------


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


class PeerPool(Sequence[Peer]):
    """A pool of peers sorted by id, with the indexes selection needs, built once.

    `select_team` accepts any sequence of peers and builds one each time; pass a `PeerPool`
    to build it once for many selections. Raises ValueError if a peer id appears twice."""

    def __init__(self, peers: Iterable[Peer]) -> None:
        ordered = sorted(peers, key=lambda p: p.peer_id)
        for before, after in itertools.pairwise(ordered):
            if before.peer_id == after.peer_id:
                raise ValueError(f"peer {before.peer_id} appears twice in the pool")
        self.peers: tuple[Peer, ...] = tuple(ordered)
        self.positions: dict[str, int] = {p.peer_id: i for i, p in enumerate(ordered)}
        self.by_council: dict[str, list[int]] = {}
        self.former: dict[str, list[tuple[int, date]]] = {}
        self.interests: dict[str, list[int]] = {}
        self.never_accredited: list[int] = []
        accredited: list[tuple[date, int]] = []
        spells: list[tuple[date, date, int]] = []
        self.days: list[int] = [p.days_served_last_3_years for p in ordered]
        self.kinds: list[PeerKind] = [p.kind for p in ordered]
        self.specialisms: list[frozenset[str]] = [frozenset(p.specialisms) for p in ordered]
        self.erased: tuple[int, ...] = tuple(i for i, p in enumerate(ordered) if p.erased)
        for i, peer in enumerate(ordered):
            if peer.home_council is not None:
                self.by_council.setdefault(peer.home_council, []).append(i)
            for council, until in peer.former_employers:
                self.former.setdefault(council, []).append((i, until))
            for council in dict.fromkeys(peer.declared_interests):
                self.interests.setdefault(council, []).append(i)
            if peer.accredited_until is None:
                self.never_accredited.append(i)
            else:
                accredited.append((peer.accredited_until, i))
            for first, last in peer.unavailable:
                spells.append((first, last, i))
        text: dict[date, str] = {}  # each day written out once: formatting dates is slow

        def iso(day: date) -> str:
            found = text.get(day)
            if found is None:
                found = text[day] = day.isoformat()
            return found

        accredited.sort()
        self.accredited_until = [until for until, _ in accredited]
        """The last day of every accreditation, in order, for a bisection per selection."""
        self.lapsing = [(i, "accreditation lapses on " + iso(until)
                         + ", before the visit ends on ") for until, i in accredited]
        spells.sort()
        short = [s for s in spells if s[1] - s[0] < SPELL_REACH]
        self.spell_starts = [first for first, _, _ in short]
        self.short_spells = [(last, i, "unavailable from " + iso(first) + " to " + iso(last))
                             for first, last, i in short]
        """Unavailable spells shorter than `SHORT_SPELL_DAYS`, by first day (then last day):
        the ones that can overlap a visit lie in one slice, found by bisection."""
        self.long_spells = [(first, last, i, "unavailable from " + iso(first) + " to " + iso(last))
                            for first, last, i in spells if last - first >= SPELL_REACH]

    def __len__(self) -> int:
        return len(self.peers)

    @overload
    def __getitem__(self, index: int) -> Peer: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Peer]: ...

    def __getitem__(self, index: int | slice) -> Peer | Sequence[Peer]:
        return self.peers[index]


Verdict = tuple[Rule, str] | None


@dataclass
class _Assessor:
    """Assesses peers against one subject, visit and rule set; caches per-council verdicts."""

    subject: Council
    councils: Mapping[str, Council]
    rules: SelectionRules
    visit_from: date
    visit_to: date
    excluded: frozenset[str]
    recorded: RecordedOutcome | None = None
    """In a re-run: the record, which answers for erased peers' erased fields."""
    from_record: list[str] = field(default_factory=list)
    """Peers whose decision was taken from `recorded`."""
    cooling_from: date = field(init=False)
    _by_council: dict[str, Verdict] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.cooling_from = _years_before(self.visit_from, self.rules.cooling_off_years)

    def locality(self, gss: str) -> Verdict:
        if gss not in self._by_council:
            self._by_council[gss] = self._locality(gss)
        return self._by_council[gss]

    def _locality(self, gss: str) -> Verdict:
        subject = self.subject
        if gss == subject.gss_code:
            return Rule.SUBJECT_COUNCIL, f"serves {subject.short_name}, the subject council"
        council = self.councils.get(gss)
        if council is None:
            return Rule.UNKNOWN_COUNCIL, f"home council {gss} is not in the register"
        area = subject.county_area
        if area is not None and council.county_area == area:
            return Rule.SAME_COUNTY, (f"{council.short_name} is in the same county ({area}) as "
                                      f"{subject.short_name}")
        authority = subject.combined_authority
        if authority is not None and council.combined_authority == authority:
            return Rule.SAME_COMBINED_AUTHORITY, (
                f"{council.short_name} is in the same combined authority ({authority}) as "
                f"{subject.short_name}")
        limit = self.rules.min_distance_km
        if limit > 0:
            if (subject.lat is None or subject.long is None or council.lat is None
                    or council.long is None):
                return Rule.DISTANCE, (f"the distance from {council.short_name} to "
                                       f"{subject.short_name} is unknown (no position)")
            km = haversine_km(subject.lat, subject.long, council.lat, council.long)
            if km < limit:
                return Rule.DISTANCE, (f"{council.short_name} is {km:.0f} km from "
                                       f"{subject.short_name}, under {limit} km")
        return None

    def verdicts(self, pool: PeerPool) -> list[Verdict]:
        """For every peer of `pool`, in its order, the first rule it breaks with the reason,
        or None if it is eligible. Each rule goes through the pool's index for it (council,
        former employer, interest, accreditation date, unavailable spell), so a selection
        looks only at the peers a rule concerns, never at every rule for every peer."""
        verdicts: list[Verdict] = [None] * len(pool)
        for gss, members in pool.by_council.items():
            local = self.locality(gss)
            if local is not None:
                for i in members:
                    verdicts[i] = local
        subject = self.subject
        for i, until in pool.former.get(subject.gss_code, ()):
            if verdicts[i] is None and until >= self.cooling_from:
                verdicts[i] = (Rule.COOLING_OFF, (
                    f"worked for {subject.short_name} until {until}, within "
                    f"{self.rules.cooling_off_years} years of the visit"))
        interest: Verdict = (Rule.DECLARED_INTEREST,
                             f"declared an interest in {subject.short_name}")
        for i in pool.interests.get(subject.gss_code, ()):
            if verdicts[i] is None:
                verdicts[i] = interest
        never: Verdict = (Rule.ACCREDITATION, "not accredited")
        for i in pool.never_accredited:
            if verdicts[i] is None:
                verdicts[i] = never
        visit_from, visit_to = self.visit_from, self.visit_to
        lapsing = bisect.bisect_left(pool.accredited_until, visit_to)
        visit_ends = str(visit_to)
        for i, text in itertools.islice(pool.lapsing, lapsing):
            if verdicts[i] is None:
                verdicts[i] = (Rule.ACCREDITATION, text + visit_ends)
        low = bisect.bisect_left(pool.spell_starts, visit_from - SPELL_REACH)
        high = bisect.bisect_right(pool.spell_starts, visit_to)
        for last, i, text in itertools.islice(pool.short_spells, low, high):
            if last >= visit_from and verdicts[i] is None:
                verdicts[i] = (Rule.AVAILABILITY, text)
        for first, last, i, text in pool.long_spells:
            if first <= visit_to and last >= visit_from and verdicts[i] is None:
                verdicts[i] = (Rule.AVAILABILITY, text)
        if pool.erased:
            self.erased(pool, verdicts)
        objected: Verdict = (Rule.OBJECTED, "objected to by the council")
        for peer_id in self.excluded:
            index = pool.positions.get(peer_id)
            if index is not None:
                verdicts[index] = objected
        return verdicts

    def erased(self, pool: PeerPool, verdicts: list[Verdict]) -> None:
        """Erased peers: out of a new selection; in a re-run, their declared interest (which
        would have come before accreditation and availability) is what the record says."""
        recorded = self.recorded
        for i in pool.erased:
            if recorded is None:
                verdicts[i] = (Rule.ERASED, LEFT_THE_POOL)
                continue
            peer_id = pool.peers[i].peer_id
            code = recorded.codes.get(peer_id)
            if code == Rule.ERASED:
                verdicts[i] = (Rule.ERASED, LEFT_THE_POOL)
                continue
            verdict = verdicts[i]
            if verdict is None or verdict[0] in _AFTER_INTEREST:
                self.from_record.append(peer_id)
                if code == Rule.DECLARED_INTEREST:
                    verdicts[i] = (Rule.DECLARED_INTEREST, WORDS_ERASED)

    def phrase(self, rule: Rule) -> str:
        """How `rule` reads after a count: '9 from councils within 50 km'."""
        s = self.subject.short_name
        return {
            Rule.OBJECTED: "objected to by the council",
            Rule.SUBJECT_COUNCIL: f"from {s} itself",
            Rule.UNKNOWN_COUNCIL: "from councils not in the register",
            Rule.SAME_COUNTY: f"from the same county ({self.subject.county_area})",
            Rule.SAME_COMBINED_AUTHORITY:
                f"from the same combined authority ({self.subject.combined_authority})",
            Rule.DISTANCE: f"from councils within {self.rules.min_distance_km} km",
            Rule.COOLING_OFF: f"who worked for {s} within {self.rules.cooling_off_years} years",
            Rule.DECLARED_INTEREST: f"who declared an interest in {s}",
            Rule.ACCREDITATION: f"not accredited through {self.visit_to}",
            Rule.AVAILABILITY: f"unavailable between {self.visit_from} and {self.visit_to}",
            Rule.ERASED: "whose personal data was erased",
            Rule.ELIGIBLE: "eligible",
        }[rule]


def assess_peer(peer: Peer, subject: Council, councils: Mapping[str, Council],
                visit_from: date, visit_to: date, rules: SelectionRules,
                excluded: Iterable[str] = ()) -> CandidateDecision:
    """One peer's eligibility alone (e.g. to check a team proposed by hand)."""
    assessor = _Assessor(subject, councils, rules, visit_from, visit_to, frozenset(excluded))
    verdict = assessor.verdicts(PeerPool([peer]))[0]
    if verdict is None:
        return CandidateDecision(peer.peer_id, True, Rule.ELIGIBLE,
                                 f"eligible; {peer.days_served_last_3_years} days served in the "
                                 f"last {rules.fairness_window_years} years")
    return CandidateDecision(peer.peer_id, False, *verdict)


# --- selection ------------------------------------------------------------------------------


def _clip(text: str) -> str:
    return text if len(text) <= RATIONALE_LINE else text[: RATIONALE_LINE - 1] + "…"


def _words(area: str) -> str:
    return area.replace("_", " ")


class _Builder:
    """Fills the seats of one team from the fairness order."""

    def __init__(self, assessor: _Assessor, pool: PeerPool, fair: list[int],
                 verdicts: list[Verdict], shape: TeamShape, seed: int,
                 decide: Callable[[], list[CandidateDecision]]) -> None:
        self.assessor = assessor
        self.rules = assessor.rules
        self.pool = pool
        peers, kinds = pool.peers, pool.kinds
        self.fair = [peers[i] for i in fair]
        self.verdicts = verdicts
        self.shape = shape
        self.seed = seed
        officer, councillor = PeerKind.OFFICER, PeerKind.COUNCILLOR
        self.officers = [i for i in fair if kinds[i] == officer]
        self.officer_peers = [peers[i] for i in self.officers]
        self.councillors = [peers[i] for i in fair if kinds[i] == councillor]
        self.seats: list[tuple[Peer, PeerRole]] = []
        self.chosen: set[str] = set()
        self.groups: dict[str, int] = {}
        self.erased_members = 0
        """Member peers on the team whose group was erased (a re-run only)."""
        self.members = 0
        self.covered: set[str] = set()
        self.decide = decide

    @property
    def size(self) -> int:
        """Peers on the team, the challenge manager not counted."""
        return sum(1 for _, role in self.seats if role != "challenge_manager")

    def take(self, peer: Peer, role: PeerRole) -> None:
        self.seats.append((peer, role))
        self.chosen.add(peer.peer_id)
        if peer.kind == PeerKind.COUNCILLOR:
            if peer.political_group is None:
                self.erased_members += 1
            else:
                self.groups[peer.political_group] = self.groups.get(peer.political_group, 0) + 1
            self.members += 1
        elif peer.kind == PeerKind.OFFICER:
            self.covered.update(peer.specialisms)

    def first(self, candidates: Iterable[Peer], fits: Callable[[Peer], bool]) -> Peer | None:
        for peer in candidates:
            if peer.peer_id not in self.chosen and fits(peer):
                return peer
        return None

    def balanced_with(self, peer: Peer, cap: int) -> bool:
        """Whether the team's groups stay within `cap` with `peer` too. Where an erased group
        (the peer's, or a member's already seated) could tip it, the record says."""
        group = peer.political_group
        held = (self.groups.get(group, 0) if group is not None
                else max(self.groups.values(), default=0))
        if group is not None and held + 1 > cap:
            return False
        if held + self.erased_members + 1 <= cap:
            return True
        return self.from_record(peer)

    def from_record(self, peer: Peer) -> bool:
        """Whether the recorded selection seated `peer` here: councillors are seated in the
        recorded team's order, so they were if and only if they are the next recorded member
        not yet seated (the re-run has seated the same peers so far, or the teams differ and
        the comparison says so)."""
        recorded = self.assessor.recorded
        assert recorded is not None, "only a re-run meets an erased group"
        self.assessor.from_record.append(peer.peer_id)
        upcoming = next((m for m in recorded.members if m not in self.chosen), None)
        return peer.peer_id == upcoming

    def cannot(self, requirement: str, what: str, kinds: Callable[[Peer], bool],
               extra: Callable[[Peer], tuple[str, str] | None] | None = None,
               recorded_what: str | None = None) -> TeamCannotBeFilled:
        """The error for a seat no one can take: counts, among the pool's peers who could
        have taken it, how many each rule excluded (and why eligible ones did not fit).
        `extra` says why in words and in the words an event records (no political group by
        name); `recorded_what` is `what` as the event records it."""
        candidates = [(i, p) for i, p in enumerate(self.pool.peers) if kinds(p)]
        recorded_what = recorded_what or what
        if not candidates:
            reason = f"no {what}: the pool has no such peer"
            recorded = f"no {recorded_what}: the pool has no such peer"
        else:
            by_rule: dict[Rule, int] = {}
            other: dict[str, int] = {}
            withheld: dict[str, int] = {}
            for i, peer in candidates:
                verdict = self.verdicts[i]
                if verdict is not None:
                    by_rule[verdict[0]] = by_rule.get(verdict[0], 0) + 1
                elif peer.peer_id in self.chosen:
                    other["already on the team"] = other.get("already on the team", 0) + 1
                    withheld["already on the team"] = withheld.get("already on the team", 0) + 1
                elif extra is not None and (why := extra(peer)) is not None:
                    other[why[0]] = other.get(why[0], 0) + 1
                    withheld[why[1]] = withheld.get(why[1], 0) + 1
            counted = [f"{by_rule[r]} {self.assessor.phrase(r)}" for r in Rule if r in by_rule]
            considered = f"{len(candidates)} considered, "
            reason = f"no {what}: {considered}" + ", ".join(
                [*counted, *(f"{count} {why}" for why, count in sorted(other.items()))])
            recorded = f"no {recorded_what}: {considered}" + ", ".join(
                [*counted, *(f"{count} {why}" for why, count in sorted(withheld.items()))])
        return TeamCannotBeFilled(requirement, _clip_reason(reason), seed=self.seed,
                                  considered=self.decide(),
                                  recorded_reason=_clip_reason(recorded))

    def build(self, scope: Sequence[str]) -> None:
        shape, rules = self.shape, self.rules
        cap = shape.member_peers // 2 if shape.political_balance else shape.member_peers

        if shape.lead_officer_ranks:
            ranks = shape.lead_officer_ranks
            lead = self.first(self.officer_peers, lambda p: p.seniority in ranks)
            if lead is None:
                raise self.cannot(
                    "lead_officer", f"lead officer peer of {_ranks(ranks)} rank",
                    lambda p: p.kind == PeerKind.OFFICER and p.seniority in ranks)
            self.take(lead, "lead_officer")

        if shape.lead_member:
            lead = self.first(self.councillors, lambda p: True)
            if lead is None:
                raise self.cannot("lead_member", "lead member peer (a councillor)",
                                  lambda p: p.kind == PeerKind.COUNCILLOR)
            self.take(lead, "lead_member")

        while self.members < shape.member_peers:
            member = self.first(self.councillors, lambda p: self.balanced_with(p, cap))
            if member is None:
                held = ", ".join([*sorted(self.groups), *["erased"] * self.erased_members])
                wanted = (f"member peer to make {shape.member_peers} politically balanced "
                          "member peers")
                raise self.cannot(
                    "member_peers", f"{wanted} (groups on the team: {held or 'none'})",
                    lambda p: p.kind == PeerKind.COUNCILLOR,
                    lambda p: (f"of the {p.political_group or 'erased'} group, which would "
                               "hold a majority", "of a group that would hold a majority"),
                    recorded_what=wanted)
            self.take(member, "member")

        if shape.cover_scope:
            self.cover(scope)

        while self.size < rules.min_team_size:
            extra = self.first(self.fair, self.fills)
            if extra is None:
                raise self.cannot(
                    "team_size", f"peer to make the team up to {rules.min_team_size} "
                    f"(it has {self.size})",
                    lambda p: p.kind != PeerKind.CHALLENGE_MANAGER,
                    lambda p: (f"councillors of the {p.political_group or 'erased'} group, "
                               "which would hold a majority",
                               "councillors of a group that would hold a majority"))
            self.take(extra, "officer" if extra.kind == PeerKind.OFFICER else "member")

        if shape.challenge_manager:
            manager = self.first(self.fair, lambda p: p.kind == PeerKind.CHALLENGE_MANAGER)
            if manager is None:
                raise self.cannot("challenge_manager", "LGA peer challenge manager",
                                  lambda p: p.kind == PeerKind.CHALLENGE_MANAGER)
            self.take(manager, "challenge_manager")

    def fills(self, peer: Peer) -> bool:
        if peer.kind == PeerKind.OFFICER:
            return True
        if peer.kind != PeerKind.COUNCILLOR:
            return False
        if not self.shape.political_balance:
            return True
        return self.balanced_with(peer, (self.members + 1) // 2)

    def cover(self, scope: Sequence[str]) -> None:
        needed = list(dict.fromkeys(scope))
        max_size = self.rules.max_team_size
        while True:
            uncovered = [a for a in needed if a not in self.covered]
            if not uncovered:
                return
            seats = max_size - self.size
            if seats <= 0:
                raise TeamCannotBeFilled(
                    "team_size", _clip_reason(
                        f"no seat left for officer peers covering "
                        f"{', '.join(_words(a) for a in uncovered)}: the team is at its "
                        f"maximum of {max_size} peers"),
                    seed=self.seed, considered=self.decide())
            area = uncovered[0]
            pick: Peer | None
            has_area = _has_specialism(area)
            if seats >= len(uncovered):
                pick = self.first(self.officer_peers, has_area)
            else:
                pick = self._widest(uncovered)
            if pick is None:
                raise self.cannot(
                    f"specialism:{area}", f"officer peer with the specialism {_words(area)}",
                    _officer_with(area))
            self.take(pick, "officer")

    def _widest(self, uncovered: list[str]) -> Peer | None:
        """The fairest officer covering the most uncovered areas (None if nobody covers the
        first of them, so the error names it)."""
        wanted = frozenset(uncovered)
        specialisms, peers = self.pool.specialisms, self.pool.peers
        best: Peer | None = None
        best_count = 0
        for i in self.officers:
            count = len(specialisms[i] & wanted)
            if count > best_count and peers[i].peer_id not in self.chosen:
                best, best_count = peers[i], count
                if count == len(wanted):
                    break
        if best is None:
            return self.first(self.officer_peers, _has_specialism(uncovered[0]))
        return best


def _has_specialism(area: str) -> Callable[[Peer], bool]:
    return lambda peer: area in peer.specialisms


def _officer_with(area: str) -> Callable[[Peer], bool]:
    return lambda peer: peer.kind == PeerKind.OFFICER and area in peer.specialisms


def _ranks(ranks: Sequence[Seniority]) -> str:
    return " or ".join(r.label.replace("chief executive", "chief-executive") for r in ranks)


def _clip_reason(text: str) -> str:
    return text if len(text) <= 1000 else text[:999] + "…"


_ROLE_ORDER: dict[str, int] = {role: i for i, role in enumerate(
    ("lead_member", "lead_officer", "member", "officer", "challenge_manager"))}


def _shuffle_keys(seed: int, count: int) -> tuple[int, ...]:
    """The seeded shuffle: a 32-bit key for each position of the pool (peer-id order), all
    drawn at once from `random.Random(seed)`. Sorting by key (then position, for the rare
    equal keys) is a random permutation; the same seed and pool size give the same one on
    every platform and Python version (Mersenne Twister words, read little-endian)."""
    bits = random.Random(seed).getrandbits(32 * count) if count else 0
    return struct.unpack(f"<{count}I", bits.to_bytes(4 * count, "little"))


def select_team(
    subject: Council,
    councils: Mapping[str, Council],
    pool: Sequence[Peer],
    scope: Sequence[str],
    kind: CaseKind,
    visit_from: date,
    visit_to: date,
    rules: SelectionRules,
    seed: int,
    excluded: Iterable[str] = frozenset(),
    recorded: RecordedOutcome | None = None,
) -> Selection:
    """Propose a team for a case of `kind` at `subject`, visiting from `visit_from` to
    `visit_to` (both included), from `pool` (a `PeerPool`, or any sequence of peers), never
    choosing a peer in `excluded` (the peers the council objected to). Raises
    `TeamCannotBeFilled` when a seat cannot be filled, and ValueError for bad input (visit
    dates reversed, a seed outside 0..2**53-1, a peer id twice in the pool).

    `recorded` re-runs a recorded selection: it answers for what erased peers' erased fields
    would have decided (see the module's docstring); a new selection leaves erased peers out."""
    if visit_to < visit_from:
        raise ValueError(f"the visit ends ({visit_to}) before it starts ({visit_from})")
    if not 0 <= seed < MAX_SEED:
        raise ValueError(f"seed {seed} is outside 0..2**53-1")
    indexed = pool if isinstance(pool, PeerPool) else PeerPool(pool)
    objected = frozenset(excluded)
    assessor = _Assessor(subject, councils, rules, visit_from, visit_to, objected, recorded)
    verdicts = assessor.verdicts(indexed)

    fair = [i for i, verdict in enumerate(verdicts) if verdict is None]
    fair.sort(key=_shuffle_keys(seed, len(indexed)).__getitem__)
    fair.sort(key=indexed.days.__getitem__)

    roles: dict[str, PeerRole] = {}

    def decide() -> list[CandidateDecision]:
        rank = [0] * len(indexed)
        for position, i in enumerate(fair, start=1):
            rank[i] = position
        window = rules.fairness_window_years
        decisions: list[CandidateDecision] = []
        for i, peer in enumerate(indexed.peers):
            verdict = verdicts[i]
            if verdict is None:
                words = (WORDS_ERASED if peer.erased else
                         f"eligible; {peer.days_served_last_3_years} days served in the last "
                         f"{window} years; fairness rank {rank[i]}")
                decisions.append(CandidateDecision(
                    peer.peer_id, True, Rule.ELIGIBLE, words, roles.get(peer.peer_id)))
            elif peer.erased and verdict[0] not in (Rule.ERASED, Rule.OBJECTED):
                decisions.append(CandidateDecision(peer.peer_id, False, verdict[0],
                                                   WORDS_ERASED))
            else:
                decisions.append(CandidateDecision(peer.peer_id, False, *verdict))
        return decisions

    builder = _Builder(assessor, indexed, fair, verdicts, rules.shape(kind), seed, decide)
    try:
        builder.build(scope)
    except TeamCannotBeFilled as unfilled:
        unfilled.from_record = tuple(sorted(set(assessor.from_record)))
        raise

    seats = sorted(builder.seats, key=lambda s: _ROLE_ORDER[s[1]])
    roles.update((peer.peer_id, role) for peer, role in seats)
    team = [PeerPlace(peer_id=peer.peer_id, name=peer.name, role=role,
                      home_council=peer.home_council) for peer, role in seats]
    return Selection(team=team, seed=seed, subject=subject.gss_code, kind=kind,
                     scope=tuple(scope), visit_from=visit_from, visit_to=visit_to, rules=rules,
                     excluded=tuple(sorted(objected)), decide=decide,
                     from_record=tuple(sorted(set(assessor.from_record))))


def reselect(selection: Selection, subject: Council, councils: Mapping[str, Council],
             pool: Sequence[Peer], objected: Iterable[str]) -> Selection:
    """After an objection: the same inputs and seed as `selection`, with the objected peers
    (and any objected before) excluded."""
    return select_team(subject, councils, pool, selection.scope, selection.kind,
                       selection.visit_from, selection.visit_to, selection.rules,
                       selection.seed, {*selection.excluded, *objected})


def seed_for_case(case_id: str) -> int:
    """The seed of every selection for `case_id`: fixed by the case id, so nobody picks it
    and nobody can re-run the selection with seeds until a friendlier team comes up."""
    digest = hashlib.sha256(f"peer-selection:{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % MAX_SEED


def select_for_record(record: PeerSelectionRecord, subject: Council,
                      councils: Mapping[str, Council], pool: Sequence[Peer],
                      kind: CaseKind, recorded: RecordedOutcome | None = None) -> Selection:
    """Run the selection a record describes (on the pool it names: the caller loads it);
    `recorded` when re-running an event's selection (see `select_team`)."""
    if record.algorithm != ALGORITHM:
        raise ValueError(f"the selection used {record.algorithm}; this code runs {ALGORITHM}")
    return select_team(subject, councils, pool, record.scope, kind, record.visit_from,
                       record.visit_to, record.rules, record.seed, record.excluded, recorded)


def propose_or_explain(record: PeerSelectionRecord, subject: Council,
                       councils: Mapping[str, Council], pool: Sequence[Peer],
                       kind: CaseKind) -> PeerTeamProposed | PeerTeamCannotBeFilled:
    """The event an engine selection records: the team proposed, or which requirement ran
    out of candidates and why; with every pool peer's reason code either way."""
    try:
        selection = select_for_record(record, subject, councils, pool, kind)
    except TeamCannotBeFilled as unfilled:
        return _unfilled(unfilled, record)
    return selection.to_event(record.pool_version, record.pool_digest,
                              councils_digest=record.councils_digest)


def _unfilled(unfilled: TeamCannotBeFilled, record: PeerSelectionRecord) -> PeerTeamCannotBeFilled:
    return PeerTeamCannotBeFilled(requirement=unfilled.requirement,
                                  reason=_clip_reason(unfilled.recorded_reason),
                                  selection=record, reasons=codes_of(unfilled.considered))


@dataclass(frozen=True)
class Reproduction:
    """A recorded selection re-run on the pool it names: the same outcome, or where it differs;
    and every candidate's decision in words, derived from the pool now."""

    recorded: PeerTeamProposed | PeerTeamCannotBeFilled
    rerun: PeerTeamProposed | PeerTeamCannotBeFilled
    differences: list[str]
    considered: list[CandidateDecision]
    """Every pool peer, in peer-id order, as the re-run decided it (erased peers' words are
    `WORDS_ERASED`)."""
    from_record: tuple[str, ...] = ()
    """Peers whose decision rested on erased data, which the re-run took from the record."""

    @property
    def same(self) -> bool:
        return not self.differences


def reproduce(recorded: PeerTeamProposed | PeerTeamCannotBeFilled, subject: Council,
              councils: Mapping[str, Council], pool: Sequence[Peer],
              kind: CaseKind) -> Reproduction:
    """Re-run an engine selection from its event on the pool it names and compare: the team
    seat by seat (or the requirement that ran out), every peer's reason code, then the
    rationale (its header; line by line where an older event wrote words for every peer).
    An erased peer is compared by id, role, council and code: their words are gone."""
    record = recorded.selection
    if record is None:
        raise ValueError("a hand-picked team has no selection to re-run")
    indexed = pool if isinstance(pool, PeerPool) else PeerPool(pool)
    try:
        selection: Selection | None = select_for_record(record, subject, councils, indexed,
                                                        kind, RecordedOutcome.of(recorded))
    except TeamCannotBeFilled as unfilled:
        selection = None
        rerun: PeerTeamProposed | PeerTeamCannotBeFilled = _unfilled(unfilled, record)
        considered, from_record = unfilled.considered, unfilled.from_record
    else:
        assert selection is not None
        rerun = selection.to_event(record.pool_version, record.pool_digest,
                                   councils_digest=record.councils_digest)
        considered, from_record = selection.considered, selection.from_record
    erased = {indexed.peers[i].peer_id for i in indexed.erased}
    differences = _outcome_differences(recorded, rerun, erased)
    differences += _code_differences(recorded.reasons, considered)
    if (not differences and selection is not None
            and isinstance(recorded, PeerTeamProposed)):
        differences += _rationale_differences(recorded.rationale, selection)
    return Reproduction(recorded, rerun, differences, considered, from_record)


def _outcome_differences(recorded: PeerTeamProposed | PeerTeamCannotBeFilled,
                         rerun: PeerTeamProposed | PeerTeamCannotBeFilled,
                         erased: set[str]) -> list[str]:
    if isinstance(recorded, PeerTeamCannotBeFilled):
        if isinstance(rerun, PeerTeamProposed):
            return [f"the re-run gives a team of {', '.join(p.peer_id for p in rerun.team)}, "
                    f"not {recorded.requirement} unfilled"]
        if rerun.requirement != recorded.requirement:
            return [f"the re-run runs out at {rerun.requirement}, not "
                    f"{recorded.requirement}"]
        return []
    if isinstance(rerun, PeerTeamCannotBeFilled):
        return [f"the re-run cannot fill the team: {rerun.requirement}: {rerun.reason}"]
    differences: list[str] = []
    for seat in range(max(len(recorded.team), len(rerun.team))):
        was = recorded.team[seat] if seat < len(recorded.team) else None
        now = rerun.team[seat] if seat < len(rerun.team) else None
        if not _same_seat(was, now, erased):
            differences.append(f"seat {seat + 1}: recorded {_place(was)}, re-run {_place(now)}")
    return differences


def _same_seat(was: PeerPlace | None, now: PeerPlace | None, erased: set[str]) -> bool:
    """The same place; for an erased peer, the name aside (the pool no longer holds it)."""
    if was is None or now is None or now.peer_id not in erased:
        return was == now
    return was.model_copy(update={"name": now.name}) == now


def _code_differences(reasons: ReasonCodes | None,
                      considered: Sequence[CandidateDecision]) -> list[str]:
    if reasons is None:
        return []
    was = {peer_id: code for code, ids in reasons.items() for peer_id in ids}
    now = {d.peer_id: d.rule for d in considered}
    differing = [peer_id for peer_id in sorted(was.keys() | now.keys())
                 if was.get(peer_id) != now.get(peer_id)]
    if not differing:
        return []
    shown = "; ".join(f"{peer_id} recorded {was.get(peer_id, 'absent')}, re-run "
                      f"{now.get(peer_id, 'absent')}" for peer_id in differing[:5])
    more = f" and {len(differing) - 5} more" if len(differing) > 5 else ""
    return [f"{len(differing)} peers decided differently: {shown}{more}"]


def _rationale_differences(recorded: Sequence[str], selection: Selection) -> list[str]:
    """The header, or (an event from before reason codes) every line of words; an erased
    peer's line is compared up to its code."""
    header = selection.header()
    rerun = header if len(recorded) <= len(header) else selection.rationale()
    same = len(recorded) == len(rerun) and all(
        _same_line(was, now) for was, now in zip(recorded, rerun, strict=True))
    if same:
        return []
    lines = zip(recorded, rerun, strict=False)
    first = next((i for i, (a, b) in enumerate(lines) if not _same_line(a, b)),
                 min(len(recorded), len(rerun)))
    return [f"rationale line {first + 1} differs (same team)"]


def _same_line(was: str, now: str) -> bool:
    if was == now:
        return True
    cut = now.find(WORDS_ERASED)
    return cut > 0 and was.startswith(now[:cut])


def _place(place: PeerPlace | None) -> str:
    return "nobody" if place is None else f"{place.peer_id} ({place.name}, {place.role})"
