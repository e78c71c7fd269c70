"""Webhook rules: subscriptions, the URL policy, signatures, and what follows an attempt."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from standardwebhooks import Webhook

from app.domain.errors import UnknownEventType, WebhookUrlNotAllowed
from app.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
    AttemptResult,
    DeliveryStatus,
    DisabledReason,
    address_is_public,
    after_attempt,
    ensure_addresses_allowed,
    ensure_known_event_types,
    matches,
    new_secret,
    parse_retry_after,
    parse_schedule,
    parse_target,
    secret_is_valid,
    sign,
    signature_header,
    signing_secrets,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "deal.created", True),
        (["deal.*"], "deal.stage_changed", True),
        (["deal.*"], "review.opened", False),
        (["deal.created"], "deal.created", True),
        (["deal.created"], "deal.updated", False),
        (["review.opened", "deal.*"], "review.opened", True),
        ([], "deal.created", False),
    ],
)
def test_matching(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def test_known_patterns_are_kept_once_in_order() -> None:
    assert ensure_known_event_types(["deal.*", "*", "review.opened", "deal.*"]) == ["deal.*", "*", "review.opened"]


@pytest.mark.parametrize("bad", ["deal", "deal.nope", "nope.*", "*.*", "deal.**", "", "DEAL.CREATED"])
def test_unknown_patterns_name_their_position(bad: str) -> None:
    with pytest.raises(UnknownEventType) as caught:
        ensure_known_event_types(["deal.created", bad])
    assert caught.value.code == "unknown_event_type"
    assert caught.value.fields[0].path == ("event_types", 1)


def test_generated_secrets_are_valid_and_distinct() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and secret_is_valid(first) and first.startswith("whsec_")


@pytest.mark.parametrize(("size", "valid"), [(23, False), (24, True), (32, True), (64, True), (65, False)])
def test_given_secrets_hold_24_to_64_bytes(size: int, valid: bool) -> None:
    assert secret_is_valid("whsec_" + base64.b64encode(b"k" * size).decode()) is valid


@pytest.mark.parametrize("secret", ["whsec_!!!!", "secret_" + "A" * 32, "A" * 38, "whsec_"])
def test_malformed_secrets(secret: str) -> None:
    assert not secret_is_valid(secret)


def test_signature_is_what_standard_webhooks_verifies() -> None:
    secret = new_secret()
    body = b'{"type":"deal.created","timestamp":"2026-11-28T12:00:00Z","data":{}}'
    timestamp = int(dt.datetime.now(dt.UTC).timestamp())
    header = sign(secret, "msg_1", timestamp, body)
    assert header == Webhook(secret).sign("msg_1", dt.datetime.fromtimestamp(timestamp, dt.UTC), body.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(timestamp), "webhook-signature": header}
    assert Webhook(secret).verify(body, headers)["type"] == "deal.created"


def test_two_secrets_sign_side_by_side_for_a_day() -> None:
    old, new = new_secret(), new_secret()
    assert signing_secrets(new, old, NOW + dt.timedelta(hours=1), NOW) == [new, old]
    assert signing_secrets(new, old, NOW - dt.timedelta(seconds=1), NOW) == [new]
    assert signing_secrets(new, None, None, NOW) == [new]
    header = signature_header([new, old], "m", 1, b"{}")
    assert header.count("v1,") == 2 and " " in header


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("169.254.1.1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("0.0.0.0", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("224.0.0.1", False),
        ("::ffff:127.0.0.1", False),
    ],
)
def test_address_policy(address: str, public: bool) -> None:
    assert address_is_public(address) is public


def test_urls_must_be_https_without_credentials() -> None:
    assert parse_target("https://hooks.example.com/x", allow_private=False).port == 443
    assert parse_target("http://127.0.0.1:8080/x", allow_private=True).port == 8080
    for url in ("http://hooks.example.com/x", "https://u:p@hooks.example.com/", "https:///x", "https://h:99999/"):
        with pytest.raises(WebhookUrlNotAllowed):
            parse_target(url, allow_private=False)


def test_every_resolved_address_must_be_public() -> None:
    ensure_addresses_allowed(["93.184.216.34"], allow_private=False)
    ensure_addresses_allowed(["127.0.0.1"], allow_private=True)
    for addresses in ([], ["93.184.216.34", "10.0.0.1"]):
        with pytest.raises(WebhookUrlNotAllowed) as caught:
            ensure_addresses_allowed(addresses, allow_private=False)
        assert caught.value.fields[0].path == ("url",)


def _fixed_jitter() -> float:
    return 0.5  # no jitter


@pytest.mark.parametrize(
    ("result", "attempts", "status", "delay", "disable"),
    [
        (AttemptResult(200), 1, DeliveryStatus.succeeded, None, None),
        (AttemptResult(204), 4, DeliveryStatus.succeeded, None, None),
        (AttemptResult(500), 1, DeliveryStatus.pending, 5, None),
        (AttemptResult(None), 2, DeliveryStatus.pending, 300, None),
        (AttemptResult(301), 3, DeliveryStatus.pending, 1800, None),
        (AttemptResult(500), 9, DeliveryStatus.pending, 86400, None),
        (AttemptResult(500), 10, DeliveryStatus.failed, None, None),
        (AttemptResult(410), 1, DeliveryStatus.failed, None, DisabledReason.gone),
        (AttemptResult(429, retry_after=60), 1, DeliveryStatus.pending, 60, None),  # later than 5 s
        (AttemptResult(503, retry_after=1), 2, DeliveryStatus.pending, 300, None),  # earlier: schedule wins
        (AttemptResult(500, retry_after=999), 1, DeliveryStatus.pending, 5, None),  # only on 429/503
    ],
)
def test_after_an_attempt(
    result: AttemptResult, attempts: int, status: DeliveryStatus, delay: float | None, disable: DisabledReason | None
) -> None:
    step = after_attempt(result, attempts, NOW, jitter=_fixed_jitter)
    assert step.status == status and step.disable == disable
    if delay is None:
        assert step.next_attempt_at is None
    else:
        assert step.next_attempt_at == NOW + dt.timedelta(seconds=delay)


@pytest.mark.parametrize("draw", [0.0, 1.0])
def test_jitter_is_within_ten_percent(draw: float) -> None:
    step = after_attempt(AttemptResult(500), 2, NOW, jitter=lambda: draw)
    assert step.next_attempt_at is not None
    seconds = (step.next_attempt_at - NOW).total_seconds()
    assert seconds == pytest.approx(300 * (0.9 if draw == 0.0 else 1.1))


def test_an_endpoint_failing_for_five_days_is_disabled() -> None:
    since = NOW - dt.timedelta(days=5)
    step = after_attempt(AttemptResult(500), 2, NOW, failing_since=since, jitter=_fixed_jitter)
    assert step.status == DeliveryStatus.failed and step.disable == DisabledReason.failing
    recent = after_attempt(AttemptResult(500), 2, NOW, failing_since=NOW - dt.timedelta(days=4), jitter=_fixed_jitter)
    assert recent.disable is None


def test_default_schedule_and_custom_ones() -> None:
    assert DEFAULT_RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert parse_schedule("0, 1,2.5") == (0.0, 1.0, 2.5)
    for bad in ("", "a", "-1"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (None, None), ("soon", None), ("Sat, 28 Nov 2026 12:01:00 GMT", 60.0), ("99999999", 604800.0)],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
