"""The pool file: each column's problems by row and column, the round trip, the digest, and
sealing: a pool row keeps a salted hash of the personal data, which is held apart."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.councils import BUILT_IN_COUNCILS
from domain.peer_register import (
    PEER_COLUMNS,
    PeerFileError,
    PeerFileProblem,
    SealBroken,
    parse_peers,
    peers_to_rows,
    personal_data,
    personal_sha256,
    pool_digest,
    pool_digest_of_json,
    sealed_pool_digest,
    sealed_row,
    unseal,
)
from domain.peers import (
    ERASED_NAME,
    SPECIALISMS,
    Peer,
    PeerKind,
    Seniority,
    demo_pool,
    synthetic_pool,
)

AS_OF = date(2026, 6, 1)
COUNCILS = sorted(BUILT_IN_COUNCILS)
VALID = {
    "peer_id": "P1", "name": "Siân Jones", "kind": "officer", "home_council": "E06000001",
    "political_group": "", "seniority": "chief_executive",
    "specialisms": "finance;governance", "accredited_until": "2027-03-31",
    "unavailable": "2026-03-02..2026-03-06;2026-04-01", "days_served_last_3_years": "4",
    "former_employers": "E08000025@2024-03-31", "declared_interests": "E09000008",
}


def as_csv(peers: list[Peer]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=PEER_COLUMNS)
    writer.writeheader()
    writer.writerows(peers_to_rows(peers))
    return text.getvalue()


def from_csv(text: str) -> list[Peer]:
    return parse_peers(csv.DictReader(io.StringIO(text)), BUILT_IN_COUNCILS)


def problems(*rows: dict[str, str]) -> list[PeerFileProblem]:
    with pytest.raises(PeerFileError) as caught:
        parse_peers(rows, BUILT_IN_COUNCILS)
    return caught.value.problems


def test_a_valid_row_reads_every_column() -> None:
    [peer] = parse_peers([VALID], BUILT_IN_COUNCILS)
    assert peer == Peer(
        peer_id="P1", name="Siân Jones", kind=PeerKind.OFFICER, home_council="E06000001",
        seniority=Seniority.CHIEF_EXECUTIVE, specialisms=["finance", "governance"],
        accredited_until=date(2027, 3, 31),
        unavailable=[(date(2026, 3, 2), date(2026, 3, 6)), (date(2026, 4, 1), date(2026, 4, 1))],
        days_served_last_3_years=4, former_employers=[("E08000025", date(2024, 3, 31))],
        declared_interests=["E09000008"])


def test_empty_cells_mean_none_and_spaces_around_values_are_ignored() -> None:
    row = {c: "" for c in PEER_COLUMNS} | {
        "peer_id": " LGA1 ", "name": "Tom Reyes", "kind": "challenge_manager",
        "specialisms": " finance ; ; governance "}
    [peer] = parse_peers([row], BUILT_IN_COUNCILS)
    assert peer == Peer(peer_id="LGA1", name="Tom Reyes", kind=PeerKind.CHALLENGE_MANAGER,
                        specialisms=["finance", "governance"])


CELL_PROBLEMS = [
    ("peer_id", "", "is empty"),
    ("name", " ", "is empty"),
    ("kind", "mayor", "is not one of councillor, officer, challenge_manager"),
    ("kind", "", "is empty"),
    ("home_council", "Croydon", "is not a GSS code"),
    ("home_council", "E99999999", "is not a council this engine knows"),
    ("home_council", "", "needs a home council"),
    ("political_group", "labour", "a political group is for councillors"),
    ("seniority", "boss", "is not one of chief_executive, director"),
    ("seniority", "", "an officer peer needs a seniority"),
    ("specialisms", "finance;Governance", "is not a specialism"),
    ("accredited_until", "31/03/2027", "is not a date (YYYY-MM-DD)"),
    ("unavailable", "2026-03-06..2026-03-02", "ends (2026-03-02) before it starts"),
    ("unavailable", "2026-03-02-2026-03-06", "is not a date"),
    ("unavailable", "2026-03-02..", "is not a range FIRST..LAST"),
    ("days_served_last_3_years", "ten", "is not a whole number of days"),
    ("days_served_last_3_years", "-1", "is not a whole number of days"),
    ("days_served_last_3_years", "5000", "less than or equal to 1098"),
    ("former_employers", "E06000001", "is not COUNCIL@LAST-DAY"),
    ("former_employers", "E99999999@2024-03-31", "is not a council this engine knows"),
    ("former_employers", "E06000001@2024-13-01", "is not a date"),
    ("declared_interests", "E09000008;E99999999", "is not a council this engine knows"),
]


@pytest.mark.parametrize(("column", "value", "message"), CELL_PROBLEMS)
def test_a_bad_cell_is_named_by_row_and_column(column: str, value: str, message: str) -> None:
    found = problems(VALID | {"peer_id": "P0"}, VALID | {column: value})
    assert [(p.row, p.column) for p in found] == [(3, column)], found
    assert message in found[0].message
    assert f"row 3, column {column!r}" in str(PeerFileError(found))


def test_a_councillors_rules_name_their_columns() -> None:
    councillor = VALID | {"kind": "councillor", "seniority": ""}
    [missing] = problems(councillor)
    assert (missing.row, missing.column) == (2, "political_group")
    assert missing.message == "a councillor peer needs a political group"
    [both] = problems(councillor | {"political_group": "labour", "seniority": "director"})
    assert (both.column, both.value) == ("seniority", "director")
    manager = VALID | {"kind": "challenge_manager", "seniority": ""}
    [housed] = problems(manager)
    assert (housed.column, housed.value) == ("home_council", "E06000001")


def test_a_peer_id_twice_names_the_row_it_repeats() -> None:
    found = problems(VALID, VALID | {"peer_id": "P2"}, VALID)
    assert [(p.row, p.column, p.message) for p in found] == [
        (4, "peer_id", "repeats the peer id of row 2")]


def test_every_problem_of_every_row_is_listed_together() -> None:
    found = problems(VALID | {"kind": "mayor", "accredited_until": "soon"},
                     VALID | {"peer_id": "P2"},
                     VALID | {"peer_id": "P3", "specialisms": "Finance",
                              "days_served_last_3_years": "x"})
    assert [(p.row, p.column) for p in found] == [
        (2, "kind"), (2, "accredited_until"), (4, "days_served_last_3_years"),
        (4, "specialisms")]
    assert found[3].value == "Finance"
    message = str(PeerFileError(found))
    assert message.startswith("the peer pool file has 4 problems: row 2, column 'kind'")


def test_a_missing_or_unknown_column_is_a_header_problem() -> None:
    row = {c: v for c, v in VALID.items() if c != "seniority"} | {"grade": "A"}
    found = problems(row)
    assert [(p.row, p.column) for p in found] == [(1, "seniority"), (1, "grade")]
    assert found[0].message == "column is missing from the header"
    assert found[1].message.startswith("is not a column of a peer pool file")


def test_a_row_longer_than_the_header_is_a_row_problem() -> None:
    text = ",".join(PEER_COLUMNS) + "\n" + ",".join(VALID.values()) + ",extra\n"
    with pytest.raises(PeerFileError) as caught:
        parse_peers(csv.DictReader(io.StringIO(text)), BUILT_IN_COUNCILS)
    [problem] = caught.value.problems
    assert (problem.row, problem.column) == (2, None)
    assert str(problem) == "row 2: has more cells than the header's 12"


def test_a_short_row_reads_its_missing_cells_as_empty() -> None:
    text = ",".join(PEER_COLUMNS) + "\nLGA1,Tom Reyes,challenge_manager\n"
    [peer] = parse_peers(csv.DictReader(io.StringIO(text)), BUILT_IN_COUNCILS)
    assert peer.kind == PeerKind.CHALLENGE_MANAGER and peer.unavailable == []


def test_many_problems_are_shown_up_to_a_limit() -> None:
    rows = [VALID | {"peer_id": f"P{i}", "kind": "mayor"} for i in range(25)]
    message = str(PeerFileError(problems(*rows)))
    assert message.count("column 'kind'") == PeerFileError.MAX_SHOWN
    assert message.endswith("; and 5 more")


# --- round trip --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_synthetic_pool_round_trips_through_csv(seed: int) -> None:
    pool = synthetic_pool(list(BUILT_IN_COUNCILS.values()), 400, seed, as_of=AS_OF)
    assert parse_peers(peers_to_rows(pool), BUILT_IN_COUNCILS) == pool
    assert from_csv(as_csv(pool)) == pool


def test_the_demo_pool_round_trips() -> None:
    pool = demo_pool(AS_OF)
    assert from_csv(as_csv(pool)) == pool


_NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
                min_size=1, max_size=40).filter(lambda t: t == t.strip() and t.strip())
"""Text a person may type: no control, format (BOM, bidi overrides) or separator characters."""
_DAY = st.dates(date(2000, 1, 1), date(2040, 12, 31))
_COUNCIL = st.sampled_from(COUNCILS)


@st.composite
def peers(draw: st.DrawFn) -> Peer:
    kind = draw(st.sampled_from(PeerKind))
    spells = [(first, first + timedelta(days=length)) for first, length in
              draw(st.lists(st.tuples(_DAY, st.integers(0, 60)), max_size=4))]
    return Peer(
        peer_id=draw(_NAME), name=draw(_NAME), kind=kind,
        home_council=None if kind == PeerKind.CHALLENGE_MANAGER else draw(_COUNCIL),
        political_group=draw(_NAME) if kind == PeerKind.COUNCILLOR else None,
        seniority=draw(st.sampled_from(Seniority)) if kind == PeerKind.OFFICER else None,
        specialisms=draw(st.lists(st.sampled_from(SPECIALISMS), max_size=5)),
        accredited_until=draw(st.none() | _DAY), unavailable=spells,
        days_served_last_3_years=draw(st.integers(0, 3 * 366)),
        former_employers=draw(st.lists(st.tuples(_COUNCIL, _DAY), max_size=3)),
        declared_interests=draw(st.lists(_COUNCIL, max_size=3)),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(peers(), max_size=6, unique_by=lambda p: p.peer_id))
def test_any_pool_round_trips_exactly(pool: list[Peer]) -> None:
    assert from_csv(as_csv(pool)) == pool
    assert pool_digest(from_csv(as_csv(pool))) == pool_digest(pool)


# --- digest ------------------------------------------------------------------------------


def test_the_digest_names_the_content_whatever_the_row_order() -> None:
    pool = synthetic_pool(list(BUILT_IN_COUNCILS.values()), 200, 7, as_of=AS_OF)
    digest = pool_digest(pool)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    shuffled = list(pool)
    random.Random(1).shuffle(shuffled)
    assert pool_digest(shuffled) == digest
    assert pool_digest(from_csv(as_csv(shuffled))) == digest
    changed = [*pool[:-1], pool[-1].model_copy(update={"days_served_last_3_years": 99})]
    assert pool_digest(changed) != digest
    assert pool_digest(pool[:-1]) != digest


def test_the_digest_is_pinned() -> None:
    """The SHA-256 of the canonical JSON array of the peers (keys sorted, no spaces, UTF-8).
    A change here changes every recorded pool's digest: it must be deliberate."""
    canonical = ('[{"accredited_until":"2027-03-31","days_served_last_3_years":4,'
                 '"declared_interests":["E09000008"],"former_employers":[["E08000025",'
                 '"2024-03-31"]],"home_council":"E06000001","kind":"officer",'
                 '"name":"Siân Jones","peer_id":"P1","political_group":null,'
                 '"seniority":"chief_executive","specialisms":["finance","governance"],'
                 '"unavailable":[["2026-03-02","2026-03-06"],["2026-04-01","2026-04-01"]]}]')
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == PINNED
    assert pool_digest(parse_peers([VALID], BUILT_IN_COUNCILS)) == PINNED
    assert pool_digest_of_json(json.loads(canonical)) == PINNED


