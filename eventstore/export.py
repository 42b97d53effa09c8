"""Exports of one case: JSON, CSV, and a bundle an auditor can verify without this project.

`export_json` is the case's rows exactly as stored, hashes included, as one JSON document;
`export_csv` is one row per event with the payload as canonical JSON in a column;
`write_bundle` writes a directory, readable by its owner only, of:

- `events.json`: what `export_json` gives (UTF-8);
- `RULE.md`: the hash rule and the checks, in a few precise lines;
- `verify.py`: a verifier that needs only Python's standard library and reads the bundle from
  its own directory (`python3 -I -S verify.py`; exit 0 intact, 3 naming the first bad event or
  file, 2 nothing verified). Its checks and messages on the chain are those of
  `docs/verify_case.py`; its SHA-256 (`verifier_sha256`) is published in docs/event-store.md,
  in MANIFEST.json and in every signed checkpoint;
- `MANIFEST.json`: the case id, the number of events, the head (version, hash), the sha256 of
  `events.json` and of `verify.py`, when it was exported, whether the store verified at that
  moment, and the anchor (below) if there is one;
- `PROOF.json`, when the store's newest checkpoint saw the case: that checkpoint's number and
  Merkle root, the case's head as it saw it (the leaf) and the inclusion proof of the leaf;
- `CHECKPOINT.json` and `PUBLIC_KEY.pem`, when that checkpoint was signed and published as
  `checkpoint-NNNNNN.json` (eventstore.checkpoint_files): the file as published, and the
  public key beside CASES_SIGNING_KEY, which an auditor must compare with one obtained
  independently (RULE.md says so, and verify.py says which key it used).

In `events.json` each event's `occurred_at` is written exactly as the hash sees it
(`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC) and `payload` is the stored JSON value; every other field
is the column as stored. Events are listed in version order.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.checkpoints import CHECKPOINT_STREAM, CheckpointRecorded
from domain.merkle_proofs import head_proof
from domain.recorded import Recorded
from eventstore.chain import canonical_json, format_time
from eventstore.checkpoints import load_checkpoint
from eventstore.records import StoredEvent
from eventstore.store import EventStore
from eventstore.verify import check_chain

EXPORT_FORMAT = "improvement-case-events/1"
PROOF_FORMAT = "improvement-case-proof/1"
COLUMNS = ("position", "case_id", "version", "event_id", "type", "schema_version",
           "occurred_at", "actor", "payload", "prev_hash", "hash")
"""The columns of the `events` table, in table order: the keys of each exported event."""
BUNDLE_FILES = ("events.json", "RULE.md", "verify.py", "MANIFEST.json")
ANCHOR_FILES = ("PROOF.json", "CHECKPOINT.json", "PUBLIC_KEY.pem")
"""Written when there is an anchor to write: see the module docstring."""
PRIVATE_FILE, PRIVATE_PROGRAM, PRIVATE_DIRECTORY = 0o600, 0o700, 0o700


class NoSuchCase(LookupError):
    """The store holds no event of this case: nothing to export."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id} in the store")
        self.case_id = case_id


class UnreadableCase(ValueError):
    """An event of the case cannot be read back (a payload nested too deep, or not JSON): the
    store was written behind its back. `cases verify CASE` names the event."""

    def __init__(self, case_id: str, reason: str) -> None:
        super().__init__(f"case {case_id} cannot be exported: an event cannot be read back "
                         f"({reason}); `cases verify {case_id}` names it")
        self.case_id = case_id


class UnreadableStore(RuntimeError):
    """An event of the store cannot be read back (a payload nested too deep, or not JSON)."""

    def __init__(self) -> None:
        super().__init__("an event in the store cannot be read back (a payload nested too "
                         "deep, or not JSON): the store was written behind its back; "
                         "`cases verify` names the case and the version")


class BundleRefused(ValueError):
    """The bundle's directory cannot be written safely: a symbolic link, or not a directory."""


def verifier_sha256() -> str:
    """Lowercase hex SHA-256 of the bundle's verify.py: what docs/event-store.md, every
    MANIFEST.json and every signed checkpoint publish, so an auditor can tell the genuine one."""
    return hashlib.sha256(VERIFIER.encode("utf-8")).hexdigest()


def _read(store: EventStore, case_id: str) -> list[StoredEvent]:
    try:
        stored = store.read_case(case_id)
    except RecursionError:
        raise UnreadableCase(case_id, "a payload nested too deep") from None
    except ValueError as error:
        raise UnreadableCase(case_id, str(error).splitlines()[0]) from None
    if not stored:
        raise NoSuchCase(case_id)
    return stored


def event_row(event: StoredEvent) -> dict[str, Any]:
    """One event as exported: the table's columns, `occurred_at` in the hash's own form."""
    return {"position": event.position, "case_id": event.case_id, "version": event.version,
            "event_id": event.event_id, "type": event.type,
            "schema_version": event.schema_version,
            "occurred_at": format_time(event.occurred_at), "actor": event.actor,
            "payload": event.payload, "prev_hash": event.prev_hash, "hash": event.hash}


def _json_document(case_id: str, stored: list[StoredEvent]) -> str:
    document = {"format": EXPORT_FORMAT, "case_id": case_id,
                "events": [event_row(e) for e in stored]}
    return json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def export_json(store: EventStore, case_id: str) -> str:
    """`{"format", "case_id", "events": [every row, in version order]}` as JSON text.

    Raises NoSuchCase if the store holds no event of the case."""
    return _json_document(case_id, _read(store, case_id))


