"""Leaving a process that holds a Temporal client."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Exit without interpreter teardown: the Temporal client's Rust threads can abort a
    finalising interpreter (SIGABRT, "PyGILState_Release … must be current"; temporalio
    sdk-python issue 300). Everything is flushed first; nothing else is left to clean up."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
