"""The API checked against its own OpenAPI document by schemathesis: every operation, with
well-formed and malformed requests, as a signed-in case officer. No 5xx; every status, header
and body the document promises; schema-valid requests not refused as invalid, invalid ones
refused; every refusal a 4xx whose JSON says why in `detail`.

Real Temporal and a real store. Schemathesis sends its requests through its own ASGI client,
which runs the app on an event loop of its own, in another thread; the test waits for it off
the session's loop, so the worker (on that loop) keeps serving the cases the requests open.
Every case a request opens is ended with the test: the time-skipping server cannot skip time
while a workflow waits on a task queue whose worker is gone.

The case list (GET /api/cases) reads Temporal's visibility, which the time-skipping server
does not implement (it answers every list with UNIMPLEMENTED, and the API with 503): that one
operation runs against the dev server instead."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import CheckContext, CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import Engine, create_app
from api.settings import ApiSettings
from application.cases import CaseClient
from application.users import add_user
from domain.actors import Role
from domain.commands import ScopeCase
from domain.vocabulary import CaseKind, VisitMode
from eventstore import EventStore
from tests.conftest import CaseWorld, TrackingCaseClient
from tests.support import TEST_POLICIES
from worker import build_worker
from workflows.messages import workflow_id_for_case

COUNCIL = "E09000008"  # Croydon, built in
OFFICER = "siân.jones"
PASSWORD = "correct horse battery"
MAX_EXAMPLES = 25
"""Per operation and test: enough to find what is there, bounded for CI."""

LISTING = ("GET", "/api/cases")
OPERATIONS = [
    ("GET", "/api/whoami"),
    ("POST", "/api/session"),
    ("DELETE", "/api/session"),
    ("POST", "/api/tokens"),
    ("POST", "/api/cases"),
    ("GET", "/api/cases/{case_id}"),
    ("POST", "/api/cases/{case_id}/actions"),
    ("GET", "/api/cases/{case_id}/notices"),
    ("POST", "/api/imports/history"),
]
"""Every operation of the document but the list (a test fails when one is added, unlisted)."""


def refusal_says_why(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A 4xx is JSON with a non-empty `detail` string: what happened and what to do."""
    if 400 <= response.status_code < 500:
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(
                f"{response.status_code} is not JSON: {response.text[:200]!r}") from None
        detail = body.get("detail") if isinstance(body, dict) else None
        assert isinstance(detail, str) and detail.strip(), (
            f"{response.status_code} without a `detail` message: {response.text[:300]!r}")
    return None


CHECKS: list[CheckFunction] = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_headers_conformance, response_schema_conformance, negative_data_rejection,
    positive_data_acceptance, refusal_says_why]
FILE_CHECKS = [check for check in CHECKS if check is not positive_data_acceptance]
"""For an uploaded file: its schema is "a CSV text", which no schema can say more of (the
columns, dates in order, councils in the register), so a schema-valid file the rules refuse
answers 422 with every problem, and that is right."""
FILE_UPLOADS = {"/api/imports/history"}


def api_for(store: EventStore, client: Client, task_queue: str) -> Any:
    return create_app(Engine(store=store, temporal=client, task_queue=task_queue),
                      ApiSettings(session_secret=b"k" * 32, secure_cookies=False,
                                  sign_in_rate="3/minute"))


@dataclass
class Target:
    """The API as schemathesis sees it: its document, an officer's token, an open case."""

    schema: OpenApiSchema
    aimed: OpenApiSchema
    """The document the requests aimed at the open case are drawn from (the served one)."""
    token: str
    case_id: str
    """An open (scoped) case, so some requests reach a real case rather than a 404."""
    opened: list[str] = field(default_factory=list)
    """Workflows the requests opened: ended with the test."""

    def note_opened(self, case: Case[Any], response: Response) -> None:
        if (case.method.upper(), case.path) == ("POST", "/api/cases") and (
                response.status_code == 201):
            self.opened.append(workflow_id_for_case(response.json()["state"]["case_id"]))


