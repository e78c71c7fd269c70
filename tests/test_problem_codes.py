"""Every operation lists the problem codes it can answer, an enum per status (API.md, "Front ends
in the browser"), so that generated SDKs can switch on them; the lists are checked three ways:
against the source (what each route can raise), against every response the suite sees
(tests/problem_codes.py), and by schemathesis' response conformance."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import errors as de
from app.errors import status_of
from app.main import create_app
from app.settings import Settings
from tests.problem_codes import DeclaredCodes, UndeclaredProblemCode
from tests.raised_codes import raised_by_route


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    database = tmp_path_factory.mktemp("spec") / "spec.db"
    return create_app(Settings(database_url=f"sqlite+aiosqlite:///{database}")).openapi()


def _operations(spec: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {op["operationId"]: (method, op) for item in spec["paths"].values() for method, op in item.items()}


def _codes(spec: dict[str, Any], response: dict[str, Any]) -> list[str]:
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    if "application/problem+json" not in response["content"]:  # a SOAP fault (Salesforce's refusals)
        return response["x-problem-codes"]  # type: ignore[no-any-return]
    schema = response["content"]["application/problem+json"]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
    codes: list[str] = schema["allOf"][1]["properties"]["code"]["enum"]
    return codes


def test_every_problem_response_lists_its_codes(spec: dict[str, Any]) -> None:
    for operation_id, (_, operation) in _operations(spec).items():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            codes = _codes(spec, response)
            assert codes, f"{operation_id} declares {status} with no code"
            assert codes == sorted(set(codes))
            if "description" in response:
                assert all(f"`{code}`" in response["description"] for code in codes), (operation_id, status)


def test_each_route_declares_every_rule_it_can_break(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    raised = raised_by_route()
    assert "put_strategy" in raised and de.StrategyOwnedBySeller in raised["put_strategy"]  # the reading works
    missing = []
    for operation_id, errors in raised.items():
        if operation_id not in operations:
            continue  # a webhook's receiver side
        _, operation = operations[operation_id]
        for error in errors:
            status = str(status_of(error))
            declared = _codes(spec, operation["responses"][status]) if status in operation["responses"] else []
            if error.code not in declared:
                missing.append(f"{operation_id}: {status} {error.code}")
    assert not missing, "routes that can answer codes they do not declare:\n" + "\n".join(sorted(missing))


def test_the_generic_codes_of_an_operation_follow_what_it_takes(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    _, create = operations["create_deal"]
    assert "idempotency_key_reused" in _codes(spec, create["responses"]["422"])
    assert _codes(spec, create["responses"]["409"]) == sorted(
        {"idempotency_in_progress", "external_ref_taken"} | set(_codes(spec, create["responses"]["409"]))
    )
    _, listing = operations["list_members"]
    assert _codes(spec, listing["responses"]["422"]) == ["invalid_cursor", "validation_error"]
    _, strategy = operations["put_strategy"]
    assert "strategy_owned_by_seller" in _codes(spec, strategy["responses"]["403"])
    assert _codes(spec, strategy["responses"]["428"]) == ["precondition_required"]
    assert _codes(spec, strategy["responses"]["429"]) == ["rate_limited"]


def test_problem_documents_the_members_some_codes_carry(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]["properties"]
    assert "review_incomplete" in problem["missing"]["description"]
    assert "validation_error" in problem["errors"]["description"]


async def test_an_undeclared_code_fails_the_test_that_sees_it(spec: dict[str, Any], tmp_path: Any) -> None:
    # The checker the suite's client goes through, around an app answering a code put_strategy does not declare.
    body = b'{"type":"urn:dealcoach:problem:deal_closed","status":403,"code":"deal_closed"}'

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"application/problem+json")]}
        )
        await send({"type": "http.response.body", "body": body})

    app.openapi = lambda: spec  # type: ignore[attr-defined]
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "PUT", "path": "/v1/deals/0190c8a4-6f1e-7000-8000-000000000000/strategy"}
    with pytest.raises(UndeclaredProblemCode, match="put_strategy answered 403 `deal_closed`"):
        await DeclaredCodes(app)(scope, None, send)  # type: ignore[arg-type]
    assert not sent
    body = body.replace(b"deal_closed", b"strategy_owned_by_seller")
    await DeclaredCodes(app)(scope, None, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 403 and sent[1]["body"] == body
