"""Sign-in with an identity provider: the rules on issuers and on what a verified token names."""

from __future__ import annotations

import pytest

from app.domain.errors import MissingFields, OidcIssuerNotAllowed, Unauthenticated
from app.domain.oidc import (
    discovery_url,
    email_of,
    ensure_issuer_allowed,
    ensure_issuer_has_audience,
    looks_like_token,
)


@pytest.mark.parametrize(
    "issuer",
    ["https://login.example.com/realms/acme", "https://acme.eu.auth0.com/", "https://idp.example.com:8443"],
)
def test_https_issuers_are_allowed(issuer: str) -> None:
    ensure_issuer_allowed(issuer, allow_insecure=False)


@pytest.mark.parametrize(
    ("issuer", "why"),
    [
        ("http://127.0.0.1:8080/realms/acme", "must use https"),
        ("ftp://idp.example.com", "must use https"),
        ("login.example.com", "must use https"),
        ("https:///realms/acme", "no host"),
        ("https://user:secret@idp.example.com", "credentials in URL"),
        ("https://idp.example.com/?tenant=acme", "query or fragment"),
        ("https://idp.example.com/#x", "query or fragment"),
        ("https://idp.example.com:port", "unparsable URL"),
        ("https://[::1", "unparsable URL"),
    ],
)
def test_other_issuers_are_refused(issuer: str, why: str) -> None:
    with pytest.raises(OidcIssuerNotAllowed) as refused:
        ensure_issuer_allowed(issuer, allow_insecure=False)
    assert [(f.path, f.msg) for f in refused.value.fields] == [(("oidc_issuer",), why)]


def test_http_issuers_only_where_insecure_providers_are_allowed() -> None:
    ensure_issuer_allowed("http://127.0.0.1:8080/realms/acme", allow_insecure=True)
    with pytest.raises(OidcIssuerNotAllowed):
        ensure_issuer_allowed("ftp://127.0.0.1/realms/acme", allow_insecure=True)


def test_an_issuer_needs_an_audience() -> None:
    ensure_issuer_has_audience("https://idp.example.com", "dealcoach")
    ensure_issuer_has_audience(None, None)
    ensure_issuer_has_audience(None, "dealcoach")
    with pytest.raises(MissingFields):
        ensure_issuer_has_audience("https://idp.example.com", None)


def test_the_discovery_document_is_under_the_issuer() -> None:
    expected = "https://login.example.com/realms/acme/.well-known/openid-configuration"
    assert discovery_url("https://login.example.com/realms/acme") == expected
    assert discovery_url("https://login.example.com/realms/acme/") == expected


def test_the_member_is_the_tokens_verified_email() -> None:
    assert email_of({"email": " Sam.Seller@Acme.test "}) == "sam.seller@acme.test"
    assert email_of({"email": "sam@acme.test", "email_verified": True}) == "sam@acme.test"
    for claims in (
        {},
        {"email": ""},
        {"email": ["sam@acme.test"]},
        {"email": "sam@acme.test", "email_verified": False},
        {"email": "sam@acme.test", "email_verified": "false"},
    ):
        with pytest.raises(Unauthenticated):
            email_of(claims)


def test_a_token_is_told_from_an_api_key_by_its_shape() -> None:
    assert looks_like_token("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln")
    assert not looks_like_token("dc_0123abcd_secret")
    assert not looks_like_token("a.b")
    assert not looks_like_token("a." + "b" * 9000 + ".c")