def export_csv(store: EventStore, case_id: str) -> str:
    """One line per event, columns as in the table (header first); `payload` is its RFC 8785
    canonical JSON, `occurred_at` as the hash sees it. RFC 4180 CSV (CRLF line ends)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for event in _read(store, case_id):
        row = event_row(event)
        row["payload"] = canonical_json(event.payload).decode("utf-8")
        writer.writerow([row[c] for c in COLUMNS])
    return out.getvalue()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _anchor(store: EventStore, case_id: str, checkpoint_dir: Path | None,
            public_key: Path | None) -> tuple[dict[str, bytes], dict[str, Any] | None, str]:
    """The anchor files of the case's bundle, the manifest's `anchor` entry (None: not
    anchored) and a sentence on what was or was not found, for whoever exported it."""
    point = load_checkpoint(store)
    if point is None:
        return {}, None, "not anchored: the store has no checkpoint yet"
    try:
        recorded = point.to_recorded().event
    except (RecursionError, ValueError) as error:
        return {}, None, (f"not anchored: checkpoint {point.version} cannot be read "
                          f"({str(error).splitlines()[0]})")
    if not isinstance(recorded, CheckpointRecorded):
        return {}, None, f"not anchored: checkpoint {point.version} is not a checkpoint"
    found = head_proof(recorded.heads, case_id)
    if found is None:
        return {}, None, (f"not anchored: the newest checkpoint, {point.version}, was recorded "
                          "before the case began")
    head, index, steps = found
    proof = {"format": PROOF_FORMAT, "checkpoint": point.version,
             "recorded_at": format_time(point.occurred_at), "merkle_root": recorded.merkle_root,
             "leaf": {"case_id": head.case_id, "version": head.version, "hash": head.hash},
             "leaf_index": index, "leaf_count": len(recorded.heads),
             "proof": [{"sibling_on": side, "hash": sibling} for side, sibling in steps]}
    files = {"PROOF.json": _json_bytes(proof)}
    anchor: dict[str, Any] = {"checkpoint": point.version, "merkle_root": recorded.merkle_root,
                              "version": head.version, "signed": False,
                              "public_key_sha256": None}
    signed, said = _signed_checkpoint(point.version, recorded.merkle_root, checkpoint_dir,
                                      public_key)
    files.update(signed)
    anchor["signed"] = "CHECKPOINT.json" in signed
    if "PUBLIC_KEY.pem" in signed:
        anchor["public_key_sha256"] = json.loads(signed["CHECKPOINT.json"])["public_key_sha256"]
    return files, anchor, said


def _signed_checkpoint(number: int, merkle_root: str, checkpoint_dir: Path | None,
                       public_key: Path | None) -> tuple[dict[str, bytes], str]:
    """CHECKPOINT.json and PUBLIC_KEY.pem for checkpoint `number`, if its signed file is
    published in `checkpoint_dir` (and the key at `public_key` signed it); what was found."""
    from eventstore.checkpoint_files import (
        NotACheckpointFile,
        SigningKeyProblem,
        checkpoint_file_path,
        load_public_key,
        public_key_sha256,
        read_checkpoint_file,
        verify_checkpoint_signature,
    )

    unsigned = f"anchored in checkpoint {number}, unsigned"
    if checkpoint_dir is None:
        return {}, f"{unsigned}: no checkpoint directory (CASES_CHECKPOINT_DIR)"
    path = checkpoint_file_path(checkpoint_dir, number)
    if not path.exists():
        return {}, f"{unsigned}: {path} is not there (no CASES_SIGNING_KEY when it was recorded?)"
    try:
        statement, signature, signer = read_checkpoint_file(path)
        published = path.read_bytes()
    except (NotACheckpointFile, OSError) as bad:
        return {}, f"{unsigned}: {bad}"
    files = {"CHECKPOINT.json": published}
    said = f"anchored in signed checkpoint {number} ({path})"
    if statement.get("merkle_root") != merkle_root:
        said += (f"; but its Merkle root is not the store's checkpoint {number}'s: one of them "
                 "was changed, and the bundle's verify.py will say so")
    if public_key is None:
        return files, said + "; no public key to add (CASES_SIGNING_KEY is not set)"
    try:
        pem = public_key.read_bytes()
        holds = public_key_sha256(load_public_key(pem))
    except (OSError, SigningKeyProblem) as bad:
        return files, f"{said}; {public_key} not added: {bad}"
    if holds != signer:
        return files, (f"{said}; {public_key} not added: checkpoint {number} was signed by "
                       "another key")
    if not verify_checkpoint_signature(statement, signature, pem):
        said += "; but its signature does not verify, and the bundle's verify.py will say so"
    files["PUBLIC_KEY.pem"] = pem
    return files, said


def _bundle_directory(directory: Path, *, force: bool) -> int:
    """An open descriptor of `directory`, made (0700) if it is not there; never a symbolic
    link. FileExistsError if it holds anything and `force` is not given; with `force`, the
    files of an earlier bundle in it are removed (nothing else is touched)."""
    if directory.is_symlink():
        raise BundleRefused(f"{directory} is a symbolic link; give the real directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    made = False
    try:
        os.mkdir(directory, PRIVATE_DIRECTORY)
        made = True
    except FileExistsError:
        pass
    try:
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except NotADirectoryError:
        raise BundleRefused(f"{directory} is not a directory") from None
    except OSError as error:  # ELOOP: it became a link since
        raise BundleRefused(f"{directory}: {error.strerror or error}") from None
    try:
        if made:
            os.fchmod(handle, PRIVATE_DIRECTORY)
        present = set(os.listdir(handle))
        if present and not force:
            raise FileExistsError(f"{directory} is not empty; give a new or empty directory, or "
                                  "--force to replace an earlier bundle's files in it")
        for name in sorted(present.intersection(BUNDLE_FILES + ANCHOR_FILES)):
            os.unlink(name, dir_fd=handle)
    except BaseException:
        os.close(handle)
        raise
    return handle


def _create(directory: int, name: str, data: bytes, mode: int) -> None:
    """A new file in the open directory, `mode` whatever the umask; never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    handle = os.open(name, flags, mode, dir_fd=directory)
    with os.fdopen(handle, "wb") as file:
        os.fchmod(handle, mode)
        file.write(data)


