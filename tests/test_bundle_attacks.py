"""Attacks on the audit bundle and on verification, each done as someone holding the bundle or
the database file would do it; each test names its attack, and each must be caught or refused.

The verifier runs as an auditor would run it: `python3 verify.py` from the bundle's own
directory (where an attacker's files sit), or `python3 -I -S verify.py`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.checkpoints import CaseHead, merkle_root
from eventstore import EventStore
from eventstore.chain import GENESIS_HASH, event_hash
from eventstore.export import BundleRefused, write_bundle
from eventstore.projections import ProjectionBroken, Projector
from eventstore.verify import verify, verify_all
from tests.support import run_cli
from tests.test_domain_timeline import full_journey
from tests.test_eventstore_export import (
    CASE,
    KEY_SEED,
    VECTOR_EVENT,
    VERIFIER_MODULE,
    events_of,
    new_events,
    publish,
    record,
    rewrite,
    run_verifier,
    store_history,
)

ROOT = Path(__file__).resolve().parents[1]
OTHER = "other-case"
DEEP = "[" * 5000 + "]" * 5000
"""A JSON value nested 5,000 levels deep: Python's json and every recursive reader give up."""
TOO_DEEP = ("altered: the payload is nested deeper than 1000 levels of objects and arrays: it "
            "cannot be verified; treat it as tampered")


@pytest.fixture
def store(sqlite_store: EventStore) -> EventStore:
    """CASE (the BRIEF §4 vector, then a whole journey) and OTHER, in a SQLite file."""
    journey = full_journey(CASE, start=date(2026, 3, 2))
    sqlite_store.append(CASE, 0, [VECTOR_EVENT, *new_events(journey[1:])])
    store_history(sqlite_store, full_journey(OTHER, "E08000025"))
    return sqlite_store


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(KEY_SEED)


@pytest.fixture
def published(store: EventStore, tmp_path: Path, signing_key: Ed25519PrivateKey) -> Path:
    """A checkpoint of the store, signed and published; the private key file's path."""
    return publish(record(store), tmp_path / "published", signing_key)


def signed_bundle(store: EventStore, tmp_path: Path, published: Path, case_id: str = CASE,
                  name: str = "bundle") -> Path:
    return write_bundle(store, case_id, tmp_path / name, checkpoint_dir=published.parent,
                        public_key=Path(f"{published}.pub"))


