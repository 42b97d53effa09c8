"""Signed checkpoint files: what leaves the database, so its roots live outside it too.

A checkpoint file is `$CASES_CHECKPOINT_DIR/checkpoint-NNNNNN.json` (NNNNNN: the checkpoint's
version in the `checkpoints` stream, zero-padded to 6), a JSON object

    {"statement": {...}, "signature": "<base64>", "public_key_sha256": "<hex>"}

where `signature` is the Ed25519 signature (standard base64 of its 64 bytes) over the RFC 8785
canonical JSON (UTF-8) of `statement`, and `public_key_sha256` the lowercase hex SHA-256 of
the raw 32-byte public key. The statement's keys are domain.checkpoints.STATEMENT_KEYS. The
format is a contract (docs/checkpoints.md); the audit bundle's verifier reads it with the
standard library alone.

The signing key lives outside the database: CASES_SIGNING_KEY names its file (PKCS8 PEM,
made by `cases keys generate PATH`, which also writes PATH.pub). Files and keys are created
readable by their owner only, never overwritten, never through a symlink. This module imports
nothing of the store, so the export code can import it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.checkpoints import STATEMENT_KEYS, canonical_statement

SIGNING_KEY_VARIABLE = "CASES_SIGNING_KEY"
DIRECTORY_VARIABLE = "CASES_CHECKPOINT_DIR"
FILE_KEYS = ("statement", "signature", "public_key_sha256")


class SigningKeyProblem(ValueError):
    """CASES_SIGNING_KEY, or a public key given to check with, is not a usable Ed25519 key."""


class NotACheckpointFile(ValueError):
    """The file is not a checkpoint file of the documented shape; nothing was verified."""


def checkpoint_file_path(directory: Path, number: int) -> Path:
    """Where checkpoint `number` is published: `directory/checkpoint-NNNNNN.json`."""
    return directory / f"checkpoint-{number:06d}.json"


def checkpoint_directory(sqlite_database: str | None = None) -> Path:
    """CASES_CHECKPOINT_DIR; else a `checkpoints` folder beside the SQLite database file
    (`sqlite_database`, the path in its URL); else `checkpoints` in the current directory.
    Absolute, so the path a worker reports names the file wherever it is read."""
    configured = os.environ.get(DIRECTORY_VARIABLE, "").strip()
    if configured:
        return Path(configured).absolute()
    if sqlite_database and sqlite_database != ":memory:":
        return Path(sqlite_database).absolute().parent / "checkpoints"
    return Path.cwd() / "checkpoints"


def public_key_path(private_key_path: Path) -> Path:
    """PATH.pub, beside the private key PATH."""
    return private_key_path.with_name(private_key_path.name + ".pub")


def default_public_key() -> Path | None:
    """The `.pub` beside CASES_SIGNING_KEY, or None when that is unset."""
    configured = os.environ.get(SIGNING_KEY_VARIABLE, "").strip()
    return public_key_path(Path(configured)) if configured else None


# --- keys -----------------------------------------------------------------------------------

def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_sha256(public_key: Ed25519PublicKey) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte public key: how a file names its key."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()


def _create_private(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only; never over an existing file or link."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def generate_key_pair(path: Path) -> tuple[Path, str]:
    """A new Ed25519 key: the private key (PKCS8 PEM) to `path`, the public key
    (SubjectPublicKeyInfo PEM) to `path.pub`, both 0600; (the .pub path, the key's sha256).
    FileExistsError if either exists: a key is never overwritten."""
    public_path = public_key_path(path)
    for taken in (path, public_path):
        if taken.exists() or taken.is_symlink():
            raise FileExistsError(f"{taken} exists")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    _create_private(path, private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    try:
        _create_private(public_path, public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError:
        path.unlink()
        raise
    return public_path, public_key_sha256(public_key)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The private key at `path`; SigningKeyProblem, in one line, if it is not one."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SigningKeyProblem(f"{SIGNING_KEY_VARIABLE}={path}: cannot read it "
                                f"({error.strerror or error}); make a key with "
                                "`cases keys generate PATH`") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyProblem(f"{SIGNING_KEY_VARIABLE}={path}: not an unencrypted Ed25519 "
                                "private key (PKCS8 PEM); make one with "
                                "`cases keys generate PATH`")
    return key


def signing_key_from_environment() -> Ed25519PrivateKey | None:
    """The key CASES_SIGNING_KEY names, or None when it is unset (checkpoints unsigned)."""
    configured = os.environ.get(SIGNING_KEY_VARIABLE, "").strip()
    return load_signing_key(Path(configured)) if configured else None


def load_public_key(public_key_pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM; SigningKeyProblem if not one."""
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyProblem("not an Ed25519 public key (SubjectPublicKeyInfo PEM, as "
                                "`cases keys generate` writes to PATH.pub)")
    return key


# --- statements and files -------------------------------------------------------------------

def sign_statement(statement: Mapping[str, Any], private_key: Ed25519PrivateKey) -> str:
    """Standard base64 of the Ed25519 signature over the statement's canonical JSON."""
    return base64.b64encode(private_key.sign(canonical_statement(statement))).decode("ascii")


def verify_checkpoint_signature(statement: Mapping[str, Any], signature_b64: str,
                                public_key_pem: bytes) -> bool:
    """Whether `signature_b64` is the signature of `statement` by the key in
    `public_key_pem` (the auditor's own copy, never one carried in the file). A malformed
    signature is False; a malformed key is SigningKeyProblem."""
    public_key = load_public_key(public_key_pem)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, canonical_statement(statement))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def checkpoint_document(statement: Mapping[str, Any],
                        private_key: Ed25519PrivateKey) -> dict[str, Any]:
    return {"statement": dict(statement), "signature": sign_statement(statement, private_key),
            "public_key_sha256": public_key_sha256(private_key.public_key())}


