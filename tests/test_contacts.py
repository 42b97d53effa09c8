"""Contacts, who notices are emailed to: the file's checks (every problem, by row and column,
at once), the versions in the store, and `cases contacts import|list|versions`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.contacts import (
    ENGLISH_REGIONS,
    NATIONAL_SCOPE,
    Contact,
    ContactBook,
    ContactRole,
    ContactsRefused,
    is_email_address,
    lga_scope,
    parse_contacts,
)
from eventstore import EventStore, open_store
from eventstore.contacts import (
    UnknownContactsVersion,
    contact_book,
    contact_versions,
    import_contacts,
)
from tests.conftest import POSTGRES_URL, drop_schema, new_postgres_schema
from tests.support import run_cli

DEMO_CONTACTS = Path(__file__).resolve().parents[1] / "cli" / "demo_contacts.csv"
COUNCILS = ("E09000008", "E08000025", "E06000001")
REGIONS = ("London", "West Midlands", "North East")
GOOD = """scope,role,name,email
E09000008,chief_executive,Chief Executive of Croydon,ce@Croydon.Gov.UK
E09000008,council_contact,Ann Other,ann.other@croydon.gov.uk
E09000008,council_contact,Ben Other,ben.other@croydon.gov.uk
lga:london,principal_adviser,Pat Adviser,pat.adviser@local.gov.uk
lga:England,improvement_board,The Improvement Board,board@local.gov.uk
"""


def parse(text: str) -> list[Contact]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return parse_contacts(reader.fieldnames, reader, known_councils=COUNCILS, regions=REGIONS)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ContactsRefused) as refused:
        parse(text)
    return refused.value.problems


def with_rows(*rows: str) -> str:
    return "scope,role,name,email\n" + "".join(f"{row}\n" for row in rows)


# --- the file's checks ----------------------------------------------------------------------


def test_a_good_file_is_read_in_order_with_scopes_as_the_register_spells_them() -> None:
    contacts = parse(GOOD)
    assert [c.scope for c in contacts] == ["E09000008"] * 3 + ["lga:London", NATIONAL_SCOPE]
    assert contacts[0].email == "ce@croydon.gov.uk"  # the domain lower-cased
    assert contacts[0].role is ContactRole.CHIEF_EXECUTIVE
    book = ContactBook(version=1, contacts=tuple(contacts))
    assert [c.name for c in book.find("E09000008", ContactRole.COUNCIL_CONTACT)] == [
        "Ann Other", "Ben Other"]
    assert book.find(lga_scope("London"), ContactRole.PRINCIPAL_ADVISER)[0].name == "Pat Adviser"
    assert book.find("E08000025", ContactRole.CHIEF_EXECUTIVE) == []
    assert ContactBook().version is None and ContactBook().find("E09000008",
                                                                ContactRole.COUNCIL_CONTACT) == []


def test_a_byte_order_mark_spaces_and_case_in_the_header_are_forgiven() -> None:
    contacts = parse("\ufeffScope, role ,name,EMAIL\ne09000008,Chief_Executive, A B ,a@b.org\n")
    assert contacts == [Contact(scope="E09000008", role=ContactRole.CHIEF_EXECUTIVE,
                                name="A B", email="a@b.org")]


def test_every_problem_is_reported_by_row_and_column_at_once() -> None:
    problems = problems_of(with_rows(
        "E09000008,chief_executive,Good Person,good@croydon.gov.uk",       # row 2: fine
        "E09999999,chief_executive,Someone,someone@croydon.gov.uk",         # 3: unknown council
        "Croydon,chief_executive,Someone,someone@croydon.gov.uk",           # 4: not a scope
        "lga:Narnia,principal_adviser,Someone,someone@lga.gov.uk",          # 5: no such region
        "E09000008,head_cook,Someone,someone@croydon.gov.uk",               # 6: no such role
        "lga:London,chief_executive,Someone,someone@croydon.gov.uk",        # 7: council role
        "E09000008,principal_adviser,Someone,someone@croydon.gov.uk",       # 8: LGA role
        ",,,",                                                              # 9: all empty
        "E09000008,council_contact,Someone,not-an-address",                 # 10: bad email
        "E09000008,chief_executive,Again,GOOD@Croydon.gov.uk",              # 11: repeats row 2
        "E09000008,chief_executive,Too,many,cells",                         # 12: five cells
    ))
    assert problems == [
        "row 3, column 'scope': is not a council the engine knows (import the register with "
        "`cases councils import PATH.csv`) (value 'E09999999')",
        "row 4, column 'scope': is neither a council's GSS code (like E09000008) nor "
        "lga:REGION (like lga:London) nor lga:England (value 'Croydon')",
        "row 5, column 'scope': is not an LGA region: expected lga:England or lga: and one "
        "of London, North East, West Midlands (value 'lga:Narnia')",
        "row 6, column 'role': is not a role: expected one of chief_executive, "
        "monitoring_officer, council_contact, principal_adviser, improvement_board "
        "(value 'head_cook')",
        "row 7, column 'scope': does not fit role chief_executive: a chief_executive is a "
        "council's, for its GSS code (value 'lga:London')",
        "row 8, column 'scope': does not fit role principal_adviser: a principal_adviser is "
        "the LGA's, for lga:REGION or lga:England (value 'E09000008')",
        "row 9, column 'scope': is empty",
        "row 9, column 'role': is empty",
        "row 9, column 'name': is empty",
        "row 9, column 'email': is empty",
        "row 10, column 'email': is not an email address: it needs exactly one @ "
        "(value 'not-an-address')",
        "row 11, column 'email': repeats row 2: the same address for the same scope and role "
        "(value 'GOOD@Croydon.gov.uk')",
        "row 12: has more cells than the header's 4",
        "row 12, column 'email': is not an email address: it needs exactly one @ "
        "(value 'many')",
    ]


def test_a_name_must_be_one_line_of_at_most_200_characters() -> None:
    problems = problems_of(with_rows(
        f"E09000008,chief_executive,{'x' * 201},a@b.org",
        'E09000008,chief_executive,"Two\nlines",a@b.org',
        "E09000008,chief_executive,Evil\u202eeman,a@b.org",
        f"E09000008,chief_executive,{'y' * 200},ok@b.org"))
    assert [p.split(" (value")[0] for p in problems] == [
        "row 2, column 'name': is longer than 200 characters (201)",
        "row 3, column 'name': has a control character in it (U+000A)",
        "row 4, column 'name': has a control character in it (U+202E)",
    ]


def test_the_same_person_may_hold_roles_in_several_scopes_but_not_one_role_twice() -> None:
    contacts = parse(with_rows("E09000008,chief_executive,A,a@b.org",
                               "E09000008,monitoring_officer,A,a@b.org",
                               "E08000025,chief_executive,A,a@b.org",
                               "lga:London,principal_adviser,A,a@b.org",
                               "lga:London,improvement_board,A,a@b.org"))
    assert len(contacts) == 5
    assert problems_of(with_rows("lga:london,principal_adviser,A,a@b.org",
                                 "lga:London,principal_adviser,B,A@B.ORG")) == [
        "row 3, column 'email': repeats row 2: the same address for the same scope and role "
        "(value 'A@B.ORG')"]


@pytest.mark.parametrize("header, expected", [
    ("scope,role,name,email,phone",
     ["row 1, column 'phone': is not a column of a contacts file; the columns are scope, "
      "role, name, email"]),
    ("scope,role,name",
     ["row 1, column 'email': column is missing from the header"]),
    ("scope,role,name,email,email",
     ["row 1, column 'email': column appears twice in the header"]),
    ("scope,role,name,email,",
     ["row 1: column 5 of the header has no name; the columns are scope, role, name, email"]),
])
def test_the_header_must_have_exactly_the_four_columns(header: str,
                                                       expected: Sequence[str]) -> None:
    assert problems_of(f"{header}\nE09000008,chief_executive,A,a@b.org\n") == list(expected)


def test_a_file_with_no_contacts_is_refused() -> None:
    assert problems_of("") == ["row 1: the file is empty: it needs a header row "
                               "scope,role,name,email"]
    assert problems_of("scope,role,name,email\n") == [
        "row 2: no contacts: the file has a header and no rows after it"]


@pytest.mark.parametrize("address", [
    "a@b.org", "first.last@council.gov.uk", "o'brien+notices@x-y.example.org",
    "A.B@EXAMPLE.ORG", f"{'a' * 64}@b.org",
    f"{'a' * 4}@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 57}",  # 254 characters in all
])
def test_addresses_that_are_addresses(address: str) -> None:
    assert is_email_address(address), address


@pytest.mark.parametrize("address", [
    "", "plain", "a@b", "@b.org", "a@", "a@@b.org", "a@b@c.org", "a b@c.org", "a@b .org",
    "a\n@b.org", "<a@b.org>", "a@b.org,c@d.org", "a@b.org;c@d.org", "a,b@c.org",
    '"a b"@c.org', ".a@b.org", "a.@b.org", "a..b@c.org", "a@-b.org", "a@b-.org",
    "a@b..org", "a@b.org.", "a@b_c.org", "a@1.2.3.4", "a@b.org\u202e", f"{'a' * 65}@b.org",
    f"a@{'b' * 64}.org", f"{'a' * 5}@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 57}", "ä@b.org",
])
def test_strings_that_are_not_addresses(address: str) -> None:
    assert not is_email_address(address), address


def test_a_contact_checks_itself_whoever_makes_it() -> None:
    with pytest.raises(ValidationError):
        Contact(scope="lga:London", role=ContactRole.CHIEF_EXECUTIVE, name="A", email="a@b.org")
    with pytest.raises(ValidationError):
        Contact(scope="E09000008", role=ContactRole.CHIEF_EXECUTIVE, name="A", email="a@b")
    with pytest.raises(ValidationError):
        Contact(scope="E09000008", role=ContactRole.CHIEF_EXECUTIVE, name="", email="a@b.org")


# --- the store ------------------------------------------------------------------------------


def test_each_import_is_a_new_version_and_the_highest_is_in_force(
        sqlite_store: EventStore) -> None:
    assert contact_book(sqlite_store) == ContactBook()
    assert contact_versions(sqlite_store) == []
    first = parse(GOOD)
    digest = hashlib.sha256(GOOD.encode()).hexdigest()
    assert import_contacts(sqlite_store, first, file_sha256=digest, source="a.csv",
                           imported_by="operator:test") == 1
    assert import_contacts(sqlite_store, first[:2], file_sha256=digest, source="b.csv",
                           imported_by="operator:test") == 2
    assert contact_book(sqlite_store) == ContactBook(version=2, contacts=tuple(first[:2]))
    assert contact_book(sqlite_store, 1) == ContactBook(version=1, contacts=tuple(first))
    versions = contact_versions(sqlite_store)
    assert [(v["version"], v["source"], v["contact_count"]) for v in versions] == [
        (1, "a.csv", 5), (2, "b.csv", 2)]
    assert versions[0]["file_sha256"] == digest and versions[0]["imported_at"].tzinfo
    with pytest.raises(UnknownContactsVersion, match="the newest is 2"):
        contact_book(sqlite_store, 3)
    with pytest.raises(ValueError, match="at least one"):
        import_contacts(sqlite_store, [], file_sha256=digest, source="c.csv",
                        imported_by="operator:test")


def test_a_store_not_migrated_yet_has_no_contacts(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/bare.db")
    try:
        assert contact_book(store) == ContactBook()
        assert contact_versions(store) == []
        with pytest.raises(UnknownContactsVersion, match="no contacts have been imported"):
            contact_book(store, 1)
    finally:
        store.dispose()


def test_on_postgresql_versions_are_kept_and_a_bare_schema_has_no_contacts(
        postgres_store: EventStore) -> None:
    digest = hashlib.sha256(GOOD.encode()).hexdigest()
    for source in ("a.csv", "b.csv"):
        import_contacts(postgres_store, parse(GOOD), file_sha256=digest, source=source,
                        imported_by="operator:test")
    assert contact_book(postgres_store) == ContactBook(version=2, contacts=tuple(parse(GOOD)))
    schema = new_postgres_schema("t_bare")
    bare = open_store(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        assert contact_book(bare) == ContactBook()
        assert contact_versions(bare) == []
    finally:
        drop_schema(bare, schema)


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def database(sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    return sqlite_store


def listed(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, object]:
    assert run_cli(["contacts", "list", "--json", *options]) == 0
    answer: dict[str, object] = json.loads(capsys.readouterr().out)
    return answer


def test_import_then_list_then_import_again(database: EventStore, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["contacts", "list"]) == 0
    assert "no contacts imported yet" in capsys.readouterr().out
    good = tmp_path / "contacts.csv"
    good.write_text(GOOD, encoding="utf-8")
    assert run_cli(["contacts", "import", str(good)]) == 0
    assert "imported contacts version 1" in capsys.readouterr().out
    assert run_cli(["contacts", "list"]) == 0
    text = capsys.readouterr().out
    assert "contacts version 1 (in force)" in text and "by operator:" in text
    assert "lga:London" in text and "ann.other@croydon.gov.uk" in text
    answer = listed(capsys)
    assert answer["version"] == 1 and answer["in_force"] is True
    assert answer["file_sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    assert answer["contacts"] == [c.model_dump(mode="json") for c in parse(GOOD)]

    assert run_cli(["contacts", "import", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert listed(capsys)["version"] == 2
    older = listed(capsys, "--version", "1")
    assert older["version"] == 1 and older["in_force"] is False
    assert run_cli(["contacts", "list", "--version", "9"]) == 2
    assert "no contacts version 9 (the newest is 2)" in capsys.readouterr().err
    assert run_cli(["contacts", "versions"]) == 0
    assert "2 (in force)" in capsys.readouterr().out


def test_a_bad_file_is_refused_whole_with_every_problem_and_nothing_changes(
        database: EventStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "contacts.csv"
    good.write_text(GOOD, encoding="utf-8")
    assert run_cli(["contacts", "import", str(good)]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD + "E09000008,chief_executive,Ada,ada@croydon\n"
                   "E07999999,chief_executive,Bea,bea@council.gov.uk\n"
                   "E09000008,monitoring_officer,\x1b[31mRed,red@croydon.gov.uk\n",
                   encoding="utf-8")
    capsys.readouterr()
    assert run_cli(["contacts", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cases: {bad}: nothing imported: 3 problems:\n")
    lines = err.splitlines()[1:]
    assert len(lines) == 3
    assert lines[0].startswith("  row 7, column 'email': has a domain without a dot")
    assert lines[1].startswith("  row 8, column 'scope': is not a council the engine knows")
    assert lines[2].startswith("  row 9, column 'name': has a control character")
    assert "\x1b" not in err
    assert listed(capsys)["version"] == 1
    assert len(contact_versions(database)) == 1


def test_a_bad_email_and_an_unknown_council_are_refused(
        database: EventStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for row, said in [("E09000008,chief_executive,A,a b@croydon.gov.uk", "has a space"),
                      ("E09000008,chief_executive,A,<a@croydon.gov.uk>", "a character"),
                      ("E99999999,chief_executive,A,a@croydon.gov.uk", "not a council")]:
        path = tmp_path / "one.csv"
        path.write_text(with_rows(row), encoding="utf-8")
        assert run_cli(["contacts", "import", str(path)]) == 2
        assert said in capsys.readouterr().err
    assert run_cli(["contacts", "import", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv" in capsys.readouterr().err
    latin = tmp_path / "latin.csv"
    latin.write_bytes(with_rows("E09000008,chief_executive,Siân,s@b.org").encode("latin-1"))
    assert run_cli(["contacts", "import", str(latin)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert contact_versions(database) == []


def test_the_demo_contacts_import_against_the_built_in_councils_and_the_register(
        database: EventStore, register_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["contacts", "import", str(DEMO_CONTACTS)]) == 0
    assert run_cli(["councils", "import", str(register_csv)]) == 0
    assert run_cli(["contacts", "import", str(DEMO_CONTACTS), "--json"]) == 0
    capsys.readouterr()
    book = contact_book(database)
    assert book.version == 2
    for council in ("E09000008", "E08000025", "E06000001", "E06000047", "E07000223",
                    "E10000014"):
        for role in (ContactRole.CHIEF_EXECUTIVE, ContactRole.MONITORING_OFFICER,
                     ContactRole.COUNCIL_CONTACT):
            assert len(book.find(council, role)) == 1, (council, role)
    for region in ENGLISH_REGIONS:
        assert len(book.find(lga_scope(region), ContactRole.PRINCIPAL_ADVISER)) == 1, region
    assert len(book.find(NATIONAL_SCOPE, ContactRole.IMPROVEMENT_BOARD)) == 1
    assert all(c.email.endswith("example.org") and "(demo)" in c.name for c in book.contacts)
