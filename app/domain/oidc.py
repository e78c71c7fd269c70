"""Sign-in with the organisation's identity provider (OpenID Connect).

An organisation names its provider by its issuer URL and the audience its tokens are for. A
bearer token (a JWT) whose `iss` is that issuer, signed with one of the keys the provider
publishes, acts as the organisation's active member whose email the token carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.domain.errors import FieldProblem, MissingFields, OidcIssuerNotAllowed, Unauthenticated

# Signatures with a public key only: a shared-secret algorithm (HS256) would let anyone holding
# the published key sign, and `none` is no signature at all.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
MAX_TOKEN_LENGTH = 8192
MAX_ISSUER_LENGTH = 2048
MAX_AUDIENCE_LENGTH = 500
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A verified token: the organisation's issuer and audience it was verified for, and the
    (lower-cased) email of the member it acts as."""

    issuer: str
    audience: str
    email: str


def looks_like_token(token: str) -> bool:
    """A compact JWT: three base64url parts separated by dots (an API key has none)."""
    return token.count(".") == 2 and len(token) <= MAX_TOKEN_LENGTH


def ensure_issuer_allowed(issuer: str, *, allow_insecure: bool) -> None:
    """An issuer is an absolute https URL with a host and no credentials, query or fragment
    (http too where insecure providers are allowed, for development)."""
    try:
        parts = urlsplit(issuer)
        parts.port  # noqa: B018  # a port that is not a number raises ValueError
    except ValueError:
        raise _not_allowed("The issuer cannot be parsed as a URL.", "unparsable URL") from None
    schemes = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in schemes:
        raise _not_allowed("The issuer must be an https URL.", "must use https")
    if not parts.hostname:
        raise _not_allowed("The issuer names no host.", "no host")
    if parts.username is not None or parts.password is not None:
        raise _not_allowed("The issuer may not carry credentials.", "credentials in URL")
    if parts.query or parts.fragment or "?" in issuer or "#" in issuer:
        raise _not_allowed("An issuer has no query or fragment.", "query or fragment")


def ensure_issuer_has_audience(issuer: str | None, audience: str | None) -> None:
    """Tokens are accepted only for a named audience: an issuer needs one."""
    if issuer is not None and not audience:
        message = "oidc_audience is required while oidc_issuer is set"
        raise MissingFields(message, fields=[FieldProblem(("oidc_audience",), message, "missing")])


def discovery_url(issuer: str) -> str:
    """Where an issuer publishes its configuration (OpenID Connect Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + DISCOVERY_PATH


def email_of(claims: Mapping[str, Any]) -> str:
    """The member a verified token acts as: its `email`, unless the provider says it is not
    verified (`email_verified` false; some providers write it as a string)."""
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        raise Unauthenticated("The token carries no email.")
    verified = claims.get("email_verified", True)
    if verified is False or (isinstance(verified, str) and verified.lower() == "false"):
        raise Unauthenticated("The token's email is not verified by the identity provider.")
    return email.strip().lower()


def _not_allowed(detail: str, msg: str) -> OidcIssuerNotAllowed:
    return OidcIssuerNotAllowed(detail, fields=[FieldProblem(("oidc_issuer",), msg, "oidc_issuer_not_allowed")])
