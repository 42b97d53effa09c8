"""Signed checkpoints published outside the database, and `cases verify --anchor`.

The attacks are done as in test_checkpoint_chain.py, by someone who can write the database
file (drop the triggers, rewrite, re-hash forward) and who also rewrites the checkpoint rows
to agree, so the store alone verifies; only a checkpoint file published before the attack,
checked with a public key the auditor holds, tells.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.contracts import CheckpointRequest, CheckpointSummary
from activities.store_activities import StoreActivities
from domain.checkpoints import CHECKPOINT_STREAM, STATEMENT_KEYS, statement_hash
from eventstore import EventStore
from eventstore.checkpoint_files import (
    checkpoint_document,
    checkpoint_file_path,
    generate_key_pair,
    load_signing_key,
    read_checkpoint_file,
    verify_checkpoint_signature,
)
from eventstore.checkpoints import load_checkpoint, statement_of, verify_chain
from eventstore.export import VERIFIER
from eventstore.verify import verify_all
from tests.support import T0, TEST_POLICIES, new_event, run_cli
from tests.test_checkpoint_chain import Attacker, fill, renamed
from worker import build_worker
from workflows.messages import TASK_QUEUE


@dataclass
class Signed:
    """A store whose worker signs checkpoints, and the auditor's copy of the public key."""

    store: EventStore
    key: Path
    public_key: Path
    directory: Path

    def record(self) -> CheckpointSummary:
        """What the worker's checkpoint activity does (the schedule, `cases checkpoint now`)."""
        return StoreActivities(self.store).record_checkpoint(
            CheckpointRequest(event_id=str(uuid.uuid4()), at=T0))

    def verify(self, anchor: Path, *more: str) -> int:
        return run_cli(["verify", "--anchor", str(anchor), "--public-key",
                        str(self.public_key), "--no-temporal", *more])


@pytest.fixture
def signed(sqlite_store: EventStore, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Signed]:
    key = tmp_path / "keys" / "checkpoints.key"
    public_key, _ = generate_key_pair(key)
    directory = tmp_path / "published"
    monkeypatch.setenv("CASES_SIGNING_KEY", str(key))
    monkeypatch.setenv("CASES_CHECKPOINT_DIR", str(directory))
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    fill(sqlite_store)
    yield Signed(sqlite_store, key, public_key, directory)


def published_first(signed: Signed) -> Path:
    summary = signed.record()
    assert summary.path is not None
    return Path(summary.path)


def out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


# --- the file and the keys ------------------------------------------------------------------

