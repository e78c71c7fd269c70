"""A local identity provider for the tests: a real HTTP server on loopback that publishes an
OpenID Connect discovery document and a JWKS (an RSA and an EC key to begin with), and mints
tokens signed with its keys, as Keycloak would for a realm.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "dealcoach"
REALM = "/realms/acme"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        return {**algorithm.to_jwk(public, as_dict=True), "kid": self.kid, "alg": self.alg, "use": "sig"}


@functools.cache
def signing_key(name: str) -> SigningKey:
    """A key by name, generated once per test session: `rsa*` are RS256 keys, `ec*` ES256."""
    if name.startswith("rsa"):
        return SigningKey(name, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return SigningKey(name, "ES256", ec.generate_private_key(ec.SECP256R1()))


class LocalIssuer:
    """An identity provider at http://127.0.0.1:<port>/realms/acme."""

    def __init__(self, keys: tuple[str, ...] = ("rsa1", "ec1")) -> None:
        self.published = [signing_key(name) for name in keys]
        self.failing = False  # answer 503 to everything, as a provider that is down
        self.fetches: list[str] = []  # the paths asked for, in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{REALM}"
        # A short poll: shutdown() waits for the serving loop to notice (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def jwks_fetches(self) -> int:
        return sum(path.endswith("/certs") for path in self.fetches)

    def rotate(self, *keys: str) -> None:
        """Publish these keys instead (a key left out is withdrawn)."""
        self.published = [signing_key(name) for name in keys]

    def token(
        self,
        email: str | None,
        *,
        key: str = "rsa1",
        kid: str | None = None,
        audience: str | list[str] | None = AUDIENCE,
        issuer: str | None = None,
        expires_in: int = 300,
        omit: tuple[str, ...] = (),
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with the named key (published or not), for ``email``."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.url,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, email or "nobody")),
            "aud": audience,
            "exp": now + expires_in,
            "iat": now,
            "email": email,
            "email_verified": True,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if name not in omit and value is not None}
        signer = signing_key(key)
        headers = {"kid": signer.kid if kid is None else kid, **(header or {})}
        return jwt.encode(payload, signer.private, algorithm=signer.alg, headers=headers)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                issuer.fetches.append(self.path)
                if issuer.failing:
                    self._send(503, {"error": "unavailable"})
                elif self.path == f"{REALM}/.well-known/openid-configuration":
                    self._send(
                        200,
                        {
                            "issuer": issuer.url,
                            "jwks_uri": f"{issuer.url}/protocol/openid-connect/certs",
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                        },
                    )
                elif self.path == f"{REALM}/protocol/openid-connect/certs":
                    self._send(200, {"keys": [key.jwk() for key in issuer.published]})
                else:
                    self._send(404, {"error": "not_found"})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                # A page on another origin may ask the provider for its configuration, as sign-in
                # libraries in the browser do.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[LocalIssuer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
