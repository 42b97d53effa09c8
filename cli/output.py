"""What every command shares: exit codes, and printing text or JSON that cannot play tricks on
the terminal it is printed to."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_TAMPERED = 3

_BIDI = "\u2028\u2029\u202a-\u202e\u2066-\u2069"
_HIDDEN_IN_A_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_HIDDEN_IN_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_HIDDEN_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")
"""What `json.dumps(ensure_ascii=False)` leaves as it is: DEL, the C1 controls (0x9b is a
terminal's one-byte CSI), the line separators and the bidirectional overrides."""
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(found: re.Match[str]) -> str:
    character = found.group()
    code = ord(character)
    return _NAMED.get(character) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: str, *, lines: bool = False) -> str:
    """`text` with every control character and bidirectional override written out as an escape
    (`\\x1b`, `\\r`, `\\u202e`): what the store holds may have been written by anyone with the
    database file, and an ESC would recolour the terminal, a CR overwrite the line, a U+202E
    reorder it. With `lines`, newlines and tabs stay (a whole message of several lines)."""
    return (_HIDDEN_IN_LINES if lines else _HIDDEN_IN_A_LINE).sub(_escape, text)


def as_json(data: Any) -> str:
    """JSON in which the characters a terminal acts on are escapes too (`\\u202e`, `\\u009b`):
    the same values once parsed, harmless when shown."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return _HIDDEN_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """JSON with `--json`, else the text a person reads; either way nothing in it can drive the
    terminal (renderers escape each field, newlines too; this is the net under them all)."""
    if getattr(args, "json", False):
        print(as_json(data))
    else:
        print(visible(text, lines=True))
