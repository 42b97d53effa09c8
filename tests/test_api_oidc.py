"""Sign-in through OpenID Connect as its users meet it, against a real (small) identity
provider on 127.0.0.1 that authlib reaches over HTTP: discovery, keys, the authorization
code flow with PKCE and a nonce, a signed ID token. The provider proves who someone is; only a
user our table knows, and has not revoked, gets a session, with the role our table gives."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx
import pytest
import pytest_asyncio
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from api.app import CSRF_HEADER, Engine, create_app
from api.settings import ApiSettings, OidcSettings
from application.users import add_user, revoke
from domain.actors import Role
from tests.conftest import CaseWorld, TrackingCaseClient

CLIENT_ID = "cases-web"
CLIENT_SECRET = "s3cret-" + secrets.token_urlsafe(16)
API = "http://api.test"
COUNCIL = "E09000008"  # Croydon, built in
AMINA = "amina.shah@croydon.example"
PASSWORD = "correct horse battery"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], key: rsa.RSAPrivateKey | None, kid: str) -> str:
    """A compact JWS made by hand, so the provider shares no code with what checks it."""
    header = {"alg": "RS256" if key else "none", "typ": "JWT", "kid": kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": _b64(n), "e": _b64(e)}


@dataclass
class Provider:
    """What a production identity provider does for the code flow, with knobs a test turns:
    who signs in next, what the ID token says, and how it is signed."""

    issuer: str = ""
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    kid: str = "k1"
    person: dict[str, Any] = field(default_factory=dict)
    """Claims about whoever signs in next (sub, email, ...)."""
    tamper: dict[str, Any] = field(default_factory=dict)
    """Claims to change in the next ID token (None removes one)."""
    sign_with: rsa.RSAPrivateKey | None = None
    unsigned: bool = False
    authorizations: list[dict[str, str]] = field(default_factory=list)
    token_requests: int = 0
    issued: list[str] = field(default_factory=list)
    """Every access and ID token handed out: none may ever reach a response or a log."""
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reset(self) -> None:
        self.person = {"sub": "idp-user-1", "email": AMINA, "email_verified": True,
                       "name": "Amina Shah", "roles": ["admin"]}  # roles: never read by us
        self.tamper, self.sign_with, self.unsigned = {}, None, False
        self.authorizations.clear()
        self.issued.clear()
        self.token_requests = 0

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
        ])

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [_public_jwk(self.key, self.kid)]})

    async def authorize(self, request: Request) -> Response:
        """The user consents at once; the code remembers the nonce and PKCE challenge."""
        query = dict(request.query_params)
        self.authorizations.append(query)
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"query": query, "person": dict(self.person)}
        back = {"code": code, "state": query.get("state", "")}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", status_code=302)

    async def token(self, request: Request) -> Response:
        """Checks the client's secret, the code (once), the redirect URI and the PKCE
        verifier, then signs the ID token."""
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        client = base64.b64decode(credentials).decode() if scheme == "Basic" else ":"
        client_id, _, secret = (unquote(part) for part in client.partition(":"))
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        granted = self._codes.pop(form.get("code", ""), None)
        if granted is None or form.get("redirect_uri") != granted["query"]["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        challenge = _b64(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
        if granted["query"].get("code_challenge") != challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": granted["query"].get("nonce"), **granted["person"]}
        for name, value in self.tamper.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        id_token = _jwt(claims, None if self.unsigned else self.sign_with or self.key, self.kid)
        access_token = secrets.token_urlsafe(24)
        self.issued += [id_token, access_token]
        return JSONResponse({"access_token": access_token, "token_type": "Bearer",
                             "expires_in": 300, "id_token": id_token})


@pytest.fixture(scope="module")
def provider_server() -> Iterator[Provider]:
    """The provider under uvicorn in a thread, on a port of its own on 127.0.0.1."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    provider = Provider(issuer=f"http://127.0.0.1:{listening.getsockname()[1]}")
    server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test identity provider did not start"
        time.sleep(0.01)
    yield provider
    server.should_exit = True
    thread.join(timeout=10)
    listening.close()


@pytest.fixture
def idp(provider_server: Provider) -> Provider:
    provider_server.reset()
    return provider_server