PINNED = "e149424ae9e18d7c905a2c9ff967cc064d289fb194f16f1e65ac2455df4ffc5a"


# --- sealing -------------------------------------------------------------------------------

SALT = "5a" * 32


def test_a_sealed_row_keeps_what_the_rules_read_and_a_salted_hash_of_the_rest() -> None:
    [peer] = parse_peers([VALID], BUILT_IN_COUNCILS)
    row = sealed_row(peer, SALT)
    assert set(row) == set(PEER_COLUMNS) - {"name", "political_group",
                                            "declared_interests"} | {"personal_sha256"}
    assert "Siân" not in json.dumps(row, ensure_ascii=False)
    personal = personal_data(peer)
    assert personal == {"name": "Siân Jones", "political_group": None,
                        "declared_interests": ["E09000008"]}
    assert unseal(row, personal, SALT) == peer
    assert sealed_row(peer, "00" * 32)["personal_sha256"] != row["personal_sha256"]


def test_the_salted_hash_is_pinned() -> None:
    """SHA-256 of the canonical JSON of the personal fields with `peer_id` and `salt` added,
    as docs/data-protection.md states it. A change here breaks every sealed pool."""
    canonical = ('{"declared_interests":["E09000008"],"name":"Siân Jones","peer_id":"P1",'
                 '"political_group":null,"salt":"' + SALT + '"}')
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    [peer] = parse_peers([VALID], BUILT_IN_COUNCILS)
    assert personal_sha256("P1", personal_data(peer), SALT) == digest == PINNED_PERSONAL
    assert PINNED_PERSONAL in (Path(__file__).parents[1] / "docs" / "data-protection.md"
                               ).read_text(encoding="utf-8"), "the documented test vector"
    with pytest.raises(ValueError, match="64 lowercase hex"):
        personal_sha256("P1", personal_data(peer), "not a salt")


