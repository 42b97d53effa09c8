"""docs/event-store.md and docs/verify_case.py, checked against the store's own code.

The worked examples are parsed out of the page, so a stale page fails here; the standalone
verifier runs in a separate interpreter that cannot import this project.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rfc8785

from domain.events import CaseRequested, CaseScoped
from eventstore import NewEvent, open_store
from eventstore.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    canonical_json,
    event_hash,
    parse_json,
)
from eventstore.export import verifier_sha256
from eventstore.verify import verify

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "event-store.md"
SCRIPT = ROOT / "docs" / "verify_case.py"

# BRIEF §4, copied here so that the page cannot drift from the contract unnoticed.
BRIEF_LINE = (
    '{"actor":"officer:siân.jones","case_id":"cpc-E06000001-2026",'
    '"event_id":"3f6f0c1e-6a3e-5c2a-9a57-1a0f4c6f2b10",'
    '"occurred_at":"2026-03-02T09:30:00.000000Z","payload":{"budget_gap_pence":420000000,'
    '"council":"E06000001","kind":"corporate_peer_challenge","reason":"Budget gap of £4.2m '
    '\\"flagged\\" by the s151 officer\\n","scope":["finance","governance"]},'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"schema_version":1,"type":"CaseRequested","version":1}'
)
BRIEF_HASH = "a4225a32fce5148c2884b499ab1d9451f7dccf636a826fec0d06aaa9bc9d0774"
CASE = "cpc-E06000001-2026"

EXAMPLE = re.compile(
    r"```json\n(?P<line>\{[^\n]*\})\n```\n\n`hash` = `(?P<hash>[0-9a-f]{64})`"
)
VERDICT = re.compile(r"^case (?P<case>\S+) version (?P<version>\d+): (?P<kind>[a-z_]+): ",
                     re.MULTILINE)


def worked_examples() -> list[tuple[str, str]]:
    """(canonical line, hash) of each worked example on the page, in page order."""
    return [(m["line"], m["hash"]) for m in EXAMPLE.finditer(DOC.read_text(encoding="utf-8"))]


def hashed_fields(line: str) -> dict[str, Any]:
    """The keyword arguments of `event_hash` for a canonical line."""
    fields: dict[str, Any] = json.loads(line)
    fields["occurred_at"] = datetime.fromisoformat(fields["occurred_at"])
    return fields


def new_event(line: str) -> NewEvent:
    fields = hashed_fields(line)
    return NewEvent(event_id=fields["event_id"], type=fields["type"],
                    schema_version=fields["schema_version"],
                    occurred_at=fields["occurred_at"], actor=fields["actor"],
                    payload=fields["payload"])


# --- (a) the worked examples ------------------------------------------------------------


def test_the_page_has_two_worked_examples_the_first_being_the_brief_vector() -> None:
    examples = worked_examples()
    assert len(examples) == 2
    assert examples[0] == (BRIEF_LINE, BRIEF_HASH)


@pytest.mark.parametrize("index", [0, 1], ids=["version-1", "version-2"])
def test_a_worked_example_is_canonical_and_hashes_as_stated(index: int) -> None:
    line, stated_hash = worked_examples()[index]
    parsed = json.loads(line)
    assert sorted(parsed) == sorted(HASHED_FIELDS)
    assert canonical_json(parsed) == line.encode("utf-8")
    assert bytes(rfc8785.dumps(parsed)) == line.encode("utf-8")
    assert event_hash(**hashed_fields(line)) == stated_hash
    assert hashlib.sha256(line.encode("utf-8")).hexdigest() == stated_hash


def test_the_second_example_is_a_case_scoped_event_chained_to_the_first() -> None:
    (first_line, first_hash), (second_line, _) = worked_examples()
    first, second = json.loads(first_line), json.loads(second_line)
    assert first["prev_hash"] == GENESIS_HASH and first["version"] == 1
    assert (second["case_id"], second["version"], second["prev_hash"]) == (CASE, 2, first_hash)
    assert second["type"] == "CaseScoped"
    assert second["payload"] == {"scope": ["finance", "governance"], "visit_mode": "on_site"}
    CaseRequested.model_validate(first["payload"])
    CaseScoped.model_validate(second["payload"])


def test_the_store_writes_the_worked_examples_with_the_stated_hashes(tmp_path: Path) -> None:
    examples = worked_examples()
    store = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    store.migrate()
    stored = store.append(CASE, 0, [new_event(line) for line, _ in examples])
    read_back = store.read_case(CASE)
    store.dispose()
    assert [e.hash for e in stored] == [e.hash for e in read_back] == [h for _, h in examples]
    assert [e.prev_hash for e in read_back] == [GENESIS_HASH, examples[0][1]]


def test_the_page_publishes_the_sha256_of_the_bundles_verify_py() -> None:
    """So an auditor can tell the genuine verify.py; it cannot go stale: it is the real one."""
    published = re.findall(r"^verify\.py SHA-256: `([0-9a-f]{64})`$",
                           DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert published == [verifier_sha256()]


def test_the_script_on_the_page_is_docs_verify_case() -> None:
    blocks = re.findall(r"```python\n(.*?)```\n", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks == [SCRIPT.read_text(encoding="utf-8")]


# --- (b) the standalone verifier ------------------------------------------------------------


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The script in an interpreter without the project: -I isolates, -S drops site-packages
    (where the editable install of this project lives)."""
    return subprocess.run([sys.executable, "-I", "-S", str(SCRIPT), *args], cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", timeout=120,
                          check=False)


