"""An operator's first day: a plain Temporal server prepared by `cases setup`, and workers that
wait for the database and Temporal instead of dying at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from domain.vocabulary import CaseKind
from eventstore import open_store
from runtime.binaries import temporal_cli
from tests.conftest import POSTGRES_URL, SIGNED, drop_schema, need_postgres, new_postgres_schema
from tests.support import register_council
from tests.tcp_proxy import CuttableProxy
from tests.test_cli_dev_server import COUNCIL, Shell, _stop, free_port, journey_args
from workflows.messages import workflow_id_for

BIN = Path(sys.executable).parent


@pytest_asyncio.fixture(scope="module")
async def plain_server() -> AsyncIterator[WorkflowEnvironment]:
    """`temporal server start-dev` as anyone runs it: no search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), data_converter=SIGNED, ui=False,
        dev_server_log_level="error")
    async with env:
        yield env


def _worker_lines(process: subprocess.Popen[str], wanted: str, timeout: float = 60) -> list[str]:
    """The worker's JSON log lines up to the first that holds `wanted`."""
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if wanted in line:
            return lines
    raise AssertionError(f"no {wanted!r} in the worker's log: {lines}")


async def test_a_plain_temporal_server_runs_a_whole_journey_after_cases_setup(
    plain_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    shell = Shell(plain_server, tmp_path / "cases.db", tmp_path / "home")
    shell.cases("db", "upgrade")
    refused = subprocess.run([str(BIN / "cases-worker")], env=shell.environ, text=True,
                             capture_output=True, timeout=120, check=False)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.count("\n") == 1 and "run `cases setup`" in refused.stderr
    assert "CaseStage" in refused.stderr and "Traceback" not in refused.stderr

    first = json.loads(shell.cases("setup", "--json").stdout)
    assert "CaseStage" in first["added"] and first["already_there"] == []
    assert "nothing changed" in shell.cases("setup").stdout  # safe to run again

    shell.add_user("officer", "siân.jones", "case_officer")
    shell.add_user("adviser", "raj.patel", "lga_adviser")
    shell.add_user("council", "sam.lee", "council", COUNCIL)
    worker, api = shell.start_worker(), shell.start_api()
    try:
        started = shell.cases("start", "--council", COUNCIL, "--kind",
                              "corporate_peer_challenge", "--reason", "Budget gap", "--json")
        case = json.loads(started.stdout)["state"]["case_id"]
        today = datetime.now(UTC).date().isoformat()
        for who, args in journey_args(case, today):
            shell.cases(*args, as_user="adviser" if args[0] == "approve" else who)
        assert json.loads(shell.cases("status", case, "--json").stdout
                          )["state"]["stage"] == "closed"
        listed = json.loads(shell.cases("list", "--all", "--council", COUNCIL, "--json").stdout)
        assert case in [row["case"] for row in listed] or listed == []  # visibility may lag
    finally:
        _stop(api)
        _stop(worker)


def test_a_worker_with_an_older_schema_refuses_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    open_store(f"sqlite:///{database}").dispose()
    environ = {**os.environ, "CASES_DATABASE_URL": f"sqlite:///{database}",
               "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    subprocess.run([str(BIN / "cases"), "db", "upgrade"], env=environ, check=True,
                   capture_output=True, timeout=60)
    store = open_store(f"sqlite:///{database}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0006'")
    store.dispose()
    done = subprocess.run([str(BIN / "cases-worker")], env=environ, text=True,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "at migration 0006" in done.stderr and "cases db upgrade" in done.stderr
    current = subprocess.run([str(BIN / "cases"), "db", "current"], env=environ, text=True,
                             capture_output=True, timeout=60, check=False)
    assert current.returncode == 1 and "run `cases db upgrade`" in current.stdout


def test_a_worker_started_while_temporal_is_down_waits_and_says_so(tmp_path: Path) -> None:
    database = tmp_path / "cases.db"
    store = open_store(f"sqlite:///{database}")
    store.migrate()
    store.dispose()
    silent = free_port()
    worker = subprocess.Popen(
        [str(BIN / "cases-worker"), "--log-format", "json"], text=True,
        env={**os.environ, "CASES_DATABASE_URL": f"sqlite:///{database}",
             "TEMPORAL_ADDRESS": f"127.0.0.1:{silent}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        lines = _worker_lines(worker, '"attempt": 2')
        waiting = [json.loads(line) for line in lines if "waiting for Temporal" in line]
        assert [w["attempt"] for w in waiting] == [1, 2]
        assert f"127.0.0.1:{silent}" in waiting[0]["reason"]
        assert not any("tonic" in line or "Traceback" in line for line in lines)
        assert worker.poll() is None  # still waiting, not dead
    finally:
        _stop(worker)


@pytest.mark.postgres
async def test_a_worker_started_while_the_database_is_down_serves_once_it_is_back(
    dev_server_env: WorkflowEnvironment,
) -> None:
    need_postgres()
    url = make_url(POSTGRES_URL)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    schema = new_postgres_schema("down")
    behind = url.set(host="127.0.0.1", port=proxy.port, query={
        "options": f"-csearch_path={schema}", "connect_timeout": "2"})
    store = open_store(behind.render_as_string(False))
    store.migrate()
    register_council(store, "E06000011")
    proxy.cut()
    task_queue = f"db-down-{schema}"
    worker = subprocess.Popen(
        [str(BIN / "cases-worker"), "--log-format", "json", "--task-queue", task_queue],
        text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "CASES_DATABASE_URL": behind.render_as_string(False),
             "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host})
    try:
        lines = _worker_lines(worker, '"attempt": 2')
        assert sum("waiting for the database" in line for line in lines) == 2
        proxy.restore()
        _worker_lines(worker, "worker starting")
        cases = CaseClient(dev_server_env.client, task_queue=task_queue, store=store)
        view = await cases.start(council="E06000011", kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                 reason="Database came back", actor="officer:ops")
        assert view.state.version == 1
        await dev_server_env.client.get_workflow_handle(
            workflow_id_for(CaseKind.CORPORATE_PEER_CHALLENGE, "E06000011")).terminate()
    finally:
        _stop(worker)
        drop_schema(store, schema)
        proxy.stop()
