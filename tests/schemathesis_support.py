"""A real Dealcoach server in a subprocess, a seeded organisation, and the harness of the
schemathesis run (tests/api/test_schemathesis.py).

The server is started the way an operator would: ``dealcoach bootstrap`` (migrates, creates the
first organisation and admin key) then ``dealcoach serve`` on a free loopback port. Everything is
found relative to the running interpreter, so this works from any fresh clone's virtualenv.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import itertools
import json
import os
import string
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from schemathesis import engine
from schemathesis.engine import Status, events
from schemathesis.generation.meta import TestPhase
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER
from schemathesis.wfc.escalation import record_auth_outcome

from tests.pg import PG_URL, REQUIRE_POSTGRES, fresh_pg_database, pg_unreachable
from tests.process import free_port

REPO = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).parent / "dealcoach"
# The console script of this virtualenv; `python -m app.cli` when the project is not installed.
DEALCOACH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
STARTUP_TIMEOUT = 30.0


@dataclass
class LiveServer:
    base_url: str
    api_key: str
    organization_id: str
    member_id: str
    log_path: Path

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int, limit: int = 8000) -> str:
        """What the server logged after ``offset`` (its tracebacks explain a 500), at most ``limit`` chars."""
        with self.log_path.open("rb") as fh:
            fh.seek(offset)
            text = "".join(_readable(line) for line in fh.read().decode("utf-8", "replace").splitlines(keepends=True))
        return text if len(text) <= limit else "...\n" + text[-limit:]


def _readable(line: str) -> str:
    """A JSON log line with its traceback unfolded; any other line as is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "exception" not in record:
        return line
    exception = record.pop("exception")
    return f"{json.dumps(record, ensure_ascii=True)}\n{exception}\n"