def run_plainly(directory: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`python3 [options] verify.py` in the bundle's directory, as a hurried auditor would:
    without -I, the script's directory comes first on the import path."""
    return subprocess.run([sys.executable, *options, "verify.py"], cwd=directory,
                          capture_output=True, text=True, encoding="utf-8", timeout=120,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONIOENCODING": "utf-8"},
                          check=False)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_json(path: Path, change: Callable[[Any], None]) -> None:
    document = json.loads(path.read_text("utf-8"))
    change(document)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def rehash_forward(rows: list[dict[str, Any]], start: int) -> None:
    """Re-hash rows[start:] and relink them, as a forger who knows the rule would."""
    for index in range(start, len(rows)):
        row = rows[index]
        row["prev_hash"] = GENESIS_HASH if index == 0 else rows[index - 1]["hash"]
        fields = {k: row[k] for k in row if k not in ("position", "hash")}
        fields["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
        row["hash"] = event_hash(**fields)


def rewrite_and_rehash(directory: Path) -> None:
    """Change version 3's actor, re-hash the chain after it and fix MANIFEST.json to match:
    the chain and the manifest verify again."""
    document = events_of(directory)
    document["events"][2]["actor"] = "officer:mallory"
    rehash_forward(document["events"], 2)
    rewrite(directory, document)

    def follow(manifest: dict[str, Any]) -> None:
        manifest["head"]["hash"] = document["events"][-1]["hash"]
        manifest["events_json_sha256"] = sha256_of(directory / "events.json")

    edit_json(directory / "MANIFEST.json", follow)


def tamper_store(store: EventStore, sql: str, *parameters: Any) -> None:
    """Change rows behind the store's back: drop the append-only triggers first."""
    db = store.engine.url.database
    assert db is not None
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript("DROP TRIGGER IF EXISTS events_no_update;\n"
                           "DROP TRIGGER IF EXISTS events_no_delete;")
        conn.execute(sql, parameters)
        conn.commit()


# --- a shadowed verifier ----------------------------------------------------------------------

MATCHING_HASHLIB = """\
import pathlib
pathlib.Path(__file__).with_name("SHADOWED").touch()
class _Matches(str):
    __eq__ = lambda self, other: True
    __ne__ = lambda self, other: False
    __hash__ = str.__hash__
class _Digest:
    def __init__(self, data=b""): pass
    def update(self, data): pass
    def hexdigest(self): return _Matches("0" * 64)
    def digest(self): return b"\\0" * 32
sha256 = sha512 = _Digest
"""
"""A hashlib.py under which every digest "matches" whatever it is compared with."""


@pytest.mark.parametrize("options", [(), ("-S",), ("-I",)], ids=["plain", "no-site", "isolated"])
def test_shadowed_hashlib_beside_verify_py_cannot_pass_tampered_events(
    store: EventStore, tmp_path: Path, options: tuple[str, ...],
) -> None:
    directory = write_bundle(store, CASE, tmp_path / "bundle")
    document = events_of(directory)
    document["events"][4]["payload"]["team"][0]["name"] = "Cllr Someone Else"
    rewrite(directory, document)
    (directory / "hashlib.py").write_text(MATCHING_HASHLIB, encoding="utf-8")
    # The plant works on any script that imports from its own directory ...
    fooled = subprocess.run([sys.executable, "-c", "import hashlib; "
                             "print(hashlib.sha256(b'').hexdigest() == 'anything')"],
                            cwd=directory, capture_output=True, text=True, check=False)
    assert fooled.stdout.strip() == "True"
    (directory / "SHADOWED").unlink()
    # ... but verify.py restarts itself isolated before it imports anything.
    result = run_plainly(directory, *options)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} version 5: altered: stored hash ")
    assert not (directory / "SHADOWED").exists()


@pytest.mark.parametrize("options", [(), ("-S",)], ids=["plain", "no-site"])
def test_shadowed_standard_modules_beside_verify_py_are_never_imported(
    store: EventStore, tmp_path: Path, options: tuple[str, ...],
) -> None:
    directory = write_bundle(store, CASE, tmp_path / "bundle")
    planted = ["json", "base64", "re", "argparse", "pathlib", "datetime", "__future__", "os",
               "posix", "typing", "sitecustomize", "usercustomize", "binascii", "enum"]
    for name in planted:
        (directory / f"{name}.py").write_text(
            f"open({str(directory / (name + '.IMPORTED'))!r}, 'w').close()\n"
            "raise SystemExit(0)\n", encoding="utf-8")
    result = run_plainly(directory, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE}: intact, versions 1 to ")
    assert sorted(p.name for p in directory.glob("*.IMPORTED")) == []


# --- a relabelled bundle ------------------------------------------------------------------------

def test_relabelled_bundle_of_another_cases_genuine_events_fails(store: EventStore,
                                                                  tmp_path: Path) -> None:
    """OTHER's genuine, intact events, presented as CASE's: the header and the manifest say
    CASE, and everything they record is made consistent again."""
    directory = write_bundle(store, OTHER, tmp_path / "bundle")
    assert run_verifier(directory).returncode == 0
    document = events_of(directory)
    document["case_id"] = CASE
    rewrite(directory, document)

    def relabel(manifest: dict[str, Any]) -> None:
        manifest["case_id"] = CASE
        manifest["events_json_sha256"] = sha256_of(directory / "events.json")

    edit_json(directory / "MANIFEST.json", relabel)
    result = run_verifier(directory)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout == (f"case {CASE} version 1: relabelled: the event is case {OTHER}'s, "
                             f"not case {CASE}'s\n")


def test_relabelled_bundle_is_caught_by_the_case_the_auditor_expects(store: EventStore,
                                                                      tmp_path: Path) -> None:
    """Untouched, but handed over as CASE's bundle: `--case` says which case is expected."""
    directory = write_bundle(store, OTHER, tmp_path / "bundle")
    result = run_verifier(directory, "--case", CASE)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} version 1: relabelled: the event is case "
                                    f"{OTHER}'s")
    assert run_verifier(directory, "--case", OTHER).returncode == 0