def write_checkpoint_file(directory: Path, statement: Mapping[str, Any],
                          private_key: Ed25519PrivateKey) -> Path:
    """Sign `statement` and publish it as its file in `directory` (created 0700 if absent).

    The file appears whole or not at all (written aside, then linked into place, which never
    replaces anything). Writing the same statement with the same key again is a no-op (a
    retried activity); FileExistsError if the name holds anything else.
    """
    path = checkpoint_file_path(directory, int(statement["number"]))
    document = checkpoint_document(statement, private_key)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists() or path.is_symlink():
        return _already_published(path, document)
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    aside = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    _create_private(aside, data)
    try:
        os.link(aside, path)
    except FileExistsError:
        return _already_published(path, document)
    finally:
        aside.unlink()
    return path


def _already_published(path: Path, document: Mapping[str, Any]) -> Path:
    try:
        statement, _, key = read_checkpoint_file(path)
    except NotACheckpointFile:
        statement, key = None, None
    if statement != document["statement"] or key != document["public_key_sha256"]:
        raise FileExistsError(f"{path} already holds another checkpoint; move it away "
                              f"(or set {DIRECTORY_VARIABLE} to this store's own folder)")
    return path


def read_checkpoint_file(path: Path) -> tuple[dict[str, Any], str, str]:
    """(statement, signature, public_key_sha256) of a checkpoint file, its shape checked;
    NotACheckpointFile saying what is wrong. The signature is not checked here."""
    try:
        with path.open("rb") as file:
            data = file.read(64 * 1024 * 1024 + 1)
    except OSError as error:
        raise NotACheckpointFile(f"{path}: cannot read it ({error.strerror or error})") from None
    if len(data) > 64 * 1024 * 1024:
        raise NotACheckpointFile(f"{path}: larger than any checkpoint file (64 MiB)")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise NotACheckpointFile(f"{path}: not JSON") from None
    if not isinstance(document, dict) or sorted(document) != sorted(FILE_KEYS):
        raise NotACheckpointFile(f"{path}: not a checkpoint file (expected exactly the keys "
                                 f"{', '.join(FILE_KEYS)})")
    statement, signature, key = (document[k] for k in FILE_KEYS)
    if not isinstance(statement, dict) or sorted(statement) != sorted(STATEMENT_KEYS):
        raise NotACheckpointFile(f"{path}: its statement does not have exactly the keys "
                                 f"{', '.join(STATEMENT_KEYS)}")
    if not isinstance(signature, str) or not isinstance(key, str):
        raise NotACheckpointFile(f"{path}: `signature` and `public_key_sha256` must be text")
    number = statement["number"]
    if type(number) is not int or number < 1:
        raise NotACheckpointFile(f"{path}: `number` is not a checkpoint number")
    return statement, signature, key
