"""The bench's baseline: a bare ASGI app (no framework, no ORM) over an asyncpg pool.

It answers the benchmarked endpoints with the same SQL and the same JSON documents as
Dealcoach, authenticating the same ``Authorization: Bearer`` key by its SHA-256, so the
bench can report every Dealcoach figure as a ratio to "the least this work can cost".

Run under uvicorn (the bench does this):

    BENCH_BASELINE_DSN=postgresql://postgres@127.0.0.1:5432/dealcoach_bench \
        uvicorn --app-dir bench baseline:app --workers 2

To benchmark a new endpoint, add a handler to ROUTES that does what the Dealcoach
endpoint does in SQL and returns the same document.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import asyncpg

DSN = os.environ.get("BENCH_BASELINE_DSN", "postgresql://postgres@127.0.0.1:5432/dealcoach_bench")
# Same per-worker connection budget as Dealcoach's defaults (pool_size 20 + max_overflow 10).
POOL_MIN = int(os.environ.get("BENCH_BASELINE_POOL_MIN", "20"))
POOL_MAX = int(os.environ.get("BENCH_BASELINE_POOL_MAX", "30"))
# Dealcoach's cursor secret (the bench hands both apps the same one).
SECRET_KEY = os.environ.get("DEALCOACH_SECRET_KEY", "dealcoach-development-secret-key-not-for-production").encode()

# --- SQL: the statements Dealcoach sends (app/db/repositories/auth.py, members.py, deals.py) --

MEMBER_COLUMNS = "id, organization_id, name, email, role, manager_id, active, version, created_at, updated_at"

ACTOR_BY_KEY = f"""
SELECT api_key.id AS api_key_id,
       {", ".join("member." + c.strip() for c in MEMBER_COLUMNS.split(","))},
       organization.name AS organization_name