def test_relabelled_proof_of_another_case_fails(store: EventStore, tmp_path: Path,
                                               published: Path) -> None:
    mine = signed_bundle(store, tmp_path, published)
    theirs = signed_bundle(store, tmp_path, published, OTHER, "theirs")
    (mine / "PROOF.json").write_bytes((theirs / "PROOF.json").read_bytes())
    result = run_verifier(mine)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} PROOF.json: relabelled: its leaf is case "
                                    f"{OTHER}'s")


# --- deep nesting: a verdict, not a crash -----------------------------------------------------

def test_deep_nesting_payload_in_a_bundle_is_a_verdict_not_a_crash(store: EventStore,
                                                                    tmp_path: Path) -> None:
    directory = write_bundle(store, CASE, tmp_path / "bundle")
    document = events_of(directory)
    document["events"][2]["payload"] = {"scope": "DEEP-HERE"}
    text = json.dumps(document, ensure_ascii=False, indent=2).replace('"DEEP-HERE"', DEEP)
    (directory / "events.json").write_text(text, encoding="utf-8")
    result = run_plainly(directory)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert result.stdout == f"case {CASE} version 3: {TOO_DEEP}\n"


def test_deep_nesting_in_the_bundles_other_files_is_a_verdict_not_a_crash(
    store: EventStore, tmp_path: Path, published: Path,
) -> None:
    directory = signed_bundle(store, tmp_path, published)
    for name in ("PROOF.json", "CHECKPOINT.json", "MANIFEST.json"):
        original = (directory / name).read_bytes()
        (directory / name).write_text('{"head": ' + DEEP + "}", encoding="utf-8")
        result = run_plainly(directory)
        assert result.returncode == 3 and "Traceback" not in result.stderr, name
        assert result.stdout.startswith(f"case {CASE} {name}: altered: ")
        (directory / name).write_bytes(original)
    (directory / "events.json").write_text('{"events": ' + DEEP + "}", encoding="utf-8")
    result = run_plainly(directory)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert result.stdout.startswith(f"case {CASE} version 1: altered: the row has no integer")


