from tests.helpers import Api, assert_problem


async def test_me(api: Api, org) -> None:
    response = await api.get("/v1/me")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == org.admin_id
    assert body["organization"] == {"id": org.id, "name": "Acme"}
    assert body["role"] == "admin"


async def test_no_key(api: Api) -> None:
    assert_problem(await api.as_(None).get("/v1/me"), 401, "unauthenticated")
