"""What every command shares: exit codes and printing text or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_TAMPERED = 3


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """JSON with `--json`, else the text a person reads."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print(text)
