"""Idempotent POSTs: what a retry with a known key gets."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from app.domain.errors import IdempotencyInProgress, IdempotencyKeyReused

MAX_KEY_LENGTH = 255

F = TypeVar("F", bound=Callable[..., Any])

# The ASGI scope key under which an idempotent POST's open database connection reaches the
# request's unit of work (app/deps.py), so the write, the key and its response commit together.
IDEMPOTENT_TRANSACTION = "dealcoach.idempotent_transaction"
# ... or, for an operation whose key is claimed with its response (``claimed_with_response``),
# the claim its unit of work hands its write to, or makes first (app/db/uow.py).
IDEMPOTENT_CLAIM = "dealcoach.idempotent_claim"
# ... and the caller's member row, read with the claim, which authenticates the request.
IDEMPOTENT_CALLER = "dealcoach.idempotent_caller"
# ... and, for a token from an identity provider, what it was verified as (app.domain.oidc.SignedIn),
# so that the request does not verify it again.
SIGNED_IN = "dealcoach.signed_in"


CLAIMED_WITH_RESPONSE = "dealcoach_claimed_with_response"


def claimed_with_response(endpoint: F) -> F:
    """Mark an operation whose Idempotency-Key, on PostgreSQL, is claimed after it has run, by the
    statement that stores its response and makes its write (when its write is one statement the
    unit of work can hand over: app/db/repositories/deal_writes.py); its other writes claim the
    key first, when they enter their unit of work. Its path must have no parameters."""
    setattr(endpoint, CLAIMED_WITH_RESPONSE, True)
    return endpoint


class StoredRequest(Protocol):
    fingerprint: str
    completed: bool
    locked_at: dt.datetime


class Decision(enum.Enum):
    replay = "replay"  # the first request finished: send its response again
    take_over = "take_over"  # the first request was abandoned: run this one instead


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests "the same": method, path, query and the body's JSON value
    (so key order and whitespace do not matter); a body that is not JSON counts byte for byte."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def decide(stored: StoredRequest, request_fingerprint: str, *, now: dt.datetime, lock_seconds: int) -> Decision:
    """A retry replays a finished request, refuses a different body under the same key,
    and waits for (409) a request still in flight unless that one was abandoned."""
    if stored.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused()
    if stored.completed:
        return Decision.replay
    if now - stored.locked_at >= dt.timedelta(seconds=lock_seconds):
        return Decision.take_over
    raise IdempotencyInProgress()
