"""Verifying sign-in tokens from organisations' identity providers (OpenID Connect).

A token is believed only after its signature checks out against a key its issuer publishes, its
issuer is an organisation's (`oidc_issuer`, read from the database and cached for a few seconds),
its audience is that organisation's `oidc_audience`, and it has not expired. Nothing is fetched
for an issuer no organisation names, so a token cannot make the service call out to a host of the
sender's choosing.

Each issuer's keys come from its JWKS, found through its discovery document
(`{issuer}/.well-known/openid-configuration`, `jwks_uri`), fetched with httpx on the event loop
and cached in this process: a cache, not state (every worker fills its own). They are fetched
again when five minutes old, and when a token names a key the set does not hold (the provider
rotated its keys) — but not more often than every five seconds per issuer, however many such
tokens arrive; an old set that holds a token's key verifies it while a fresh one is fetched in
the background. An issuer that cannot be reached keeps the keys fetched before; without any, its
tokens are refused (401) until a fetch succeeds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from app.db.reads import Reads
from app.domain.errors import Unauthenticated
from app.domain.oidc import ALGORITHMS, SignedIn, discovery_url, email_of

log = logging.getLogger("dealcoach.oidc")

# A token that names a key the cached set lacks refreshes the set, at most this often per issuer.
REFRESH_INTERVAL = 5.0
# A key set is fetched again once this old: a key the provider withdrew stops working within it.
KEYS_MAX_AGE = 300.0
# An organisation's issuer settings are read again once this old (they are also checked in the
# statement that authenticates, so a stale entry can only refuse, never admit).
ISSUER_MAX_AGE = 5.0
# Clocks of the provider and this service may disagree by this many seconds (exp, nbf, iat).
LEEWAY = 30
FETCH_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
MAX_DOCUMENT_BYTES = 256 * 1024


@dataclass(slots=True)
class _KeySet:
    """An issuer's published keys (JWKs by kid) and when they were last fetched."""

    jwks: dict[str | None, dict[str, Any]]
    attempted_at: float  # the last fetch, successful or not
    fresh_until: float  # fetched again after this (sooner after a failed fetch)
    verifiers: dict[tuple[str | None, str], jwt.PyJWK] = field(default_factory=dict)

    def key(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The key to verify a token that names ``kid`` and ``alg`` with; None when the set has
        no such key (a token without kid fits a set of one key)."""
        if kid is None and len(self.jwks) == 1:
            kid = next(iter(self.jwks))
        jwk = self.jwks.get(kid)
        if jwk is None:
            return None
        verifier = self.verifiers.get((kid, alg))
        if verifier is None:
            # A key bound to one algorithm is used with that algorithm only; PyJWK refuses a key
            # whose type does not fit the algorithm (an RSA key for ES256, say).
            if jwk.get("alg", alg) != alg:
                raise Unauthenticated("The token's algorithm is not the one its key is for.")
            try:
                verifier = jwt.PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError:
                raise Unauthenticated("The token's key cannot verify its algorithm.") from None
            self.verifiers[(kid, alg)] = verifier
        return verifier


class IdentityProviders:
    """The identity providers organisations sign in with, as this process knows them: their
    audiences and keys, cached. One per application."""

    def __init__(
        self,
        reads: Reads,
        *,
        allow_insecure: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reads = reads
        self.allow_insecure = allow_insecure
        self.clock = clock
        self._audiences: dict[str, tuple[str, float]] = {}
        self._keys: dict[str, _KeySet] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: dict[str, asyncio.Task[_KeySet]] = {}
        self._http: httpx.AsyncClient | None = None

    async def close(self) -> None:
        for task in self._background.values():
            task.cancel()
        await asyncio.gather(*self._background.values(), return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    async def sign_in(self, token: str) -> SignedIn:
        """Who a bearer token (a JWT) signs in as; 401 unless every check passes."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is neither an API key nor a well-formed token.") from None
        alg, kid, issuer = header.get("alg"), header.get("kid"), unverified.get("iss")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise Unauthenticated("The token is not signed with an accepted algorithm.")
        if not isinstance(issuer, str):
            raise Unauthenticated("The token names no issuer.")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("The token's key id is not a string.")
        audience = await self._audience(issuer)
        if audience is None:
            raise Unauthenticated("No organisation signs in with the token's issuer.")
        key = await self._key(issuer, kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The token is for another audience.") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"The token is not valid: {_reason(exc)}.") from None
        return SignedIn(issuer=issuer, audience=audience, email=email_of(claims))

    async def _audience(self, issuer: str) -> str | None:
        now = self.clock()
        cached = self._audiences.get(issuer)
        if cached is not None and now - cached[1] < ISSUER_MAX_AGE:
            return cached[0]
        audience = await self.reads.organizations.oidc_audience(issuer)
        if audience is None:
            self._audiences.pop(issuer, None)  # only named issuers are kept: the cache stays small
            return None
        self._audiences[issuer] = (audience, now)
        return audience

    async def _key(self, issuer: str, kid: str | None, alg: str) -> jwt.PyJWK:
        keys = self._keys.get(issuer)
        now = self.clock()
        key = keys.key(kid, alg) if keys is not None else None
        if keys is None or (key is None and now - keys.attempted_at >= REFRESH_INTERVAL):
            keys = await self._refresh(issuer, keys)
            key = keys.key(kid, alg)
        elif now >= keys.fresh_until:
            # Old, but it holds the token's key: verify with it, and fetch a fresh set meanwhile
            # (no request waits on the provider, even while it does not answer).
            self._refresh_in_background(issuer, keys)
        if key is None:
            if not keys.jwks:
                raise Unauthenticated("The identity provider's keys could not be fetched.")
            raise Unauthenticated("The token is signed with a key the identity provider does not publish.")
        return key

    def _refresh_in_background(self, issuer: str, seen: _KeySet) -> None:
        running = self._background.get(issuer)
        if running is None or running.done():
            self._background[issuer] = asyncio.create_task(self._refresh(issuer, seen))

    async def _refresh(self, issuer: str, seen: _KeySet | None) -> _KeySet:
        """Fetch the issuer's keys, one request at a time per issuer: whoever waited uses what
        the request before it fetched."""
        lock = self._locks.setdefault(issuer, asyncio.Lock())
        async with lock:
            current = self._keys.get(issuer)
            if current is not seen and current is not None:
                return current
            now = self.clock()
            try:
                jwks = await self._fetch_keys(issuer)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("identity provider %s: keys not fetched: %s", issuer, exc)
                # Keep the keys fetched before; try again after the refresh interval.
                keys = _KeySet(seen.jwks if seen else {}, now, now + REFRESH_INTERVAL)
            else:
                keys = _KeySet(jwks, now, now + KEYS_MAX_AGE)
            self._keys[issuer] = keys
            return keys

    async def _fetch_keys(self, issuer: str) -> dict[str | None, dict[str, Any]]:
        configuration = await self._get_json(discovery_url(issuer))
        if configuration.get("issuer") != issuer:
            raise ValueError("the discovery document names another issuer")
        jwks_uri = configuration.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("the discovery document has no jwks_uri")
        if urlsplit(jwks_uri).scheme not in (("https", "http") if self.allow_insecure else ("https",)):
            raise ValueError("the jwks_uri is not an https URL")
        published = (await self._get_json(jwks_uri)).get("keys")
        if not isinstance(published, list):
            raise ValueError("the JWKS has no keys")
        # Signing keys only; a key for encryption (use: enc) never verifies a signature.
        return {
            jwk.get("kid"): jwk
            for jwk in published
            if isinstance(jwk, dict) and jwk.get("use", "sig") == "sig" and isinstance(jwk.get("kid", ""), str)
        }

    async def _get_json(self, url: str) -> dict[str, Any]:
        if self._http is None:
            # No proxies from the environment, no redirects: the provider answers at its own URLs.
            self._http = httpx.AsyncClient(timeout=FETCH_TIMEOUT, trust_env=False, follow_redirects=False)
        async with self._http.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise ValueError(f"{url} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return document


def _reason(exc: jwt.PyJWTError) -> str:
    """What PyJWT found wrong, for the problem's detail (never a key or the token itself)."""
    if isinstance(exc, jwt.InvalidSignatureError):
        return "its signature does not verify"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"it has no {exc.claim} claim"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "it is not valid yet"
    return "it cannot be verified"
