"""Text PostgreSQL cannot hold (NUL) is refused as input wherever it can arrive."""

from __future__ import annotations

import pytest

from tests.helpers import Api, assert_problem


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/v1/skills/a%00", 404),  # a path that names nothing
        ("PATCH", "/v1/loss-reasons/a%00", 404),
        ("GET", "/v1/events?type=%00", 422),
        ("GET", "/v1/deals?q=%00", 422),
        ("PUT", "/v1/deals/by-external-ref/hubspot/a%00", 404),
        ("GET", "/v1/members/a%00", 404),
    ],
)
async def test_nul_in_path_or_query_is_refused(api: Api, method: str, url: str, status: int) -> None:
    body = {"label": "x"} if method == "PATCH" else {"name": "x", "account_name": "y"} if method == "PUT" else None
    response = await api.client.request(method, url, json=body, headers={"Authorization": f"Bearer {api.key}"})
    assert_problem(response, status, "validation_error" if status == 422 else "not_found")


async def test_authentication_comes_before_input_checks(api: Api) -> None:
    assert_problem(await api.as_(None).get("/v1/deals?q=%00"), 401, "unauthenticated")
    assert_problem(await api.as_(None).get("/v1/members/not-a-uuid"), 401, "unauthenticated")
