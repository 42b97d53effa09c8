"""Errors of settings read from the environment, apart from the code that uses them: the
command line catches them without importing Temporal's SDK (a second of start-up) first."""

from __future__ import annotations


class TelemetryProblem(ValueError):
    """A telemetry setting that cannot be used; the message names its variable."""
