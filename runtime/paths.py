"""Where the engine keeps a user's files: light to import (every command asks)."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/cases`, else `~/.config/cases`: the command key, kept credentials."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cases"
