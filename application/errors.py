"""The application's refusals, light to import (the command line catches them on every run)."""

from __future__ import annotations


class ActionRefused(Exception):
    """The case refused the action; nothing was recorded. The message says what to do."""


class ActionNotPermitted(ActionRefused):
    """The role table refused: the user's role may not do this, or not on this case."""


class CaseNotFound(ActionRefused):
    """No such case (or not one the user may see)."""