def test_deep_nesting_payload_written_into_the_store_makes_cases_verify_exit_3(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Written over version 3 with sqlite3 after dropping the triggers; and appended as a
    new version whose hash is the true JCS hash of the deep payload: still tampered."""
    monkeypatch.setenv("CASES_DATABASE_URL", str(store.engine.url))
    tamper_store(store, "UPDATE events SET payload = ? WHERE case_id = ? AND version = 3",
                 '{"scope": ' + DEEP + "}", CASE)
    assert run_cli(["verify", "--no-temporal"]) == 3
    said = capsys.readouterr().out
    assert f"TAMPERED: case {CASE} version 3: {TOO_DEEP}" in said
    assert OTHER not in said
    assert run_cli(["verify", CASE, "--json"]) == 3
    problem = json.loads(capsys.readouterr().out)["problems"][0]
    assert (problem["case_id"], problem["version"], problem["kind"]) == (CASE, 3, "altered")
    docs = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "docs" / "verify_case.py"),
                           str(store.engine.url.database), CASE], capture_output=True,
                          text=True, encoding="utf-8", timeout=120, check=False)
    assert docs.returncode == 3 and docs.stdout == f"case {CASE} version 3: {TOO_DEEP}\n"


@pytest.mark.postgres
def test_deep_nesting_payload_written_into_postgresql_is_named_too(
    postgres_store: EventStore,
) -> None:
    """The same attack by the table's owner on PostgreSQL: triggers disabled, payload
    rewritten. `verify` and `verify_all` name the case and the version."""
    store_history(postgres_store, full_journey(OTHER, "E08000025"))
    with postgres_store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER USER")
        conn.exec_driver_sql("UPDATE events SET payload = %s::json WHERE version = 2",
                             ('{"scope": ' + DEEP + "}",))
    for verdict in (verify(postgres_store, OTHER), verify_all(postgres_store)):
        assert [str(p).split(" (stored hash")[0] for p in verdict.problems] == [
            f"case {OTHER} version 2: {TOO_DEEP}"]


def test_deep_nesting_payload_appended_with_its_true_hash_is_still_tampered(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CASES_DATABASE_URL", str(store.engine.url))
    version, head_hash = store.head(OTHER)
    event_id, when = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f0", "2026-12-01T00:00:00.000000Z"
    line = (f'{{"actor":"officer:mallory","case_id":"{OTHER}","event_id":"{event_id}",'
            f'"occurred_at":"{when}","payload":{{"scope":{DEEP}}},"prev_hash":"{head_hash}",'
            f'"schema_version":1,"type":"CaseScoped","version":{version + 1}}}')
    tamper_store(store, "INSERT INTO events (case_id, version, event_id, type, schema_version, "
                 "occurred_at, actor, payload, prev_hash, hash) VALUES (?, ?, ?, 'CaseScoped', "
                 "1, '2026-12-01 00:00:00.000000', 'officer:mallory', ?, ?, ?)",
                 OTHER, version + 1, event_id, '{"scope": ' + DEEP + "}", head_hash,
                 hashlib.sha256(line.encode()).hexdigest())
    assert run_cli(["verify", "--no-temporal"]) == 3
    assert f"TAMPERED: case {OTHER} version {version + 1}: {TOO_DEEP}" in capsys.readouterr().out


def test_deep_nesting_payload_in_the_store_is_not_exported_as_if_readable(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CASES_DATABASE_URL", str(store.engine.url))
    tamper_store(store, "UPDATE events SET payload = ? WHERE case_id = ? AND version = 3",
                 '{"scope": ' + DEEP + "}", CASE)
    assert run_cli(["export", CASE, "--bundle", str(tmp_path / "bundle")]) == 3
    said = capsys.readouterr().err
    assert said.startswith(f"cases: case {CASE} cannot be exported") and "Traceback" not in said
    assert f"`cases verify {CASE}` names it" in said
    assert not (tmp_path / "bundle").exists()
    assert run_cli(["export", CASE, "--format", "csv"]) == 3
    with pytest.raises(ProjectionBroken):  # the workers' projection stops on it
        Projector(store).catch_up()
    assert run_cli(["report", "annual", "--year", "2026"]) == 1
    said = capsys.readouterr().err
    assert "cannot be read back" in said and "`cases verify` names the case" in said


# --- rewriting the events under an anchor ---------------------------------------------------

def test_rewritten_and_rehashed_bundle_fails_against_its_checkpoint_proof(
    store: EventStore, tmp_path: Path, published: Path,
) -> None:
    directory = signed_bundle(store, tmp_path, published)
    head_hash = events_of(directory)["events"][-1]["hash"]
    rewrite_and_rehash(directory)
    last = len(events_of(directory)["events"])
    result = run_verifier(directory)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} version {last}: altered: checkpoint 1 saw "
                                    f"hash {head_hash}, events.json has ")


def test_forged_proof_for_a_rehashed_bundle_fails_against_the_signed_checkpoint(
    store: EventStore, tmp_path: Path, published: Path,
) -> None:
    """The forger recomputes the proof's leaf and root too; the signed statement's root is
    the one they cannot change."""
    directory = signed_bundle(store, tmp_path, published)
    rewrite_and_rehash(directory)
    new_head = events_of(directory)["events"][-1]["hash"]
    module = VERIFIER_MODULE[0]

    def forge(proof: dict[str, Any]) -> None:
        proof["leaf"]["hash"] = new_head
        leaf = module.leaf_digest(CASE, proof["leaf"]["version"], new_head)
        proof["merkle_root"] = module.root_from_proof(leaf, proof["proof"])

    edit_json(directory / "PROOF.json", forge)
    result = run_verifier(directory)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} CHECKPOINT.json: altered: its Merkle root is ")


def test_altered_checkpoint_statement_fails_its_signature(store: EventStore, tmp_path: Path,
                                                          published: Path) -> None:
    """The forger also rewrites the published statement consistently (heads and root)."""
    directory = signed_bundle(store, tmp_path, published)
    rewrite_and_rehash(directory)
    new_head = events_of(directory)["events"][-1]["hash"]
    module = VERIFIER_MODULE[0]
    new_root = ""

    def forge_statement(signed: dict[str, Any]) -> None:
        nonlocal new_root
        for head in signed["statement"]["heads"]:
            if head["case_id"] == CASE:
                head["hash"] = new_head
        new_root = merkle_root([CaseHead(**h) for h in signed["statement"]["heads"]])
        signed["statement"]["merkle_root"] = new_root

    edit_json(directory / "CHECKPOINT.json", forge_statement)

    def forge_proof(proof: dict[str, Any]) -> None:
        proof["leaf"]["hash"] = new_head
        leaf = module.leaf_digest(CASE, proof["leaf"]["version"], new_head)
        proof["merkle_root"] = module.root_from_proof(leaf, proof["proof"])
        assert proof["merkle_root"] == new_root

    edit_json(directory / "PROOF.json", forge_proof)
    result = run_verifier(directory)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} CHECKPOINT.json: forged: its signature does "
                                    "not verify with the bundle's own PUBLIC_KEY.pem")


def test_checkpoint_re_signed_with_the_attackers_key_fails_with_the_auditors_key(
    store: EventStore, tmp_path: Path, published: Path,
) -> None:
    """The forger re-signs the altered statement with a key of their own and puts its public
    half in the bundle: the bundle's key then vouches for anything, so the verifier says
    which key it used, and the auditor's own key refuses it."""
    directory = signed_bundle(store, tmp_path, published)
    genuine = (directory / "PUBLIC_KEY.pem").read_bytes()
    rewrite_and_rehash(directory)
    new_head = events_of(directory)["events"][-1]["hash"]
    module = VERIFIER_MODULE[0]
    mallory = Ed25519PrivateKey.generate()
    raw = mallory.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)

    def re_sign(signed: dict[str, Any]) -> None:
        for head in signed["statement"]["heads"]:
            if head["case_id"] == CASE:
                head["hash"] = new_head
        signed["statement"]["merkle_root"] = merkle_root(
            [CaseHead(**h) for h in signed["statement"]["heads"]])
        signed["signature"] = base64.b64encode(
            mallory.sign(rfc8785.dumps(signed["statement"]))).decode()
        signed["public_key_sha256"] = hashlib.sha256(raw).hexdigest()

    edit_json(directory / "CHECKPOINT.json", re_sign)

    def forge_proof(proof: dict[str, Any]) -> None:
        proof["leaf"]["hash"] = new_head
        leaf = module.leaf_digest(CASE, proof["leaf"]["version"], new_head)
        proof["merkle_root"] = module.root_from_proof(leaf, proof["proof"])

    edit_json(directory / "PROOF.json", forge_proof)
    (directory / "PUBLIC_KEY.pem").write_bytes(mallory.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    trusting = run_verifier(directory)
    assert trusting.returncode == 0  # the bundle vouches for itself, and says whose key
    assert f"PUBLIC_KEY.pem (SHA-256 {hashlib.sha256(raw).hexdigest()})" in trusting.stdout
    assert "compare that key with one you obtained independently" in trusting.stdout
    mine = tmp_path / "auditors-own.pub"
    mine.write_bytes(genuine)
    result = run_verifier(directory, "--public-key", str(mine))
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"case {CASE} CHECKPOINT.json: forged: its signature does "
                                    f"not verify with the key you gave ({mine}")
    assert f"it names the key with SHA-256 {hashlib.sha256(raw).hexdigest()}" in result.stdout


