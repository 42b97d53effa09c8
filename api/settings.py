"""The API's settings, from the environment."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SESSION_HOURS = 8


@dataclass(frozen=True)
class OidcSettings:
    """An OpenID Connect identity provider: CASES_OIDC_ISSUER, CASES_OIDC_CLIENT_ID,
    CASES_OIDC_CLIENT_SECRET; CASES_OIDC_USERNAME_CLAIM (default `email`) names the claim that
    must equal a user's name here: the IdP proves who someone is, our table says their role."""

    issuer: str
    client_id: str
    client_secret: str
    username_claim: str = "email"


@dataclass(frozen=True)
class ApiSettings:
    session_secret: bytes
    """Signs session cookies. Derived from the command key unless CASES_SESSION_SECRET is set."""
    secure_cookies: bool = True
    """Cookies only over HTTPS (CASES_INSECURE_COOKIES=1 for plain-HTTP development)."""
    session_seconds: int = DEFAULT_SESSION_HOURS * 3600
    sign_in_rate: str = "5/minute"
    """Password sign-ins allowed per name and per client address (the `limits` notation)."""
    oidc: OidcSettings | None = None

    @classmethod
    def from_environment(cls, command_key: bytes,
                         environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        secret = env.get("CASES_SESSION_SECRET", "").encode() or hmac.new(
            command_key, b"cases session cookies", hashlib.sha256).digest()
        issuer = env.get("CASES_OIDC_ISSUER", "").strip()
        oidc = None
        if issuer:
            client_id = env.get("CASES_OIDC_CLIENT_ID", "").strip()
            client_secret = env.get("CASES_OIDC_CLIENT_SECRET", "")
            if not client_id or not client_secret:
                raise ValueError("CASES_OIDC_ISSUER is set: CASES_OIDC_CLIENT_ID and "
                                 "CASES_OIDC_CLIENT_SECRET are needed too")
            oidc = OidcSettings(issuer=issuer, client_id=client_id, client_secret=client_secret,
                                username_claim=env.get("CASES_OIDC_USERNAME_CLAIM", "email"))
        hours = env.get("CASES_SESSION_HOURS", "").strip()
        return cls(session_secret=secret,
                   secure_cookies=env.get("CASES_INSECURE_COOKIES", "") != "1",
                   session_seconds=int(hours) * 3600 if hours else DEFAULT_SESSION_HOURS * 3600,
                   sign_in_rate=env.get("CASES_SIGN_IN_RATE", "5/minute"), oidc=oidc)