def test_the_published_file_is_the_documented_contract(signed: Signed) -> None:
    first = published_first(signed)
    signed.store.append("case-c", 2, [new_event("case-c", 3)])
    second = Path(signed.record().path or "")
    assert (first, second) == (signed.directory / "checkpoint-000001.json",
                               checkpoint_file_path(signed.directory, 2))
    for path in (first, second):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(first.read_text(encoding="utf-8"))
    assert sorted(document) == ["public_key_sha256", "signature", "statement"]
    statement = document["statement"]
    assert list(statement) == list(STATEMENT_KEYS)
    assert statement["number"] == 1 and statement["previous"] is None
    assert statement["recorded_at"] == "2026-03-02T09:30:00.000000Z"
    assert [h["case_id"] for h in statement["heads"]] == ["case-a", "case-b", "case-c"]
    assert statement["heads"][0] == {"case_id": "case-a", "version": 5,
                                     "hash": signed.store.head("case-a")[1]}
    assert statement["verify_py_sha256"] == hashlib.sha256(VERIFIER.encode()).hexdigest()
    stored = load_checkpoint(signed.store, 1)
    assert stored is not None and statement == statement_of(stored)
    # What a standard-library verifier does: canonical JSON is json.dumps for these keys.
    canonical = json.dumps(statement, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    assert canonical == rfc8785.dumps(statement)
    raw = serialization.load_pem_public_key(signed.public_key.read_bytes())
    assert isinstance(raw, Ed25519PublicKey)
    raw.verify(base64.b64decode(document["signature"], validate=True), canonical)
    raw_bytes = raw.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert document["public_key_sha256"] == hashlib.sha256(raw_bytes).hexdigest()
    later, _, _ = read_checkpoint_file(second)
    assert later["previous"] == hashlib.sha256(canonical).hexdigest() == statement_hash(statement)


def test_keys_generate_writes_a_pair_readable_by_its_owner_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    key = tmp_path / "new" / "signing.key"
    assert run_cli(["keys", "generate", str(key), "--json"]) == 0
    said = json.loads(out(capsys))
    assert said["path"] == str(key) and said["public_key"] == f"{key}.pub"
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert Path(f"{key}.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    for path in (key, Path(f"{key}.pub")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = key.read_bytes()
    assert run_cli(["keys", "generate", str(key)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert key.read_bytes() == before
    target = tmp_path / "someone-elses-file"
    target.write_text("precious")
    link = tmp_path / "link.key"
    link.symlink_to(target)
    assert run_cli(["keys", "generate", str(link)]) == 2
    assert target.read_text() == "precious" and not Path(f"{link}.pub").exists()


def test_without_a_signing_key_checkpoints_are_recorded_unsigned_and_no_file_is_written(
    signed: Signed, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CASES_SIGNING_KEY")
    summary = signed.record()
    assert (summary.checkpoint, summary.path, summary.public_key_sha256) == (1, None, None)
    assert not signed.directory.exists()


def test_a_bad_signing_key_records_nothing(signed: Signed) -> None:
    signed.key.chmod(0o600)
    signed.key.write_text("not a key\n")
    with pytest.raises(ApplicationError, match="not an unencrypted Ed25519 private key"):
        signed.record()
    assert load_checkpoint(signed.store) is None


def test_a_published_file_is_never_overwritten_nor_written_through_a_link(
    signed: Signed,
) -> None:
    first = published_first(signed)
    signed.directory.joinpath("checkpoint-000002.json").write_text("someone else's")
    with pytest.raises(ApplicationError, match="already holds another checkpoint"):
        signed.record()
    assert signed.directory.joinpath("checkpoint-000002.json").read_text() == "someone else's"
    target = signed.directory / "elsewhere.txt"
    target.write_text("precious")
    signed.directory.joinpath("checkpoint-000003.json").symlink_to(target)
    with pytest.raises(ApplicationError, match="already holds another checkpoint"):
        signed.record()
    assert target.read_text() == "precious"
    assert read_checkpoint_file(first)[0]["number"] == 1


def test_a_retried_activity_publishes_the_same_file_once(signed: Signed) -> None:
    request = CheckpointRequest(event_id=str(uuid.uuid4()), at=T0)
    first = StoreActivities(signed.store).record_checkpoint(request)
    again = StoreActivities(signed.store).record_checkpoint(request)
    assert first == again and first.path is not None
    assert sorted(p.name for p in signed.directory.iterdir()) == ["checkpoint-000001.json"]


# --- verify --anchor ------------------------------------------------------------------------

def test_a_store_that_moved_on_extends_its_published_checkpoint(
    signed: Signed, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    signed.store.append("case-c", 2, [new_event("case-c", 3)])
    signed.store.append("case-d", 0, [new_event("case-d", 1)])
    signed.record()
    assert signed.verify(first) == 0
    assert "the store extends published checkpoint 1" in out(capsys)
    assert signed.verify(first, "--json") == 0
    said = json.loads(out(capsys))
    assert said["ok"] and said["anchor"]["signature"] == "good"
    assert said["anchor"]["number"] == 1


def test_rewrite_rehash_and_rewritten_checkpoint_rows_fail_the_published_checkpoint(
    signed: Signed, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    attacker = Attacker(signed.store)
    attacker.rewrite("case-a", 2, renamed)
    attacker.rewrite_checkpoints()
    signed.record()  # the worker now signs whatever the rewritten store says
    assert verify_all(signed.store).ok and verify_chain(signed.store) == [], (
        "the store alone is fooled")
    assert signed.verify(first) == 3
    said = out(capsys)
    assert ("TAMPERED: case case-a version 5: altered: version 5 is not the event published "
            "checkpoint 1 saw") in said
    assert "checkpoint 1 in the store is not the one published" in said


def test_truncated_case_under_rewritten_checkpoint_rows_fails_the_published_checkpoint(
    signed: Signed, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    attacker = Attacker(signed.store)
    attacker.truncate("case-a", 3)
    attacker.rewrite_checkpoints()
    assert verify_all(signed.store).ok and verify_chain(signed.store) == []
    assert signed.verify(first) == 3
    assert ("case case-a version 4: missing: truncated: published checkpoint 1 saw version 5, "
            "the store now ends at version 3") in out(capsys)


def test_deleted_case_under_rewritten_checkpoint_rows_fails_the_published_checkpoint(
    signed: Signed, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    attacker = Attacker(signed.store)
    attacker.delete("case-b")
    attacker.rewrite_checkpoints()
    assert verify_all(signed.store).ok and verify_chain(signed.store) == []
    assert signed.verify(first) == 3
    assert ("case case-b version 3: missing: the whole case is gone; published checkpoint 1 "
            "saw it at version 3") in out(capsys)


def test_swapped_cases_under_rewritten_checkpoint_rows_fail_the_published_checkpoint(
    signed: Signed, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    attacker = Attacker(signed.store)
    attacker.swap("case-a", "case-b")
    attacker.rewrite_checkpoints()
    assert verify_all(signed.store).ok and verify_chain(signed.store) == []
    assert signed.verify(first) == 3
    said = out(capsys)
    assert "case case-a version 4: missing: truncated: published checkpoint 1" in said
    assert "case case-b version 3: altered: version 3 is not the event published" in said


def test_deleted_checkpoint_stream_fails_the_published_checkpoint(
    signed: Signed, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    Attacker(signed.store).delete(CHECKPOINT_STREAM)
    assert verify_all(signed.store).ok
    assert signed.verify(first) == 3
    assert ("published checkpoint 1 is gone from the store: it holds no checkpoint at all"
            in out(capsys))


def forged_statement(signed: Signed) -> dict[str, Any]:
    """After the rewrite, the attacker's own statement of checkpoint 1, as the store says."""
    stored = load_checkpoint(signed.store, 1)
    assert stored is not None
    return statement_of(stored)


def test_a_forged_signature_on_a_rewritten_checkpoint_file_is_refused(
    signed: Signed, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    attacker = Attacker(signed.store)
    attacker.rewrite("case-a", 2, renamed)
    attacker.rewrite_checkpoints()
    document = json.loads(first.read_text())
    document["statement"] = forged_statement(signed)
    first.write_text(json.dumps(document))
    assert signed.verify(first) == 3
    said = out(capsys)
    assert said.startswith(f"TAMPERED: checkpoint file {first}: its signature does not verify")
    document["signature"] = base64.b64encode(os.urandom(64)).decode()
    first.write_text(json.dumps(document))
    assert signed.verify(first, "--json") == 3
    assert json.loads(out(capsys))["anchor"]["signature"] == "bad"


def test_a_checkpoint_file_signed_by_another_key_is_refused(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    attacker = Attacker(signed.store)
    attacker.rewrite("case-a", 2, renamed)
    attacker.rewrite_checkpoints()
    own_key = tmp_path / "attacker" / "own.key"
    own_public, _ = generate_key_pair(own_key)
    forged = checkpoint_document(forged_statement(signed), load_signing_key(own_key))
    first.write_text(json.dumps(forged))
    assert verify_checkpoint_signature(forged["statement"], forged["signature"],
                                       own_public.read_bytes()), "it is a good signature…"
    assert signed.verify(first) == 3, "…by a key the auditor does not hold"
    assert f"was not signed by {signed.public_key}: it names another key" in out(capsys)


def test_an_unreadable_anchor_or_no_public_key_verifies_nothing(
    signed: Signed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = published_first(signed)
    junk = tmp_path / "junk.json"
    junk.write_text('{"statement": {}}')
    assert signed.verify(junk) == 2
    assert "not a checkpoint file" in capsys.readouterr().err
    assert run_cli(["verify", "--anchor", str(first), "--public-key", str(signed.key),
                    "--no-temporal"]) == 2
    assert "not an Ed25519 public key" in capsys.readouterr().err
    assert run_cli(["verify", "--anchor", str(first), "--no-temporal"]) == 0, (
        "without --public-key, the .pub beside CASES_SIGNING_KEY")
    monkeypatch.delenv("CASES_SIGNING_KEY")
    assert run_cli(["verify", "--anchor", str(first), "--no-temporal"]) == 2
    assert "give --public-key" in capsys.readouterr().err


# --- as typed, through a worker --------------------------------------------------------------

async def cases(*argv: str) -> int:
    """`cases …` in-process on a thread, while the worker runs on this test's event loop."""
    from cli.main import run

    return await asyncio.to_thread(run, list(argv))


async def test_done_when_a_rewrite_under_rewritten_checkpoint_rows_fails_the_first_file(
    time_skipping_env: WorkflowEnvironment, sqlite_store: EventStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    key = tmp_path / "keys" / "checkpoints.key"
    for name, value in (("CASES_DATABASE_URL", str(sqlite_store.engine.url)),
                        ("CASES_SIGNING_KEY", str(key)),
                        ("TEMPORAL_ADDRESS",
                         time_skipping_env.client.service_client.config.target_host),
                        ("TEMPORAL_NAMESPACE", "default")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CASES_CHECKPOINT_DIR", raising=False)
    fill(sqlite_store)
    assert await cases("keys", "generate", str(key)) == 0
    capsys.readouterr()
    async with build_worker(time_skipping_env.client, sqlite_store, TASK_QUEUE,
                            policies=TEST_POLICIES):
        assert await cases("checkpoint", "now", "--json") == 0
        first = Path(json.loads(out(capsys))["path"])
        assert first == tmp_path / "checkpoints" / "checkpoint-000001.json", (
            "by default, beside the SQLite store")
        attacker = Attacker(sqlite_store)
        attacker.rewrite("case-a", 2, renamed)
        assert await cases("checkpoint", "now") == 3, "the worker signs no rewritten record"
        assert "no longer extends checkpoint 1" in capsys.readouterr().err
        attacker.rewrite_checkpoints()
        assert await cases("checkpoint", "now", "--json") == 0
        assert json.loads(out(capsys))["checkpoint"] == 2
    assert await cases("verify", "--against-checkpoint", "--no-temporal") == 0, (
        "the store alone, checkpoint rows and all, is fooled")
    capsys.readouterr()
    assert await cases("verify", "--anchor", str(first), "--public-key", f"{key}.pub",
                       "--no-temporal") == 3
    said = out(capsys)
    assert "case case-a version 5: altered" in said
    assert "checkpoint 1 in the store is not the one published" in said


async def test_checkpoint_now_says_in_one_line_that_it_is_unsigned(
    time_skipping_env: WorkflowEnvironment, sqlite_store: EventStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    monkeypatch.setenv("TEMPORAL_ADDRESS",
                       time_skipping_env.client.service_client.config.target_host)
    monkeypatch.delenv("CASES_SIGNING_KEY", raising=False)
    monkeypatch.setenv("CASES_CHECKPOINT_DIR", str(tmp_path / "published"))
    fill(sqlite_store)
    async with build_worker(time_skipping_env.client, sqlite_store, TASK_QUEUE,
                            policies=TEST_POLICIES):
        assert await cases("checkpoint", "now") == 0
    lines = out(capsys).splitlines()
    assert lines[0].startswith("checkpoint 1: 3 cases")
    assert lines[1].startswith("unsigned: the worker has no CASES_SIGNING_KEY, so no file was "
                               "written")
    assert not (tmp_path / "published").exists()