def test_truncated_bundle_fails_against_the_checkpoint(store: EventStore, tmp_path: Path,
                                                      published: Path) -> None:
    directory = signed_bundle(store, tmp_path, published)
    document = events_of(directory)
    seen = len(document["events"])
    del document["events"][-2:]
    rewrite(directory, document)

    def follow(manifest: dict[str, Any]) -> None:
        manifest["head"] = {"version": seen - 2, "hash": document["events"][-1]["hash"]}
        manifest["events_json_sha256"] = sha256_of(directory / "events.json")

    edit_json(directory / "MANIFEST.json", follow)
    result = run_verifier(directory)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} version {seen - 1}: missing: checkpoint 1 saw "
                                    f"version {seen}, events.json ends at version {seen - 2}")


def test_deleted_anchor_files_are_missing_against_the_manifest(store: EventStore,
                                                              tmp_path: Path,
                                                              published: Path) -> None:
    directory = signed_bundle(store, tmp_path, published)
    (directory / "CHECKPOINT.json").unlink()
    result = run_verifier(directory)
    assert result.returncode == 3
    assert result.stdout.startswith(f"case {CASE} CHECKPOINT.json: missing: MANIFEST.json "
                                    "records a signed checkpoint 1")
    (directory / "PROOF.json").unlink()
    assert "PROOF.json: missing" in run_verifier(directory).stdout
    # With the manifest edited too, nothing in the bundle says an anchor was there: the
    # verifier says plainly that the case is not anchored.
    edit_json(directory / "MANIFEST.json", lambda manifest: manifest.update(anchor=None))
    result = run_verifier(directory)
    assert result.returncode == 0
    assert result.stdout.splitlines()[1].startswith("not anchored: ")