def write_bundle(store: EventStore, case_id: str, directory: Path, *,
                 now: datetime | None = None, force: bool = False,
                 checkpoint_dir: Path | None = None, public_key: Path | None = None) -> Path:
    """Write the case's audit bundle (module docstring) into `directory`; returns it.

    The directory is created (0700) if need be and must otherwise be empty (FileExistsError),
    so a bundle never mixes two exports, unless `force`: then an earlier bundle's files are
    replaced and nothing else is touched. A symbolic link is refused (BundleRefused), and no
    file is ever written through one. The store's own verdict on the case at export time goes
    into MANIFEST.json; a case that does not verify is exported all the same, as stored, and
    its verify.py will say where it breaks. The anchor comes from the store's newest
    checkpoint, and its signed file from `checkpoint_dir` with the key at `public_key`.
    Raises NoSuchCase for a case with no events, UnreadableCase for one the store cannot
    read back.
    """
    stored = _read(store, case_id)
    events_bytes = _json_document(case_id, stored).encode("utf-8")
    _, problem = check_chain(stored)
    head = stored[-1]
    anchor_files, anchor, anchor_said = _anchor(store, case_id, checkpoint_dir, public_key)
    manifest = {
        "format": EXPORT_FORMAT, "case_id": case_id, "event_count": len(stored),
        "head": {"version": head.version, "hash": head.hash},
        "events_json_sha256": hashlib.sha256(events_bytes).hexdigest(),
        "verify_py_sha256": verifier_sha256(),
        "exported_at": format_time(now or datetime.now(UTC)),
        "verified_at_export": {"ok": problem is None,
                               "problem": None if problem is None else str(problem)},
        "anchor": anchor, "anchor_note": anchor_said,
    }
    handle = _bundle_directory(directory, force=force)
    try:
        _create(handle, "events.json", events_bytes, PRIVATE_FILE)
        _create(handle, "RULE.md", RULE.encode("utf-8"), PRIVATE_FILE)
        _create(handle, "verify.py", VERIFIER.encode("utf-8"), PRIVATE_PROGRAM)
        for name, data in anchor_files.items():
            _create(handle, name, data, PRIVATE_FILE)
        _create(handle, "MANIFEST.json", _json_bytes(manifest), PRIVATE_FILE)
    finally:
        os.close(handle)
    return directory


def case_histories(store: EventStore) -> dict[str, list[Recorded]]:
    """Every case's history (upcast domain events, version order), keyed by case id, read in
    one pass over the store; the checkpoint stream is left out. What `domain.figures` takes."""
    histories: dict[str, list[Recorded]] = defaultdict(list)
    try:
        for event in store.iter_after(0):
            if event.case_id != CHECKPOINT_STREAM:
                histories[event.case_id].append(event.to_recorded())
    except (RecursionError, json.JSONDecodeError):
        raise UnreadableStore from None
    for history in histories.values():
        history.sort(key=lambda r: r.version)
    return dict(sorted(histories.items()))


TEST_VECTOR = (
    '{"actor":"officer:siân.jones","case_id":"cpc-E06000001-2026",'
    '"event_id":"3f6f0c1e-6a3e-5c2a-9a57-1a0f4c6f2b10",'
    '"occurred_at":"2026-03-02T09:30:00.000000Z","payload":{"budget_gap_pence":420000000,'
    '"council":"E06000001","kind":"corporate_peer_challenge","reason":"Budget gap of £4.2m '
    r'\"flagged\" by the s151 officer\n","scope":["finance","governance"]},'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"schema_version":1,"type":"CaseRequested","version":1}'
)
"""BRIEF §4's test vector, one canonical line; its backslashes are JSON escapes."""
TEST_VECTOR_HASH = "a4225a32fce5148c2884b499ab1d9451f7dccf636a826fec0d06aaa9bc9d0774"

