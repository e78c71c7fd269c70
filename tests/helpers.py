"""Test helpers: an API caller bound to a key, factories that go through the real API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

_counter = itertools.count(1)


@dataclass
class Org:
    id: str
    admin_id: str
    admin_key: str


@dataclass
class Person:
    id: str
    key: str
    body: dict[str, Any]


class Api:
    def __init__(self, client: httpx.AsyncClient, key: str | None) -> None:
        self.client = client
        self.key = key

    def as_(self, who: Person | str | None) -> Api:
        key = who.key if isinstance(who, Person) else who
        return Api(self.client, key)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    async def get(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return await self.client.get(url, headers=self._headers(headers), **kw)

    async def post(
        self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.client.post(url, json=json, headers=self._headers(headers), **kw)

    async def patch(
        self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.client.patch(url, json=json, headers=self._headers(headers), **kw)

    async def put(self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return await self.client.put(url, json=json, headers=self._headers(headers), **kw)

    async def delete(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return await self.client.delete(url, headers=self._headers(headers), **kw)

    async def make_member(
        self,
        role: str = "seller",
        *,
        manager: Person | str | None = None,
        name: str | None = None,
        email: str | None = None,
        key: bool = True,
    ) -> Person:
        """Create a member (as admin) and, unless ``key=False``, an API key for them."""
        n = next(_counter)
        manager_id = manager.id if isinstance(manager, Person) else manager
        body = {
            "name": name or f"{role.title()} {n}",
            "email": email or f"{role}{n}@acme.test",
            "role": role,
            "manager_id": manager_id,
        }
        response = await self.post("/v1/members", json=body)
        assert response.status_code == 201, response.text
        member = response.json()
        secret = ""
        if key:
            created = await self.post(f"/v1/members/{member['id']}/api-keys", json={"label": "test"})
            assert created.status_code == 201, created.text
            secret = created.json()["api_key"]
        return Person(id=member["id"], key=secret, body=member)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= body.keys()
    return body


async def make_deal(api: Api, owner: Person, **fields: Any) -> dict[str, Any]:
    """Create a deal for ``owner`` as the caller of ``api`` (by default the admin)."""
    n = next(_counter)
    body = {
        "name": f"Deal {n}",
        "account_name": f"Account {n}",
        "amount": {"amount": "12500.00", "currency": "EUR"},
        "expected_close_date": "2026-12-31",
        "owner_id": owner.id,
        **fields,
    }
    response = await api.post("/v1/deals", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def assert_tagged_by_content(api: Api, url: str) -> str:
    """A single object without a version answers a tag of what it sent, and 304 to it."""
    read = await api.get(url)
    assert read.status_code == 200, read.text
    etag = read.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10, etag
    assert (await api.get(url)).headers["etag"] == etag  # the same content, the same tag
    cached = await api.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    assert (await api.get(url, headers={"If-None-Match": '"1"'})).status_code == 200
    return etag