def verdict_of(result: subprocess.CompletedProcess[str]) -> tuple[int, str] | None:
    """(version, kind) named by a failing run of the script, None for a clean one."""
    assert result.returncode in (0, 3), result.stderr
    match = VERDICT.search(result.stdout)
    if result.returncode == 0:
        assert match is None and "intact" in result.stdout
        return None
    assert match is not None, result.stdout
    return int(match["version"]), match["kind"]


def tamper(db: Path, sql: str) -> None:
    """Change rows behind the store's back: drop the append-only triggers first."""
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript("DROP TRIGGER IF EXISTS events_no_update;\n"
                           "DROP TRIGGER IF EXISTS events_no_delete;\n" + sql)


ODD_CASE = "odd-keys"
ODD_PAYLOAD: dict[str, Any] = {
    "\uff61": 2, "\U0001f600": 1, "ü": [True, False, None, -(2**53 - 1), 2**53 - 1],
    "note": "tab\t nl\n \x1f \x7f \u2028 / \\ \" £ 😀", "n": {"b": 0, "a": -3},
}
"""Keys whose UTF-16 order is not their code-point order, and every kind of string escape."""


def forged_hash_of_version_2(actor: str) -> str:
    """What a forger who knows the rule would write as version 2's hash after changing it."""
    (_, first_hash), (second_line, _) = worked_examples()
    fields = hashed_fields(second_line)
    assert fields["prev_hash"] == first_hash
    return event_hash(**{**fields, "actor": actor})


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """A SQLite store with the page's case (versions 1 to 4) and one case of odd keys."""
    path = tmp_path / "cases.db"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    store.append(CASE, 0, [new_event(line) for line, _ in worked_examples()])
    visit_v1 = NewEvent(event_id="2d0c63a4-8f1e-4b7a-9c3d-5e6f7a8b9c0d", type="VisitScheduled",
                        schema_version=1, occurred_at=datetime.fromisoformat("2026-04-01T08:00Z"),
                        actor="officer:siân.jones",
                        payload={"starts_on": "2026-06-02", "ends_on": "2026-06-05"})
    held = NewEvent(event_id="5a9e1b27-3c4d-4e5f-8a6b-7c8d9e0f1a2b", type="VisitHeld",
                    schema_version=1, occurred_at=datetime.fromisoformat("2026-06-05T16:30Z"),
                    actor="officer:siân.jones",
                    payload={"mode": "on_site", "started_on": "2026-06-02",
                             "ended_on": "2026-06-05"})
    store.append(CASE, 2, [visit_v1, held])
    store.append(ODD_CASE, 0, [NewEvent(event_id="0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
                                        type="Note", schema_version=1,
                                        occurred_at=datetime.fromisoformat("2026-01-01T00:00Z"),
                                        actor="system:test", payload=ODD_PAYLOAD)])
    assert verify(store, CASE).ok and verify(store, ODD_CASE).ok
    store.dispose()
    yield path


def store_verdict(db: Path, case_id: str) -> tuple[int, str] | None:
    store = open_store(f"sqlite:///{db}")
    try:
        problem = verify(store, case_id).first_problem
    finally:
        store.dispose()
    return None if problem is None else (problem.version, str(problem.kind))


