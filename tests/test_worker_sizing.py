"""The worker's sizing comes from the environment, and a bad value is refused by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worker import DEFAULT_MAX_CACHED_WORKFLOWS, WorkerSizing


def test_defaults_keep_more_cases_cached_than_the_sdk_does() -> None:
    """The SDK caches 1,000 workflows; 2,000 open cases lapsing together then took minutes."""
    sizing = WorkerSizing.from_environment({})
    assert sizing.max_cached_workflows == DEFAULT_MAX_CACHED_WORKFLOWS >= 2_500


def test_the_environment_sets_both() -> None:
    sizing = WorkerSizing.from_environment({"CASES_MAX_CACHED_WORKFLOWS": "20_000",
                                            "CASES_WORKFLOW_TASK_POLLERS": " 12 "})
    assert sizing == WorkerSizing(max_cached_workflows=20_000, workflow_task_pollers=12)


@pytest.mark.parametrize("value", ["0", "-3", "lots", "1.5"])
def test_a_bad_value_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match=f"CASES_MAX_CACHED_WORKFLOWS={value!r}"):
        WorkerSizing.from_environment({"CASES_MAX_CACHED_WORKFLOWS": value})


def test_the_worker_refuses_to_start_with_a_bad_value() -> None:
    """Exit 2 with the variable named, before connecting to anything."""
    done = subprocess.run([sys.executable, "-c", "import worker; worker.main([])"],
                          env={"CASES_WORKFLOW_TASK_POLLERS": "none", "PATH": "/usr/bin",
                               "PYTHONDONTWRITEBYTECODE": "1"},
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 2
    assert "CASES_WORKFLOW_TASK_POLLERS='none'" in done.stderr