@dataclass
class Api:
    http: httpx.AsyncClient
    world: CaseWorld

    async def whoami(self) -> httpx.Response:
        return await self.http.get("/api/whoami")


def _app(world: CaseWorld, issuer: str | None) -> Any:
    oidc = None if issuer is None else OidcSettings(
        issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return create_app(Engine(store=world.store, temporal=world.env.client,
                             task_queue=world.task_queue),
                      ApiSettings(session_secret=b"k" * 32, secure_cookies=False, oidc=oidc))


@pytest_asyncio.fixture
async def api(case_world: CaseWorld, idp: Provider) -> AsyncIterator[Api]:
    add_user(case_world.store, AMINA, Role.COUNCIL, COUNCIL)
    add_user(case_world.store, "siân.jones", Role.CASE_OFFICER, password=PASSWORD)
    transport = httpx.ASGITransport(app=_app(case_world, idp.issuer))
    async with httpx.AsyncClient(transport=transport, base_url=API) as http:
        yield Api(http=http, world=case_world)


async def at_provider(api: Api) -> str:
    """Our login, then the provider's consent page: the callback URL it sends the browser to."""
    login = await api.http.get("/auth/oidc/login")
    assert login.status_code == 302, login.text
    async with httpx.AsyncClient() as browser:  # the provider is a real server: real HTTP
        consent = await browser.get(login.headers["location"])
    assert consent.status_code == 302, consent.text
    callback: str = consent.headers["location"]
    assert callback.startswith(f"{API}/auth/oidc/callback?")
    return callback


async def sign_in(api: Api) -> httpx.Response:
    return await api.http.get(await at_provider(api))


async def assert_refused(api: Api, answer: httpx.Response, words: str) -> None:
    """401 with one line saying why, and nobody signed in in this browser afterwards."""
    assert answer.status_code == 401, answer.text
    detail = answer.json()["detail"]
    assert words in detail and "\n" not in detail
    assert "cases_session" not in api.http.cookies
    assert (await api.whoami()).status_code == 401


async def test_a_provisioned_user_signs_in_with_the_role_our_table_gives(
        api: Api, idp: Provider) -> None:
    with capture_logs() as logs:
        answer = await sign_in(api)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    me = (await api.whoami()).json()
    assert (me["name"], me["role"], me["signed_in_by"]) == (AMINA, "council", "oidc")
    assert me["actor"] == f"council:{COUNCIL}:{AMINA}" and me["csrf_token"]
    [asked] = idp.authorizations
    assert asked["scope"] == "openid email profile" and asked["nonce"]
    assert asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == f"{API}/auth/oidc/callback"
    assert [(e["event"], e["user"], e["role"]) for e in logs if e["event"] == "signed in"] == [
        ("signed in", AMINA, Role.COUNCIL)]
    seen = json.dumps([str(e) for e in logs]) + answer.text + json.dumps(me)
    assert idp.issued and not any(token in seen for token in idp.issued)


async def test_an_identity_with_no_account_here_is_refused(api: Api, idp: Provider) -> None:
    idp.person["email"] = "someone.else@croydon.example"
    await assert_refused(api, await sign_in(api), "no account here")


async def test_a_revoked_user_is_refused(api: Api, idp: Provider) -> None:
    revoke(api.world.store, AMINA)
    await assert_refused(api, await sign_in(api), "revoked")


async def test_an_email_the_provider_has_not_verified_is_refused(
        api: Api, idp: Provider) -> None:
    idp.person["email_verified"] = False
    await assert_refused(api, await sign_in(api), "not verified")


@pytest.mark.parametrize("tamper", [
    pytest.param({"aud": "another-app"}, id="wrong-audience"),
    pytest.param({"aud": "another-app", "azp": CLIENT_ID}, id="wrong-audience-our-azp"),
    pytest.param({"iss": "http://127.0.0.1:1"}, id="wrong-issuer"),
    pytest.param({"nonce": "replayed"}, id="wrong-nonce"),
    pytest.param({"nonce": None}, id="no-nonce"),
    pytest.param({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
                 id="expired"),
    pytest.param({"sign_with": "another key"}, id="bad-signature"),
    pytest.param({"unsigned": True}, id="alg-none"),
])
async def test_an_id_token_that_does_not_validate_signs_nobody_in(
        api: Api, idp: Provider, tamper: dict[str, Any]) -> None:
    if tamper.pop("sign_with", None):
        idp.sign_with = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    idp.unsigned = bool(tamper.pop("unsigned", False))
    idp.tamper = tamper
    await assert_refused(api, await sign_in(api), "ID token did not validate")


async def test_a_tampered_state_is_refused_and_the_code_never_spent(
        api: Api, idp: Provider) -> None:
    callback = urlsplit(await at_provider(api))
    query = parse_qs(callback.query)
    query["state"] = [query["state"][0][:-2] + "xx"]
    forged = f"{API}{callback.path}?{urlencode({k: v[0] for k, v in query.items()})}"
    await assert_refused(api, await api.http.get(forged), "not started in this browser")
    assert idp.token_requests == 0


async def test_a_callback_from_another_browser_is_refused(api: Api, idp: Provider) -> None:
    """Login CSRF: an attacker's own code and state, replayed into a victim's browser."""
    callback = await at_provider(api)
    api.http.cookies.clear()
    await assert_refused(api, await api.http.get(callback), "not started in this browser")


async def test_a_provider_error_is_refused(api: Api, idp: Provider) -> None:
    await api.http.get("/auth/oidc/login")
    answer = await api.http.get("/auth/oidc/callback?error=access_denied&state=x"
                                "&error_description=The+user+said+no%0Aand+more")
    await assert_refused(api, answer, "the identity provider refused (access_denied)")


async def test_a_failed_sign_in_ends_an_earlier_session_in_that_browser(
        api: Api, idp: Provider) -> None:
    """On a shared computer, the next person's failed sign-in must not leave them acting as
    whoever was signed in before."""
    signed = await api.http.post("/api/session",
                                 json={"name": "siân.jones", "password": PASSWORD})
    assert signed.status_code == 200
    idp.person["email"] = "visitor@elsewhere.example"
    await assert_refused(api, await sign_in(api), "no account here")


async def test_a_sign_in_replaces_the_session_before_it(api: Api, idp: Provider) -> None:
    signed = await api.http.post("/api/session",
                                 json={"name": "siân.jones", "password": PASSWORD})
    before = signed.json()["csrf_token"]
    assert (await sign_in(api)).status_code == 303
    me = (await api.whoami()).json()
    assert (me["name"], me["signed_in_by"]) == (AMINA, "oidc")
    assert me["csrf_token"] != before


async def test_the_sessions_posts_still_need_the_csrf_token(api: Api, idp: Provider) -> None:
    add_user(api.world.store, "raj.patel@lga.example", Role.CASE_OFFICER)
    idp.person["email"] = "raj.patel@lga.example"
    assert (await sign_in(api)).status_code == 303
    csrf = (await api.whoami()).json()["csrf_token"]
    body = {"council": COUNCIL, "kind": "finance", "reason": "Finance review"}
    forged = await api.http.post("/api/cases", json=body)
    assert forged.status_code == 403 and CSRF_HEADER in forged.json()["detail"]
    started = await api.http.post("/api/cases", json=body, headers={CSRF_HEADER: csrf})
    assert started.status_code == 201, started.text
    assert isinstance(api.world.cases, TrackingCaseClient)
    api.world.cases.started.append(f"improvement-case-fin-{COUNCIL}")
    [first] = api.world.store.read_case(started.json()["state"]["case_id"])
    assert first.actor == "case_officer:raj.patel@lga.example"


async def test_an_unreachable_provider_is_a_503_not_a_sign_in(case_world: CaseWorld) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    transport = httpx.ASGITransport(
        app=_app(case_world, f"http://127.0.0.1:{closed.getsockname()[1]}"))
    async with httpx.AsyncClient(transport=transport, base_url=API) as http:
        answer = await http.get("/auth/oidc/login")
    closed.close()
    assert answer.status_code == 503 and "identity provider" in answer.json()["detail"]


async def test_without_a_provider_configured_there_is_no_oidc_sign_in(
        case_world: CaseWorld) -> None:
    transport = httpx.ASGITransport(app=_app(case_world, None))
    async with httpx.AsyncClient(transport=transport, base_url=API) as http:
        assert (await http.get("/auth/oidc/login")).status_code == 404