FROM api_key
JOIN member ON member.id = api_key.member_id
JOIN organization ON organization.id = member.organization_id
WHERE api_key.key_hash = $1 AND api_key.revoked_at IS NULL AND member.active IS true
"""

MEMBERS_FIRST_PAGE = f"SELECT {MEMBER_COLUMNS} FROM member WHERE organization_id = $1 ORDER BY id LIMIT $2"
MEMBERS_NEXT_PAGE = f"SELECT {MEMBER_COLUMNS} FROM member WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3"

DEAL_COLUMNS = (
    "id, organization_id, name, account_name, amount_minor, currency, expected_close_date, stage, owner_id, "
    "closed_at, loss_reason_code, loss_competitor, loss_detail, version, created_at, updated_at"
)
# deals.visibility() for a seller: what they own, or are actively assigned to.
SELLER_VISIBLE = (
    "organization_id = $1 AND (owner_id = $2 OR id IN "
    "(SELECT deal_id FROM assignment WHERE member_id = $3 AND status = $4))"
)
DEALS_FIRST_PAGE = f"SELECT {DEAL_COLUMNS} FROM deal WHERE {SELLER_VISIBLE} ORDER BY id LIMIT $5"
DEALS_NEXT_PAGE = f"SELECT {DEAL_COLUMNS} FROM deal WHERE {SELLER_VISIBLE} AND id > $5 ORDER BY id LIMIT $6"
# Org-wide roles (head of sales, admin, integration) see every deal of the organisation.
ORG_DEALS_FIRST_PAGE = f"SELECT {DEAL_COLUMNS} FROM deal WHERE organization_id = $1 ORDER BY id LIMIT $2"
ORG_DEALS_NEXT_PAGE = f"SELECT {DEAL_COLUMNS} FROM deal WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3"
ORG_WIDE_ROLES = frozenset({"head_of_sales", "admin", "integration"})


def refs_query(n: int) -> str:
    """deals.refs_of(): SQLAlchemy expands `IN` into one parameter per id, so does this."""
    placeholders = ", ".join(f"${i}" for i in range(1, n + 1))
    return (
        "SELECT id, organization_id, deal_id, source, external_id FROM deal_external_ref "
        f"WHERE deal_id IN ({placeholders}) ORDER BY source, external_id"
    )


# --- JSON: byte-for-byte what Dealcoach renders ----------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        # pydantic renders an aware UTC datetime with a trailing Z
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def _member(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "organization_id": row["organization_id"],
        "name": row["name"],
        "email": row["email"],
        "role": row["role"],
        "manager_id": row["manager_id"],
        "active": row["active"],
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# app/domain/money.py: currencies whose minor unit is not the cent.
_MINOR_UNITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}
_STATUS = {"closed_won": "won", "closed_lost": "lost"}  # every other stage is open


def _money(minor: int, currency: str) -> str:
    digits = _MINOR_UNITS.get(currency, 2)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def _deal(row: asyncpg.Record, refs: list[asyncpg.Record]) -> dict[str, Any]:
    """app/routers/deals.py render()."""
    amount = None
    if row["amount_minor"] is not None and row["currency"] is not None:
        amount = {"amount": _money(row["amount_minor"], row["currency"]), "currency": row["currency"]}
    loss = None
    if row["loss_reason_code"] is not None:
        loss = {
            "reason_code": row["loss_reason_code"],
            "competitor": row["loss_competitor"],
            "detail": row["loss_detail"],
        }
    return {
        "id": row["id"],
        "name": row["name"],
        "account_name": row["account_name"],
        "amount": amount,
        "expected_close_date": row["expected_close_date"],
        "stage": row["stage"],
        "status": _STATUS.get(row["stage"], "open"),
        "owner_id": row["owner_id"],
        "closed_at": row["closed_at"],
        "loss": loss,
        "external_refs": [{"source": r["source"], "external_id": r["external_id"]} for r in refs],
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _seal(organization_id: uuid.UUID, listing: str, payload: bytes) -> bytes:
    message = f"{organization_id}\n{listing}\n".encode() + payload
    return hmac.new(SECRET_KEY, message, hashlib.sha256).digest()[:16]


def _cursor(organization_id: uuid.UUID, listing: str, key: list[Any]) -> str:
    """app/http/cursors.py: the key as JSON, sealed (HMAC) for its listing and organisation."""
    payload = json.dumps(key, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_seal(organization_id, listing, payload))}"


def _after(organization_id: uuid.UUID, listing: str, cursor: str) -> uuid.UUID:
    if len(cursor) > 512:
        raise ValueError("cursor too long")
    body, _, seal = cursor.partition(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    mac = base64.urlsafe_b64decode(seal + "=" * (-len(seal) % 4))
    if not hmac.compare_digest(mac, _seal(organization_id, listing, payload)):
        raise ValueError("cursor not ours")
    return uuid.UUID(str(json.loads(payload)[0]))


# --- HTTP ------------------------------------------------------------------------------------

Response = tuple[int, bytes]


class HttpError(Exception):
    def __init__(self, status: int, code: str) -> None:
        self.status = status
        self.code = code


def _bearer(scope: dict[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.startswith("dc_") and len(token) <= 128:
                return token
    raise HttpError(401, "unauthenticated")


async def _actor(conn: asyncpg.Connection, scope: dict[str, Any]) -> asyncpg.Record:
    key_hash = hashlib.sha256(_bearer(scope).encode()).hexdigest()
    row = await conn.fetchrow(ACTOR_BY_KEY, key_hash)
    if row is None:
        raise HttpError(401, "unauthenticated")
    return row


async def get_me(conn: asyncpg.Connection, scope: dict[str, Any], query: dict[str, list[str]]) -> Response:
    row = await _actor(conn, scope)
    doc = _member(row)
    doc["organization"] = {"id": row["organization_id"], "name": row["organization_name"]}
    doc["api_key_id"] = row["api_key_id"]
    return 200, _dumps(doc)


async def list_members(conn: asyncpg.Connection, scope: dict[str, Any], query: dict[str, list[str]]) -> Response:
    actor = await _actor(conn, scope)
    try:
        limit = int(query.get("limit", ["50"])[0])
        after = _after(actor["organization_id"], "members", query["cursor"][0]) if "cursor" in query else None
    except (ValueError, TypeError, KeyError, IndexError):
        raise HttpError(422, "validation_error") from None
    if not 1 <= limit <= 200:
        raise HttpError(422, "validation_error")
    if after is None:
        rows = await conn.fetch(MEMBERS_FIRST_PAGE, actor["organization_id"], limit + 1)
    else:
        rows = await conn.fetch(MEMBERS_NEXT_PAGE, actor["organization_id"], after, limit + 1)
    items = rows[:limit]
    org = actor["organization_id"]
    next_cursor = _cursor(org, "members", [str(items[-1]["id"])]) if len(rows) > limit and items else None
    return 200, _dumps({"items": [_member(r) for r in items], "next_cursor": next_cursor})


async def list_deals(conn: asyncpg.Connection, scope: dict[str, Any], query: dict[str, list[str]]) -> Response:
    actor = await _actor(conn, scope)
    try:
        limit = int(query.get("limit", ["50"])[0])
        after = _after(actor["organization_id"], "deals", query["cursor"][0]) if "cursor" in query else None
    except (ValueError, TypeError, KeyError, IndexError):
        raise HttpError(422, "validation_error") from None
    if not 1 <= limit <= 200:
        raise HttpError(422, "validation_error")
    org, me = actor["organization_id"], actor["id"]
    if actor["role"] in ORG_WIDE_ROLES:
        if after is None:
            rows = await conn.fetch(ORG_DEALS_FIRST_PAGE, org, limit + 1)
        else:
            rows = await conn.fetch(ORG_DEALS_NEXT_PAGE, org, after, limit + 1)
    elif actor["role"] == "seller":
        if after is None:
            rows = await conn.fetch(DEALS_FIRST_PAGE, org, me, me, "active", limit + 1)
        else:
            rows = await conn.fetch(DEALS_NEXT_PAGE, org, me, me, "active", after, limit + 1)
    else:  # a manager also sees their line's deals (a recursive query); not benchmarked
        raise HttpError(501, "not_implemented")
    items = rows[:limit]
    ids = [r["id"] for r in items]
    refs: dict[uuid.UUID, list[asyncpg.Record]] = {deal_id: [] for deal_id in ids}
    if ids:
        for ref in await conn.fetch(refs_query(len(ids)), *ids):
            refs[ref["deal_id"]].append(ref)
    next_cursor = _cursor(org, "deals", [str(items[-1]["id"])]) if len(rows) > limit and items else None
    return 200, _dumps({"items": [_deal(r, refs[r["id"]]) for r in items], "next_cursor": next_cursor})


Handler = Callable[[asyncpg.Connection, dict[str, Any], dict[str, list[str]]], Awaitable[Response]]

ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/v1/me"): get_me,
    ("GET", "/v1/members"): list_members,
    ("GET", "/v1/deals"): list_deals,
}


# --- ASGI ------------------------------------------------------------------------------------

_pool: asyncpg.Pool | None = None


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                _pool = await asyncpg.create_pool(
                    DSN,
                    min_size=POOL_MIN,
                    max_size=POOL_MAX,
                    server_settings={"application_name": "dealcoach-bench-baseline", "timezone": "UTC"},
                )
            except Exception as exc:  # noqa: BLE001 - reported to uvicorn, which exits
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send(send: Any, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] in ("/healthz", "/readyz"):
        await _send(send, 200, b'{"status":"ok"}')
        return
    handler = ROUTES.get((scope["method"], scope["path"]))
    if handler is None:
        await _send(send, 404, b'{"code":"not_found"}', b"application/problem+json")
        return
    query = parse_qs(scope["query_string"].decode("latin-1"))
    assert _pool is not None
    try:
        async with _pool.acquire() as conn:
            status, body = await handler(conn, scope, query)
    except HttpError as err:
        await _send(send, err.status, _dumps({"code": err.code}), b"application/problem+json")
        return
    await _send(send, status, body)
