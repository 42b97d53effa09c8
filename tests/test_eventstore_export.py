"""Exports of a case (JSON, CSV) and the audit bundle, checked by its own standalone verifier.

The bundle's verify.py runs as `python -I -S` from the bundle's directory: no site-packages,
no PYTHONPATH, no script directory on the path, so it cannot import this project or anything
but the standard library.
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.checkpoints import CaseHead, leaf, merkle_root
from domain.figures import annual_figures, cases_by_stage
from domain.merkle_proofs import head_proof, inclusion_proof, root_from_proof
from domain.recorded import Recorded
from domain.state import fold
from eventstore import EventStore, NewEvent
from eventstore.chain import GENESIS_HASH, canonical_json, event_hash, format_time
from eventstore.charts import annual_chart, histogram_bins, publication_histogram, stage_chart
from eventstore.checkpoints import record_checkpoint
from eventstore.export import (
    BUNDLE_FILES,
    COLUMNS,
    RULE,
    TEST_VECTOR,
    TEST_VECTOR_HASH,
    VERIFIER,
    NoSuchCase,
    case_histories,
    export_csv,
    export_json,
    verifier_sha256,
    write_bundle,
)
from eventstore.records import StoredEvent
from tests.support import run_cli
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
    verdict, anchor, itself = result.stdout.splitlines()
    assert verdict == f"case {CASE}: intact, versions 1 to {version}; head hash {head_hash}"
    assert anchor.startswith("not anchored: the bundle has no PROOF.json")
    assert f"this verify.py has SHA-256 {verifier_sha256()}" in itself
    # The verifier for a SQLite store (docs/verify_case.py) says the same of the same case.
    db = store.engine.url.database
    assert db is not None
    docs = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "docs" / "verify_case.py"),
                           db, CASE], capture_output=True, text=True, timeout=60,
                          encoding="utf-8")
    assert docs.returncode == 0 and docs.stdout.splitlines() == [verdict]
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
    """Standard library only, and not even `from __future__`: that too is an import, and a
    __future__.py beside the script would run before the script could isolate itself. Its
    grammar is Python 3.8's, for auditors with an older Python."""
    tree = ast.parse((bundle / "verify.py").read_text("utf-8"), feature_version=(3, 8))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None and node.level == 0
            imported.add(node.module.split(".")[0])
    assert imported <= sys.stdlib_module_names and "__future__" not in imported
    first = next(n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom))
    assert isinstance(first, ast.Import) and [a.name for a in first.names] == ["sys"]
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
    assert "98–111 days: 1" not in titles and "190–203 days: 1" in titles
    assert ET.fromstring(publication_histogram([])) is not None
    both = annual_chart(counts, days, title="Peer challenges 2025")
    assert ET.fromstring(both).findtext(f"{ns}title") == "Peer challenges 2025"
    assert annual_chart(counts, days, title="x") == annual_chart(counts, days, title="x")
    with pytest.raises(ValueError):
        histogram_bins(days, 0)


def test_the_first_event_date_is_what_the_export_says(store: EventStore) -> None:
    first = json.loads(export_json(store, CASE))["events"][0]
    assert datetime.fromisoformat(first["occurred_at"]).date() == date(2026, 3, 2)


# --- bundles are private, never through a link, replaced only with force -------------------

def test_a_bundle_is_readable_by_its_owner_only(bundle: Path) -> None:
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o700
    for path in bundle.iterdir():
        expected = 0o700 if path.name == "verify.py" else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name


def test_force_replaces_an_earlier_bundles_files_and_nothing_else(store: EventStore,
                                                                  bundle: Path) -> None:
    (bundle / "NOTES.txt").write_text("the auditor's own notes", encoding="utf-8")
    (bundle / "events.json").write_text("{}", encoding="utf-8")
    assert write_bundle(store, CASE, bundle, force=True) == bundle
    assert (bundle / "NOTES.txt").read_text(encoding="utf-8") == "the auditor's own notes"
    assert (bundle / "events.json").read_text("utf-8") == export_json(store, CASE)
    assert run_verifier(bundle).returncode == 0


