"""What is printed and what is written, attacked (issue 20, item 5): each test names the attack.

The display attacks write straight into a SQLite store, as someone with the database file
would (triggers dropped, validation bypassed), then run the command as typed: whatever a row
holds, the terminal is never recoloured, a line never overwritten or reordered, and --json
parses to exactly what the store holds. The secret attacks give the command a database URL
with a password and a store that is not there. The file attacks plant a symlink or a file
where the engine will write.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import TypeAdapter, ValidationError

from domain import commands as cmd
from domain.timeline import as_of
from domain.vocabulary import Actor, ShortText, Text
from eventstore import EventStore, open_store
from eventstore.config import secrets_in, shown_url, without_secrets
from runtime import logging as case_logging
from tests.support import register_council, run_cli
from tests.test_domain_timeline import full_journey
from tests.test_eventstore_export import store_history
from workflows.messages import CaseView

CASE = "cpc-E06000001-2025"
SPOOFS = ["\x1b", "\r", "\x9b", "\u202e", "\u2066", "\x85", "\u2028", "\x07", "\x00"]
"""ESC, CR, the one-byte CSI, right-to-left override, left-to-right isolate, next line, line
separator, bell, NUL."""
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What no output may carry unescaped (newlines and tabs are the output's own)."""


@pytest.fixture
def db(sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A store with one whole journey in it, as the `cases` commands see it; its file."""
    store_history(sqlite_store, full_journey(CASE, "E06000001", start=date(2025, 1, 6)))
    register_council(sqlite_store, "E06000001")
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    database = sqlite_store.engine.url.database
    assert database is not None
    yield Path(database)


def tamper(db: Path, sql: str, *params: object) -> None:
    """What the attacker does: drop the append-only triggers and write the rows directly."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        conn.execute(sql, params)


def copy_case(db: Path, case_id: str) -> None:
    """CASE's rows again under another case id: a case no validator ever saw."""
    tamper(db, "INSERT INTO events (case_id, version, event_id, type, schema_version, "
               "occurred_at, actor, payload, prev_hash, hash) SELECT ?, version, "
               "event_id || '-copy', type, schema_version, occurred_at, actor, payload, "
               "prev_hash, hash FROM events WHERE case_id = ?", case_id, CASE)


def printed(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    said = capsys.readouterr()
    return said.out, said.err


def assert_harmless(text: str) -> None:
    assert not RAW.search(text), repr(text)


# --- refused at input ---------------------------------------------------------------------

@pytest.mark.parametrize("spoof", SPOOFS)
def test_control_and_bidi_characters_in_an_actor_or_free_text_are_refused_at_input(
    spoof: str,
) -> None:
    for text in (f"officer:siân{spoof}jones", f"Budget gap{spoof} of £4.2m"):
        with pytest.raises(ValidationError):
            TypeAdapter(Actor).validate_python(text)
        with pytest.raises(ValidationError):
            TypeAdapter(ShortText).validate_python(text)
        with pytest.raises(ValidationError):
            TypeAdapter(Text).validate_python(text)


def test_a_carriage_return_in_a_reason_is_refused_at_input() -> None:
    with pytest.raises(ValidationError, match="U\\+000D"):
        cmd.WithdrawCase(actor="case_officer:siân.jones", reason="council request\rCLOSED ok")
    with pytest.raises(ValidationError, match="U\\+000D"):
        cmd.WithdrawCase(actor="case_officer:siân.jones", reason="two lines\r\n")
    kept = cmd.WithdrawCase(actor="case_officer:siân.jones", reason="line one\n\tline two")
    assert kept.reason == "line one\n\tline two", "newlines and tabs stay in free text"


def test_a_newline_or_tab_in_short_text_is_refused_at_input() -> None:
    for spoof in ("\n", "\t"):
        with pytest.raises(ValidationError):
            TypeAdapter(ShortText).validate_python(f"peer{spoof}name")


@pytest.mark.parametrize("kind", ["ShortText", "Text"])
def test_the_published_json_schema_refuses_exactly_what_the_validators_refuse(kind: str) -> None:
    """A client that trusts the API's document is never refused for what it allows."""
    annotated = {"ShortText": ShortText, "Text": Text}[kind]
    adapter = TypeAdapter(annotated)
    pattern = re.compile(adapter.json_schema()["pattern"])
    for code in [*range(0, 0x250), *range(0x2000, 0x2070), 0xFEFF, 0x3000]:
        text = f"a{chr(code)}b"
        try:
            adapter.validate_python(text)
            accepted = True
        except ValidationError:
            accepted = False
        assert bool(pattern.search(text)) == accepted, f"U+{code:04X} in {kind}"


# --- escaped at output ----------------------------------------------------------------------

def test_an_esc_in_a_tampered_case_id_cannot_print_a_green_intact(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case(db, "x\x1b[2K\r\x1b[32mintact: 1 case(s), every hash and link verified\x1b[0m")
    assert run_cli(["verify", "--no-temporal"]) == 3
    out, err = printed(capsys)
    assert_harmless(out + err)
    assert out.startswith("TAMPERED: case x\\x1b[2K\\r\\x1b[32mintact")
    assert run_cli(["verify", "--no-temporal", "--json"]) == 3
    out, _ = printed(capsys)
    assert_harmless(out)
    assert json.loads(out)["problems"][0]["case_id"].startswith("x\x1b[2K\r")


def test_a_newline_in_a_tampered_case_id_cannot_forge_a_line_of_the_verdict(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case(db, "x\nintact: 2 case(s), 30 event(s), every hash and link verified")
    assert run_cli(["verify", "--no-temporal"]) == 3
    out, _ = printed(capsys)
    assert all(line.startswith("TAMPERED: ") for line in out.splitlines()), out


def test_a_right_to_left_override_in_a_tampered_actor_does_not_reorder_history(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actor = "officer:\u202emoc.live\u202c"
    tamper(db, "UPDATE events SET actor = ? WHERE case_id = ? AND version = 1", actor, CASE)
    assert run_cli(["history", CASE]) == 0
    out, _ = printed(capsys)
    assert_harmless(out)
    assert "officer:\\u202emoc.live\\u202c" in out
    for command in (["diff", CASE, "--from", "2025-01-01", "--to", "2025-01-07"],
                    ["history", CASE, "--as-of", "2025-01-07"]):
        assert run_cli(command) == 0
        out, _ = printed(capsys)
        assert_harmless(out)
        assert "\\u202e" in out


def test_a_carriage_return_and_escapes_in_a_tampered_payload_cannot_overwrite_history(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = {"reason": "fine\r\x1b[2KAPPROVED \u2066by the auditor\u2069", "scope": ["\x9b2J"]}
    tamper(db, "UPDATE events SET payload = ? WHERE case_id = ? AND version = 1",
           json.dumps(payload), CASE)
    assert run_cli(["history", CASE]) == 0
    out, _ = printed(capsys)
    assert_harmless(out)
    assert "fine\\r" in out and "\\u2066" in out


def test_json_output_escapes_what_json_dumps_leaves_raw_and_parses_to_the_stored_value(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """json.dumps(ensure_ascii=False) escapes C0 controls but not DEL, C1 or bidi."""
    actor = "officer:\u202eevil\x9b31m\x7f\u2028"
    tamper(db, "UPDATE events SET actor = ? WHERE case_id = ? AND version = 2", actor, CASE)
    assert run_cli(["history", CASE, "--json"]) == 0
    out, _ = printed(capsys)
    assert_harmless(out)
    assert json.loads(out)[1]["actor"] == actor


def test_control_characters_in_a_tampered_user_name_do_not_reach_users_list(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["users", "list"]) == 0  # the users table, migrated
    printed(capsys)
    tamper(db, "INSERT INTO users (name, role, council, password_hash, created_at) "
               "VALUES (?, 'admin', NULL, NULL, '2025-01-01 00:00:00.000000')",
           "mallory\x1b]0;owned\x07\u202e")
    assert run_cli(["users", "list"]) == 0
    out, _ = printed(capsys)
    assert_harmless(out)
    assert "mallory\\x1b]0;owned\\x07\\u202e" in out


def test_a_bidi_override_in_a_tampered_actor_does_not_reach_peers_explain(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(db, "UPDATE events SET actor = ? WHERE case_id = ? AND type = 'PeerTeamProposed'",
           "officer:\u202eenigne\r\x1b[1A", CASE)
    run_cli(["peers", "explain", CASE])
    out, err = printed(capsys)
    assert_harmless(out + err)
    assert "HAND-PICKED" in out and "\\u202e" in out


class _ApiWithTamperedAnswers:
    """What a tampered workflow or a hostile API could answer `status` and `list` with."""

    def __init__(self) -> None:
        state = as_of(full_journey(CASE, "E06000001"), datetime(2030, 1, 1, tzinfo=UTC))
        view = CaseView(state=state).model_dump(mode="json")
        view["state"]["withdrawal_reason"] = "by request\r\x1b[32mcase CLOSED, all fine"
        view["state"]["council"] = "E06000001\u202e"
        self.view = view

    def case(self, _case: str) -> dict[str, Any]:
        return self.view

    def notices(self, _case: str) -> list[dict[str, Any]]:
        return [{"recipient": "chief_executive\x1b[2J", "status": "undeliverable",
                 "subject": "told\rnobody", "sent_to": ["a@b.example.org\u202e"],
                 "problem": "no contact\x1b[8m", "created_at": "2030-01-01T00:00:00Z"}]

    def cases(self, **_filters: Any) -> list[dict[str, Any]]:
        return [{"case": "cpc\x1b[8m-hidden", "council": "E06000001\u2067", "kind": "finance",
                 "stage": "requested\rclosed", "next_deadline": None, "escalation_level": 0}]


def test_a_carriage_return_in_a_reason_cannot_overwrite_what_status_and_list_show(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("cli.main.ApiClient", _ApiWithTamperedAnswers)
    assert run_cli(["status", CASE]) == 0
    out, _ = printed(capsys)
    assert_harmless(out)
    assert "by request\\r\\x1b[32mcase CLOSED" in out and "E06000001\\u202e" in out
    assert "told\\rnobody" in out and "no contact\\x1b[8m" in out  # who was told, escaped too
    assert run_cli(["list"]) == 0
    out, _ = printed(capsys)
    assert_harmless(out)
    assert "cpc\\x1b[8m-hidden" in out and "requested\\rclosed" in out
    assert run_cli(["status", CASE, "--json"]) == 0
    out, _ = printed(capsys)
    assert_harmless(out)
    assert json.loads(out)["state"]["council"] == "E06000001\u202e"


# --- no secret in a message -------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "postgresql+psycopg://cases:s3cret@127.0.0.1:1/nodb",
    "postgresql://cases:s3cret@127.0.0.1:1/nodb?sslmode=x",
    "mysql://cases:s3cret@127.0.0.1:1/nodb",
    "postgresql://cases:s3cret@127.0.0.1:notaport/nodb",
    "postgresql://127.0.0.1:1/nodb?password=s3cret",
])
def test_a_database_password_never_appears_in_an_error(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CASES_DATABASE_URL", url)
    for command in (["history", "x"], ["verify", "--no-temporal"]):
        assert run_cli(command) == 1
        out, err = printed(capsys)
        assert "s3cret" not in out + err
        assert "Traceback" not in err and err.count("\n") == 1, err
        assert err.startswith("cases: ")


def test_a_password_with_at_signs_and_colons_is_hidden_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLAlchemy's own `hide_password` shows `cases:***@cret@host` for `s3@cret`; a driver
    then names `cret@127.0.0.1` as the host it could not resolve."""
    url = "postgresql://cases:s3@cret:w0rd@127.0.0.1:1/nodb"
    assert shown_url(url) == "postgresql://cases:***@127.0.0.1:1/nodb"
    assert shown_url("mysql://u:p@ss/w:rd@db.example:3306/x?ssl_key=k3yf1le") == (
        "mysql://u:***@db.example:3306/x?ssl_key=***")
    monkeypatch.setenv("CASES_DATABASE_URL", url)
    assert run_cli(["history", "x"]) == 1
    out, err = printed(capsys)
    assert "cret" not in out + err and "w0rd" not in out + err, err
    said = without_secrets(f"could not resolve host 'cret:w0rd@127.0.0.1' of {url}",
                           secrets_in(url))
    assert "cret" not in said and "w0rd" not in said and "s3@" not in said


def test_a_database_password_never_appears_in_a_log_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://cases:s3@cret@db.internal/cases"
    monkeypatch.setenv("CASES_DATABASE_URL", url)
    monkeypatch.setenv("TEMPORAL_API_KEY", "tk-0123456789abcdef")
    for log_format in ("json", "console"):
        case_logging.configure(log_format)
        try:
            structlog.get_logger().info(
                "worker starting", database="postgresql://cases:***@cret@db.internal/cases",
                failure=f"cannot connect to {url}", other="sqlite://u:pw@x/y",
                nested={"key": ["tk-0123456789abcdef"]})
        finally:
            case_logging.configure("console", logging.INFO)
        _, err = printed(capsys)
        assert "worker starting" in err
        for secret in ("s3@cret", "cret", "tk-0123456789abcdef", ":pw@"):
            assert secret not in err, (secret, err)


# --- files written readable by their owner only -------------------------------------------------

@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask, under which a file made without a mode is readable by everyone."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_a_new_sqlite_store_and_its_side_files_are_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cases.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.migrate()
        store_history(store, full_journey(CASE, "E06000001"))
        made = sorted(p.name for p in tmp_path.iterdir())
        assert {"cases.db", "cases.db-wal", "cases.db-shm"} <= set(made), made
        for name in made:
            assert mode(tmp_path / name) == 0o600, (name, oct(mode(tmp_path / name)))
    finally:
        store.dispose()


@pytest.mark.usefixtures("open_umask")
def test_an_existing_store_file_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    store = open_store(f"sqlite:///{path}")
    try:
        store.migrate()
    finally:
        store.dispose()
    assert mode(path) == 0o640


# --- output files: no symlink followed, nothing overwritten unasked ----------------------------

@pytest.mark.usefixtures("open_umask")
def test_a_symlinked_chart_path_is_refused_and_its_target_left_unchanged(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("the auditor's notes\n")
    link = tmp_path / "figures.svg"
    link.symlink_to(precious)
    for force in ([], ["--force"]):
        assert run_cli(["report", "annual", "--year", "2025", "--chart", str(link),
                        *force]) == 2
        _, err = printed(capsys)
        assert "symbolic link" in err and err.count("\n") == 1, err
        assert precious.read_text() == "the auditor's notes\n"
        assert link.is_symlink()
    dangling = tmp_path / "dangling.svg"
    dangling.symlink_to(tmp_path / "made-through-the-link.svg")
    assert run_cli(["report", "annual", "--year", "2025", "--chart", str(dangling)]) == 2
    assert not (tmp_path / "made-through-the-link.svg").exists()


@pytest.mark.usefixtures("open_umask")
def test_an_existing_chart_is_never_overwritten_without_force(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "figures.svg"
    assert run_cli(["report", "annual", "--year", "2025", "--chart", str(chart)]) == 0
    assert mode(chart) == 0o600 and "<svg" in chart.read_text()[:300]
    chart.write_text("last year's chart")
    printed(capsys)
    assert run_cli(["report", "annual", "--year", "2025", "--chart", str(chart)]) == 2
    _, err = printed(capsys)
    assert "exists" in err and "--force" in err
    assert chart.read_text() == "last year's chart"
    assert run_cli(["report", "annual", "--year", "2025", "--chart", str(chart),
                    "--force"]) == 0
    assert "<svg" in chart.read_text()[:300] and mode(chart) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
