"""`cases councils`: import the real register, list it, see which councils are due."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventstore import EventStore
from eventstore.councils import known_councils
from tests.support import run_cli


@pytest.fixture
def database(sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    return sqlite_store


def test_the_register_imports_and_every_english_council_is_due(
    register_csv: Path, database: EventStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["councils", "import", str(register_csv), "--json"]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["english_councils"] == 317
    known = known_councils(database)
    assert known["E09000008"].short_name == "Croydon"
    assert run_cli(["councils", "due", "--json"]) == 0
    due = json.loads(capsys.readouterr().out)
    assert len(due) == 317 and all(row["last_visit"] is None for row in due)


def test_a_bad_register_is_refused_by_row_and_column_and_nothing_is_imported(
    register_csv: Path, database: EventStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = register_csv.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1].replace("N09000002", "N0900000X"),
                              *lines[2:]]) + "\n", encoding="utf-8")
    before = dict(known_councils(database))
    assert run_cli(["councils", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nothing imported" in err and "gss-code" in err and "row 1" in err
    assert known_councils(database) == before
    assert run_cli(["councils", "import", str(tmp_path / "absent.csv")]) == 2


def test_the_built_in_councils_are_listed(database: EventStore,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """(A case for a council not in the register is refused by the API: tests/test_api.py.)"""
    assert run_cli(["councils", "list"]) == 0
    assert "Croydon" in capsys.readouterr().out
