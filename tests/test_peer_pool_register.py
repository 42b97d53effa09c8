"""Peer selection over the real register: 5,000 peers spread over all 317 English councils.

The register is read from `CASES_REGISTER_CSV`, or from `../shared/data/` beside the project;
the project does not commit a copy, so without it these tests are skipped.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from domain.councils import Council, by_gss_code, english_councils, parse_register
from domain.peer_selection import PeerPool, Rule, TeamCannotBeFilled, reselect, select_team
from domain.peers import PeerKind, SelectionRules, synthetic_pool
from domain.vocabulary import CORE_ELEMENTS, CaseKind
from tests.test_domain_peer_selection import check_cannot, check_team

CPC = CaseKind.CORPORATE_PEER_CHALLENGE
AS_OF = date(2026, 6, 1)
VISIT_FROM = date(2027, 3, 1)
VISIT_TO = date(2027, 3, 4)
SUBJECTS = ("E09000008", "E08000025", "E06000001", "E06000047", "E07000223", "E10000014",
            "E07000084", "E06000052", "E08000003", "E09000001")
"""Croydon, Birmingham, Hartlepool, County Durham, Adur, Hampshire, Basingstoke and Deane,
Cornwall, Manchester, City of London."""


@pytest.fixture(scope="module")
def register(register_csv: Path) -> dict[str, Council]:
    with register_csv.open(newline="", encoding="utf-8") as handle:
        return by_gss_code(parse_register(csv.DictReader(handle)))


@pytest.fixture(scope="module")
def english(register: dict[str, Council]) -> list[Council]:
    return english_councils(register.values())


@pytest.fixture(scope="module")
def pool(english: list[Council]) -> PeerPool:
    return PeerPool(synthetic_pool(english, 5000, seed=4, as_of=AS_OF))


def test_the_register_has_317_english_councils(english: list[Council]) -> None:
    assert len(english) == 317
    assert Counter(c.type for c in english) == {
        "NMD": 164, "UA": 63, "MD": 36, "LBO": 32, "CTY": 21, "CC": 1}
    assert all(c.has_position for c in english)


def test_the_pool_spreads_5000_peers_over_every_english_council(
        english: list[Council], pool: PeerPool) -> None:
    council_peers = [p for p in pool if p.kind != PeerKind.CHALLENGE_MANAGER]
    assert len(council_peers) == 5000
    per_council = Counter(p.home_council for p in council_peers)
    assert set(per_council) == {c.gss_code for c in english}
    assert min(per_council.values()) >= 15
    kinds = Counter(p.kind for p in council_peers)
    assert 0.35 < kinds[PeerKind.COUNCILLOR] / 5000 < 0.55


@pytest.mark.parametrize("subject_code", SUBJECTS)
def test_a_corporate_peer_challenge_team_for(subject_code: str, register: dict[str, Council],
                                             pool: PeerPool) -> None:
    subject = register[subject_code]
    scope = list(CORE_ELEMENTS)
    rules = SelectionRules()
    selection = select_team(subject, register, pool, scope, CPC, VISIT_FROM, VISIT_TO, rules,
                            seed=int(subject_code[1:]))
    check_team(selection, subject, register, list(pool), scope, CPC, rules, set())
    roles = [p.role for p in selection.team]
    assert roles[:3] == ["lead_member", "lead_officer", "member"]
    assert roles[-1] == "challenge_manager"
    excluded = Counter(d.rule for d in selection.considered if not d.admitted)
    assert excluded[Rule.SUBJECT_COUNCIL] >= 15
    assert excluded[Rule.ACCREDITATION] > 0
    event = selection.to_event(pool_version=1, pool_digest="0" * 64)
    assert (event.team, event.rationale) == (selection.team, selection.header())
    assert event.reasons is not None
    assert sorted(i for ids in event.reasons.values() for i in ids) == [p.peer_id for p in pool]
    assert len(selection.rationale()) == len(pool) + 2  # the words, when shown

    objected = selection.team[1].peer_id
    again = reselect(selection, subject, register, pool, [objected])
    assert objected not in again.peer_ids
    check_team(again, subject, register, list(pool), scope, CPC, rules, {objected})


def test_neighbours_are_excluded_by_county_combined_authority_and_distance(
        register: dict[str, Council], pool: PeerPool) -> None:
    basingstoke = register["E07000084"]
    selection = select_team(basingstoke, register, pool, [], CPC, VISIT_FROM, VISIT_TO,
                            SelectionRules(), seed=1)
    rules = {d.peer_id: d.rule for d in selection.considered}
    homes = {p.peer_id: p.home_council for p in pool}
    hampshire_districts = {c.gss_code for c in register.values()
                           if c.county_area == "HAM" and c.is_english_council}
    assert len(hampshire_districts) == 12       # the county council and its 11 districts
    for peer_id, home in homes.items():
        if home in hampshire_districts and home != basingstoke.gss_code:
            assert rules[peer_id] in (Rule.SAME_COUNTY, Rule.OBJECTED), peer_id
    croydon = register["E09000008"]
    selection = select_team(croydon, register, pool, [], CPC, VISIT_FROM, VISIT_TO,
                            SelectionRules(min_distance_km=0), seed=1)
    london = {p.peer_id for p in pool if p.home_council is not None
              and register[p.home_council].combined_authority == "GLA"
              and p.home_council != croydon.gss_code}
    assert {d.rule for d in selection.considered if d.peer_id in london} == {
        Rule.SAME_COMBINED_AUTHORITY}


def test_a_wide_distance_rule_runs_out_of_lead_officers(register: dict[str, Council],
                                                        pool: PeerPool) -> None:
    birmingham = register["E08000025"]
    rules = SelectionRules(min_distance_km=400)
    with pytest.raises(TeamCannotBeFilled) as caught:
        select_team(birmingham, register, pool, [], CPC, VISIT_FROM, VISIT_TO, rules, seed=9)
    assert caught.value.requirement == "lead_officer"
    assert "from councils within 400 km" in caught.value.reason
    check_cannot(caught.value, birmingham, register, list(pool), [], CPC, rules, set())
