"""Loss-reason and skill catalogs, seeded per organisation, edited by admins."""

from __future__ import annotations

from tests.helpers import Api, assert_problem


async def _all(api: Api, path: str) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(path, params=params)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_catalogs_are_seeded_with_suggested_skills(api: Api) -> None:
    seller = await api.make_member("seller")
    reasons = {r["code"]: r for r in await _all(api.as_(seller), "/v1/loss-reasons")}
    assert set(reasons) == {
        "price",
        "competitor",
        "incumbent",
        "no_budget",
        "no_decision",
        "timing",
        "product_gap",
        "relationship",
        "other",
    }
    assert reasons["price"]["suggested_skills"] == ["negotiation", "closing"]
    assert {"presentation", "communication"} <= set(reasons["competitor"]["suggested_skills"])
    skills = [s["code"] for s in await _all(api.as_(seller), "/v1/skills")]
    assert skills == sorted(skills)
    assert set(skills) == {
        "prospecting",
        "discovery",
        "qualification",
        "value_selling",
        "presentation",
        "communication",
        "competitive_positioning",
        "stakeholder_management",
        "negotiation",
        "closing",
    }


async def test_admin_adds_entries_and_codes_are_unique(api: Api) -> None:
    skill = await api.post("/v1/skills", json={"code": "storytelling", "label": "Storytelling"})
    assert skill.status_code == 201, skill.text
    assert skill.headers["location"] == "/v1/skills/storytelling"
    reason = await api.post(
        "/v1/loss-reasons",
        json={
            "code": "champion_left",
            "label": "Champion left",
            "suggested_skills": ["storytelling", "stakeholder_management"],
        },
    )
    assert reason.status_code == 201, reason.text
    assert reason.json()["suggested_skills"] == ["storytelling", "stakeholder_management"]
    assert_problem(await api.post("/v1/skills", json={"code": "storytelling", "label": "Again"}), 409, "code_taken")
    assert_problem(await api.post("/v1/loss-reasons", json={"code": "price", "label": "P"}), 409, "code_taken")


async def test_suggested_skills_must_exist(api: Api) -> None:
    response = await api.post("/v1/loss-reasons", json={"code": "x", "label": "X", "suggested_skills": ["juggling"]})
    body = assert_problem(response, 422, "unknown_skill")
    assert body["unknown"] == ["juggling"]
    assert_problem(await api.get("/v1/loss-reasons/x"), 404, "not_found")


async def test_codes_are_snake_case(api: Api) -> None:
    for code in ("Price", "has space", "", "1abc", "a" * 65):
        assert_problem(await api.post("/v1/skills", json={"code": code, "label": "L"}), 422, "validation_error")


async def test_only_admins_edit_catalogs(api: Api) -> None:
    for role in ("seller", "manager", "head_of_sales", "integration"):
        caller = await api.make_member(role)
        assert_problem(await api.as_(caller).post("/v1/skills", json={"code": "x", "label": "X"}), 403, "forbidden")
        assert_problem(await api.as_(caller).patch("/v1/loss-reasons/price", json={"label": "X"}), 403, "forbidden")
    assert (await api.get("/v1/loss-reasons/price")).json()["label"] == "Price"


async def test_update_entry_with_if_match(api: Api) -> None:
    current = await api.get("/v1/loss-reasons/price")
    etag = current.headers["etag"]
    updated = await api.patch(
        "/v1/loss-reasons/price",
        json={"suggested_skills": ["negotiation"], "label": "Price too high"},
        headers={"If-Match": etag},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2 and updated.headers["etag"] == '"2"'
    stale = await api.patch("/v1/loss-reasons/price", json={"label": "Again"}, headers={"If-Match": etag})
    assert_problem(stale, 412, "version_conflict")
    assert (await api.get("/v1/loss-reasons/price")).json()["label"] == "Price too high"
    retired = await api.patch("/v1/skills/closing", json={"active": False})
    assert retired.json()["active"] is False
    active = [s["code"] for s in (await api.get("/v1/skills", params={"active": "true"})).json()["items"]]
    assert "closing" not in active
    assert_problem(
        await api.patch("/v1/loss-reasons/price", json={"suggested_skills": ["closing"]}), 422, "unknown_skill"
    )


async def test_catalogs_are_per_organisation(app, api: Api) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    await api.as_(other.admin_key).post("/v1/skills", json={"code": "globex_only", "label": "G"})
    assert_problem(await api.get("/v1/skills/globex_only"), 404, "not_found")
    assert (await api.post("/v1/skills", json={"code": "globex_only", "label": "Ours"})).status_code == 201
