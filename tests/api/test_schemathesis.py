"""Schemathesis over the whole OpenAPI document, against a real server.

Every operation of the app's OpenAPI document becomes one test item per database backend
(``test_api_conforms_to_its_schema[POST /v1/skills][postgres]``), so a route added later is
fuzzed without touching this file. Requests go over loopback to ``dealcoach serve`` (see
tests/schemathesis_support.py), as the bootstrapped organisation's admin, so that authorization
does not stand between the generated requests and the handlers.

Checked: no 5xx; status code, content type, headers and body as documented; 401 without the key;
405 with a right Allow header for undeclared methods (see CHECKS for what is off and why). The
run is deterministic (derandomized Hypothesis, fixed seed) and every failure prints a curl
command; a 500's server-side traceback is under "Captured stdout call".

Where the schema comes from. The ideal is to load it from the live server's /openapi.json with
``schemathesis.pytest.from_fixture``, but on pytest >= 9.2 (installed here) that loader crashes
with ``AttributeError: 'Function' object has no attribute '_nodeid'`` (schemathesis 4.32.5,
``schemathesis/pytest/lazy.py`` renames items through the removed ``Node._nodeid``). So the items
are collected from the document the app factory generates (``app.openapi.generate``, the same
function that answers /openapi.json), and ``test_served_spec_is_the_fuzzed_spec`` proves that
the running server serves exactly that document.

Knobs (environment): DEALCOACH_FUZZ_EXAMPLES (fuzzing examples per operation, default 20),
DEALCOACH_FUZZ_SEED; REQUIRE_POSTGRES=1 turns "PostgreSQL unreachable" into a failure.
"""

from __future__ import annotations

import contextlib
import copy
import os
import zlib
from collections.abc import Iterator
from urllib.parse import quote, unquote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation

from app.openapi import generate
from tests.schemathesis_support import (
    PG_URL,
    REQUIRE_POSTGRES,
    LiveServer,
    fresh_pg_database,
    live_server,
    pg_unreachable,
)

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("DEALCOACH_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("DEALCOACH_FUZZ_SEED", "20240601"))

SPEC = generate()

# The checks, chosen one by one (anything not listed is off, so a schemathesis upgrade cannot
# silently add a check that fails the suite):
CHECKS = {
    # No 5xx, ever; the only documented one, 503 database_unavailable, means the fixture broke.
    "not_a_server_error": {"enabled": True},
    # The response conforms to the schema: documented status, documented content type
    # (application/problem+json for errors), documented headers (ETag, ...), body valid.
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_headers_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
    # Every operation that declares HTTPBearer answers 401 without the key.
    "ignored_auth": {"enabled": True},
    "missing_required_header": {"enabled": True},
    # HTTP semantics: an undeclared method answers 405 with an Allow header listing the right methods.
    "unsupported_method": {"enabled": True},
    "allow_header_conformance": {"enabled": True},
    # OFF: positive_data_acceptance expects 2xx/401/403/404/409 for every schema-valid request.
    # Our API legitimately answers 422/412 to schema-valid input that breaks a rule the schema
    # cannot express: an opaque `cursor` that is not one we issued (422 invalid_cursor), a
    # `manager_id` naming no member (422 invalid_reporting_line), an Idempotency-Key reused with a
    # different body (422 idempotency_key_reused), a stale If-Match (412 version_conflict). Those
    # answers are still checked above (documented status, problem+json, valid body).
    "positive_data_acceptance": {"enabled": False},
    # OFF: negative_data_rejection expects a 4xx for every request the schema calls invalid. Our API
    # legitimately accepts some: pydantic's lax mode coerces `"active": 0` to false and a number to a
    # date/datetime (`updated_since=0.5`), and on the wire every query value is a string, so
    # `?type=false` is a valid string although schemathesis generated it as a boolean. The negative
    # cases are still sent, and their answers must still be documented, problem+json and no 5xx.
    "negative_data_rejection": {"enabled": False},
    # OFF: these need the stateful phase (links between operations), which the per-operation
    # pytest integration does not run; in this mode they could only pass vacuously.
    "use_after_free": {"enabled": False},
    "ensure_resource_availability": {"enabled": False},
    "object_level_authorization": {"enabled": False},
}

schema = schemathesis.openapi.from_dict(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            # deterministic = Hypothesis derandomize: the same examples every run; no example
            # database, so a run never depends on a previous one.
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {"enabled": False, **CHECKS},
            # The key belongs to a throwaway database; unsanitized output makes the printed curl
            # (Authorization and Idempotency-Key included) reproduce the failure as is.
            "output": {"sanitization": {"enabled": False}},
        }
    ),
)


