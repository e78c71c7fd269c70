"""Webhooks out: which events an endpoint receives, which URLs may receive them, how a
failed delivery is retried, and how deliveries are signed (Standard Webhooks)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import functools
import hashlib
import hmac
import ipaddress
import random
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from app.domain.errors import FieldProblem, MissingFields, UnknownEventType, WebhookUrlNotAllowed

# Every event type the feed carries, by family. A webhook endpoint subscribes to some of
# them, to a whole family (`deal.*`) or to everything (`*`).
EVENT_TYPES: frozenset[str] = frozenset(
    f"{family}.{verb}"
    for family, verbs in {
        "organization": ("created",),
        "settings": ("updated",),
        "member": ("created", "updated"),
        "api_key": ("created", "revoked"),
        "skill": ("created", "updated"),
        "loss_reason": ("created", "updated"),
        "deal": ("created", "updated", "owner_transferred", "stage_changed", "deleted_in_crm"),
        "strategy": ("updated",),
        "suggestion": ("created", "accepted", "declined"),
        "assignment": ("requested", "proposed", "accepted", "declined", "ended"),
        "call": ("created", "updated", "held", "takeover"),
        "intervention": ("recorded",),
        "observation": ("created", "updated", "shared", "acknowledged"),
        "approval": ("requested", "approved", "rejected", "relied_upon", "revoked"),
        "review": ("opened", "updated", "completed", "deal_reopened", "leadership_noted"),
        "commitment": ("created", "completed", "dropped"),
        "webhook_endpoint": ("created", "updated", "deleted", "secret_rotated"),
        "integration": ("created", "updated"),
    }.items()
    for verb in verbs
)
PING = "webhook.ping"
FAMILIES: frozenset[str] = frozenset(t.partition(".")[0] for t in EVENT_TYPES)

MAX_EVENT_TYPES = 100
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
PREVIOUS_SECRET_GRACE = dt.timedelta(hours=24)

# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; then the delivery has failed.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.1
FAILING_FOR = dt.timedelta(days=5)  # an endpoint failing this long without a success is disabled


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class DisabledReason(enum.StrEnum):
    gone = "gone"  # the receiver answered 410 Gone
    failing = "failing"  # no success for five days while failing


def subscription_patterns(event_type: str) -> tuple[str, str, str]:
    """The patterns that select ``event_type``: itself, its family wildcard, and ``*``."""
    return event_type, event_type.partition(".")[0] + ".*", "*"


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """An endpoint receives an event when one of its patterns selects the event's type."""
    return not set(patterns).isdisjoint(subscription_patterns(event_type))


def ensure_known_event_types(patterns: Sequence[str]) -> list[str]:
    """Each pattern is a feed event type, a family wildcard or `*`; returns them without repeats."""
    problems = [
        FieldProblem(("event_types", i), f"{p!r} is no event type, family wildcard or '*'", "unknown_event_type")
        for i, p in enumerate(patterns)
        if not (p == "*" or p in EVENT_TYPES or (p.endswith(".*") and p[:-2] in FAMILIES))
    ]
    if problems:
        raise UnknownEventType("Unknown event types; see errors.", fields=problems)
    return list(dict.fromkeys(patterns))


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_is_valid(secret: str) -> bool:
    """A given secret is ``whsec_`` and the base64 of 24 to 64 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return False
    return MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES


def ensure_secret_valid(secret: str) -> None:
    """A secret the client chose is as strong as one we would generate."""
    if not secret_is_valid(secret):
        raise MissingFields(
            "A secret is whsec_ and the base64 of 24 to 64 bytes.",
            fields=[FieldProblem(("secret",), "not whsec_ and the base64 of 24 to 64 bytes", "value_error")],
        )


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: ``v1,`` and the base64 HMAC-SHA256 of
    ``{id}.{timestamp}.{body}`` keyed with the secret's bytes."""
    key = base64.b64decode(secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret)
    to_sign = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()


