"""Thin Temporal activities over the event store; the workflow's only way to touch I/O."""