async def open_scoped_case(cases: CaseClient) -> str:
    view = await cases.start(council=COUNCIL, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                             reason="A case to aim requests at", actor=f"case_officer:{OFFICER}",
                             scope=["finance"])
    case_id = view.state.case_id
    await cases.act(case_id, ScopeCase(actor=f"case_officer:{OFFICER}", scope=["finance"],
                                       visit_mode=VisitMode.ON_SITE))
    return case_id


async def end(client: Client, workflow_ids: list[str]) -> None:
    for workflow_id in workflow_ids:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("test over")


def load(app: Any, token: str, case_id: str, opened: list[str]) -> Target:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    return Target(schema=schema, aimed=schema, token=token, case_id=case_id, opened=opened)


def users(store: EventStore) -> str:
    """The officer the requests are sent as (its token), and a council user with a password,
    so the sign-in routes have accounts behind them."""
    add_user(store, "sam.lee", Role.COUNCIL, COUNCIL, password=PASSWORD)
    return add_user(store, OFFICER, Role.CASE_OFFICER, password=PASSWORD)


@pytest_asyncio.fixture
async def target(case_world: CaseWorld) -> AsyncIterator[Target]:
    """The API over the time-skipping server and the fixture's worker."""
    token = users(case_world.store)
    app = api_for(case_world.store, case_world.env.client, case_world.task_queue)
    case_id = await open_scoped_case(case_world.cases)
    assert isinstance(case_world.cases, TrackingCaseClient)
    yield load(app, token, case_id, case_world.cases.started)  # the fixture ends them


@pytest_asyncio.fixture
async def listing_target(dev_server_env: WorkflowEnvironment,
                         sqlite_store: EventStore) -> AsyncIterator[Target]:
    """The API over the dev server (which has visibility), with a worker and one open case."""
    client = dev_server_env.client
    task_queue = f"schema-{uuid.uuid4().hex[:8]}"
    token = users(sqlite_store)
    app = api_for(sqlite_store, client, task_queue)
    async with build_worker(client, sqlite_store, task_queue, policies=TEST_POLICIES):
        case_id = await open_scoped_case(CaseClient(client, store=sqlite_store,
                                                    task_queue=task_queue))
        listed = load(app, token, case_id, [workflow_id_for_case(case_id)])
        try:
            yield listed
        finally:
            await end(client, listed.opened)


def requests_for(target: Target, method: str, path: str) -> st.SearchStrategy[Case[Any]]:
    """Well-formed and malformed requests; on a case's URL, some aimed at the open case."""
    operation = target.schema[path][method]
    strategies = [operation.as_strategy(generation_mode=mode)
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    if "{case_id}" in path:
        strategies.append(target.aimed[path][method].as_strategy(
            path_parameters={"case_id": target.case_id}))
    return st.one_of(strategies)


async def check_operation(target: Target, method: str, path: str) -> None:
    """Hypothesis draws the requests and schemathesis sends and checks them, on a thread of
    their own: the session's event loop stays free to run the worker. Derandomized: the same
    requests every run, so that a rare draw (a mutation the test's own Authorization header
    then undoes) cannot fail one CI run in many."""
    headers = {"Authorization": f"Bearer {target.token}"}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(case=requests_for(target, method, path))
    def check(case: Case[Any]) -> None:
        response = case.call(headers=headers)
        target.note_opened(case, response)
        checks = FILE_CHECKS if path in FILE_UPLOADS else CHECKS
        case.validate_response(response, checks=checks, headers=headers)

    run: Callable[[], None] = check
    await asyncio.to_thread(run)


def test_every_operation_of_the_document_is_checked() -> None:
    app = create_app(Engine(store=cast(Any, None), temporal=cast(Any, None)),
                     ApiSettings(session_secret=b"k" * 32))  # the document alone
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    documented = sorted((method.upper(), path) for path, item in paths.items() for method in item)
    assert documented == sorted([*OPERATIONS, LISTING])


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_the_api_keeps_to_its_openapi_document(
        target: Target, method: str, path: str) -> None:
    await check_operation(target, method, path)


async def test_the_case_list_keeps_to_its_openapi_document(listing_target: Target) -> None:
    await check_operation(listing_target, *LISTING)