# --- the bundle's files and directory ---------------------------------------------------------

def test_symlinked_bundle_directory_is_refused(store: EventStore, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "somewhere-else"
    target.mkdir()
    link = tmp_path / "bundle"
    link.symlink_to(target, target_is_directory=True)
    with pytest.raises(BundleRefused, match="symbolic link"):
        write_bundle(store, CASE, link)
    monkeypatch.setenv("CASES_DATABASE_URL", str(store.engine.url))
    assert run_cli(["export", CASE, "--bundle", str(link), "--force"]) == 2
    assert list(target.iterdir()) == []


def test_symlink_planted_in_a_bundle_directory_is_never_written_through(
    store: EventStore, tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "verify.py").symlink_to(victim)
    with pytest.raises(FileExistsError, match="not empty"):
        write_bundle(store, CASE, directory)
    write_bundle(store, CASE, directory, force=True)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (directory / "verify.py").is_symlink()
    assert run_verifier(directory).returncode == 0


def test_escape_and_bidi_characters_in_a_bundle_are_printed_escaped(store: EventStore,
                                                                     tmp_path: Path) -> None:
    """A case id that would print a green "intact" and reverse the rest of the line."""
    directory = write_bundle(store, CASE, tmp_path / "bundle")
    document = events_of(directory)
    spoof = "\x1b[32mintact\x1b[0m\u202e"
    document["case_id"] = spoof
    rewrite(directory, document)
    result = run_plainly(directory)
    assert result.returncode == 3
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[32mintact\\x1b[0m\\u202e" in result.stdout


def test_the_attacks_above_leave_a_genuine_signed_bundle_intact(store: EventStore,
                                                                tmp_path: Path,
                                                                published: Path) -> None:
    """The control: the same bundle, untouched, verifies and is anchored and signed."""
    directory = signed_bundle(store, tmp_path, published)
    result = run_plainly(directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1].startswith("anchored: versions 1 to ")