PINNED_PERSONAL = "d4f33608360169915bc316c66ece381584aac561ec4d36f1bbb51e20239250b0"


def test_personal_data_that_does_not_match_its_hash_is_refused() -> None:
    """The attack: a councillor's political group rewritten where the personal data is kept."""
    peer = next(p for p in demo_pool(AS_OF) if p.kind == PeerKind.COUNCILLOR)
    row = sealed_row(peer, SALT)
    forged = {**personal_data(peer), "political_group": "made_up"}
    with pytest.raises(SealBroken, match=f"personal data of peer {peer.peer_id} does not match"):
        unseal(row, forged, SALT)
    with pytest.raises(SealBroken):
        unseal(row, personal_data(peer), "00" * 32)


def test_an_erased_peer_keeps_every_other_field_and_the_sealed_digest_is_unchanged() -> None:
    pool = demo_pool(AS_OF)
    councillor = next(p for p in pool if p.kind == PeerKind.COUNCILLOR)
    rows = [sealed_row(p, SALT) for p in pool]
    digest = sealed_pool_digest(rows)
    row = next(r for r in rows if r["peer_id"] == councillor.peer_id)
    erased = unseal(row, None, None)
    assert erased == councillor.without_personal_data()
    assert (erased.erased, erased.name, erased.political_group, erased.declared_interests) == (
        True, ERASED_NAME, None, [])
    assert erased.model_dump(exclude={"name", "political_group", "declared_interests"}) == (
        councillor.model_dump(exclude={"name", "political_group", "declared_interests"}))
    assert sealed_pool_digest(rows) == digest  # erasure never touches the rows
    with pytest.raises(ValueError, match="keeps no name"):
        Peer.model_validate({**councillor.model_dump(), "erased": True})


def test_a_pool_file_cannot_name_a_peer_as_erased() -> None:
    with pytest.raises(PeerFileError) as caught:
        parse_peers([{**VALID, "name": ERASED_NAME}], BUILT_IN_COUNCILS)
    [problem] = caught.value.problems
    assert (problem.column, problem.message) == ("name",
                                                 "(erased) is the name of an erased peer")


@settings(max_examples=100, deadline=None)
@given(st.lists(peers(), max_size=6, unique_by=lambda p: p.peer_id))
def test_any_pool_round_trips_through_sealing(pool: list[Peer]) -> None:
    salts = [f"{i:064x}" for i in range(len(pool))]
    for peer, salt in zip(pool, salts, strict=True):
        assert unseal(sealed_row(peer, salt), personal_data(peer), salt) == peer