RULE = r"""# How each event of `events.json` is hashed and checked

Contract: BRIEF §4 of the improvement-case engine; the full text is the project's
`docs/event-store.md` (§2, §4 and §10). `verify.py` beside this file does all of this: run it
as `python3 -I -S verify.py` (isolated: then no file beside it, such as a `hashlib.py`, can
stand in for Python's standard library; started otherwise, it starts itself again so).

**Hash.** `hash` = lowercase hex SHA-256 of the UTF-8 bytes of the RFC 8785 (JCS) canonical
JSON of an object with exactly these 9 keys, taken from the event: `case_id`, `version`,
`event_id`, `type`, `schema_version`, `occurred_at`, `actor`, `payload`, `prev_hash`.
(`position` and `hash` are not hashed.) `occurred_at` is the UTC instant written
`YYYY-MM-DDTHH:MM:SS.ffffffZ`, as it already is in `events.json`; `payload` is the JSON
object as given; `schema_version` is as stored (old shapes are never rewritten).

**Canonical JSON, for these values** (there are never floats): no whitespace; object keys
sorted by their UTF-16 code units (plain character order for ASCII keys), nested objects too,
arrays in order, no key twice; strings escape only `"` as `\"`, `\` as `\\` and characters
below U+0020 (`\b \t \n \f \r`, the others `\u00xx` in lowercase hex), every other character
written as itself in UTF-8; integers in plain decimal, within ±(2^53−1); `true`, `false`,
`null`. In Python, when every key is ASCII (as in every event this project writes):
`json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")`.
A payload nests objects and arrays at most 1000 levels deep (the payload object itself is
level 1); a deeper one cannot be verified and is reported as **altered**: treat it as tampered.

**Chain.** Version 1's `prev_hash` is 64 zeros; version n's is version n−1's `hash`.

**Checks**, walking the events in version order with n = 1, 2, 3 …, stopping at the first
failure: (1) `version` is n, else version n is **missing**; (2) `case_id` is the bundle's case
(`events.json`'s and `MANIFEST.json`'s `case_id`), else the bundle is **relabelled**; (3) the
recomputed hash equals `hash`, else the event was **altered**; (4) `prev_hash` is the previous
event's `hash`, else **broken_link**; (5) `position` is greater than the previous event's,
else **reordered**. Then, against `MANIFEST.json`: the last event is the manifest's `head`
(version and hash; else versions are **missing** or **added**), and the SHA-256 of the bytes
of `events.json` is its `events_json_sha256`. The chain alone cannot see a truncated tail; the
manifest's head can, but only if a copy of that head is kept where the bundle's holder cannot
change it: that is what the anchor is.

**Anchor** (when the files are there; without `PROOF.json` the bundle is not anchored, and
`verify.py` says so). `PROOF.json` places the case's head, as a checkpoint of the store saw it,
in that checkpoint's Merkle tree: the leaf is SHA-256 of the UTF-8 text `case_id "\n" version
"\n" hash`; for each step of `proof` in order, the node becomes SHA-256 of the sibling's 32
bytes then the node's if `sibling_on` is `left`, of the node's then the sibling's if `right`;
the last node must be `merkle_root`, and the events must hold that `version` with that `hash`.
`CHECKPOINT.json` is that checkpoint as it was published: `statement` (`number`,
`recorded_at`, `last_position`, `merkle_root`, `heads`, `previous`, `verify_py_sha256`),
`signature` (base64 of the Ed25519 signature, RFC 8032, over the RFC 8785 canonical JSON of
`statement`) and `public_key_sha256` (SHA-256 of the signer's raw 32-byte public key). Its
`merkle_root` must be the proof's, its `heads` must list the leaf, and its `heads` (sorted by
case id, pairs hashed, an odd last node carried up unchanged) must give its `merkle_root`.
`PUBLIC_KEY.pem` is the signer's public key as the exporting system held it. **Compare it with
a key you obtained independently** (from the project, the public register, a letter): a key
carried in the bundle proves nothing by itself. `python3 -I -S verify.py --public-key FILE`
checks the signature with your key instead, and says which key it used.

**verify.py itself.** Its SHA-256 is published in the project's `docs/event-store.md`, and
every signed checkpoint carries it as `verify_py_sha256`: compare the SHA-256 of this bundle's
`verify.py` with those, not with `MANIFEST.json`, which travels with it. Before anything else it
checks that its own hashing reproduces the test vector below, and gives no verdict otherwise.

**Test vector** (BRIEF §4): this canonical line (`\"` and `\n` in it are JSON escapes)

```json
""" + TEST_VECTOR + r"""
```

hashes to `""" + TEST_VECTOR_HASH + """`.
"""
"""RULE.md of a bundle."""