def test_the_manifest_names_the_verifier_by_its_sha256(bundle: Path) -> None:
    manifest = json.loads((bundle / "MANIFEST.json").read_text("utf-8"))
    assert manifest["verify_py_sha256"] == verifier_sha256() == hashlib.sha256(
        (bundle / "verify.py").read_bytes()).hexdigest()
    assert manifest["anchor"] is None
    assert manifest["anchor_note"] == "not anchored: the store has no checkpoint yet"


# --- the anchor: the case's head in the newest checkpoint, signed --------------------------

KEY_SEED = bytes(range(32))


def record(store: EventStore, at: datetime = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
           ) -> StoredEvent:
    """A checkpoint of the store as it stands, recorded as the worker records one."""
    return record_checkpoint(store, event_id=str(uuid.uuid4()), at=at, actor="system:test")


def publish(point: StoredEvent, directory: Path, key: Ed25519PrivateKey) -> Path:
    """The checkpoint's signed file, made by the contract of eventstore/checkpoint_files.py
    (the statement's RFC 8785 JSON signed with Ed25519), and its key's `.pub` beside a
    private key file; returns that private key file's path (what CASES_SIGNING_KEY names)."""
    payload = point.payload
    statement = {"number": point.version, "recorded_at": format_time(point.occurred_at),
                 "last_position": payload["last_position"],
                 "merkle_root": payload["merkle_root"], "heads": payload["heads"],
                 "previous": payload.get("previous"),
                 "verify_py_sha256": payload.get("verify_py_sha256")}
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    document = {"statement": statement,
                "signature": base64.b64encode(key.sign(rfc8785.dumps(statement))).decode(),
                "public_key_sha256": hashlib.sha256(raw).hexdigest()}
    directory.mkdir(exist_ok=True)
    (directory / f"checkpoint-{point.version:06d}.json").write_text(
        json.dumps(document, indent=2), encoding="utf-8")
    private = directory / "signing.key"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    Path(f"{private}.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(KEY_SEED)


def signed_bundle(store: EventStore, tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    private = publish(record(store), tmp_path / "published", key)
    return write_bundle(store, CASE, tmp_path / "signed", checkpoint_dir=tmp_path / "published",
                        public_key=Path(f"{private}.pub"))


def test_a_bundle_carries_its_heads_proof_in_the_newest_checkpoint(store: EventStore,
                                                                   tmp_path: Path) -> None:
    point = record(store)
    directory = write_bundle(store, CASE, tmp_path / "anchored")
    assert sorted(p.name for p in directory.iterdir()) == sorted([*BUNDLE_FILES, "PROOF.json"])
    proof = json.loads((directory / "PROOF.json").read_text("utf-8"))
    version, head_hash = store.head(CASE)
    assert proof["checkpoint"] == point.version
    assert proof["merkle_root"] == point.payload["merkle_root"]
    assert proof["leaf"] == {"case_id": CASE, "version": version, "hash": head_hash}
    steps = [(s["sibling_on"], s["hash"]) for s in proof["proof"]]
    head = CaseHead(case_id=CASE, version=version, hash=head_hash)
    assert root_from_proof(leaf(head), steps) == proof["merkle_root"]
    manifest = json.loads((directory / "MANIFEST.json").read_text("utf-8"))
    assert manifest["anchor"] == {"checkpoint": point.version,
                                  "merkle_root": proof["merkle_root"], "version": version,
                                  "signed": False, "public_key_sha256": None}
    result = run_verifier(directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1] == (
        f"anchored, unsigned: versions 1 to {version} are in checkpoint {point.version} "
        f"(Merkle root {proof['merkle_root']}) of the store that exported them; nothing "
        "outside that store vouches for the root: compare it with a root published elsewhere")


def test_events_after_the_checkpoint_are_said_to_have_come_after_it(
    store: EventStore, tmp_path: Path,
) -> None:
    journey = full_journey("late-case", "E09000008", start=date(2026, 3, 2))
    store.append("late-case", 0, new_events(journey[:3]))
    record(store)
    store.append("late-case", 3, new_events(journey[3:5]))
    directory = write_bundle(store, "late-case", tmp_path / "late")
    result = run_verifier(directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "versions 1 to 3 are in checkpoint 1" in result.stdout
    assert "; versions 4 to 5 came after it" in result.stdout


def test_a_case_the_newest_checkpoint_never_saw_is_not_anchored(store: EventStore,
                                                                tmp_path: Path) -> None:
    record(store)
    store_history(store, full_journey("newer-case", "E09000008", start=date(2026, 3, 2)))
    directory = write_bundle(store, "newer-case", tmp_path / "newer")
    assert not (directory / "PROOF.json").exists()
    manifest = json.loads((directory / "MANIFEST.json").read_text("utf-8"))
    assert "was recorded before the case began" in manifest["anchor_note"]
    assert "not anchored" in run_verifier(directory).stdout


def test_a_signed_checkpoint_and_its_key_travel_in_the_bundle(
    store: EventStore, tmp_path: Path, signing_key: Ed25519PrivateKey,
) -> None:
    directory = signed_bundle(store, tmp_path, signing_key)
    published = tmp_path / "published" / "checkpoint-000001.json"
    assert (directory / "CHECKPOINT.json").read_bytes() == published.read_bytes()
    assert (directory / "PUBLIC_KEY.pem").read_bytes() == (
        tmp_path / "published" / "signing.key.pub").read_bytes()
    manifest = json.loads((directory / "MANIFEST.json").read_text("utf-8"))
    assert manifest["anchor"]["signed"] is True
    result = run_verifier(directory)
    assert result.returncode == 0, result.stdout + result.stderr
    anchored = result.stdout.splitlines()[1]
    assert anchored.startswith("anchored: versions 1 to ")
    assert "signed; the signature verifies with the bundle's own PUBLIC_KEY.pem" in anchored
    assert "compare that key with one you obtained independently" in anchored
    assert f"verify.py SHA-256 {verifier_sha256()}" in result.stdout
    # The auditor's own copy of the key: the verifier says it used that one.
    mine = tmp_path / "auditors-copy.pub"
    mine.write_bytes((tmp_path / "published" / "signing.key.pub").read_bytes())
    with_mine = run_verifier(directory, "--public-key", str(mine))
    assert with_mine.returncode == 0
    assert f"verifies with the key you gave ({mine}, SHA-256 " in with_mine.stdout


def test_a_key_that_did_not_sign_the_checkpoint_is_left_out(
    store: EventStore, tmp_path: Path, signing_key: Ed25519PrivateKey,
) -> None:
    publish(record(store), tmp_path / "published", signing_key)
    other = tmp_path / "other.pub"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    directory = write_bundle(store, CASE, tmp_path / "b", checkpoint_dir=tmp_path / "published",
                             public_key=other)
    assert (directory / "CHECKPOINT.json").exists() and not (directory / "PUBLIC_KEY.pem").exists()
    manifest = json.loads((directory / "MANIFEST.json").read_text("utf-8"))
    assert "signed by another key" in manifest["anchor_note"]
    result = run_verifier(directory)
    assert result.returncode == 0 and "signature not checked" in result.stdout


def test_the_cli_writes_the_anchor_from_the_environment(
    store: EventStore, tmp_path: Path, signing_key: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    private = publish(record(store), tmp_path / "published", signing_key)
    monkeypatch.setenv("CASES_DATABASE_URL", str(store.engine.url))
    monkeypatch.setenv("CASES_CHECKPOINT_DIR", str(tmp_path / "published"))
    monkeypatch.setenv("CASES_SIGNING_KEY", str(private))
    assert run_cli(["export", CASE, "--bundle", str(tmp_path / "cli"), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["verify_py_sha256"] == verifier_sha256() and said["anchor"]["signed"] is True
    assert {"CHECKPOINT.json", "PUBLIC_KEY.pem", "PROOF.json"} <= {
        p.name for p in (tmp_path / "cli").iterdir()}
    assert run_cli(["export", CASE, "--bundle", str(tmp_path / "cli")]) == 2
    assert run_cli(["export", CASE, "--bundle", str(tmp_path / "cli"), "--force"]) == 0
    assert "anchored in signed checkpoint 1" in capsys.readouterr().out
    assert run_cli(["export", CASE, "--force"]) == 2


# --- the verifier's own parts --------------------------------------------------------------

def verifier_module() -> ModuleType:
    """The bundle's verify.py, its functions at hand (imported, it does not restart itself)."""
    module = ModuleType("bundle_verify")
    exec(compile(VERIFIER, "verify.py", "exec"), module.__dict__)
    return module


VERIFIER_MODULE = [verifier_module()]


def load_verifier(tmp_path: Path) -> ModuleType:
    """The bundle's verify.py as a module (imported, it does not restart itself)."""
    path = tmp_path / "verify_module.py"
    path.write_text(VERIFIER, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bundle_verify", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_verifier_refuses_a_verdict_when_its_hashing_fails_the_test_vector(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = load_verifier(tmp_path)
    assert module.TEST_VECTOR == TEST_VECTOR and module.TEST_VECTOR_HASH == TEST_VECTOR_HASH
    assert module.TEST_VECTOR in RULE and module.hashing_works()
    assert module.main([str(bundle)]) == 0
    monkeypatch.setattr(module, "canonical", lambda value, *depth: "{}")
    assert module.main([str(bundle)]) == 2
    captured = capsys.readouterr()
    assert "does not reproduce the test vector of RULE.md" in captured.err
    assert "intact" not in captured.out.splitlines()[-1]


RFC8032_TESTS = [  # section 7.1: (secret key, public key, message, signature)
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
     "1cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613"
     "d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_TESTS)
def test_the_verifiers_ed25519_passes_rfc8032s_vectors(
    tmp_path: Path, secret: str, public: str, message: str, signature: str,
) -> None:
    module = load_verifier(tmp_path)
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert key.sign(bytes.fromhex(message)).hex() == signature  # the vectors as copied
    assert module.ed25519_verify(bytes.fromhex(public), bytes.fromhex(message),
                                 bytes.fromhex(signature))
    assert module.ed25519_works()


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=200), flip=st.integers(0, 64 * 8 - 1))
def test_the_verifiers_ed25519_agrees_with_cryptography(message: bytes, flip: int) -> None:
    module = VERIFIER_MODULE[0]
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    signature = key.sign(message)
    assert module.ed25519_verify(public, message, signature)
    damaged = bytearray(signature)
    damaged[flip // 8] ^= 1 << (flip % 8)
    assert not module.ed25519_verify(public, message, bytes(damaged))
    assert not module.ed25519_verify(public, message + b"!", signature)


@settings(max_examples=300, deadline=None)
@given(case_count=st.integers(1, 70), data=st.data())
def test_every_inclusion_proof_rebuilds_the_checkpoints_merkle_root(
    case_count: int, data: st.DataObject,
) -> None:
    """For every tree size and every leaf: domain.merkle_proofs' proof leads to exactly
    domain.checkpoints.merkle_root, and the bundle verifier's reading of it agrees."""
    module = VERIFIER_MODULE[0]
    heads = [CaseHead(case_id=f"case-{n:03d}", version=n % 7 + 1,
                      hash=hashlib.sha256(str(n).encode()).hexdigest())
             for n in data.draw(st.permutations(range(case_count)))]
    root = merkle_root(heads)
    ordered = sorted(heads, key=lambda h: h.case_id)
    index = data.draw(st.integers(0, case_count - 1))
    proof = inclusion_proof([leaf(h) for h in ordered], index)
    assert root_from_proof(leaf(ordered[index]), proof) == root
    found = head_proof(heads, ordered[index].case_id)
    assert found == (ordered[index], index, proof)
    steps = [{"sibling_on": side, "hash": sibling} for side, sibling in proof]
    target = ordered[index]
    assert module.root_from_proof(module.leaf_digest(target.case_id, target.version,
                                                     target.hash), steps) == root
    assert module.merkle_root([h.model_dump() for h in heads]) == root
    if proof:  # any step moved or altered leads elsewhere
        wrong = [*proof[:-1], (proof[-1][0], "0" * 64)]
        assert root_from_proof(leaf(ordered[index]), wrong) != root


def test_a_proof_for_a_leaf_outside_the_tree_is_refused() -> None:
    with pytest.raises(IndexError):
        inclusion_proof([leaf(CaseHead(case_id="a", version=1, hash="0" * 64))], 1)
    with pytest.raises(ValueError, match="side"):
        root_from_proof(b"\0" * 32, [("up", "00" * 32)])
    assert head_proof([], "a") is None
