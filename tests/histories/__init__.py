"""Recorded case workflow histories, replayed by tests/test_workflow_replay.py."""
