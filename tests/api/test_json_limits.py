"""Bounded JSON (API.md: Limits): nested deeper than 32 levels, or a list over 1,000 items,
is 422 validation_error with one error, before any field is validated; nothing is written."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from app.schemas.common import _first_json_problem, _inspect_json
from tests.helpers import Api, assert_problem, make_deal


def nested(depth: int) -> Any:
    """A JSON value with ``depth`` levels of containers: nested(1) == []."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def error_types(response: Any) -> list[str]:
    return [e["type"] for e in assert_problem(response, 422, "validation_error")["errors"]]


async def post_raw(api: Api, url: str, body: bytes) -> Any:
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    return await api.client.post(url, content=body, headers=headers)


async def test_nesting_up_to_32_levels_is_read_deeper_is_refused(api: Api) -> None:
    member = {"name": "Pat", "email": "pat@acme.test", "role": "seller"}
    # The whole body counts: the object itself is level 1, so 31 more levels fit.
    at_limit = await api.post("/v1/members", json={**member, "extra": nested(31)})
    assert "json_too_deep" not in error_types(at_limit)  # refused for the unknown field only
    over = await api.post("/v1/members", json={**member, "extra": nested(32)})
    assert error_types(over) == ["json_too_deep"]
    assert assert_problem(over, 422, "validation_error")["errors"][0]["loc"] == ["body"]
    assert (await api.post("/v1/members", json=member)).status_code == 201


@pytest.mark.parametrize("depth", [33, 500, 5_000, 400_000])
async def test_any_depth_is_a_validation_error_not_a_parse_failure(api: Api, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    assert error_types(await post_raw(api, "/v1/members", body)) == ["json_too_deep"]
    # The parser's own failure (very deep) and the walk's refusal say the same thing.
    messages = {
        e["msg"]
        for d in (33, depth)
        for e in (await post_raw(api, "/v1/members", b"[" * d + b"]" * d)).json()["errors"]
    }
    assert messages == {"JSON must not be nested deeper than 32 levels"}
    assert error_types(await post_raw(api, "/v1/deals/batch-upsert", body)) == ["json_too_deep"]


async def test_deep_json_inside_a_batch_record_is_refused_whole(api: Api, team) -> None:
    record = {
        "source": "hubspot",
        "external_id": "HS-1",
        "name": "N",
        "account_name": "A",
        "owner_id": team["seller"].id,
    }
    response = await api.post("/v1/deals/batch-upsert", json={"records": [{**record, "x": nested(40)}]})
    assert error_types(response) == ["json_too_deep"]
    assert (await api.get("/v1/deals")).json()["items"] == []
    fine = await api.post("/v1/deals/batch-upsert", json={"records": [record]})
    assert fine.status_code == 200 and fine.json()["results"][0]["outcome"] == "created"


async def test_a_list_over_1000_items_is_refused_with_one_error(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}/strategy"
    headers = {"If-Match": '"0"'}
    # 1,001 invalid items: one error, not 1,001 (and no item was validated).
    assert error_types(await api.as_(seller).put(url, json={"risks": [1] * 1001}, headers=headers)) == [
        "json_too_many_items"
    ]
    # Within the JSON bound, the schema's own maxItems (50 risks) answers.
    assert error_types(await api.as_(seller).put(url, json={"risks": ["r"] * 1000}, headers=headers)) == ["too_long"]
    assert (await api.as_(seller).get(url)).json()["version"] == 0
    good = await api.as_(seller).put(url, json={"risks": ["r"] * 50}, headers=headers)
    assert good.status_code == 200 and len(good.json()["risks"]) == 50


async def test_big_lists_anywhere_are_refused(api: Api) -> None:
    body = {"name": "Pat", "email": "pat@acme.test", "role": "seller", "x": {"y": list(range(5000))}}
    assert error_types(await api.post("/v1/members", json=body)) == ["json_too_many_items"]
    assert error_types(await api.post("/v1/deals/batch-upsert", json={"records": [{}] * 1001})) == [
        "json_too_many_items"
    ]
    wide = {f"k{i}": i for i in range(1001)}  # an object's members count as items too
    assert error_types(await api.post("/v1/members", json={**wide, "name": "P"})) == ["json_too_many_items"]


async def test_a_one_mebibyte_hostile_body_costs_one_error(api: Api) -> None:
    body = json.dumps({"records": [[0] * 800 for _ in range(600)]}, separators=(",", ":")).encode()
    assert len(body) < 1_048_576
    assert error_types(await post_raw(api, "/v1/deals/batch-upsert", body)) == ["too_long"]
    body = json.dumps({"name": [[0] * 1000 for _ in range(500)]}, separators=(",", ":")).encode()
    response = await post_raw(api, "/v1/members", body)
    assert "json_too_many_items" not in error_types(response)
    assert len(response.content) < 2000


def _random_json(rng: random.Random, depth: int = 1) -> Any:
    """Small nested JSON with NULs, lone surrogates, deep and long parts here and there."""
    roll = rng.random()
    if depth > 34 or roll < 0.4:
        return rng.choice(["a", "", "é", "\x00", "\ud800", "x\udfff", "\u2028", 1, 2.5, None, True, "\U0001f600"])
    if roll < 0.45:
        return rng.choice([nested(30), nested(33), ["a"] * 1001, {str(n): n for n in range(1001)}])
    if roll < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["k", "é", "\x00", "\udc00", "key"]
    return {f"{rng.choice(keys)}{n}": _random_json(rng, depth + 1) for n in range(rng.randint(0, 3))}


def test_the_fast_check_reports_what_the_ordered_walk_reports() -> None:
    """Bodies are checked by a fast pass first (strings gathered and checked together); one with
    a problem is walked again in order, so that the problem reported is the walk's first."""
    rng = random.Random(20261129)
    bodies = [_random_json(rng) for _ in range(3000)]
    bodies += [
        {"a": "\x00", "b": nested(40)},
        [nested(40), "\x00"],
        ["\x00", ["a"] * 1001],
        {"\ud800": 1, "b": nested(33)},
        {"records": [{"name": "ok"}] * 500},
    ]
    found = [_inspect_json(body) for body in bodies]
    assert found == [_first_json_problem(body) for body in bodies]
    assert {problem[0] for problem in found if problem} == {"unstorable_text", "json_too_deep", "json_too_many_items"}
    assert found.count(None) > 500
