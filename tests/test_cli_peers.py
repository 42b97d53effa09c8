"""`cases peers`: import a pool file whole or not at all, list it, see its versions."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from domain.councils import BUILT_IN_COUNCILS, Council
from domain.peer_register import PEER_COLUMNS, peers_to_rows
from domain.peers import Peer, synthetic_pool
from eventstore import EventStore
from eventstore.councils import known_councils
from eventstore.peers import load_pool, pool_version, pool_versions
from tests.support import run_cli

AS_OF = date(2026, 6, 1)


def write_pool(path: Path, peers: list[Peer]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PEER_COLUMNS)
        writer.writeheader()
        writer.writerows(peers_to_rows(peers))
    return path


def built_in_pool(seed: int = 1) -> list[Peer]:
    return synthetic_pool(list(BUILT_IN_COUNCILS.values()), 140, seed, as_of=AS_OF,
                          challenge_managers=5)


@pytest.fixture
def database(sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    return sqlite_store


def cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    assert run_cli([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_pool_file_imports_once_and_lists(database: EventStore, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    file = write_pool(tmp_path / "pool.csv", built_in_pool())
    assert run_cli(["peers", "import", str(file)]) == 0
    out = capsys.readouterr().out
    assert "imported peer pool version 1: 145 peers" in out
    digest = pool_version(database, 1).digest
    assert digest in out
    again = cli_json(["peers", "import", str(file)], capsys)
    assert again == {"version": 1, "digest": digest, "peer_count": 145,
                     "source": str(file), "imported_at": again["imported_at"], "new": False}
    assert load_pool(database, 1) == sorted(built_in_pool(), key=lambda p: p.peer_id)

    listed = cli_json(["peers", "list"], capsys)
    assert listed["pool"]["version"] == 1
    assert len(listed["peers"]) == 145
    hartlepool = cli_json(["peers", "list", "--council", "E06000001", "--kind", "councillor"],
                          capsys)
    assert hartlepool["peers"]
    assert {(p["home_council"], p["kind"]) for p in hartlepool["peers"]} == {
        ("E06000001", "councillor")}
    managers = cli_json(["peers", "list", "--kind", "challenge_manager"], capsys)
    assert len(managers["peers"]) == 5

    assert run_cli(["peers", "list", "--council", "E06000001"]) == 0
    table = capsys.readouterr().out
    assert "peer pool version 1 (" in table and "E06000001 Hartlepool" in table
    assert "ACCREDITED UNTIL" in table


def test_a_new_file_is_a_new_version_and_the_old_one_stays_listable(
        database: EventStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["peers", "import", str(write_pool(tmp_path / "a.csv", built_in_pool(1)))]) == 0
    assert run_cli(["peers", "import", str(write_pool(tmp_path / "b.csv", built_in_pool(2)))]) == 0
    capsys.readouterr()
    pools = cli_json(["peers", "pools"], capsys)
    assert [(p["version"], p["source"]) for p in pools] == [(1, str(tmp_path / "a.csv")),
                                                            (2, str(tmp_path / "b.csv"))]
    old = cli_json(["peers", "list", "--pool", "1"], capsys)
    assert old["pool"]["digest"] == pool_version(database, 1).digest
    assert old["pool"]["digest"] != pool_version(database, 2).digest
    assert run_cli(["peers", "pools"]) == 0
    assert "b.csv" in capsys.readouterr().out
    assert run_cli(["peers", "list", "--pool", "3"]) == 2
    assert "no peer pool version 3 (the newest is 2)" in capsys.readouterr().err


def test_a_bad_file_is_refused_by_row_and_column_and_nothing_is_imported(
        database: EventStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["peers", "import", str(write_pool(tmp_path / "a.csv", built_in_pool()))]) == 0
    before = pool_versions(database)
    rows = peers_to_rows(built_in_pool(2))
    rows[3]["kind"] = "mayor"
    rows[40]["home_council"] = "E99999999"
    rows[41]["peer_id"] = rows[0]["peer_id"]
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PEER_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert run_cli(["peers", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nothing imported: 3 problems" in err
    assert "row 5, column 'kind': is not one of councillor, officer" in err
    assert "row 42, column 'home_council': is not a council this engine knows" in err
    assert "row 43, column 'peer_id': repeats the peer id of row 2" in err
    assert pool_versions(database) == before


@pytest.mark.parametrize(("argv", "said"), [
    (["peers", "import"], "give a pool file's PATH.csv, or --demo"),
    (["peers", "import", "x.csv", "--demo"], "give a pool file's PATH.csv, or --demo"),
    (["peers", "import", "absent.csv"], "absent.csv: No such file"),
    (["peers", "list", "--council", "Croydon"], "expected a GSS code"),
])
def test_bad_input_is_refused(argv: list[str], said: str, database: EventStore,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(argv) == 2
    assert said in capsys.readouterr().err
    assert pool_versions(database) == []


def test_an_empty_file_imports_nothing(database: EventStore, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["peers", "import", str(write_pool(tmp_path / "empty.csv", []))]) == 2
    assert "no peers in it" in capsys.readouterr().err
    assert pool_versions(database) == []


def test_a_spreadsheets_byte_order_mark_is_read(database: EventStore, tmp_path: Path) -> None:
    file = write_pool(tmp_path / "excel.csv", built_in_pool())
    file.write_bytes(b"\xef\xbb\xbf" + file.read_bytes())
    assert run_cli(["peers", "import", str(file)]) == 0


def test_the_demo_pool_imports_without_a_file(database: EventStore,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["peers", "list"]) == 0
    assert "no peer pool yet" in capsys.readouterr().out
    imported = cli_json(["peers", "import", "--demo"], capsys)
    assert imported["new"] is True and imported["peer_count"] == 306
    assert imported["source"].startswith("demo pool as of ")
    assert {p.home_council for p in load_pool(database, 1)} - {None} <= set(BUILT_IN_COUNCILS)


def test_5000_peers_over_the_317_english_councils_import(
        register_csv: Path, database: EventStore, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["councils", "import", str(register_csv)]) == 0
    english: list[Council] = [c for c in known_councils(database).values()
                              if c.is_english_council]
    assert len(english) == 317
    peers = synthetic_pool(english, 5000, seed=4, as_of=AS_OF)
    file = write_pool(tmp_path / "pool-5000.csv", peers)
    capsys.readouterr()
    imported = cli_json(["peers", "import", str(file)], capsys)
    assert imported["peer_count"] == 5030
    assert imported["digest"] == pool_version(database, imported["version"]).digest
    loaded = load_pool(database, imported["version"])
    assert loaded == sorted(peers, key=lambda p: p.peer_id)
    assert len({p.home_council for p in loaded} - {None}) == 317
