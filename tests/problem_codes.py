"""Every problem a test's request gets back is one its operation declares.

The suite's client goes through ``DeclaredCodes``: an ASGI wrapper around the real app that reads
each problem+json response and fails the test when its ``code`` is not in the enum its operation's
OpenAPI response lists for that status (app/errors.py ``problem_responses``, app/main.py). So a
route that starts raising a new rule's code without declaring it fails the tests that reach it.

With ``DEALCOACH_RECORD_PROBLEM_CODES=<file>`` set, undeclared codes are appended to the file as
JSON lines instead (for auditing what the suite reaches).
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RECORD_TO = os.environ.get("DEALCOACH_RECORD_PROBLEM_CODES")


class UndeclaredProblemCode(AssertionError):
    pass


@functools.cache
def _table(spec_id: int) -> list[tuple[int, re.Pattern[str], dict[str, Any]]]:
    """Each path of the spec as a pattern, most literal first (as routing picks
    ``/v1/deals/batch-upsert`` over ``/v1/deals/{deal_id}``)."""
    table = [
        (template.count("{"), re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))), item)
        for template, item in _SPECS[spec_id]["paths"].items()
    ]
    return sorted(table, key=lambda row: row[0])


# The OpenAPI document of the app the suite tests: the same for every app a test makes (settings
# do not change it), and over a second to render, so rendered once per process.
_SPECS: dict[int, dict[str, Any]] = {}


def _spec(app: Any) -> tuple[int, dict[str, Any]]:
    if not _SPECS:
        _SPECS[0] = app.openapi()
    return 0, _SPECS[0]


def declared_codes(app: Any, scope: Scope, status: int) -> tuple[str, set[str]] | None:
    """The operation a request reached and the codes it declares for ``status``; None when the
    request reached no operation (an unknown path, a method not served there)."""
    spec_id, spec = _spec(app)
    item = next((item for _, pattern, item in _table(spec_id) if pattern.fullmatch(scope["path"])), None)
    operation = None if item is None else item.get(scope["method"].lower())
    if operation is None:
        return None
    response = operation["responses"].get(str(status))
    if response is None and status == 413 and "requestBody" not in operation:
        return None  # a body sent where none is taken is refused by its size alone, like any other
    if response is None:
        return operation["operationId"], set()
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema = response["content"]["application/problem+json"]["schema"]
    return operation["operationId"], set(schema["allOf"][1]["properties"]["code"]["enum"])


class DeclaredCodes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def checking_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if message["status"] >= 400 and headers.get(b"content-type", b"").startswith(b"application/problem"):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                self._check(scope, start["status"], b"".join(chunks))
                await send(start)
                await send({"type": "http.response.body", "body": b"".join(chunks)})
                return
            await send(message)

        await self.app(scope, receive, checking_send)

    def _check(self, scope: Scope, status: int, body: bytes) -> None:
        if status >= 500 and status != 503:
            return  # a server error is a failure of its own, reported by the test that sees it
        code = json.loads(body).get("code")
        found = declared_codes(self.app, scope, status)
        if found is None:
            return
        operation, codes = found
        if code in codes:
            return
        if RECORD_TO:
            with open(RECORD_TO, "a") as out:
                out.write(json.dumps({"operation": operation, "status": status, "code": code}) + "\n")
            return
        raise UndeclaredProblemCode(
            f"{operation} answered {status} `{code}`, which its OpenAPI responses do not declare "
            f"(declared for {status}: {sorted(codes) or 'nothing'}); add it to the route's problem_responses()"
        )
