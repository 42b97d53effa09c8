"""The API's routes. Each translates a request into one call of the application layer, as
the signed-in user, and its answer (or refusal) into JSON."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.sessions import SessionMiddleware
from temporalio.client import Client
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from api.bodies import ActionBody, StartCase, command_for
from api.settings import ApiSettings
from application.cases import (
    ActionNotPermitted,
    ActionRefused,
    CaseClient,
    CaseNotFound,
    list_cases,
    read_case,
)
from application.history_import import MAX_BYTES as MAX_IMPORT_BYTES
from application.history_import import import_history
from application.notices import NoticeShown, case_notices
from application.stuck_cases import stuck_cases
from application.users import (
    NotSignedIn,
    User,
    check_password,
    issue_token,
    user_for_api_token,
    user_named,
)
from domain.actors import Role
from domain.history_import import HistoryRefused
from domain.permissions import MAY_IMPORT_HISTORY, NotPermitted, check_permitted
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore
from eventstore.projections import ProjectionBroken
from web.site import add_site
from workflows.messages import TASK_QUEUE, CaseView, council_of_case

log = structlog.get_logger("api")
T = TypeVar("T")

CASE_ID = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                              description="a case id, e.g. cpc-E06000001-2026")]
CSRF_HEADER = "X-CSRF-Token"
IDEMPOTENCY_KEY = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200,
    description="the client's own id for this request (up to 200 characters; a UUID will "
                "do): a retry with the same key answers as the first did, and records "
                "nothing new. Only its hash is kept, as the Temporal update's id.")]
ANSWER_WITHIN_SECONDS = 60.0
"""How long a request waits for its update before answering 503 (a database or Temporal
outage makes an accepted action wait, never fail): asked again with the same Idempotency-Key,
it waits for the same update, which Temporal records once."""


class StillWaiting(Exception):
    """The action is accepted or on its way but not yet recorded: 503, ask again with the same
    Idempotency-Key."""


def request_id(user: User, key: str | None) -> str | None:
    """The update id a client's Idempotency-Key becomes: the user's own, so that two users'
    keys never meet, and never the key itself (it may be a client's secret-looking value)."""
    if key is None:
        return None
    return "request-" + hashlib.sha256(f"{user.name}\n{key}".encode()).hexdigest()[:40]


async def _answer_within(awaited: Awaitable[T], key: str | None) -> T:
    try:
        return await asyncio.wait_for(awaited, ANSWER_WITHIN_SECONDS)
    except TimeoutError:
        raise StillWaiting(
            "the engine has not recorded it yet (its database or Temporal may be slow or down); "
            + ("ask again with the same Idempotency-Key: it is recorded once"
               if key else "check the case before trying again, or send an Idempotency-Key so "
                           "that a retry is recorded once")) from None


class Problem(Exception):
    """A refusal with its HTTP status: the message says what happened and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Engine:
    """What the API works with: the store, and a Temporal client that signs commands."""

    store: EventStore
    temporal: Client
    task_queue: str = TASK_QUEUE

    @property
    def cases(self) -> CaseClient:
        return CaseClient(self.temporal, store=self.store, task_queue=self.task_queue)


class WhoAmI(BaseModel):
    name: str
    role: Role
    council: str | None
    actor: str = Field(description="how this user's acts are recorded")
    signed_in_by: str
    csrf_token: str | None = Field(
        default=None, description=f"for a cookie session: send it as {CSRF_HEADER} on POSTs")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1000)


class TokenRequest(SignIn):
    label: str = Field(default="cases login", max_length=200)


class IssuedToken(BaseModel):
    token: str = Field(description="shown once; keep it secret")
    name: str
    role: Role


class CaseRow(BaseModel):
    case: str
    council: str
    kind: str
    stage: str
    next_deadline: datetime | None
    escalation_level: int
    status: str
    problem: str | None = Field(
        default=None, description="set when the case is open but its workflow has ended")


class ProblemBody(BaseModel):
    detail: str


class ImportProblems(BaseModel):
    detail: str
    problems: list[str]


class ImportAnswer(BaseModel):
    """What an import wrote: the cases by id."""

    file_sha256: str
    rows: int
    imported: list[str]
    already: list[str]
    under_way: list[str]
    not_started: list[str]


PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemBody, "description": words} for status, words in (
        (401, "not signed in"), (403, "the role table refuses"), (404, "no such case"),
        (400, "the body could not be read"), (409, "the case's rules refuse; nothing was "
                                                  "recorded"),
        (422, "bad input, named by field; nothing was recorded"), (429, "too many sign-ins"),
        (503, "Temporal or the database cannot be reached; try again"))}


BEARER = HTTPBearer(auto_error=False, description="an API token (`cases users add` prints "
                                                 "one; `POST /api/tokens` issues one)")


async def signed_in(request: Request,
                    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
                    ) -> User:
    """The user behind a bearer token, or behind the session cookie (whose unsafe requests
    must also carry the session's CSRF token). A coroutine on purpose: the lookup is one
    indexed SELECT, cheaper on the loop than a hop to the thread pool and back on every
    request (BENCHMARKS.md, the API journey)."""
    engine: Engine = request.app.state.engine
    if bearer is not None:
        return user_for_api_token(engine.store, bearer.credentials.strip())
    if request.headers.get("authorization") is not None:
        raise NotSignedIn("not signed in: send `Authorization: Bearer TOKEN`")
    name = request.session.get("user")
    if not isinstance(name, str):
        raise NotSignedIn("not signed in: send an API token, or sign in")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not secrets.compare_digest(
            request.headers.get(CSRF_HEADER, ""), str(request.session.get("csrf", ""))):
        raise Problem(403, f"refused: a signed-in page must send its {CSRF_HEADER}")
    return user_named(engine.store, name, str(request.session.get("by", "session")))


SignedIn = Annotated[User, Depends(signed_in)]
"""A route's signed-in user (401 without one)."""


async def _only_known_query(request: Request) -> None:
    """Refuse a query parameter the route does not take, naming it, rather than ignore it: a
    misspelt filter (`?councl=…`) would otherwise answer as if no filter had been asked for.
    The API's own addresses only: a sign-in callback takes what the identity provider sends.
    A coroutine, as `signed_in` is: a plain function would cost every request a hop to the
    thread pool and back."""
    if not request.url.path.startswith("/api/"):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    taken: set[str] = set()
    waiting = [dependant] if dependant is not None else []
    while waiting:  # the route's own query parameters and its dependencies'
        each = waiting.pop()
        taken |= {p.alias for p in each.query_params}
        waiting += each.dependencies
    unknown = sorted(set(request.query_params.keys()) - taken)
    if unknown:
        raise Problem(422, f"refused: this address takes no query parameter {unknown[0]!r}"
                           + (f"; it takes {', '.join(sorted(taken))}" if taken else ""))


def _who(user: User, csrf: str | None = None) -> WhoAmI:
    return WhoAmI(name=user.name, role=user.role, council=user.principal.council,
                  actor=user.actor, signed_in_by=user.signed_in_by, csrf_token=csrf)


def create_app(engine: Engine, settings: ApiSettings) -> FastAPI:
    app = FastAPI(title="Improvement cases", version="1",
                  dependencies=[Depends(_only_known_query)],
                  description="Start, act on and read the LGA's improvement cases.",
                  openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)
    app.add_middleware(SessionMiddleware, secret_key=settings.session_secret.hex(),
                       session_cookie="cases_session", max_age=settings.session_seconds,
                       same_site="lax", https_only=settings.secure_cookies)
    app.state.engine = engine
    limiter = MovingWindowRateLimiter(MemoryStorage())
    sign_in_rate = parse(settings.sign_in_rate)
    _handle_problems(app)
    add_site(app, engine, settings)
    if settings.oidc is not None:
        from api.oidc import oidc_router  # authlib only where OpenID Connect is configured

        app.include_router(oidc_router(settings.oidc))

    def throttle(request: Request, name: str) -> None:
        where = request.client.host if request.client else "unknown"
        for key in (f"name:{name}", f"address:{where}"):
            if not limiter.hit(sign_in_rate, "sign-in", key):
                raise Problem(429, "too many sign-ins: wait a minute, then try again")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/whoami", responses=PROBLEMS)
    def whoami(user: SignedIn, request: Request) -> WhoAmI:
        csrf = request.session.get("csrf") if user.signed_in_by != "token" else None
        return _who(user, csrf)

    @app.post("/api/session", responses=PROBLEMS)
    def sign_in(body: SignIn, request: Request) -> WhoAmI:
        """Sign in with a local account: a session cookie, with its CSRF token."""
        throttle(request, body.name)
        user = check_password(engine.store, body.name, body.password)
        request.session.clear()
        csrf = secrets.token_urlsafe(32)
        request.session.update({"user": user.name, "by": "password", "csrf": csrf})
        log.info("signed in", user=user.name, role=user.role, by="password")
        return _who(user, csrf)

    @app.delete("/api/session", status_code=204)
    def sign_out(request: Request) -> Response:
        request.session.clear()
        return Response(status_code=204)

    @app.post("/api/tokens", status_code=201, responses=PROBLEMS)
    def new_token(body: TokenRequest, request: Request) -> IssuedToken:
        """Sign in with a local account and get an API token (what `cases login` keeps)."""
        throttle(request, body.name)
        user = check_password(engine.store, body.name, body.password)
        token = issue_token(engine.store, user, body.label)
        log.info("token issued", user=user.name, role=user.role)
        return IssuedToken(token=token, name=user.name, role=user.role)

    @app.post("/api/cases", status_code=201, responses=PROBLEMS, response_model=CaseView)
    async def start_case(body: StartCase, user: SignedIn,
                         idempotency_key: IDEMPOTENCY_KEY = None) -> Response:
        """Open a case for a council (case officers and LGA advisers)."""
        view = await _answer_within(engine.cases.start(
            council=body.council, kind=body.kind, reason=body.reason, actor=user.actor,
            scope=body.scope, budget_gap_pence=body.budget_gap_pence,
            deadline_policy=body.deadline_policy, requested_on=body.requested_on,
            request_id=request_id(user, idempotency_key)), idempotency_key)
        log.info("case started", case_id=view.state.case_id, actor=user.actor)
        return _case_json(view, status=201)

    @app.post("/api/imports/history", status_code=201, responses={**PROBLEMS, 422: {
        "model": ImportProblems, "description": "the file is refused whole: every problem"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string", "maxLength": MAX_IMPORT_BYTES}}}}})
    async def import_past_challenges(request: Request, user: SignedIn) -> ImportAnswer:
        """Import past peer challenges from a CSV file (the request's body), whole or not at
        all (case officers and LGA advisers): see `cases import-history --help`."""
        if user.role not in MAY_IMPORT_HISTORY:
            raise Problem(403, f"cannot import past peer challenges: only a case officer or an "
                               f"LGA principal adviser may, not {user.actor}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
            raise Problem(413, f"the file is over {MAX_IMPORT_BYTES} bytes; split it (nothing "
                               "was imported)")
        data = await request.body()
        try:
            done = await import_history(engine.store, engine.temporal, data, actor=user.actor,
                                        task_queue=engine.task_queue)
        except HistoryRefused as refused:
            return JSONResponse(  # type: ignore[return-value]
                status_code=422, content={"detail": str(refused),
                                          "problems": [str(p) for p in refused.problems]})
        log.info("past peer challenges imported", file_sha256=done.file_sha256,
                 imported=len(done.imported), actor=user.actor)
        return ImportAnswer(**vars(done))

    @app.get("/api/cases", responses=PROBLEMS)
    async def cases(user: SignedIn, stage: Stage | None = None,
                    council: Annotated[str | None, Query(pattern=r"^[EKNSW][0-9]{8}$")] = None,
                    kind: CaseKind | None = None, escalated: bool = False,
                    include_ended: bool = False) -> list[CaseRow]:
        """Open cases (ended ones too with include_ended), soonest deadline first. A council
        user sees their own council's cases only."""
        if user.role == Role.COUNCIL:
            if council not in (None, user.principal.council):
                return []
            council = user.principal.council
        rows = await asyncio.to_thread(list_cases, engine.store, stage=stage, council=council,
                                       kind=kind, escalated=escalated,
                                       include_ended=include_ended)
        stuck = {case.case_id: case for case in await stuck_cases(engine.temporal, engine.store)
                 if council in (None, council_of_case(case.case_id))}
        for row in rows:
            if row["case"] in stuck:
                row["problem"] = str(stuck.pop(row["case"]))
        rows += [{"case": case.case_id, "council": council_of_case(case.case_id) or "",
                  "kind": "", "stage": "", "next_deadline": None, "escalation_level": 0,
                  "status": case.workflow_status, "problem": str(case)}
                 for case in stuck.values()
                 if stage is None and kind is None and not escalated]
        return [CaseRow.model_validate(row) for row in rows]

    @app.get("/api/cases/{case_id}", responses=PROBLEMS, response_model=CaseView)
    async def case(case_id: CASE_ID, user: SignedIn) -> Response:
        """The case as it stands: stage, dates, deadlines, team, what waits for approval."""
        _may_see(user, case_id)
        view, _ = await read_case(engine.cases, case_id)
        return _case_json(view)

    @app.get("/api/cases/{case_id}/notices", responses=PROBLEMS)
    async def notices(case_id: CASE_ID, user: SignedIn) -> list[NoticeShown]:
        """Who was told what about the case, and when: each notice with its delivery (sent,
        undeliverable and who stood in, failed, or still pending)."""
        _may_see(user, case_id)
        return await run_in_threadpool(case_notices, engine.store, case_id,
                                       lga_addresses=user.role != Role.COUNCIL)

    @app.post("/api/cases/{case_id}/actions", responses=PROBLEMS, response_model=CaseView)
    async def act(case_id: CASE_ID, body: ActionBody, user: SignedIn,
                  idempotency_key: IDEMPOTENCY_KEY = None) -> Response:
        """Record one action on the case, as the signed-in user. Refused with 403 when the
        user's role may not, 409 when the case's rules refuse; nothing is recorded then."""
        _may_see(user, case_id)
        command = command_for(body, user.actor, case_id)
        try:
            check_permitted(command, council_of_case(case_id))
        except NotPermitted as refused:
            raise ActionNotPermitted(f"case {case_id}: {refused}") from None
        view = await _answer_within(  # the workflow checks it again
            engine.cases.act(case_id, command, request_id(user, idempotency_key)),
            idempotency_key)
        log.info("case action", case_id=case_id, action=body.action, actor=user.actor,
                 version=view.state.version)
        return _case_json(view)

    return app


def _case_json(view: CaseView, status: int = 200) -> Response:
    """A case as its JSON, serialised once: the model is ours and already valid, so FastAPI's
    second validation of the answer (a whole case, on every action) is skipped. The route
    still names CaseView as its response model, for the OpenAPI document."""
    return Response(view.model_dump_json(), status_code=status, media_type="application/json")


def _may_see(user: User, case_id: str) -> None:
    """A council user sees their own council's cases only: another's is not there for them."""
    if user.role == Role.COUNCIL and council_of_case(case_id) != user.principal.council:
        raise CaseNotFound(f"no case {case_id} for council {user.principal.council}")


def _handle_problems(app: FastAPI) -> None:
    def answer(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status, headers=headers or None)

    async def problem(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, NotSignedIn):
            return answer(401, str(error), **{"WWW-Authenticate": "Bearer"})
        if isinstance(error, Problem):
            return answer(error.status, str(error))
        if isinstance(error, ActionNotPermitted):
            return answer(403, str(error))
        if isinstance(error, CaseNotFound):
            return answer(404, str(error))
        if isinstance(error, ActionRefused):
            return answer(409, str(error))
        if isinstance(error, StillWaiting):
            return answer(503, str(error), **{"Retry-After": "5"})
        if isinstance(error, ProjectionBroken):  # an operator's to mend, not a moment's
            return answer(503, str(error))
        log.warning("unavailable", error=str(error).splitlines()[0] if str(error) else "",
                    failure=type(error).__name__)
        return answer(503, "the engine cannot reach Temporal or its database just now; try "
                           "again (nothing was recorded unless the case shows it)")

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = []
        for item in error.errors():
            if item.get("type") == "json_invalid":
                problems.append("the body is not valid JSON")
                continue
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            problems.append(f"{where or 'input'}: {item.get('msg', 'invalid')}")
        return answer(422, "; ".join(problems) + " (nothing was recorded)")

    # The engine's transient failures (Temporal, the database) answer 503 here, without a
    # traceback in the log; anything else too, through Starlette's last-resort handler.
    for error_type in (NotSignedIn, Problem, ActionRefused, StillWaiting, RPCError,
                       TemporalError, RuntimeError, SQLAlchemyError, OSError, Exception):
        app.add_exception_handler(error_type, problem)
    app.add_exception_handler(RequestValidationError, invalid)
