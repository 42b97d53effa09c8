"""Sign-in through an OpenID Connect identity provider: the authorization code flow with PKCE
(S256) and a nonce, through authlib, which keeps the flow's state in the session cookie and
checks the ID token against the provider's published keys.

The provider proves who someone is; our users table says whether they may come in, and as
what. Nobody gets in by merely having an account at the provider, and the provider's own
claims about roles are never read."""

from __future__ import annotations

import contextlib
import importlib
import re
import secrets
import warnings
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool

with warnings.catch_warnings():
    # authlib 1.9 warns, on import, that its httpx integration will move to `httpx2`: a note
    # for its maintainers, not for an operator reading our logs.
    import authlib.deprecate  # type: ignore[import-untyped]  # it sets its own filter first

    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.base_client import (  # type: ignore[import-untyped]
        MismatchingStateError,
        OAuthError,
    )
    from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]

from api.settings import OidcSettings
from application.users import NotSignedIn, User, user_named

log = structlog.get_logger("api")

LANDING = "/"
"""Where a signed-in browser goes: the web pages of a later issue."""
SCOPE = "openid email profile"
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_NAME = 120


def _transport_errors() -> tuple[type[Exception], ...]:
    """authlib reaches the provider through httpx2 when it is installed, else httpx: either's
    failure is the provider's, not the user's."""
    errors: list[type[Exception]] = [httpx.HTTPError, ValueError]  # ValueError: not JSON
    with contextlib.suppress(ImportError):
        errors.append(importlib.import_module("httpx2").HTTPError)
    return tuple(errors)


_UNAVAILABLE = _transport_errors()


class Refused(Exception):
    """A sign-in that must not happen; the message is the one line its user reads."""


def oidc_router(settings: OidcSettings) -> APIRouter:
    """`/auth/oidc/login` and `/auth/oidc/callback` for one identity provider."""
    oauth = OAuth()
    provider = oauth.register(
        name="oidc", client_id=settings.client_id, client_secret=settings.client_secret,
        # OpenID Connect Discovery §4: a trailing "/" of the issuer goes before the suffix.
        server_metadata_url=f"{settings.issuer.rstrip('/')}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"})
    router = APIRouter(prefix="/auth/oidc", include_in_schema=False)

    @router.get("/login")
    async def login(request: Request) -> Response:
        """Off to the provider; authlib puts state, nonce and PKCE verifier in the session."""
        try:
            redirect: Response = await provider.authorize_redirect(
                request, str(request.url_for("oidc_callback")))
        except _UNAVAILABLE as error:
            return _unavailable(error)
        return redirect

    @router.get("/callback", name="oidc_callback")
    async def callback(request: Request) -> Response:
        """Back from the provider. Whatever happens, the session that started the flow ends
        here: a failed sign-in must not leave an earlier user signed in in this browser."""
        try:
            user = await _sign_in(request)
        except Refused as refused:
            request.session.clear()
            return JSONResponse({"detail": f"not signed in: {refused}"}, status_code=401)
        except _UNAVAILABLE as error:
            request.session.clear()
            return _unavailable(error)
        request.session.clear()  # a fresh session: nothing from before the sign-in survives
        request.session.update(
            {"user": user.name, "by": "oidc", "csrf": secrets.token_urlsafe(32)})
        log.info("signed in", user=user.name, role=user.role, by="oidc")
        return RedirectResponse(LANDING, status_code=303)

    async def _sign_in(request: Request) -> User:
        claims = await _validated_claims(request)
        name = claims.get(settings.username_claim)
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
            raise Refused(f"the identity provider sent no usable `{settings.username_claim}` "
                          "claim; ask an administrator")
        if settings.username_claim == "email" and claims.get("email_verified") is False:
            raise Refused("the identity provider has not verified that email address")
        store = request.app.state.engine.store
        try:
            return await run_in_threadpool(user_named, store, name, "oidc")
        except NotSignedIn:
            log.warning("sign-in refused", user=name, by="oidc", reason="no such user here")
            raise Refused("that identity has no account here, or it is revoked; ask an "
                          "administrator") from None

    async def _validated_claims(request: Request) -> dict[str, Any]:
        """The ID token's claims, checked by authlib against the provider's keys: signature,
        our issuer (exactly as configured), our client id in the audience, the nonce, expiry."""
        expected: dict[str, Any] = {"iss": {"essential": True, "value": settings.issuer},
                                    "aud": {"essential": True, "value": settings.client_id}}
        try:
            token = await provider.authorize_access_token(request, claims_options=expected)
        except MismatchingStateError:
            raise Refused("this sign-in was not started in this browser, or has expired; "
                          "start again at /auth/oidc/login") from None
        except OAuthError as error:
            code = error.error if _ERROR_CODE.match(str(error.error)) else "an error"
            raise Refused(f"the identity provider refused ({code})") from None
        except JoseError as error:
            log.warning("sign-in refused", by="oidc", reason=type(error).__name__)
            raise Refused("the identity provider's ID token did not validate") from None
        claims = token.get("userinfo") if isinstance(token, dict) else None
        if not isinstance(claims, dict):
            raise Refused("the identity provider sent no ID token")
        return claims

    return router


def _unavailable(error: Exception) -> JSONResponse:
    """The provider could not be reached, or answered nonsense: not the user's fault."""
    log.warning("identity provider unavailable", error=type(error).__name__)
    return JSONResponse({"detail": "the identity provider cannot be reached just now; try "
                                   "again"}, status_code=503)