VERIFIER = r'''#!/usr/bin/env python3
"""Verify the exported case in this directory with nothing but Python's standard library.

    python3 -I -S verify.py [DIR] [--public-key FILE] [--case CASE_ID]

Reads DIR/events.json (DIR defaults to this script's own directory), recomputes the hash of
every event by the rule in RULE.md, walks the case's chain and checks that every event is the
bundle's case (or CASE_ID's); then, if DIR/MANIFEST.json is there, that the chain ends at the
head it records and that events.json is the very file it describes; then, if DIR/PROOF.json is
there, that the case's head is in the Merkle tree of a checkpoint and, if DIR/CHECKPOINT.json
is there too, that the checkpoint is signed (Ed25519) by the key in FILE or, without
--public-key, by the bundle's own PUBLIC_KEY.pem.

Exit status: 0 the case is intact (its head is printed, and whether and how it is anchored);
3 it is not, and the first bad version or file is named; 2 nothing was verified (no events.json,
not JSON, no events, an unreadable --public-key, or this Python does not reproduce the test
vector of RULE.md).

Run it as shown: with -I -S nothing beside this file (a hashlib.py, a json.py) can stand in for
the standard library. Started any other way it starts itself again so before it imports
anything (on Windows it asks to be started so). The checks and messages on the chain are those
of docs/verify_case.py, which reads a SQLite store instead. Python 3.8 or later.
"""

import sys


def isolate():
    """Start again as `python -I -S` unless already so: no script directory, no site-packages,
    no PYTHON* variables, so that imports come from the standard library only."""
    if sys.flags.isolated and sys.flags.no_site:
        return
    os = sys.modules.get("os")  # imported as the interpreter started, before this directory
    if os is None and "posix" in sys.builtin_module_names:  # was on the path; posix is built in
        import posix as os
    if (os is None or not sys.executable or sys.platform == "win32"
            or "verify-restarted" in getattr(sys, "_xoptions", {})):
        sys.stderr.write("run me as `python3 -I -S verify.py`, isolated, so that no file beside "
                         "me can stand in for the standard library; nothing was verified\n")
        sys.exit(2)
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-X", "verify-restarted", __file__]
             + sys.argv[1:])


if __name__ == "__main__":
    isolate()

import argparse  # noqa: E402  (every import comes after isolate())
import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

GENESIS_HASH = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
MAX_NESTING = 1000
"""A payload nests objects and arrays at most this deep (the payload itself is level 1)."""
INTACT, UNVERIFIED, BROKEN = 0, 2, 3
TEST_VECTOR = (
    '{"actor":"officer:siân.jones","case_id":"cpc-E06000001-2026",'
    '"event_id":"3f6f0c1e-6a3e-5c2a-9a57-1a0f4c6f2b10",'
    '"occurred_at":"2026-03-02T09:30:00.000000Z","payload":{"budget_gap_pence":420000000,'
    '"council":"E06000001","kind":"corporate_peer_challenge","reason":"Budget gap of £4.2m '
    r'\"flagged\" by the s151 officer\n","scope":["finance","governance"]},'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"schema_version":1,"type":"CaseRequested","version":1}'
)
"""The test vector of RULE.md (BRIEF §4), one canonical line; its backslashes are JSON's."""
TEST_VECTOR_HASH = "a4225a32fce5148c2884b499ab1d9451f7dccf636a826fec0d06aaa9bc9d0774"


class NotInteger(str):
    """A number with a fraction or an exponent, or NaN: something the store never writes."""


class RepeatedKeys(dict):
    """A JSON object that names a key twice: something the store never writes."""


class TooDeep:
    """Objects or arrays nested deeper than the limit, left unread: nothing can verify them."""


def _object(pairs):
    value = dict(pairs)
    return RepeatedKeys(value) if len(value) != len(pairs) else value


DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_float=NotInteger,
                           parse_constant=NotInteger)
_STRUCTURE = re.compile(r'["\[\]{}]')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
TOO_DEEP = (f"the payload is nested deeper than {MAX_NESTING} levels of objects and arrays: "
            "it cannot be verified; treat it as tampered")


def _space(text, at):
    while text[at:at + 1] in (" ", "\t", "\n", "\r"):
        at += 1
    return at


def _skip(text, at):
    """The index just after the object or array that starts at `at`, its content unread."""
    depth = 0
    while True:
        found = _STRUCTURE.search(text, at)
        if found is None:
            raise ValueError("an object or array never ends")
        at = found.end()
        if found.group() == '"':
            rest = _STRING_REST.match(text, at)
            if rest is None:
                raise ValueError("a string never ends")
            at = rest.end()
        elif found.group() in "[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return at


def _member_key(text, at):
    if text[at:at + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
    key, at = DECODER.raw_decode(text, at)
    at = _space(text, at)
    if text[at:at + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
    return key, _space(text, at + 1)


def parse(text, max_depth):
    """JSON text read as json.loads reads it with DECODER, but with an explicit stack instead of
    recursion: an object or array nested deeper than max_depth levels becomes a TooDeep, its
    content skipped. ValueError for text that is not JSON."""
    frames = []  # for each object or array still open: [its members, whether an object, key]
    at = _space(text, 0)
    while True:
        opener = text[at:at + 1]
        if opener in ("{", "["):
            if len(frames) >= max_depth:
                value, at = TooDeep(), _skip(text, at)
            else:
                at = _space(text, at + 1)
                if text[at:at + 1] == ("}" if opener == "{" else "]"):
                    value, at = (_object([]) if opener == "{" else []), at + 1
                else:
                    frames.append([[], opener == "{", None])
                    if opener == "{":
                        frames[-1][2], at = _member_key(text, at)
                    continue
        else:
            value, at = DECODER.raw_decode(text, at)
        while True:  # the value ends a member: close every object or array that ends here too
            if not frames:
                if _space(text, at) != len(text):
                    raise json.JSONDecodeError("Extra data", text, _space(text, at))
                return value
            frame = frames[-1]
            frame[0].append((frame[2], value) if frame[1] else value)
            at = _space(text, at)
            if text[at:at + 1] == ",":
                at = _space(text, at + 1)
                if frame[1]:
                    frame[2], at = _member_key(text, at)
                break
            if text[at:at + 1] != ("}" if frame[1] else "]"):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
            at += 1
            frames.pop()
            value = _object(frame[0]) if frame[1] else frame[0]


def _scalar(value):
    if isinstance(value, NotInteger):
        raise ValueError(f"the number {value} is not an integer")
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value, ensure_ascii=False)  # JCS escapes strings exactly so
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return str(value)
    raise ValueError(f"{value!r} is not JSON the store writes (integers within ±(2**53-1) only)")


def canonical(value, max_depth=MAX_NESTING + 1):
    """RFC 8785 (JCS) text of a JSON value without floats (the store never holds one), written
    with an explicit stack; ValueError for objects and arrays nested deeper than max_depth
    levels (an event's payload sits one level down in the hashed object)."""
    out = []
    frames = []  # for each object or array still open: (its members left, its closing mark)
    while True:
        if isinstance(value, TooDeep) or (isinstance(value, (dict, list))
                                          and len(frames) >= max_depth):
            raise ValueError(TOO_DEEP)
        if isinstance(value, RepeatedKeys):
            raise ValueError("a JSON object repeats a key")
        if isinstance(value, dict):
            keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # UTF-16 code units
            out.append("{")
            frames.append((iter([(key, value[key]) for key in keys]), "}"))
        elif isinstance(value, list):
            out.append("[")
            frames.append((iter([(None, item) for item in value]), "]"))
        else:
            out.append(_scalar(value))
        while frames:
            member = next(frames[-1][0], None)
            if member is None:
                out.append(frames.pop()[1])
                continue
            if out[-1] not in ("{", "["):
                out.append(",")
            if member[0] is not None:
                out.append(_scalar(member[0]) + ":")
            value = member[1]
            break
        else:
            return "".join(out)


def hashing_works():
    """Whether this Python reproduces RULE.md's test vector: read and written again, the line
    must come back byte for byte and hash to the stated hash."""
    try:
        line = canonical(parse(TEST_VECTOR, MAX_NESTING + 1))
        return (line == TEST_VECTOR and hashlib.sha256(line.encode("utf-8")).hexdigest()
                == TEST_VECTOR_HASH)
    except Exception:
        return False


def shown(text):
    """`text` with every character a terminal acts on (controls, bidirectional overrides)
    written as an escape: the files may have been written by anyone."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def utc_time(stored):
    """occurred_at as the hash sees it: YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC."""
    if not isinstance(stored, str):
        raise ValueError("occurred_at is not a time")
    text = stored[:-1] + "+00:00" if stored.endswith("Z") else stored
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def event_hash(row):
    """SHA-256 of the canonical JSON of the row's nine hashed fields (RULE.md)."""
    if not isinstance(row.get("payload"), (dict, TooDeep)):
        raise ValueError("the payload is not a JSON object")
    hashed = {"case_id": row["case_id"], "version": row["version"],
              "event_id": row["event_id"], "type": row["type"],
              "schema_version": row["schema_version"], "occurred_at": utc_time(row["occurred_at"]),
              "actor": row["actor"], "payload": row["payload"],
              "prev_hash": row["prev_hash"]}
    return hashlib.sha256(canonical(hashed).encode("utf-8")).hexdigest()


def first_problem(rows, case_id):
    """Walk the case in file (version) order; describe the first bad version, or None."""
    prev_hash, prev_position = GENESIS_HASH, 0
    for expected, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not _is_integer(row.get("version")):
            return f"version {expected}: altered: the row has no integer version"
        if row["version"] != expected:
            return (f"version {expected}: missing: the chain jumps from version {expected - 1} "
                    f"to version {row['version']}")
        if "case_id" in row and row["case_id"] != case_id:
            return (f"version {expected}: relabelled: the event is case {row['case_id']}'s, "
                    f"not case {case_id}'s")
        try:
            computed = event_hash(row)
        except KeyError as error:
            return f"version {expected}: altered: the field {error} is missing"
        except ValueError as error:  # also UnicodeError
            return f"version {expected}: altered: {error}"
        if computed != row.get("hash"):
            return (f"version {expected}: altered: stored hash {row.get('hash')}, "
                    f"recomputed {computed}")
        if row["prev_hash"] != prev_hash:
            return (f"version {expected}: broken_link: prev_hash {row['prev_hash']} is not "
                    f"the hash of version {expected - 1} ({prev_hash})")
        position = row.get("position")
        if not _is_integer(position) or position <= prev_position:
            return (f"version {expected}: reordered: position {position} is not after "
                    f"version {expected - 1}'s position {prev_position}")
        prev_hash, prev_position = row["hash"], position
    return None


def read_json(path):
    """A small JSON file of the bundle (a manifest, a proof, a checkpoint), read strictly."""
    return parse(path.read_bytes().decode("utf-8"), 32)


def manifest_problem(manifest, case_id, rows, events_bytes):
    """Compare an intact chain with MANIFEST.json: the head it records, the file's sha256."""
    try:
        head_version, head_hash = manifest["head"]["version"], manifest["head"]["hash"]
        recorded_case, recorded_sha = manifest["case_id"], manifest["events_json_sha256"]
    except (KeyError, TypeError) as error:
        return f"MANIFEST.json: altered: not a manifest this export writes ({error!r})"
    last = rows[-1]["version"]
    if recorded_case != case_id:
        return f"MANIFEST.json: relabelled: it is for case {recorded_case}, not {case_id}"
    if not _is_integer(head_version) or head_version < 1:
        return f"MANIFEST.json: altered: head version {head_version!r} is not a version"
    if last < head_version:
        return (f"version {last + 1}: missing: MANIFEST.json records head version "
                f"{head_version}, events.json ends at version {last}")
    if last > head_version:
        return (f"version {head_version + 1}: added: MANIFEST.json records head version "
                f"{head_version}, events.json goes on to version {last}")
    if rows[-1]["hash"] != head_hash:
        return (f"version {last}: altered: hash {rows[-1]['hash']} is not the head hash "
                f"{head_hash} that MANIFEST.json records")
    computed = hashlib.sha256(events_bytes).hexdigest()
    if computed != recorded_sha:
        return (f"events.json: altered: its sha256 is {computed}, MANIFEST.json records "
                f"{recorded_sha}; every event verifies, so a field outside the hash (a "
                "position) or the file's layout changed")
    return None


# --- Ed25519 verification (RFC 8032, section 5.1.7), as the RFC's own Python describes it ---

ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)
SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")
"""The DER prefix of an Ed25519 public key in a PEM `PUBLIC KEY` (RFC 8410); 32 bytes follow."""


def _ed_add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    p = ED_P
    a_ = (y1 - x1) * (y2 - x2) % p
    b_ = (y1 + x1) * (y2 + x2) % p
    c_ = 2 * t1 * t2 * ED_D % p
    d_ = 2 * z1 * z2 % p
    e, f, g, h = b_ - a_, d_ - c_, d_ + c_, b_ + a_
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _ed_multiply(scalar, point):
    total = (0, 1, 1, 0)  # the neutral element
    while scalar > 0:
        if scalar & 1:
            total = _ed_add(total, point)
        point = _ed_add(point, point)
        scalar >>= 1
    return total


def _ed_equal(a, b):
    return ((a[0] * b[2] - b[0] * a[2]) % ED_P == 0
            and (a[1] * b[2] - b[1] * a[2]) % ED_P == 0)


def _ed_x(y, sign):
    if y >= ED_P:
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P != 0:
        x = x * ED_SQRT_M1 % ED_P
    if (x * x - x2) % ED_P != 0:
        return None
    return ED_P - x if (x & 1) != sign else x


def _ed_point(encoded):
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _ed_x(y, sign)
    return None if x is None else (x, y, 1, x * y % ED_P)


ED_BASE = _ed_point(bytes.fromhex(
    "5866666666666666666666666666666666666666666666666666666666666666"))


def ed25519_verify(public_key, message, signature):
    """Whether `signature` (64 bytes) is the Ed25519 signature of `message` by `public_key`
    (32 bytes): [s]B = R + [SHA-512(R || A || M)]A."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a_point, r_point = _ed_point(public_key), _ed_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a_point is None or r_point is None or s >= ED_L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(),
                       "little") % ED_L
    return _ed_equal(_ed_multiply(s, ED_BASE), _ed_add(r_point, _ed_multiply(k, a_point)))


def ed25519_works():
    """Whether this Python reproduces RFC 8032's test 1 (section 7.1), and refuses it altered."""
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    return ed25519_verify(public, b"", signature) and not ed25519_verify(public, b"x", signature)


def read_public_key(path):
    """The raw 32 bytes of an Ed25519 public key in a PEM file (`BEGIN PUBLIC KEY`)."""
    lines = [line.strip() for line in path.read_text(encoding="ascii").strip().splitlines()]
    if (len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----"
            or lines[-1] != "-----END PUBLIC KEY-----"):
        raise ValueError("not a PEM public key")
    der = base64.b64decode("".join(lines[1:-1]), validate=True)
    if len(der) != 44 or not der.startswith(SPKI_ED25519):
        raise ValueError("not an Ed25519 public key")
    return der[len(SPKI_ED25519):]


# --- the anchor: PROOF.json, CHECKPOINT.json, PUBLIC_KEY.pem --------------------------------

def leaf_digest(case_id, version, head_hash):
    """A checkpoint's Merkle leaf: SHA-256 of `case_id \\n version \\n hash`, UTF-8."""
    if not isinstance(case_id, str) or not _is_integer(version) or not isinstance(head_hash, str):
        raise ValueError("a leaf is a case id, a version and a hash")
    return hashlib.sha256(f"{case_id}\n{version}\n{head_hash}".encode("utf-8")).digest()


def root_from_proof(leaf, steps):
    """The root a proof leads to: at each step, SHA-256 of sibling + node if the sibling is on
    the left, node + sibling if on the right (raw 32-byte digests)."""
    node = leaf
    for step in steps:
        sibling = bytes.fromhex(step["hash"])
        if len(sibling) != 32 or step["sibling_on"] not in ("left", "right"):
            raise ValueError("a proof step is not a side and a SHA-256 digest")
        pair = sibling + node if step["sibling_on"] == "left" else node + sibling
        node = hashlib.sha256(pair).digest()
    return node.hex()


def merkle_root(heads):
    """The Merkle root over checkpoint heads: leaves sorted by case id, pairs hashed left then
    right, an odd last node carried up unchanged; SHA-256 of nothing for no heads."""
    ordered = sorted(heads, key=lambda head: head["case_id"])
    level = [leaf_digest(h["case_id"], h["version"], h["hash"]) for h in ordered]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() if i + 1 < len(level)
                 else level[i] for i in range(0, len(level), 2)]
    return level[0].hex()


def _hex_digest(value):
    return isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value) is not None


def _public_key(path, described):
    """(the raw key, how to name it) for the key in `path`."""
    key = read_public_key(path)
    return key, described.replace("{sha256}", hashlib.sha256(key).hexdigest())


def check_anchor(directory, case_id, rows, manifest, key_file):
    """(exit status, lines to print) for the bundle's anchor: none, a proof against the root of
    a checkpoint, or a proof against a signed checkpoint."""
    anchor = manifest.get("anchor") if isinstance(manifest, dict) else None
    last = rows[-1]["version"]
    if not (directory / "PROOF.json").exists():
        if isinstance(anchor, dict):
            return BROKEN, ["PROOF.json: missing: MANIFEST.json records an anchor in checkpoint "
                            f"{anchor.get('checkpoint')}"]
        return INTACT, ["not anchored: the bundle has no PROOF.json (no checkpoint had seen "
                        "this case when it was exported); compare the head with one kept "
                        "elsewhere"]
    try:
        proof = read_json(directory / "PROOF.json")
        number, root, leaf = proof["checkpoint"], proof["merkle_root"], proof["leaf"]
        version, head_hash = leaf["version"], leaf["hash"]
        proved = root_from_proof(leaf_digest(leaf["case_id"], version, head_hash),
                                 proof["proof"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        return BROKEN, [f"PROOF.json: altered: not a proof this export writes ({error!r})"]
    if leaf["case_id"] != case_id:
        return BROKEN, [f"PROOF.json: relabelled: its leaf is case {leaf['case_id']}'s, not "
                        f"case {case_id}'s"]
    if not 1 <= version <= last:
        return BROKEN, [f"version {last + 1}: missing: checkpoint {number} saw version "
                        f"{version}, events.json ends at version {last}"]
    if rows[version - 1]["hash"] != head_hash:
        return BROKEN, [f"version {version}: altered: checkpoint {number} saw hash {head_hash}, "
                        f"events.json has {rows[version - 1]['hash']}"]
    if proved != root:
        return BROKEN, [f"PROOF.json: altered: its proof leads to Merkle root {proved}, not to "
                        f"the root {root} it records"]
    span = f"versions 1 to {version}"
    later = "" if version == last else f"; versions {version + 1} to {last} came after it"
    if not (directory / "CHECKPOINT.json").exists():
        if isinstance(anchor, dict) and anchor.get("signed"):
            return BROKEN, ["CHECKPOINT.json: missing: MANIFEST.json records a signed "
                            f"checkpoint {number}"]
        return INTACT, [f"anchored, unsigned: {span} are in checkpoint {number} (Merkle root "
                        f"{root}) of the store that exported them; nothing outside that store "
                        f"vouches for the root: compare it with a root published elsewhere{later}"]
    try:
        signed = read_json(directory / "CHECKPOINT.json")
        statement = signed["statement"]
        signature = base64.b64decode(signed["signature"], validate=True)
        heads, signer = statement["heads"], signed.get("public_key_sha256")
        listed = any(isinstance(h, dict) and h.get("case_id") == case_id
                     and h.get("version") == version and h.get("hash") == head_hash
                     for h in heads)
        message = canonical(statement, 32).encode("utf-8")
        heads_root = merkle_root(heads)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return BROKEN, [f"CHECKPOINT.json: altered: not a signed checkpoint ({error!r})"]
    if statement.get("merkle_root") != root:
        return BROKEN, [f"CHECKPOINT.json: altered: its Merkle root is "
                        f"{statement.get('merkle_root')}, PROOF.json's is {root}"]
    if not listed:
        return BROKEN, [f"CHECKPOINT.json: altered: it does not list version {version} of case "
                        f"{case_id} with hash {head_hash}"]
    if heads_root != root:
        return BROKEN, [f"CHECKPOINT.json: altered: its heads give Merkle root {heads_root}, "
                        f"not the {root} it states"]
    if key_file is not None:
        try:
            key, used = _public_key(Path(key_file), f"the key you gave ({key_file}, SHA-256 "
                                    "{sha256})")
        except (OSError, ValueError) as error:
            return UNVERIFIED, [f"cannot read the public key {key_file}: {error}"]
    elif (directory / "PUBLIC_KEY.pem").exists():
        try:
            key, used = _public_key(
                directory / "PUBLIC_KEY.pem", "the bundle's own PUBLIC_KEY.pem (SHA-256 "
                "{sha256}): compare that key with one you obtained independently, or give "
                "yours with --public-key; a key carried in the bundle proves nothing by itself")
        except (OSError, ValueError) as error:
            return BROKEN, [f"PUBLIC_KEY.pem: altered: {error}"]
    else:
        return INTACT, [f"anchored, signature not checked: {span} are in checkpoint {number} "
                        f"(Merkle root {root}), but the bundle has no PUBLIC_KEY.pem; give the "
                        f"signer's key with --public-key{later}"]
    if not ed25519_works():
        return UNVERIFIED, ["this Python does not reproduce RFC 8032's test vector: the "
                            "checkpoint's signature cannot be checked here"]
    if not ed25519_verify(key, message, signature):
        other = ("" if signer == hashlib.sha256(key).hexdigest() else
                 f"; it names the key with SHA-256 {signer} as its signer")
        return BROKEN, [f"CHECKPOINT.json: forged: its signature does not verify with "
                        f"{used}{other}"]
    lines = [f"anchored: {span} are in checkpoint {statement.get('number', number)} (Merkle "
             f"root {root}, recorded {statement.get('recorded_at')}), signed; the signature "
             f"verifies with {used}{later}"]
    named = statement.get("verify_py_sha256")
    if _hex_digest(named):
        lines.append(f"the signed checkpoint names verify.py SHA-256 {named}")
    return INTACT, lines


def main(argv):
    parser = argparse.ArgumentParser(
        prog="verify.py", description="Verify the exported case in DIR (default: this "
        "script's directory). Exit 0 intact, 3 not, 2 nothing verified.")
    parser.add_argument("directory", nargs="?", metavar="DIR")
    parser.add_argument("--public-key", metavar="FILE",
                        help="check CHECKPOINT.json's signature with this Ed25519 public key "
                        "(PEM) instead of the bundle's own PUBLIC_KEY.pem")
    parser.add_argument("--case", metavar="CASE_ID",
                        help="the case you expect: every event must be this case's")
    args = parser.parse_args(argv)
    if not hashing_works():
        print("this Python does not reproduce the test vector of RULE.md: its hashing cannot "
              "be trusted; nothing was verified", file=sys.stderr)
        return UNVERIFIED
    directory = Path(args.directory) if args.directory else Path(__file__).resolve().parent
    path = directory / "events.json"
    try:
        events_bytes = path.read_bytes()
        document = parse(events_bytes.decode("utf-8"), MAX_NESTING + 3)  # document, events, row
    except (OSError, ValueError) as error:
        print(shown(f"cannot read events from {path}: {error}"), file=sys.stderr)
        return UNVERIFIED
    rows = document.get("events") if isinstance(document, dict) else None
    if not isinstance(rows, list) or not rows:
        print(shown(f"no events in {path}"), file=sys.stderr)
        return UNVERIFIED
    manifest, unreadable = None, None
    if (directory / "MANIFEST.json").exists():
        try:
            manifest = read_json(directory / "MANIFEST.json")
        except (OSError, ValueError) as error:
            unreadable = f"MANIFEST.json: altered: not a manifest this export writes ({error})"
    named = document.get("case_id")
    # The bundle's case: as the auditor expects it, else as events.json, else as the manifest,
    # else as the first event says; every event must then be that case's.
    case_id = args.case
    for said in (named, manifest.get("case_id") if isinstance(manifest, dict) else None,
                 rows[0].get("case_id") if isinstance(rows[0], dict) else None):
        case_id = case_id or (said if isinstance(said, str) else None)
    if case_id is None:
        print(shown(f"{path} names no case: nothing to verify against"), file=sys.stderr)
        return UNVERIFIED
    problem = first_problem(rows, case_id)
    if problem is None and isinstance(named, str) and named != case_id:
        problem = f"events.json: relabelled: it says case {named}, not case {case_id}"
    if problem is None and unreadable is not None:
        problem = unreadable
    elif problem is None and manifest is not None:
        problem = manifest_problem(manifest, case_id, rows, events_bytes)
    elif problem is None:
        print("no MANIFEST.json: a truncated or extended tail cannot be seen", file=sys.stderr)
    if problem is not None:
        print(shown(f"case {case_id} {problem}"))
        return BROKEN
    status, lines = check_anchor(directory, case_id, rows, manifest, args.public_key)
    if status == BROKEN:
        print(shown(f"case {case_id} {lines[0]}"))
        return BROKEN
    if status == UNVERIFIED:
        print(shown(lines[0]), file=sys.stderr)
        return UNVERIFIED
    head = rows[-1]
    print(shown(f"case {case_id}: intact, versions 1 to {head['version']}; "
                f"head hash {head['hash']}"))
    for line in lines:
        print(shown(line))
    own = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    print(f"this verify.py has SHA-256 {own}: compare it with the value the project publishes "
          "(docs/event-store.md, and every signed checkpoint's verify_py_sha256)")
    return INTACT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''
"""The bundle's verify.py: standard library only, isolated from its directory; the chain checks
of docs/verify_case.py over JSON, then the anchor: a Merkle inclusion proof and an Ed25519
signature, verified in pure Python."""
