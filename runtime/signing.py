"""Commands reach the worker signed: a payload codec that HMACs every payload with a key that
only the API and the worker hold.

Anyone with Temporal access can start a workflow or send an update with hand-written JSON;
without the key their payloads are not signed, and the worker refuses them before the
workflow sees them: a start fails the workflow, an update is rejected, nothing is recorded.
The codec cannot refuse by raising (the SDK would retry the workflow task forever), so an
unsigned or badly signed payload is decoded into a marker that the payload converter turns
into a non-retryable ApplicationError (see runtime/converter.py).

The key: CASES_COMMAND_KEY_FILE names a file holding it (32 random bytes, hex). Unset, the
engine uses ~/.config/cases/command.key and creates it, readable by its owner only, the first
time a worker or the API needs it: right for one machine; on several, give every worker and
API instance the same file. Auditors replaying a history need no key: `verify=False` only
unwraps.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from runtime.paths import config_dir

SIGNED = b"binary/cases-signed"
UNSIGNED_REFUSED = b"cases/unsigned-refused"
"""The marker encoding of a payload the worker will not read."""
KEY_FILE_VARIABLE = "CASES_COMMAND_KEY_FILE"


class NoCommandKey(RuntimeError):
    pass


def default_key_path() -> Path:
    return config_dir() / "command.key"


def command_key(*, create: bool = True) -> bytes:
    """The shared command key. With CASES_COMMAND_KEY_FILE set, that file must exist; unset,
    the per-user default is created (0600) when `create`."""
    configured = os.environ.get(KEY_FILE_VARIABLE, "").strip()
    path = Path(configured) if configured else default_key_path()
    if not path.exists():
        if configured or not create:
            raise NoCommandKey(f"no command key at {path}: set {KEY_FILE_VARIABLE} to the file "
                               "the API and the workers share (`cases keys command-key PATH` "
                               "makes one)")
        write_key(path)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise NoCommandKey(f"{path}: not a command key (64 hex digits)") from None
    if len(key) < 32:
        raise NoCommandKey(f"{path}: a command key is 32 bytes (64 hex digits)")
    return key


def write_key(path: Path) -> None:
    """A new random key at `path`, created readable by its owner only (never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32) + "\n")


class CommandSigningCodec(PayloadCodec):
    """Signs on encode; on decode, verifies (or, for auditors' replays, only unwraps)."""

    def __init__(self, key: bytes | None, *, verify: bool = True) -> None:
        if verify and key is None:
            raise ValueError("a verifying codec needs the key")
        self._key = key
        self._verify = verify

    def _mac(self, data: bytes) -> bytes:
        assert self._key is not None
        return hmac.new(self._key, data, hashlib.sha256).digest()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._key is None:
            return list(payloads)
        signed = []
        for payload in payloads:
            data = payload.SerializeToString()
            signed.append(Payload(metadata={"encoding": SIGNED, "signature": self._mac(data)},
                                  data=data))
        return signed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode(payload) for payload in payloads]

    def _decode(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != SIGNED:
            return _refused("it is not signed by the engine's API") if self._verify else payload
        if self._verify and not hmac.compare_digest(payload.metadata.get("signature", b""),
                                                    self._mac(payload.data)):
            return _refused("its signature does not match the engine's key")
        return Payload.FromString(payload.data)


def _refused(why: str) -> Payload:
    return Payload(metadata={"encoding": UNSIGNED_REFUSED}, data=why.encode())