# Authentication goes through schemathesis' auth, so that it knows the API is authenticated (no
# random Bearer tokens, ignored_auth probes without the key) and leaves the negative cases that
# drop or mangle Authorization as generated. Coverage cases are built at collection time, before
# any server (and key) exists, so the provider hands out a placeholder; the test sends the live
# admin key instead wherever the placeholder is. A case without it tests authentication itself.
KEY_PLACEHOLDER = "dealcoach-fuzz-admin-key"


@schema.auth(refresh_interval=None)
class AdminKey:
    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        return KEY_PLACEHOLDER

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres_only)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{workdir / 'fuzz.db'}"
        else:
            problem = pg_unreachable()
            if problem is not None:
                if REQUIRE_POSTGRES:
                    pytest.fail(f"REQUIRE_POSTGRES=1 but PostgreSQL is unreachable at {PG_URL}: {problem}")
                pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {problem}")
            url = stack.enter_context(fresh_pg_database("dealcoach_fuzz"))
        yield stack.enter_context(live_server(url, workdir))


def test_served_spec_is_the_fuzzed_spec(server: LiveServer) -> None:
    response = httpx.get(f"{server.base_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == SPEC, "the server serves another document than the one fuzzed"


def _share(fingerprint: str, name: str, buckets: int) -> int:
    """A deterministic pick in range(buckets) for one parameter of one request."""
    return zlib.crc32(f"{fingerprint}|{name}".encode()) % buckets


def _with_nul(text: str) -> str:
    """The same text, its last character (if any) replaced by NUL: same length, so still schema-valid."""
    return text[:-1] + "\x00"


def steer(case: schemathesis.Case, targets: dict[str, list[str]]) -> None:
    """Deterministically rewrite some path and query values of a case, keeping it schema-valid.

    Path parameters: some are pointed at existing resources (see seed_targets), so PATCH, DELETE
    and GET-one reach their handlers and the database instead of the 404 every random id gets.
    Path and query strings: some get a NUL. Any character is valid for these parameters, yet
    PostgreSQL refuses NUL in text, so the app must answer 4xx before the value reaches SQL;
    schemathesis itself never puts a NUL in a path and rarely in a query value.
    A location generated as invalid (a negative case) is left alone.
    """
    body = None if isinstance(case.body, NotSet) else case.body  # NotSet's repr holds a memory address
    fingerprint = repr((case.operation.label, case.path_parameters, case.query, body))
    negative_at = case.meta.is_negative_at if case.meta is not None else (lambda _: False)
    if case.path_parameters and not negative_at(ParameterLocation.PATH):
        for name, value in case.path_parameters.items():
            candidates = targets.get(name, [])
            pick = _share(fingerprint, name, len(candidates) + 2)
            if pick < len(candidates):
                case.path_parameters[name] = candidates[pick]
            elif pick == len(candidates) and isinstance(value, str):
                # Path values are held percent-encoded.
                case.path_parameters[name] = quote(_with_nul(unquote(value)), safe="")
    if case.query and not negative_at(ParameterLocation.QUERY):
        for name, value in case.query.items():
            if _share(fingerprint, name, 4) == 0:
                if isinstance(value, str):
                    case.query[name] = _with_nul(value)
                elif isinstance(value, list) and value and isinstance(value[0], str):
                    case.query[name] = [_with_nul(value[0]), *value[1:]]


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, server: LiveServer) -> None:
    # Coverage-phase cases are built once, at collection, and shared by both backends' runs: the
    # case is sent with the live key and steered values, but left as it was generated.
    as_admin = (case.headers or {}).get("Authorization") == f"Bearer {KEY_PLACEHOLDER}"
    headers = {"Authorization": f"Bearer {server.api_key}"} if as_admin else None
    generated = (copy.deepcopy(case.path_parameters), copy.deepcopy(case.query))
    steer(case, server.targets)
    offset = server.log_size()
    try:
        response = case.call_and_validate(base_url=server.base_url, headers=headers, timeout=30)
        # Guards the fuzzing itself: were the admin key refused, every case would stop at 401.
        assert not (as_admin and response.status_code == 401), f"the admin key was refused: {response.text}"
    finally:
        # A 500's traceback is in the server's log, not in the response. Printed output shows up under
        # "Captured stdout call" of a failing item (schemathesis drops exception notes).
        log = server.log_since(offset)
        if log.strip():
            print(f"--- server log during {case.method} {case.formatted_path} ---\n{log}")
        for container, original in zip((case.path_parameters, case.query), generated, strict=True):
            if container is not None and original is not None:
                container.clear()
                container.update(original)