def test_the_script_cannot_import_the_project_and_imports_only_the_standard_library(
    tmp_path: Path,
) -> None:
    probe = subprocess.run([sys.executable, "-I", "-S", "-c", "import eventstore"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
    imported: set[str] = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= sys.stdlib_module_names
    assert {"json", "hashlib", "sqlite3"} <= imported


def test_an_intact_case_exits_0_and_prints_its_head(db: Path, tmp_path: Path) -> None:
    result = run_script(str(db), CASE, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdict_of(result) is None
    store = open_store(f"sqlite:///{db}")
    version, head_hash = store.head(CASE)
    store.dispose()
    assert f"versions 1 to {version}" in result.stdout and head_hash in result.stdout


def test_keys_sort_by_utf16_code_units_and_strings_escape_as_jcs(db: Path, tmp_path: Path) -> None:
    assert run_script(str(db), ODD_CASE, cwd=tmp_path).returncode == 0


def test_a_payload_altered_behind_the_stores_back_exits_3_naming_the_version(
    db: Path, tmp_path: Path
) -> None:
    tamper(db, f"UPDATE events SET payload = '{{\"scope\": [\"finance\"], \"visit_mode\": "
               f"\"on_site\"}}' WHERE case_id = '{CASE}' AND version = 2;")
    result = run_script(str(db), CASE, cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert verdict_of(result) == (2, "altered")
    assert f"case {CASE} version 2: altered" in result.stdout
    assert store_verdict(db, CASE) == (2, "altered")
    assert run_script(str(db), ODD_CASE, cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("UPDATE events SET actor = 'officer:mallory' WHERE {where} AND version = 3",
         (3, "altered")),
        ("UPDATE events SET occurred_at = '2026-03-16 14:05:00.250001' "
         "WHERE {where} AND version = 2", (2, "altered")),
        ("UPDATE events SET payload = '{{\"scope\": [\"finance\", \"governance\"], "
         "\"visit_mode\": \"on_site\", \"extra\": 1.0}}' WHERE {where} AND version = 2",
         (2, "altered")),
        ("UPDATE events SET schema_version = 2 WHERE {where} AND version = 3", (3, "altered")),
        ("DELETE FROM events WHERE {where} AND version = 2", (2, "missing")),
        ("DELETE FROM events WHERE {where} AND version = 1", (1, "missing")),
        ("UPDATE events SET actor = 'officer:mallory', hash = '{forged}' "
         "WHERE {where} AND version = 2", (3, "broken_link")),
        ("UPDATE events SET position = 1000 WHERE {where} AND version = 2", (3, "reordered")),
        ("DELETE FROM events WHERE {where} AND version = 4", None),
        ("UPDATE events SET payload = '{{\"scope\": " + "[" * 5000 + "]" * 5000 + "}}' "
         "WHERE {where} AND version = 2", (2, "altered")),
        ("UPDATE events SET payload = '{{\"scope\": [' WHERE {where} AND version = 3",
         (3, "altered")),
    ],
    ids=["actor", "time", "float", "schema-version", "deleted", "deleted-first",
         "rehashed-forgery", "moved", "truncated-tail-is-invisible", "nested-5000-deep",
         "not-json"],
)
def test_the_script_agrees_with_the_stores_verifier(
    db: Path, tmp_path: Path, sql: str, expected: tuple[int, str] | None
) -> None:
    tamper(db, sql.format(where=f"case_id = '{CASE}'",
                          forged=forged_hash_of_version_2("officer:mallory")) + ";")
    assert store_verdict(db, CASE) == expected
    assert verdict_of(run_script(str(db), CASE, cwd=tmp_path)) == expected


def test_a_repeated_payload_key_is_reported_as_altered(db: Path, tmp_path: Path) -> None:
    """The store never writes one; parsers disagree on which value wins, so it is tampering."""
    tamper(db, "UPDATE events SET payload = '{\"scope\": [\"finance\", \"governance\"], "
               "\"visit_mode\": \"remote\", \"visit_mode\": \"on_site\"}' "
               f"WHERE case_id = '{CASE}' AND version = 2;")
    assert verdict_of(run_script(str(db), CASE, cwd=tmp_path)) == (2, "altered")


def test_nothing_to_verify_exits_2(db: Path, tmp_path: Path) -> None:
    assert run_script(str(db), "no-such-case", cwd=tmp_path).returncode == 2
    assert run_script(str(tmp_path / "absent.db"), CASE, cwd=tmp_path).returncode == 2
    assert not (tmp_path / "absent.db").exists()
    assert run_script(str(db), cwd=tmp_path).returncode == 2


# --- the script's canonical JSON, unit by unit ---------------------------------------------


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_case", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "value",
    [
        ODD_PAYLOAD,
        json.loads(BRIEF_LINE),
        {"": [], "a": {}, "A": "", "é": "\x00\x08\x09\x0a\x0c\x0d\x1f\x20\x7f"},
        {"\ue000": 1, "\U00010000": 2, "\uffff": 3, "\ud7ff": 4},
        [0, -0, 1, -1, 2**53 - 1, -(2**53 - 1), True, False, None, "\u2028\u2029</"],
    ],
)
def test_the_scripts_canonical_json_is_rfc8785(value: Any) -> None:
    module = load_script()
    assert module.canonical(value).encode("utf-8") == bytes(rfc8785.dumps(value))
    assert module.canonical(value).encode("utf-8") == canonical_json(value)


@pytest.mark.parametrize("value", [1.5, 2**53, -(2**53), {"a": [float("nan")]}])
def test_the_scripts_canonical_json_refuses_what_the_store_never_writes(value: Any) -> None:
    with pytest.raises(ValueError):
        load_script().canonical(value)


def test_a_payload_nested_past_the_limit_is_named_not_a_crash(db: Path, tmp_path: Path) -> None:
    """1,000 levels is the limit (the payload object is level 1): 1,000 verifies, 1,001 is
    tampered, and the message says why, the same in the script and the store."""
    module = load_script()
    at_limit = parse_json('{"a": ' + "[" * 999 + "]" * 999 + "}")
    past = parse_json('{"a": ' + "[" * 1000 + "]" * 1000 + "}", max_depth=2000)
    assert module.canonical(at_limit).encode("utf-8") == canonical_json(at_limit)
    with pytest.raises(ValueError, match="nested deeper than 1000 levels"):
        module.canonical({"payload": past})
    deep = "{\"scope\": " + "[" * 5000 + "]" * 5000 + "}"
    tamper(db, f"UPDATE events SET payload = '{deep}' WHERE case_id = '{CASE}' AND version = 2;")
    result = run_script(str(db), CASE, cwd=tmp_path)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert result.stdout == (f"case {CASE} version 2: altered: the payload is nested deeper "
                             "than 1000 levels of objects and arrays: it cannot be verified; "
                             "treat it as tampered\n")
    store = open_store(f"sqlite:///{db}")
    try:
        problem = verify(store, CASE).first_problem
    finally:
        store.dispose()
    assert problem is not None and problem.version == 2
    assert problem.detail == result.stdout.split("altered: ", 1)[1].strip()


def test_the_script_refuses_a_verdict_when_its_hashing_fails_the_test_vector(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    module = load_script()
    assert module.hashing_works()
    assert module.TEST_VECTOR == BRIEF_LINE and module.TEST_VECTOR_HASH == BRIEF_HASH

    class Broken:
        @staticmethod
        def sha256(data: bytes) -> Any:
            return hashlib.sha256(data + b" ")

    monkeypatch.setattr(module, "hashlib", Broken)
    assert module.main([str(db), CASE]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "test vector" in captured.err


def test_the_script_started_plainly_restarts_isolated_and_ignores_modules_beside_it(
    db: Path, tmp_path: Path,
) -> None:
    """A hashlib.py that makes every digest "match", beside a copy of the script: started as
    `python3 verify_case.py`, the script restarts itself with -I -S and never imports it."""
    tamper(db, f"UPDATE events SET actor = 'officer:mallory' WHERE case_id = '{CASE}' "
               "AND version = 3;")
    here = tmp_path / "copy"
    here.mkdir()
    script = here / "verify_case.py"
    script.write_text(SCRIPT.read_text(encoding="utf-8"), encoding="utf-8")
    (here / "hashlib.py").write_text(
        "import pathlib\n"
        "pathlib.Path(__file__).with_name('SHADOWED').touch()\n"
        "class _Equal(str):\n"
        "    __eq__ = lambda self, other: True\n"
        "    __ne__ = lambda self, other: False\n"
        "    __hash__ = str.__hash__\n"
        "class sha256:\n"
        "    def __init__(self, data=b''): pass\n"
        "    def hexdigest(self): return _Equal('0' * 64)\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(script), str(db), CASE], cwd=here,
                            capture_output=True, text=True, encoding="utf-8", timeout=120,
                            check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} version 3: altered: stored hash ")
    assert not (here / "SHADOWED").exists()


def test_the_script_escapes_what_it_prints_from_the_database(db: Path, tmp_path: Path) -> None:
    tamper(db, f"UPDATE events SET hash = char(27) || '[32mintact' || char(8238) "
               f"WHERE case_id = '{CASE}' AND version = 1;")
    result = run_script(str(db), CASE, cwd=tmp_path)
    assert result.returncode == 3
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[32mintact\\u202e" in result.stdout