def _server_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALCOACH_")}
    env.update(
        DEALCOACH_DATABASE_URL=database_url,
        DEALCOACH_ACCESS_LOG="false",
        DEALCOACH_LOG_LEVEL="WARNING",
        DEALCOACH_RATE_LIMIT_PER_SECOND="0",  # the fuzzer sends far more than a client may
        # Webhook endpoints on loopback, and nobody delivering to them: the fuzzer's endpoints
        # would otherwise have the server post to whatever it listens on.
        DEALCOACH_WEBHOOKS_ALLOW_PRIVATE="true",
        DEALCOACH_WEBHOOKS_DISPATCHER="off",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


@contextlib.contextmanager
def live_server(database_url: str, workdir: Path) -> Iterator[LiveServer]:
    """Bootstrap the database, serve it on a free loopback port, and stop the server on exit."""
    env = _server_env(database_url)
    # cwd=workdir so that no stray .env file of the checkout leaks into the server's settings.
    boot = subprocess.run(
        [*DEALCOACH, "bootstrap", "--org", "Fuzz", "--admin-email", "fuzz@example.test"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if boot.returncode != 0:
        raise RuntimeError(f"dealcoach bootstrap failed ({boot.returncode}):\n{boot.stdout}\n{boot.stderr}")
    created = json.loads(boot.stdout.strip().splitlines()[-1])

    port = free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*DEALCOACH, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        api_key=created["api_key"],
        organization_id=created["organization_id"],
        member_id=created["member_id"],
        log_path=log_path,
    )
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(server: LiveServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer yet"
    # One client for all the polls: each new one builds an SSL context, tens of milliseconds of CPU
    # taken from the server that is starting.
    with httpx.Client(base_url=server.base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"dealcoach serve exited with {process.returncode}:\n{server.log_since(0)}")
            try:
                response = http.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
    raise RuntimeError(f"server not ready after {STARTUP_TIMEOUT}s ({last}):\n{server.log_since(0)}")


@dataclass
class Identity:
    """A member the fuzzer acts as: its API key, and the key's id (which the run must not revoke)."""

    member_id: str
    api_key: str
    key_id: str


@dataclass
class World:
    """What the fuzzer finds in the organisation before it starts.

    ``identities``: who it acts as (see tests/api/test_schemathesis.py for the order and why).
    ``targets``: existing resources by path parameter name, so that cases reach the handlers and
    the rules instead of the 404 every made-up id gets. ``references``: ids a request body or
    query names (an owner, an approver, an attendee, a catalog code), by field.
    """

    identities: dict[str, Identity]
    targets: dict[str, list[str]]
    references: dict[str, list[str]]


PAST = "2024-03-04T10:00:00Z"


def seed_world(server: LiveServer) -> World:
    """A head of sales, a manager with two sellers (and a throwaway seller), a deal of the first
    seller with every kind of object on it in every state an action needs (a held call with an
    intervention, draft, shared and acknowledged observations, an open commitment, a pending
    approval, a requested assignment, a suggestion), two lost deals (one review pending, one
    completed), and a webhook endpoint with a delivery.

    Everything is made through the API, as the member who may make it. Extend this when a
    resource with a new path parameter or a new member reference joins the API.
    """
    with httpx.Client(base_url=server.base_url, timeout=10) as http:

        def call(who: str, method: str, url: str, **kw: Any) -> Any:
            headers = {"Authorization": f"Bearer {keys[who]}", **kw.pop("headers", {})}
            response = http.request(method, url, headers=headers, **kw)
            if response.status_code >= 300:
                raise RuntimeError(f"seeding: {method} {url} as {who} -> {response.status_code} {response.text}")
            return response.json() if response.content else None

        keys = {"admin": server.api_key}
        identities: dict[str, Identity] = {}
        admin_keys = call("admin", "GET", f"/v1/members/{server.member_id}/api-keys")["items"]
        identities["admin"] = Identity(server.member_id, server.api_key, admin_keys[0]["id"])

        def member(name: str, role: str, manager_id: str | None = None) -> str:
            body = {"name": name, "email": f"{name.lower().replace(' ', '.')}@example.test", "role": role}
            return str(call("admin", "POST", "/v1/members", json={**body, "manager_id": manager_id})["id"])

        manager = member("Fuzz Manager", "manager")
        head = member("Fuzz Head", "head_of_sales")
        sellers = {name: member(f"Fuzz {name}", "seller", manager) for name in ("seller_a", "seller_b")}
        for name, member_id in {"manager": manager, "head_of_sales": head, **sellers}.items():
            key = call("admin", "POST", f"/v1/members/{member_id}/api-keys", json={"label": name})
            keys[name] = key["api_key"]
            identities[name] = Identity(member_id, key["api_key"], key["id"])
        seller = sellers["seller_a"]
        # A member and a key that the fuzzer may change or revoke without locking itself out.
        target = member("Fuzz Target", "seller", manager)
        target_key = call("admin", "POST", f"/v1/members/{target}/api-keys", json={"label": "fuzz target"})

        deal = call(
            "seller_a",
            "PUT",
            "/v1/deals/by-external-ref/fuzz/deal-1",
            json={"name": "Fuzz deal", "account_name": "Fuzz Inc", "owner_id": seller},
        )["id"]
        attendees = [
            {"member_id": seller, "call_role": "lead"},
            {"member_id": manager, "call_role": "observer", "agreed_part": "Watch the discovery questions"},
        ]
        held = call("seller_a", "POST", f"/v1/deals/{deal}/calls", json={"scheduled_at": PAST, "attendees": attendees})
        call("seller_a", "PATCH", f"/v1/calls/{held['id']}", json={"held_at": PAST}, headers={"If-Match": '"1"'})
        intervention = call(
            "seller_a",
            "POST",
            f"/v1/calls/{held['id']}/interventions",
            json={"member_id": manager, "kind": "answered_question"},
        )
        strengths = {"strengths": [{"skill_code": "discovery", "note": "Good questions"}]}
        # Two drafts for the observer to share, two shared for the seller to acknowledge, one acknowledged.
        observations = [
            call("manager", "POST", f"/v1/calls/{held['id']}/observations", json=strengths)["id"] for _ in range(5)
        ]
        for observation in observations[2:]:
            call("manager", "POST", f"/v1/observations/{observation}/share")
        acknowledgement = {"reflection": "Fair", "commitments": ["Ask about budget in the first call"]}
        call("seller_a", "POST", f"/v1/observations/{observations[4]}/acknowledge", json=acknowledgement)
        commitment = call("seller_a", "GET", "/v1/commitments")["items"][0]["id"]
        term = {"kind": "discount", "description": "Launch discount", "value": "10%", "applies_to": "licences"}
        approval = call(
            "seller_a", "POST", f"/v1/deals/{deal}/approvals", json={"approver_id": manager, "terms": [term]}
        )
        assignment = call(
            "seller_a", "POST", f"/v1/deals/{deal}/assignments", json={"member_id": manager, "role": "coach"}
        )
        suggestion = call(
            "manager", "POST", f"/v1/deals/{deal}/strategy/suggestions", json={"section": "risks", "body": "Budget"}
        )
        lost = call(
            "seller_a",
            "POST",
            "/v1/deals",
            json={"name": "Lost deal", "account_name": "Gone Inc", "owner_id": seller},
        )["id"]
        call(
            "seller_a",
            "PATCH",
            f"/v1/deals/{lost}",
            json={"stage": "closed_lost", "loss": {"reason_code": "price"}},
        )
        review = call("manager", "GET", "/v1/closed-lost-reviews")["items"][0]["id"]
        # A second loss whose review is completed: the feedback listing shows it.
        gone = call(
            "seller_a", "POST", "/v1/deals", json={"name": "Gone deal", "account_name": "Gone Ltd", "owner_id": seller}
        )["id"]
        call("seller_a", "PATCH", f"/v1/deals/{gone}", json={"stage": "closed_lost", "loss": {"reason_code": "price"}})
        completed = next(r for r in call("manager", "GET", "/v1/closed-lost-reviews")["items"] if r["deal_id"] == gone)
        call("seller_a", "PATCH", f"/v1/closed-lost-reviews/{completed['id']}", json={"seller_reflection": "Too late"})
        findings = {
            "loss_reason_confirmed": True,
            "lessons": ["Qualify budget first"],
            "product_feedback": "Needs SSO",
            "enablement_feedback": "Pricing training",
            "action_items": [{"description": "Review the pricing deck", "assignee_id": seller}],
        }
        call("manager", "PATCH", f"/v1/closed-lost-reviews/{completed['id']}", json=findings)
        call("manager", "POST", f"/v1/closed-lost-reviews/{completed['id']}/complete")
        # Nothing listens there: deliveries are never attempted (the fuzz server runs no dispatcher).
        hook_url = f"http://127.0.0.1:{free_port()}/hooks"
        endpoint = call("admin", "POST", "/v1/webhook-endpoints", json={"url": hook_url, "event_types": ["*"]})
        delivery = call("admin", "POST", f"/v1/webhook-endpoints/{endpoint['id']}/ping")
        skills = [item["code"] for item in call("admin", "GET", "/v1/skills")["items"]][:3]
        reasons = [item["code"] for item in call("admin", "GET", "/v1/loss-reasons")["items"]][:3]

    targets = {
        "member_id": [target, seller],
        "key_id": [target_key["id"]],
        "code": [skills[0], reasons[0]],
        "deal_id": [deal, lost, gone],
        "suggestion_id": [suggestion["id"]],
        "assignment_id": [assignment["id"]],
        "call_id": [held["id"]],
        "intervention_id": [intervention["id"]],
        "observation_id": observations,
        "approval_id": [approval["id"]],
        "review_id": [review, completed["id"]],
        "commitment_id": [commitment],
        "endpoint_id": [endpoint["id"]],
        "delivery_id": [delivery["id"]],
        "source": ["fuzz"],
        "external_id": ["deal-1"],
    }
    references = {
        "owner_id": [seller],
        "seller_id": [seller],
        "approver_id": [manager],
        "manager_id": [manager],
        "reviewer_id": [manager],
        "observer_id": [manager],
        "member_id": [manager, seller],
        "assignee_id": [seller, manager],
        "deal_id": [deal, lost],
        "skill_code": skills,
        "reason_code": reasons,
        "url": [hook_url],
    }
    return World(identities, targets, references)


# --- The run: identities, dictionaries, hooks and what it reached ----------------------------

# Who the fuzzer acts as, in the order schemathesis tries them: each operation starts with the
# first and moves to the next on a 401 or 403 until one is admitted, then keeps it. The first
# seller comes first, so that reads of what the sellers own are made as a seller, which is what
# object_level_authorization needs; the manager next, to decide approvals, observe calls and
# review losses in the sellers' line; the head of sales for leadership notes on reviews; the admin
# for admin-only writes; the second seller last, as the peer whose probes must never get the first
# seller's objects.
IDENTITIES = ("seller_a", "manager", "head_of_sales", "admin", "seller_b")
PEERS = ("seller_a", "seller_b")

# Body fields that name an existing thing, and the World.references entry that holds real ones.
BODY_REFERENCES = {
    "owner_id": "owner_id",
    "records[*].owner_id": "owner_id",
    "approver_id": "approver_id",
    "manager_id": "manager_id",
    "member_id": "member_id",
    "attendees[*].member_id": "member_id",
    "next_steps[*].assignee_id": "assignee_id",
    "action_items[*].assignee_id": "assignee_id",
    "loss.reason_code": "reason_code",
    "records[*].loss.reason_code": "reason_code",
    "loss_reason_code": "reason_code",
    "strengths[*].skill_code": "skill_code",
    "improvements[*].skill_code": "skill_code",
    "skill_gaps[*]": "skill_code",
    "suggested_skills[*]": "skill_code",
    "url": "url",
}
QUERY_REFERENCES = ("owner_id", "seller_id", "manager_id", "reviewer_id", "observer_id", "member_id", "deal_id")
# How often a generated value is replaced by a real one: often enough to pass the lookups, not
# so often that the made-up ids (404) and the rules' refusals go untested.
TARGET_PROBABILITY = 0.9
REFERENCE_PROBABILITY = 0.8


def write_wfc_auth(world: World, path: Path) -> Path:
    """The identities as a Web Fuzzing Commons auth document, which is how schemathesis takes several users."""
    entries = [
        {
            "name": name,
            "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {world.identities[name].api_key}"}],
        }
        for name in IDENTITIES
    ]
    path.write_text(json.dumps({"auth": entries}), encoding="utf-8")
    return path


def dictionaries(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """Schemathesis fuzz dictionaries and the parameter bindings that draw from them."""
    values: dict[str, Any] = {}
    bindings: dict[str, Any] = {}
    for name, ids in world.targets.items():
        values[f"path_{name}"] = {"values": ids}
        bindings[f"path.{name}"] = {"dictionary": f"path_{name}", "probability": TARGET_PROBABILITY}
    for name, ids in world.references.items():
        values[f"ref_{name}"] = {"values": ids}
    for field_path, name in BODY_REFERENCES.items():
        bindings[f"body.{field_path}"] = {"dictionary": f"ref_{name}", "probability": REFERENCE_PROBABILITY}
    for name in QUERY_REFERENCES:
        bindings[f"query.{name}"] = {"dictionary": f"ref_{name}", "probability": TARGET_PROBABILITY}
    return values, bindings


class Guard:
    """A ``before_call`` hook for the requests of a run's schemas, installed for the length of the run.

    - Every Idempotency-Key is made unique (12 characters of a counter at its end, the length
      otherwise kept). The generators repeat values, and a key reused with another body is
      refused (422 idempotency_key_reused) before the handler runs: it would hide the handler
      behind the idempotency layer for most POSTs. Replays are tested in tests/api/test_idempotency.py.
    - No request may change or revoke the identities the run acts as: a PATCH of one of those
      members or a DELETE of one of their keys is pointed at the throwaway target instead.

    And an ``after_call`` hook: stateful steps teach schemathesis which identity an operation
    takes, as the other phases' requests do (schemathesis 4.32 learns from those only), so an
    operation that unit phases left on an identity it refuses moves on during the stateful rounds.
    """

    ALPHABET = string.ascii_letters + string.digits

    def __init__(self, world: World) -> None:
        self.schemas: list[Any] = []
        self.counter = itertools.count(1)
        self.members = {identity.member_id for identity in world.identities.values()}
        self.keys = {identity.key_id for identity in world.identities.values()}
        self.target_member = world.targets["member_id"][0]
        self.target_key = world.targets["key_id"][0]

    def __call__(self, context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        if not any(case.operation.schema is schema for schema in self.schemas):
            return
        key = (case.headers or {}).get("Idempotency-Key")
        if case.method == "POST" and isinstance(key, str) and 1 <= len(key) <= 255:
            case.headers["Idempotency-Key"] = key[:-12] + self._unique(12)
        path = case.path_parameters or {}
        if case.method == "PATCH" and case.path == "/v1/members/{member_id}" and path.get("member_id") in self.members:
            path["member_id"] = self.target_member
        if case.method == "DELETE" and case.path == "/v1/api-keys/{key_id}" and path.get("key_id") in self.keys:
            path["key_id"] = self.target_key

    def _unique(self, width: int) -> str:
        n, digits = next(self.counter), []
        for _ in range(width):
            n, digit = divmod(n, len(self.ALPHABET))
            digits.append(self.ALPHABET[digit])
        return "".join(reversed(digits))

    def after_call(self, context: Any, case: Any, response: Any) -> None:
        if any(case.operation.schema is schema for schema in self.schemas) and case.meta is not None:
            if case.meta.phase.name == TestPhase.STATEFUL:
                record_auth_outcome(case, response.status_code)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        after_call = self.after_call  # one bound method, so that unregister finds it
        GLOBAL_HOOK_DISPATCHER.register_hook_with_name(self, "before_call")
        GLOBAL_HOOK_DISPATCHER.register_hook_with_name(after_call, "after_call")
        try:
            yield
        finally:
            GLOBAL_HOOK_DISPATCHER.unregister(self)
            GLOBAL_HOOK_DISPATCHER.unregister(after_call)


# Answers that come before the handler has the object in hand: they say nothing about reaching it.
PRE_HANDLER_CODES = frozenset(
    {
        "not_found",
        "validation_error",
        "malformed_json",
        "unauthenticated",
        "payload_too_large",
        "unsupported_media_type",
        "method_not_allowed",
        "idempotency_key_reused",
        "idempotency_in_progress",
        "rate_limited",
    }
)


@dataclass
class Finding:
    phase: str
    check: str
    operation: str
    title: str
    message: str
    curl: str
    answer: str


@dataclass
class RunReport:
    """What one engine run did: failures, per-phase time and requests, what each operation answered."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    # (phase, operation) -> status -> count
    answers: dict[tuple[str, str], collections.Counter[str]] = field(default_factory=dict)
    # Requests a peer sent to replay another seller's read (object_level_authorization probes).
    peer_probes: int = 0
    transitions: str = ""
    scenarios: int = 0
    rounds: int = 0
    # The stateful scenario count at which each operation was first reached.
    first_reached: dict[str, int] = field(default_factory=dict)

    def reached(self, phase: str) -> set[str]:
        """Operations that answered about an existing object in ``phase``: a success, or a refusal
        by one of the object's rules (not a 404, nor a refusal before the handler has the object)."""
        return {
            operation
            for (where, operation), answers in self.answers.items()
            if where == phase and any(_about_the_object(answer) for answer in answers)
        }


def _about_the_object(answer: str) -> bool:
    status, _, code = answer.partition(" ")
    return status[0] in "23" or (status[0] == "4" and code not in PRE_HANDLER_CODES)


@contextlib.contextmanager
def _one_ast_at_a_time() -> Iterator[None]:
    """``ast.parse`` serialised while the engine runs. CPython 3.11 before 3.11.9 can raise a
    spurious ``SystemError: AST constructor recursion depth mismatch`` when two threads build ASTs
    at once (python/cpython#106905); the engine's workers are threads, and Hypothesis parses
    source as it runs (to describe its strategies). Seen here as a "Runtime Error" of the engine on
    a random operation, in about one run of five on PostgreSQL."""
    lock = threading.Lock()
    parse = ast.parse

    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    ast.parse = one_at_a_time  # type: ignore[assignment]
    try:
        yield
    finally:
        ast.parse = parse


def run_engine(schema: Any, base_url: str, report: RunReport) -> RunReport:
    """Run every phase ``schema``'s config enables, adding what happened to ``report``."""
    started: dict[str, float] = {}
    with _one_ast_at_a_time():
        for event in engine.from_schema(schema).execute():
            _take(report, event, started, base_url)
    return report


def _take(report: RunReport, event: Any, started: dict[str, float], base_url: str) -> None:
    """One engine event into ``report``."""
    if isinstance(event, events.PhaseStarted):
        started[event.phase.name.value] = time.monotonic()
        if event.payload is not None:
            report.transitions = (
                f"{event.payload.transitions_total} links ({event.payload.inferred_transitions} inferred)"
            )
    elif isinstance(event, events.PhaseFinished):
        name = event.phase.name.value
        if name in started:
            report.seconds[name] = report.seconds.get(name, 0.0) + time.monotonic() - started.pop(name)
    elif isinstance(event, events.ScenarioFinished):
        if event.phase.value == "stateful":
            report.scenarios += 1
        _record(report, event, base_url)
    elif isinstance(event, (events.NonFatalError, events.FatalError)):
        report.errors.append(_describe_error(event))


def _record(report: RunReport, event: Any, base_url: str) -> None:
    phase = event.phase.value
    recorder = event.recorder
    for case_id, interaction in recorder.interactions.items():
        node = recorder.cases.get(case_id)
        if node is None or interaction.response is None:
            continue
        case = node.value
        report.requests[phase] += 1
        status = interaction.response.status_code
        code = ""
        if status >= 400:
            with contextlib.suppress(ValueError, AttributeError):
                code = str(interaction.response.json().get("code", ""))
        answer = f"{status} {code}"
        report.answers.setdefault((phase, case.operation.label), collections.Counter())[answer] += 1
        if phase == "stateful" and _about_the_object(answer):
            report.first_reached.setdefault(case.operation.label, report.scenarios)
        parent = recorder.cases.get(node.parent_id) if node.parent_id else None
        if case.auth_identity == PEERS[1] and parent is not None and parent.value.auth_identity == PEERS[0]:
            report.peer_probes += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            case = recorder.cases[case_id].value
            failure = check.failure_info.failure
            interaction = recorder.interactions.get(case_id)
            answer = ""
            if interaction is not None and interaction.response is not None:
                answer = f"{interaction.response.status_code} {interaction.response.text[:1000]}"
            report.findings.append(
                Finding(
                    phase=phase,
                    check=check.name,
                    operation=case.operation.label,
                    title=failure.title,
                    message=failure.message,
                    curl=case.as_curl_command(base_url=base_url),
                    answer=answer,
                )
            )


def _describe_error(event: Any) -> str:
    if isinstance(event, events.NonFatalError):  # the engine's own error: where it was raised says most
        where = "".join(traceback.format_exception(event.value)[-6:])
        return f"{event.label}: {event.info.title}: {event.info.message}\n{where}"
    return f"fatal: {event.exception!r}"


# --- PostgreSQL: see tests/pg.py ---------------------------------------------------------------

__all__ = [
    "PG_URL",
    "REQUIRE_POSTGRES",
    "LiveServer",
    "free_port",
    "fresh_pg_database",
    "live_server",
    "pg_unreachable",
]
