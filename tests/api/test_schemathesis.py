"""Schemathesis over the whole OpenAPI document, against a real server: every phase, every check.

One run per database backend through schemathesis' engine (what ``st run`` drives), against
``dealcoach serve`` on loopback, in an organisation seeded with a head of sales, a manager, two
sellers and every kind of object (tests/schemathesis_support.py):

- phases: examples; coverage (every boundary and every kind of invalid value the schema
  implies, each undeclared method); fuzzing (generated requests per operation); stateful
  (scenarios that follow the document's OpenAPI links, app/openapi.py: a deal into its strategy,
  calls, observations, approvals, assignments and suggestions, a review into its steps);
- checks: all of them (CHECKS). No 5xx; status, content type, headers and body as documented;
  401 without the key; 405 with a right Allow header; schema-valid requests accepted and
  schema-invalid ones refused (with the narrow, documented exceptions below); no use after a
  delete; what was created can be read; object-level authorization: a read the first seller
  makes of what it created or listed is replayed as the second seller, who must not get it.

Identities, in the order schemathesis tries them per operation until one is admitted: the first
seller, the manager, the head of sales, the admin, the second seller (IDENTITIES). Real ids reach
the fuzzer through fuzz dictionaries (the seeded objects by path parameter, members and catalog
codes by body field), so that most cases get past the 404 of a made-up id to the rules.

The stateful phase runs in rounds (see fuzz) until SCENARIOS scenarios ran and every DEEP
operation was reached, at most MAX_SCENARIOS; the report printed with each run (pytest -rP)
says per operation what the stateful phase got, and from which scenario on.

Budget: the coverage phase runs on PostgreSQL only. It is deterministic (the same ~5,800
requests on either backend), mostly refused by validation before any SQL, and costs more than
the three other phases together; PostgreSQL is the production database and the stricter one
(NUL bytes, lengths, ranges), so it is where boundary values are worth sending. SQLite gets the
three other phases.

Knobs (environment): DEALCOACH_FUZZ_EXAMPLES (fuzzing examples per operation),
DEALCOACH_FUZZ_SCENARIOS, DEALCOACH_FUZZ_MAX_SCENARIOS and DEALCOACH_FUZZ_STEPS (stateful
scenarios, their cap and steps per scenario), DEALCOACH_FUZZ_WORKERS (concurrent requests),
DEALCOACH_FUZZ_SEED; REQUIRE_POSTGRES=1 turns "PostgreSQL unreachable" into a failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import ObjectLevelAuthorizationViolation, RejectedPositiveData, UseAfterFree

from app.openapi import generate
from tests.schemathesis_support import (
    PEERS,
    PG_URL,
    REQUIRE_POSTGRES,
    Guard,
    LiveServer,
    RunReport,
    World,
    dictionaries,
    fresh_pg_database,
    live_server,
    pg_unreachable,
    run_engine,
    seed_world,
    write_wfc_auth,
)

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("DEALCOACH_FUZZ_EXAMPLES", "3"))
SCENARIOS = int(os.environ.get("DEALCOACH_FUZZ_SCENARIOS", "40"))
STEPS = int(os.environ.get("DEALCOACH_FUZZ_STEPS", "20"))
MAX_SCENARIOS = int(os.environ.get("DEALCOACH_FUZZ_MAX_SCENARIOS", "300"))
MAX_ROUNDS = 30
SEED = int(os.environ.get("DEALCOACH_FUZZ_SEED", "20240601"))

SPEC = generate()

PHASES = {
    "sqlite": ("examples", "fuzzing", "stateful"),
    "postgres": ("examples", "coverage", "fuzzing", "stateful"),
}

# Every check schemathesis has, each on (test_every_check_is_on fails when an upgrade adds one, so
# that it is turned on here, or its absence explained, rather than run or skipped unnoticed).
# max_response_time is no check of its own but a limit; set, it would fail on a busy CI machine.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
)
# negative_data_rejection expects a 4xx from the list schemathesis knows, which lacks 412: a PATCH
# or PUT whose If-Match is stale is refused with 412 version_conflict before its body's rules are
# looked at. That is a refusal of the request all the same.
NEGATIVE_DATA_REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428", "429", "5xx"]
# missing_required_header expects 400/401/403/406/415/422 for a request without a required header;
# the one required header the API answers otherwise is If-Match on a whole-document PUT, and that
# answer is 428 precondition_required (RFC 6585), the status for exactly this case.
MISSING_HEADER_REFUSALS = ["400", "401", "403", "406", "415", "422", "428"]

# positive_data_acceptance expects every schema-valid request to succeed (or 401/403/404/409). These
# documented refusals answer schema-valid requests because of what only the server knows: other
# records, the caller, the state of the object, the clock, DNS. Each is still checked for its
# status, content type and body; any other 4xx code on a schema-valid request fails the run (a
# `validation_error` means the schema lets through what the product refuses: fix the schema).
DOCUMENTED_REFUSALS = {
    "invalid_cursor": "a cursor is opaque, bound to the listing and organisation that issued it",
    "version_conflict": "If-Match must name the version the server holds now",
    "owner_must_be_seller": "the owner id must name an active seller",
    "invalid_reporting_line": "the manager id must name a manager, with no cycle in the line",
    "approver_not_in_line": "the approver must be above the deal's owner",
    "invalid_assignee": "the member must be an active seller, manager or head of sales",
    "owner_not_assignable": "the member must not be the deal's owner",
    "unknown_member": "an intervention's member must have attended the call",
    "call_lead_must_be_owner": "the lead must be the deal's owner",
    "manager_role_not_agreed": "a manager attending needs an agreed part",
    "loss_requires_closed_lost": "a loss goes with the deal's move to closed_lost",
    "loss_reason_required": "a move to closed_lost needs a loss",
    "transfer_reason_required": "a new owner needs a transfer reason",
    "unknown_loss_reason": "the loss-reason catalog is the organisation's, edited at run time",
    "unknown_skill": "the skill catalog is the organisation's, edited at run time",
    "too_many_improvements": "the limit is an organisation setting",
    "review_incomplete": "completion needs what the review holds so far",
    "held_in_future": "a call is held in the past, by the server's clock",
    "webhook_url_not_allowed": "the URL's host must resolve, and to public addresses",
    "oidc_issuer_not_allowed": "an issuer is an https URL (http too where the server allows it), no query",
    "malformed_payload": "a CRM's webhook body is its provider's format, which the schema states only in part "
    "(ids not empty, no NUL anywhere, bounded nesting)",
}
# `validation_error` from rules across fields or records, which a JSON schema cannot state; each is
# in the field's OpenAPI description. Matched on the problem's detail or an error's msg.
CROSS_FIELD_RULES = {
    "the window covers at most": "`from` and `to` span at most 366 days",
    "from is after to": "`from` is on or before `to`",
    "amounts have at most": "an amount has at most its currency's decimal places",
    "is not among the observation's improvements": "a commitment's skill is one of the observation's improvements",
    "A new deal needs": "an upsert that creates a deal needs its name, account and owner",
    "is listed more than once": "a call's attendees are distinct members",
    "next_steps ids must be unique": "a strategy's next steps have distinct ids",
    "the time is out of range in UTC": "a timestamp's offset must not take it out of years 1 to 9999 in UTC",
    "is not a week of the ISO calendar": "week 53 exists in long ISO years only",
    "oidc_audience is required while oidc_issuer is set": "an identity provider needs an audience",
}

# Operations the stateful phase must reach (an answer about an existing object: a success, or a
# refusal by one of its rules; not a 404, nor a refusal before the handler has the object): the
# deal's chain, deep down. The summary printed with each run lists what it reached besides.
DEEP = (
    "PUT /v1/deals/{deal_id}/strategy",
    "POST /v1/deals/{deal_id}/calls",
    "POST /v1/calls/{call_id}/interventions",
    "POST /v1/calls/{call_id}/observations",
    "POST /v1/observations/{observation_id}/share",
    "POST /v1/observations/{observation_id}/acknowledge",
    "POST /v1/deals/{deal_id}/approvals",
    "POST /v1/approvals/{approval_id}/approve",
    "POST /v1/approvals/{approval_id}/reject",
    "POST /v1/deals/{deal_id}/assignments",
    "POST /v1/assignments/{assignment_id}/accept",
    "POST /v1/deals/{deal_id}/strategy/suggestions",
    "POST /v1/deals/{deal_id}/strategy/suggestions/{suggestion_id}/accept",
    "PATCH /v1/closed-lost-reviews/{review_id}",
    "POST /v1/closed-lost-reviews/{review_id}/complete",
    "POST /v1/commitments/{commitment_id}/complete",
)

_BATCH_RECORD = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/DealBatchRecord", "components": SPEC["components"]}, validate_formats=True
)


# Reads of what every member of the organisation sees alike; a peer reading one is not a bypass.
ORGANIZATION_WIDE_READS = frozenset({"GET /v1/members/{member_id}"})


def keep_failure(context: Any, failure: Any, case: schemathesis.Case, response: Any) -> bool:
    """The narrow exceptions to two checks; every other failure fails the run."""
    if isinstance(failure, RejectedPositiveData):
        return not _documented_refusal(response)
    if isinstance(failure, UseAfterFree) and case.operation.label == "GET /v1/api-keys/{key_id}":
        # DELETE revokes a key; a revoked key stays readable with its `revoked_at` (API.md), and
        # only an unrevoked one would be a key still in use after its deletion.
        return not (response.status_code == 200 and bool(response.json().get("revoked_at")))
    if isinstance(failure, ObjectLevelAuthorizationViolation) and case.operation.label in ORGANIZATION_WIDE_READS:
        # Every member of an organisation sees its members (API.md): a colleague is nobody's object.
        return False
    if isinstance(failure, AcceptedNegativeData) and case.operation.label == "POST /v1/deals/batch-upsert":
        # One bad record never spoils the others: a record the schema refuses gets its own `error`
        # result in a 200. The check holds when every such record got one.
        return not _batch_refused_invalid_records(case, response)
    return True


def _documented_refusal(response: Any) -> bool:
    content_type = response.headers.get("content-type") or [""]  # schemathesis lists each header's values
    if str(content_type[0] if isinstance(content_type, list) else content_type).startswith("text/xml"):
        # A Salesforce Outbound Message is SOAP, which its schema (a string) cannot state: another
        # string is answered a SOAP fault naming `malformed_payload`.
        return response.status_code == 400 and ">malformed_payload</code>" in response.text
    try:
        problem = response.json()
    except ValueError:
        return False
    code = problem.get("code")
    if code in DOCUMENTED_REFUSALS:
        return True
    if code != "validation_error":
        return False
    texts = [str(problem.get("detail", "")), *(str(e.get("msg", "")) for e in problem.get("errors") or [])]
    return any(rule in text for rule in CROSS_FIELD_RULES for text in texts)


def _batch_refused_invalid_records(case: schemathesis.Case, response: Any) -> bool:
    records = case.body.get("records") if isinstance(case.body, dict) else None
    if response.status_code != 200 or not isinstance(records, list):
        return False
    results = response.json()["results"]
    invalid = [i for i, record in enumerate(records) if not _BATCH_RECORD.is_valid(record)]
    return bool(invalid) and all(results[i]["outcome"] == "error" for i in invalid)


def fuzz_schema(server: LiveServer, world: World, phases: tuple[str, ...], workdir: Path) -> Any:
    values, bindings = dictionaries(world)
    config = schemathesis.Config.from_dict(
        {
            "base-url": server.base_url,
            "seed": SEED,
            # No cache in the working directory: a run must not start from what an earlier one learnt.
            "cache": {"enabled": False},
            "request-timeout": 30,
            # Two requests in flight: the fuzzer generates the next case while the server answers.
            "workers": int(os.environ.get("DEALCOACH_FUZZ_WORKERS", "2")),
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            # deterministic = Hypothesis derandomize: the same cases every run; no example
            # database, so a run never depends on a previous one.
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {
                "examples": {"enabled": "examples" in phases},
                "coverage": {"enabled": "coverage" in phases},
                "fuzzing": {"enabled": "fuzzing" in phases},
                "stateful": {
                    "enabled": "stateful" in phases,
                    "max-steps": STEPS,
                    "generation": {"max-examples": SCENARIOS},
                    # The document's links only (app/openapi.py), not the links schemathesis would
                    # guess on top: its guesses double the transitions and the scenarios spread
                    # so thin that they rarely get past the first link.
                    "inference": {"algorithms": []},
                },
            },
            "checks": {
                **{name: {"enabled": True} for name in CHECKS},
                "negative_data_rejection": {"enabled": True, "expected-statuses": NEGATIVE_DATA_REFUSALS},
                "missing_required_header": {"enabled": True, "expected-statuses": MISSING_HEADER_REFUSALS},
            },
            "auth": {"wfc": {"path": str(write_wfc_auth(world, workdir / "auth.json")), "peers": list(PEERS)}},
            "dictionaries": values,
            "parameters": bindings,
            # The keys belong to a throwaway database; unsanitized output makes the printed curl
            # (Authorization and Idempotency-Key included) reproduce a failure as is.
            "output": {"sanitization": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_dict(SPEC, config=config)
    schema.hook("filter_failure")(keep_failure)
    return schema


def fuzz(server: LiveServer, world: World, backend: str, workdir: Path) -> RunReport:
    """Every phase in one run; then more stateful rounds while fewer than SCENARIOS scenarios ran,
    or some DEEP operation is still unreached (up to MAX_SCENARIOS).

    Schemathesis ends a stateful round as soon as Hypothesis sees a step go differently from the
    same step before (the server's state moved on: a code taken, a deal closed), often a few
    dozen scenarios in. Each further round runs the stateful phase alone, on the same schema (the
    identities schemathesis settled per operation carry over), from the next seed.
    """
    report = RunReport()
    guard = Guard(world)
    schema = fuzz_schema(server, world, PHASES[backend], workdir)
    guard.schemas.append(schema)
    with guard.installed():
        run_engine(schema, server.base_url, report)
        for phase in ("examples", "coverage", "fuzzing"):
            schema.config.phases.get_by_name(name=phase).enabled = False
        while report.rounds < MAX_ROUNDS and report.scenarios < MAX_SCENARIOS:
            if report.scenarios >= SCENARIOS and set(DEEP) <= report.reached("stateful"):
                break
            report.rounds += 1
            schema.config.seed = SEED + report.rounds
            run_engine(schema, server.base_url, report)
    return report


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


def test_every_check_is_on() -> None:
    schemathesis.openapi.from_dict(SPEC)  # loading an OpenAPI schema registers the OpenAPI checks
    assert set(CHECKS) == set(REGISTERED_CHECKS.get_all_names())


def test_api_holds_under_schemathesis(server: LiveServer, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    served = httpx.get(f"{server.base_url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == SPEC, "the server serves another document than the one fuzzed"
    backend = request.node.callspec.params["server"]
    world = seed_world(server)
    offset = server.log_size()
    report = fuzz(server, world, backend, tmp_path)
    print(summary(report, backend))

    problems = [
        f"{f.phase} {f.check} on {f.operation}: {f.title}\n{f.message}\n{f.curl}\n-> {f.answer}"
        for f in report.findings
    ]
    problems += report.errors
    if problems:
        print(f"--- server log ---\n{server.log_since(offset)}")
    assert not problems, "\n\n".join(problems)
    assert set(report.seconds) >= set(PHASES[backend]), f"phases that did not run: {report.seconds}"
    unreached = [label for label in DEEP if label not in report.reached("stateful")]
    assert not unreached, f"the stateful phase did not reach: {unreached}"
    assert report.peer_probes, "object_level_authorization sent no probe as the second seller"


def summary(report: RunReport, backend: str) -> str:
    lines = [
        f"schemathesis on {backend}: {report.transitions}; "
        f"{report.scenarios} stateful scenarios in {report.rounds + 1} rounds"
    ]
    for phase in ("examples", "coverage", "fuzzing", "stateful"):
        if phase in report.seconds:
            lines.append(f"  {phase:<10} {report.seconds[phase]:6.1f} s  {report.requests[phase]:6d} requests")
    lines.append(f"  object_level_authorization probes as {PEERS[1]}: {report.peer_probes}")
    deep = ", ".join(f"{label.split(' ', 1)[1]}@{report.first_reached.get(label, '-')}" for label in DEEP)
    lines.append(f"  DEEP first reached at scenario: {deep}")
    reached = report.reached("stateful")
    chained = sorted(label for label in {op for _, op in report.answers} if "{" in label)
    lines.append(f"  stateful reached {len(reached & set(chained))} of {len(chained)} operations on an id:")
    for label in chained:
        answers = report.answers.get(("stateful", label), {})
        shown = ", ".join(f"{answer.strip()} ×{n}" for answer, n in sorted(answers.items()))
        first = f" (from scenario {report.first_reached[label]})" if label in report.first_reached else ""
        lines.append(f"    {'+' if label in reached else '-'} {label}{first}: {shown or 'not called'}")
    return "\n".join(lines)
