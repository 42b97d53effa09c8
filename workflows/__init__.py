"""Temporal workflows: orchestration only; a case's state is the fold of its own events."""
