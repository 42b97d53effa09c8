"""Exports of a case (JSON, CSV) and the audit bundle, checked by its own standalone verifier.

The bundle's verify.py runs as `python -I -S` from the bundle's directory: no site-packages,
no PYTHONPATH, no script directory on the path, so it cannot import this project or anything
but the standard library.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.figures import annual_figures, cases_by_stage
from domain.recorded import Recorded
from domain.state import fold
from eventstore import EventStore, NewEvent
from eventstore.chain import GENESIS_HASH, canonical_json, event_hash, format_time
from eventstore.charts import annual_chart, histogram_bins, publication_histogram, stage_chart
from eventstore.export import (
    BUNDLE_FILES,
    COLUMNS,
    RULE,
    TEST_VECTOR,
    TEST_VECTOR_HASH,
    NoSuchCase,
    case_histories,
    export_csv,
    export_json,
    write_bundle,
)
from tests.test_domain_figures import END, START, history_of, plan_year
from tests.test_domain_timeline import full_journey

ROOT = Path(__file__).resolve().parents[1]
CASE = "cpc-E06000001-2026"
VECTOR_EVENT = NewEvent(
    event_id="3f6f0c1e-6a3e-5c2a-9a57-1a0f4c6f2b10", type="CaseRequested", schema_version=1,
    occurred_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC), actor="officer:siân.jones",
    payload={"budget_gap_pence": 420000000, "council": "E06000001",
             "kind": "corporate_peer_challenge",
             "reason": "Budget gap of £4.2m \"flagged\" by the s151 officer\n",
             "scope": ["finance", "governance"]})


def new_events(history: list[Recorded]) -> list[NewEvent]:
    return [NewEvent.of(r.event, event_id=r.event_id, occurred_at=r.occurred_at, actor=r.actor)
            for r in history]


def store_history(store: EventStore, history: list[Recorded]) -> None:
    """The whole history in one append (one transaction)."""
    store.append(history[0].case_id, 0, new_events(history))


@pytest.fixture
def store(sqlite_store: EventStore) -> EventStore:
    """The BRIEF §4 test vector as version 1 of CASE, then a whole journey after it."""
    journey = full_journey(CASE, start=date(2026, 3, 2))
    sqlite_store.append(CASE, 0, [VECTOR_EVENT, *new_events(journey[1:])])
    store_history(sqlite_store, full_journey("other-case", "E08000025"))
    return sqlite_store


def run_verifier(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The bundle's verify.py in an isolated interpreter, from the bundle's own directory."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(directory / "verify.py"), *args], cwd=directory,
        capture_output=True, text=True, encoding="utf-8", timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONIOENCODING": "utf-8"})


def events_of(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "events.json").read_text("utf-8"))
    return document


def rewrite(directory: Path, document: dict[str, Any]) -> None:
    (directory / "events.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# --- JSON and CSV --------------------------------------------------------------------------

def test_json_export_is_every_row_as_stored(store: EventStore) -> None:
    stored = store.read_case(CASE)
    document = json.loads(export_json(store, CASE))
    assert document["case_id"] == CASE and document["format"].startswith("improvement-case")
    rows = document["events"]
    assert [r["version"] for r in rows] == list(range(1, len(stored) + 1))
    for row, event in zip(rows, stored, strict=True):
        assert list(row) == list(COLUMNS)
        assert row["payload"] == event.payload and row["hash"] == event.hash
        assert row["position"] == event.position and row["prev_hash"] == event.prev_hash
        assert row["occurred_at"] == format_time(event.occurred_at)
        again = {k: row[k] for k in row if k not in ("position", "hash")}
        again["occurred_at"] = event.occurred_at
        assert event_hash(**again) == row["hash"]
    assert rows[0]["hash"] == TEST_VECTOR_HASH and rows[0]["prev_hash"] == GENESIS_HASH
    assert rows[0]["occurred_at"] == "2026-03-02T09:30:00.000000Z"
    assert "£4.2m" in export_json(store, CASE)  # UTF-8, not \\u escapes


def test_csv_export_has_one_row_per_event_with_canonical_payloads(store: EventStore) -> None:
    stored = store.read_case(CASE)
    text = export_csv(store, CASE)
    assert text.startswith(",".join(COLUMNS) + "\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(stored)
    for row, event in zip(rows, stored, strict=True):
        assert row["payload"] == canonical_json(event.payload).decode("utf-8")
        assert json.loads(row["payload"]) == event.payload
        assert int(row["version"]) == event.version and row["hash"] == event.hash
        assert row["occurred_at"] == format_time(event.occurred_at)
        assert int(row["position"]) == event.position and row["type"] == event.type
    assert '\\"flagged\\"' in rows[0]["payload"] and "\\n" in rows[0]["payload"]


def test_an_unknown_case_has_nothing_to_export(store: EventStore, tmp_path: Path) -> None:
    for export in (export_json, export_csv):
        with pytest.raises(NoSuchCase, match="no case nope"):
            export(store, "nope")
    with pytest.raises(NoSuchCase):
        write_bundle(store, "nope", tmp_path / "b")
    assert not (tmp_path / "b").exists()


# --- the bundle ----------------------------------------------------------------------------

@pytest.fixture
def bundle(store: EventStore, tmp_path: Path) -> Path:
    return write_bundle(store, CASE, tmp_path / "bundle",
                        now=datetime(2026, 12, 1, 8, 0, tzinfo=UTC))


def test_the_bundle_holds_the_events_the_rule_the_verifier_and_a_manifest(
    store: EventStore, bundle: Path,
) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == sorted(BUNDLE_FILES)
    assert (bundle / "events.json").read_text("utf-8") == export_json(store, CASE)
    manifest = json.loads((bundle / "MANIFEST.json").read_text("utf-8"))
    version, head_hash = store.head(CASE)
    assert manifest["case_id"] == CASE and manifest["event_count"] == version
    assert manifest["head"] == {"version": version, "hash": head_hash}
    assert manifest["events_json_sha256"] == hashlib.sha256(
        (bundle / "events.json").read_bytes()).hexdigest()
    assert manifest["exported_at"] == "2026-12-01T08:00:00.000000Z"
    assert manifest["verified_at_export"] == {"ok": True, "problem": None}
    rule = (bundle / "RULE.md").read_text("utf-8")
    assert rule == RULE and TEST_VECTOR in rule and TEST_VECTOR_HASH in rule
    assert hashlib.sha256(TEST_VECTOR.encode("utf-8")).hexdigest() == TEST_VECTOR_HASH


def test_the_verifier_cannot_import_the_project() -> None:
    probe = subprocess.run([sys.executable, "-I", "-S", "-c", "import eventstore"],
                           cwd="/", capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


def test_the_bundle_verifies_with_its_own_standalone_verifier(store: EventStore,
                                                             bundle: Path) -> None:
    result = run_verifier(bundle)
    version, head_hash = store.head(CASE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (f"case {CASE}: intact, versions 1 to {version}; "
                                     f"head hash {head_hash}")
    # The verifier for a SQLite store (docs/verify_case.py) says the same of the same case.
    db = store.engine.url.database
    assert db is not None
    docs = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "docs" / "verify_case.py"),
                           db, CASE], capture_output=True, text=True, timeout=60,
                          encoding="utf-8")
    assert docs.returncode == 0 and docs.stdout == result.stdout
    # A copy anywhere else verifies too, given the directory as its argument.
    assert run_verifier(bundle, str(bundle)).returncode == 0


def test_altering_one_payload_value_fails_naming_the_version(bundle: Path) -> None:
    document = events_of(bundle)
    row = document["events"][4]
    assert row["type"] == "PeerTeamProposed"
    row["payload"]["team"][0]["name"] = "Cllr Someone Else"
    rewrite(bundle, document)
    result = run_verifier(bundle)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} version 5: altered: stored hash ")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda rows: rows[2].update(actor="officer:mallory"), "version 3: altered: stored hash"),
    (lambda rows: rows[6].update(occurred_at="2026-05-05T00:00:00.000000Z"),
     "version 7: altered"),
    (lambda rows: rows[1]["payload"].update(extra=1.5), "version 2: altered: the number 1.5"),
    (lambda rows: rows[3].pop("event_id"), "version 4: altered: the field 'event_id'"),
    (lambda rows: rows[3].update(position=rows[2]["position"]), "version 4: reordered"),
    (lambda rows: rows.insert(3, rows[3]), "version 5: missing: the chain jumps"),
])
def test_other_tampering_fails_naming_the_version(bundle: Path, change: Any,
                                                  expected: str) -> None:
    document = events_of(bundle)
    change(document["events"])
    rewrite(bundle, document)
    result = run_verifier(bundle)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} {expected}"), result.stdout


def test_a_rehashed_event_breaks_the_link_to_the_next(bundle: Path) -> None:
    document = events_of(bundle)
    row = document["events"][2]
    row["actor"] = "officer:mallory"
    fields = {k: row[k] for k in row if k not in ("position", "hash")}
    fields["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
    row["hash"] = event_hash(**fields)
    rewrite(bundle, document)
    result = run_verifier(bundle)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} version 4: broken_link: ")


def test_deleting_an_event_is_missing(bundle: Path) -> None:
    document = events_of(bundle)
    del document["events"][6]
    rewrite(bundle, document)
    result = run_verifier(bundle)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} version 7: missing: the chain jumps from "
                                    "version 6 to version 8")


def test_deleting_the_last_event_is_missing_against_the_manifest(bundle: Path) -> None:
    document = events_of(bundle)
    last = document["events"].pop()["version"]
    rewrite(bundle, document)
    result = run_verifier(bundle)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} version {last}: missing: MANIFEST.json "
                                    f"records head version {last}")
    # Without the manifest, the chain alone cannot tell (and says so).
    (bundle / "MANIFEST.json").unlink()
    alone = run_verifier(bundle)
    assert alone.returncode == 0 and "truncated" in alone.stderr


def test_a_change_outside_the_hashes_shows_against_the_manifest(bundle: Path) -> None:
    document = events_of(bundle)
    document["events"][-1]["position"] += 1000
    rewrite(bundle, document)
    result = run_verifier(bundle)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} events.json: altered: its sha256 is ")


def test_a_manifest_for_another_head_or_case_fails(bundle: Path) -> None:
    path = bundle / "MANIFEST.json"
    manifest = json.loads(path.read_text("utf-8"))
    path.write_text(json.dumps({**manifest, "head": {**manifest["head"], "hash": "0" * 64}}),
                    encoding="utf-8")
    assert "altered: hash" in run_verifier(bundle).stdout
    path.write_text(json.dumps({**manifest, "case_id": "another"}), encoding="utf-8")
    assert run_verifier(bundle).returncode == 3
    path.write_text("not json", encoding="utf-8")
    assert "MANIFEST.json: altered" in run_verifier(bundle).stdout


@pytest.mark.parametrize("content", [None, "not json", '{"events": []}', "[]"])
def test_nothing_to_verify_exits_2(bundle: Path, content: str | None) -> None:
    path = bundle / "events.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content, encoding="utf-8")
    result = run_verifier(bundle)
    assert result.returncode == 2 and result.stdout == ""


def test_the_bundle_goes_into_a_new_or_empty_directory(store: EventStore,
                                                       bundle: Path) -> None:
    with pytest.raises(FileExistsError, match="not empty"):
        write_bundle(store, CASE, bundle)
    empty = bundle.parent / "empty"
    empty.mkdir()
    assert write_bundle(store, CASE, empty) == empty
    assert run_verifier(empty).returncode == 0


def test_a_case_broken_in_the_store_is_exported_as_stored_and_flagged(
    store: EventStore, tmp_path: Path,
) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER events_no_update")
        conn.exec_driver_sql(f"UPDATE events SET actor = 'officer:mallory' "
                             f"WHERE case_id = '{CASE}' AND version = 3")
    directory = write_bundle(store, CASE, tmp_path / "broken")
    manifest = json.loads((directory / "MANIFEST.json").read_text("utf-8"))
    assert manifest["verified_at_export"]["ok"] is False
    assert "version 3: altered" in manifest["verified_at_export"]["problem"]
    result = run_verifier(directory)
    assert result.returncode == 3 and "version 3: altered: stored hash" in result.stdout
    db = store.engine.url.database
    assert db is not None
    docs = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "docs" / "verify_case.py"),
                           db, CASE], capture_output=True, text=True, timeout=60,
                          encoding="utf-8")
    assert docs.returncode == 3 and docs.stdout == result.stdout  # the same verdict, word for word


def test_the_verifier_source_is_standard_library_only(bundle: Path) -> None:
    source = (bundle / "verify.py").read_text("utf-8")
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "hashlib", "json", "sys", "datetime", "pathlib", "typing"}
    assert os.access(bundle / "verify.py", os.X_OK)


# --- all histories, figures and charts from a store ----------------------------------------

def test_figures_from_the_store_equal_figures_from_the_histories(
    sqlite_store: EventStore,
) -> None:
    histories = [history_of(plan) for plan in plan_year(11)]
    for history in histories:
        store_history(sqlite_store, history)
    from_store = case_histories(sqlite_store)
    assert list(from_store) == sorted(h[0].case_id for h in histories)
    assert annual_figures(from_store.values(), START, END) == annual_figures(histories, START,
                                                                             END)
    states = [fold(case_id, h) for case_id, h in from_store.items()]
    assert sum(cases_by_stage(states).values()) == len(histories)


def test_charts_are_well_formed_svg() -> None:
    counts = {"requested": 2, "visited": 5, "closed": 0, "withdrawn": 1}
    svg = stage_chart(counts, title="Cases by stage <2025 & after>")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert [t.text for b in bars for t in b.iter(f"{ns}title")] == [
        "requested: 2", "visited: 5", "closed: 0", "withdrawn: 1"]
    widths = [float(b.get("width", "0")) for b in bars]
    assert widths[1] == max(widths) and widths[2] == 0 and widths[0] == 2 * widths[3]
    days = [0, 13, 14, 30, 95, 200]
    assert histogram_bins(days, 14)[:3] == [(0, 13, 2), (14, 27, 1), (28, 41, 1)]
    assert sum(n for _, _, n in histogram_bins(days, 14)) == len(days)
    hist = ET.fromstring(publication_histogram(days))
    titles = [t.text or "" for r in hist.iter(f"{ns}rect") for t in r.iter(f"{ns}title")]
    assert "98–111 days: 1" not in titles and "196–209 days: 1" in titles
    assert ET.fromstring(publication_histogram([])) is not None
    both = annual_chart(counts, days, title="Peer challenges 2025")
    assert ET.fromstring(both).findtext(f"{ns}title") == "Peer challenges 2025"
    assert annual_chart(counts, days, title="x") == annual_chart(counts, days, title="x")
    with pytest.raises(ValueError):
        histogram_bins(days, 0)


def test_the_first_event_date_is_what_the_export_says(store: EventStore) -> None:
    first = json.loads(export_json(store, CASE))["events"][0]
    assert datetime.fromisoformat(first["occurred_at"]).date() == date(2026, 3, 2)