def signature_header(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per active secret, space-separated."""
    return " ".join(sign(s, message_id, timestamp, body) for s in secrets_)


def signing_secrets(
    secret: str, previous: str | None, previous_until: dt.datetime | None, now: dt.datetime
) -> list[str]:
    """The current secret signs; the previous one too for 24 h after a rotation."""
    if previous is not None and previous_until is not None and now < previous_until:
        return [secret, previous]
    return [secret]


# --- where deliveries may go -----------------------------------------------

_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


@functools.lru_cache(maxsize=4096)
def address_is_public(address: str) -> bool:
    """Loopback, private, link-local, multicast, reserved and cloud metadata addresses are
    inside someone's network: a webhook never goes there."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip in _METADATA
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int


@functools.lru_cache(maxsize=4096)
def parse_target(url: str, *, allow_private: bool) -> Target:
    """An absolute https URL with a host (http too when private targets are allowed)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlNotAllowed("The URL cannot be parsed.", fields=[_url_problem("unparsable URL")]) from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise WebhookUrlNotAllowed("Webhook URLs must use https.", fields=[_url_problem("must use https")])
    if not parts.hostname:
        raise WebhookUrlNotAllowed("The URL names no host.", fields=[_url_problem("no host")])
    if parts.username or parts.password:
        raise WebhookUrlNotAllowed("The URL may not carry credentials.", fields=[_url_problem("credentials in URL")])
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))


def ensure_addresses_allowed(addresses: Sequence[str], *, allow_private: bool) -> None:
    """Every address the host resolves to is public (unless private targets are allowed)."""
    if not addresses:
        raise WebhookUrlNotAllowed("The URL's host does not resolve.", fields=[_url_problem("does not resolve")])
    if allow_private:
        return
    inside = [a for a in addresses if not address_is_public(a)]
    if inside:
        raise WebhookUrlNotAllowed(
            "The URL's host resolves to an address inside a private network.",
            fields=[_url_problem(f"resolves to a non-public address ({inside[0]})")],
        )


def _url_problem(msg: str) -> FieldProblem:
    return FieldProblem(("url",), msg, "webhook_url_not_allowed")


# --- retries ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt came to, as the dispatcher saw it."""

    status_code: int | None  # None: no HTTP answer (timeout, refused, reset, policy)
    retry_after: float | None = None  # seconds, from a Retry-After on 429/503

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


@dataclass(frozen=True, slots=True)
class NextStep:
    status: DeliveryStatus
    next_attempt_at: dt.datetime | None
    disable: DisabledReason | None = None


def after_attempt(
    result: AttemptResult,
    attempts: int,
    now: dt.datetime,
    *,
    schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
    failing_since: dt.datetime | None = None,
    jitter: Callable[[], float] = random.random,
) -> NextStep:
    """After ``attempts`` attempts (this one included): done, retry later, or failed.

    A 2xx succeeds. 410 Gone fails the delivery and disables the endpoint. Anything else
    is retried on the schedule (±10 % jitter), a Retry-After on 429/503 honoured when later
    than the next step; after the last step the delivery has failed. An endpoint failing
    for five days without a success is disabled.
    """
    if result.succeeded:
        return NextStep(DeliveryStatus.succeeded, None)
    if result.gone:
        return NextStep(DeliveryStatus.failed, None, DisabledReason.gone)
    disable = None
    if failing_since is not None and now - failing_since >= FAILING_FOR:
        disable = DisabledReason.failing
    if attempts > len(schedule) or disable is not None:
        return NextStep(DeliveryStatus.failed, None, disable)
    delay = schedule[attempts - 1] * (1 + JITTER * (2 * jitter() - 1))
    if result.retry_after is not None and result.status_code in (429, 503):
        delay = max(delay, result.retry_after)
    return NextStep(DeliveryStatus.pending, now + dt.timedelta(seconds=delay))


@dataclass(frozen=True, slots=True)
class RecordedAttempt:
    """One attempt's outcome, as the dispatcher records it."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    attempted_at: dt.datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    body: str | None
    status: DeliveryStatus
    next_attempt_at: dt.datetime | None
    succeeded: bool


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 7 * 86400))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, min((when - now).total_seconds(), 7 * 86400.0))


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"1,2,5"`` → (1.0, 2.0, 5.0): the retry schedule a deployment (or a test) sets."""
    steps = tuple(float(part) for part in text.split(",") if part.strip())
    if not steps or any(s < 0 for s in steps):
        raise ValueError("a retry schedule is a comma-separated list of non-negative seconds")
    return steps
