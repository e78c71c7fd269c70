"""The bench's floor: a bare ASGI callable, asyncpg and orjson, on Dealcoach's schema.

For every benchmarked request it sends the fewest statements that job needs on this
schema -- not Dealcoach's statements: a baseline that repeats the product's own queries
would hide exactly the waste the bench is there to show.

- GET /v1/me: one SELECT, key hash -> member and organisation.
- GET /v1/deals/{id}: one SELECT: the key's member, the visibility predicate (seller:
  owner or active assignment; manager: also the owner's line, walked up the owner's
  managers with a recursive CTE; head of sales, admin, integration: the organisation),
  the deal row and its external references as a JSON aggregate.
- GET /v1/deals: one SELECT: the key, the visibility predicate (the manager's line as a
  recursive CTE walked down), the keyset (the first page is the keyset after the nil
  UUID, so both pages are one prepared statement) and each deal's references.
- POST /v1/deals: one INSERT ... SELECT that checks the key, that the owner is an active
  seller of the key's organisation and who may create for them, RETURNING the id. No
  event is written.
- POST /v1/deals with Idempotency-Key: one statement: the idempotency row (with the
  response already rendered, since every value of it is known before the statement) is
  claimed in a CTE and the deal is inserted only when the claim succeeded.
- PATCH /v1/deals/{id}: one UPDATE ... WHERE version = ANY(If-Match), with the key check
  and the edit rule, RETURNING the row and its references.
- POST /v1/deals/batch-upsert: one statement for the whole batch: the records unnested
  from arrays, existing references found, updates and inserts (deals and references) in
  data-modifying CTEs.

A refused request costs one more statement, off the hot path, to tell 401 from 403, 404,
409, 412 and 422. Anything the bench does not send (stage changes, transfers, losses,
external references on a single create) answers 501 `not_in_floor`.

Served as `dealcoach serve` serves Dealcoach, each worker on a socket of its own (the bench does this):

    BENCH_BASELINE_DSN=postgresql://postgres@127.0.0.1:5432/dealcoach_bench \
        python bench/floor_serve.py --workers 2
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import orjson

DSN = os.environ.get("BENCH_BASELINE_DSN", "postgresql://postgres@127.0.0.1:5432/dealcoach_bench")
# Same per-worker connection budget as Dealcoach's defaults (pool_size 20 + max_overflow 10). The
# pool opens connections as the load asks for them (the warm-up does), as SQLAlchemy's does: opening
# 2 x 20 at start-up, while Dealcoach also runs for the seeding, can exhaust a shared PostgreSQL.
POOL_MIN = int(os.environ.get("BENCH_BASELINE_POOL_MIN", "2"))
POOL_MAX = int(os.environ.get("BENCH_BASELINE_POOL_MAX", "30"))
IDEMPOTENCY_TTL = dt.timedelta(hours=24)
# Dealcoach's cursor secret (the bench hands both apps the same one), so next_cursor matches too.
SECRET_KEY = os.environ.get("DEALCOACH_SECRET_KEY", "dealcoach-development-secret-key-not-for-production").encode()

# --- SQL ---------------------------------------------------------------------------------------

ORG_WIDE = "('head_of_sales', 'admin', 'integration')"
CLOSED = "('closed_won', 'closed_lost')"

# The key's member; $1 is the key's SHA-256 in hex.
ME = """me AS (
  SELECT m.id, m.organization_id, m.role
  FROM api_key k JOIN member m ON m.id = k.member_id
  WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND m.active
)"""

# True when the acting manager `me` is above the owner `owner_expr` (walks up the owner's managers).
MANAGES_OWNER = """(me.role = 'manager' AND EXISTS (
  WITH RECURSIVE up (id, depth) AS (
    SELECT o.manager_id, 1 FROM member o WHERE o.id = {owner}
    UNION ALL
    SELECT m.manager_id, up.depth + 1 FROM member m JOIN up ON m.id = up.id WHERE up.depth < 64)
  SELECT FROM up WHERE up.id = me.id))"""

DEAL_COLUMNS = (
    "d.id, d.name, d.account_name, d.amount_minor, d.currency, d.expected_close_date, d.stage, d.owner_id, "
    "d.closed_at, d.loss_reason_code, d.loss_competitor, d.loss_detail, d.version, d.created_at, d.updated_at"
)
# A deal's external references as one JSON array (NULL when it has none), Dealcoach's order.
REFS = """(SELECT json_agg(json_build_object('source', r.source, 'external_id', r.external_id)
                  ORDER BY r.source, r.external_id)
           FROM deal_external_ref r WHERE r.deal_id = d.id)"""
# A lost deal's review (one per deal), looked up only for a lost deal, as Dealcoach does.
REVIEW_ID = """CASE WHEN d.stage = 'closed_lost'
                THEN (SELECT cr.id FROM closed_lost_review cr WHERE cr.deal_id = d.id) END"""

GET_ME = """
SELECT k.id AS api_key_id, m.id, m.organization_id, m.name, m.email, m.role, m.manager_id, m.active, m.version,
       m.created_at, m.updated_at, o.name AS organization_name
FROM api_key k
JOIN member m ON m.id = k.member_id
JOIN organization o ON o.id = m.organization_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND m.active
"""

# No row: the key is unknown (401). A row whose id is NULL: no such deal for this member (404).
GET_DEAL = f"""
WITH {ME}
SELECT d.*, {REVIEW_ID} AS review_id, {REFS} AS external_refs
FROM me LEFT JOIN LATERAL (
  SELECT {DEAL_COLUMNS} FROM deal d
  WHERE d.id = $2 AND d.organization_id = me.organization_id
    AND (me.role IN {ORG_WIDE}
         OR d.owner_id = me.id
         OR EXISTS (SELECT FROM assignment a WHERE a.deal_id = d.id AND a.member_id = me.id AND a.status = 'active')
         OR {MANAGES_OWNER.format(owner="d.owner_id")})
) d ON true
"""

# $2 page size + 1, $3 the last id of the previous page (the nil UUID for the first page).
# No row: the key is unknown; one row whose id is NULL: an empty page.
LIST_DEALS = f"""
WITH RECURSIVE {ME}, line (id, depth) AS (
  SELECT m.id, 1 FROM member m JOIN me ON m.manager_id = me.id AND m.organization_id = me.organization_id
  WHERE me.role = 'manager'
  UNION ALL
  SELECT m.id, line.depth + 1 FROM member m JOIN line ON m.manager_id = line.id WHERE line.depth < 64
)
SELECT me.organization_id AS actor_organization_id, d.*, {REVIEW_ID} AS review_id, {REFS} AS external_refs
FROM me LEFT JOIN LATERAL (
  SELECT {DEAL_COLUMNS} FROM deal d
  WHERE d.organization_id = me.organization_id AND d.id > $3
    AND (me.role IN {ORG_WIDE}
         OR d.owner_id = me.id
         OR d.id IN (SELECT a.deal_id FROM assignment a WHERE a.member_id = me.id AND a.status = 'active')
         OR (me.role = 'manager' AND d.owner_id IN (SELECT line.id FROM line)))
  ORDER BY d.id LIMIT $2
) d ON true
ORDER BY d.id
"""

# Who may create a deal for `owner`: the seller themself, a manager above them, leadership and machines.
_OWNER = f"""owner AS (
  SELECT o.id FROM member o JOIN me ON o.organization_id = me.organization_id
  WHERE o.id = $2 AND o.role = 'seller' AND o.active
), allowed AS (
  SELECT me.id AS member_id, me.organization_id, owner.id AS owner_id FROM me JOIN owner ON true
  WHERE me.role IN {ORG_WIDE} OR owner.id = me.id OR {MANAGES_OWNER.format(owner="owner.id")}
)"""
_INSERT_DEAL = """INSERT INTO deal (id, organization_id, name, account_name, amount_minor, currency, expected_close_date,
                  stage, owner_id, closed_at, version, created_at, updated_at)
SELECT $3, allowed.organization_id, $4, $5, $6, $7, $8, $9, allowed.owner_id, $10, 1, $11, $11
FROM allowed"""

# $1 key hash, $2 owner, $3 new id, $4..$9 the deal's fields, $10 closed_at, $11 now. No row: refused.
CREATE_DEAL = f"""
WITH {ME}, {_OWNER}
{_INSERT_DEAL}
RETURNING id
"""

# CREATE_DEAL's parameters, then $12 idempotency row id, $13 key, $14 fingerprint, $15 stored headers
# (JSON), $16 stored body, $17 expiry. The claim takes a new key, or one whose row has expired;
# the deal is inserted only when the claim did. No row: refused, or the key is taken (replay).
CREATE_DEAL_IDEMPOTENT = f"""
WITH {ME}, {_OWNER}, claim AS (
  INSERT INTO idempotency_key (id, member_id, key, fingerprint, completed, response_status, response_headers,
                               response_body, locked_at, expires_at)
  SELECT $12, allowed.member_id, $13, $14, true, 201, $15::jsonb, $16, $11, $17 FROM allowed
  ON CONFLICT (member_id, key) DO UPDATE
    SET fingerprint = excluded.fingerprint, completed = true, response_status = excluded.response_status,
        response_headers = excluded.response_headers, response_body = excluded.response_body,
        locked_at = excluded.locked_at, expires_at = excluded.expires_at
    WHERE idempotency_key.expires_at < $11
  RETURNING member_id
)
{_INSERT_DEAL} JOIN claim ON true
RETURNING id
"""

STORED_RESPONSE = """
SELECT i.fingerprint, i.completed, i.response_status, i.response_headers, i.response_body
FROM api_key k JOIN idempotency_key i ON i.member_id = k.member_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND i.key = $2 AND i.expires_at >= $3
"""

# Why a create was refused (off the hot path): no row is 401; otherwise the owner's fitness.
WHY_NOT_CREATED = f"""
WITH {ME}
SELECT me.id, o.id IS NOT NULL AND o.role = 'seller' AND o.active AS owner_ok
FROM me LEFT JOIN member o ON o.id = $2 AND o.organization_id = me.organization_id
"""

# $1 key hash, $2 deal, $3 versions If-Match names (NULL: any), $4 now, then a flag and value per
# field: $5/$6 name, $7/$8 account_name, $9/$10/$11 amount (minor, currency), $12/$13 expected
# close date. The owner, their management line, leadership and machines edit an open deal.
UPDATE_DEAL = f"""
WITH {ME}
UPDATE deal d SET
  name = CASE WHEN $5 THEN $6 ELSE d.name END,
  account_name = CASE WHEN $7 THEN $8 ELSE d.account_name END,
  amount_minor = CASE WHEN $9 THEN $10 ELSE d.amount_minor END,
  currency = CASE WHEN $9 THEN $11 ELSE d.currency END,
  expected_close_date = CASE WHEN $12 THEN $13 ELSE d.expected_close_date END,
  version = d.version + 1,
  updated_at = $4
FROM me
WHERE d.id = $2 AND d.organization_id = me.organization_id
  AND ($3::int[] IS NULL OR d.version = ANY($3::int[]))
  AND d.stage NOT IN {CLOSED}
  AND (me.role IN {ORG_WIDE} OR d.owner_id = me.id OR {MANAGES_OWNER.format(owner="d.owner_id")})
RETURNING {DEAL_COLUMNS}, {REFS} AS external_refs
"""

# One statement per batch. The records come as parallel arrays ($2..$14); `given` is a bit set
# of the fields a record names (1 name, 2 account_name, 4 amount, 8 expected_close_date,
# 16 stage, 32 owner_id): an existing deal keeps what a record omits. $15 is now.
BATCH_UPSERT = f"""
WITH me AS (
  SELECT m.id, m.organization_id
  FROM api_key k JOIN member m ON m.id = k.member_id
  WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND m.active AND m.role IN {ORG_WIDE}
), input AS (
  SELECT * FROM unnest($2::int[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::int[], $8::text[],
                       $9::text[], $10::bigint[], $11::text[], $12::date[], $13::text[], $14::uuid[])
    AS t (ord, source, external_id, new_id, ref_id, given, name, account_name, amount_minor, currency,
          expected_close_date, stage, owner_id)
), existing AS (
  SELECT i.ord, r.deal_id FROM input i JOIN me ON true
  JOIN deal_external_ref r
    ON r.organization_id = me.organization_id AND r.source = i.source AND r.external_id = i.external_id
), owners AS (
  SELECT o.id FROM member o JOIN me ON o.organization_id = me.organization_id
  WHERE o.id IN (SELECT owner_id FROM input) AND o.role = 'seller' AND o.active
), updated AS (
  UPDATE deal d SET
    name = CASE WHEN i.given & 1 <> 0 THEN i.name ELSE d.name END,
    account_name = CASE WHEN i.given & 2 <> 0 THEN i.account_name ELSE d.account_name END,
    amount_minor = CASE WHEN i.given & 4 <> 0 THEN i.amount_minor ELSE d.amount_minor END,
    currency = CASE WHEN i.given & 4 <> 0 THEN i.currency ELSE d.currency END,
    expected_close_date = CASE WHEN i.given & 8 <> 0 THEN i.expected_close_date ELSE d.expected_close_date END,
    stage = CASE WHEN i.given & 16 <> 0 THEN i.stage ELSE d.stage END,
    version = d.version + 1,
    updated_at = $15
  FROM existing e JOIN input i ON i.ord = e.ord
  WHERE d.id = e.deal_id AND d.stage NOT IN {CLOSED} AND (i.given & 32 = 0 OR i.owner_id = d.owner_id)
  RETURNING e.ord, d.id
), created AS (
  INSERT INTO deal (id, organization_id, name, account_name, amount_minor, currency, expected_close_date, stage,
                    owner_id, version, created_at, updated_at)
  SELECT i.new_id, me.organization_id, i.name, i.account_name, i.amount_minor, i.currency, i.expected_close_date,
         coalesce(i.stage, 'prospecting'), i.owner_id, 1, $15, $15
  FROM input i JOIN me ON true
  WHERE NOT EXISTS (SELECT FROM existing e WHERE e.ord = i.ord)
    AND i.name IS NOT NULL AND i.account_name IS NOT NULL AND i.owner_id IN (SELECT id FROM owners)
  RETURNING id
), created_refs AS (
  INSERT INTO deal_external_ref (id, organization_id, deal_id, source, external_id)
  SELECT i.ref_id, me.organization_id, i.new_id, i.source, i.external_id
  FROM input i JOIN created c ON c.id = i.new_id JOIN me ON true
)
SELECT i.ord, coalesce(u.id, c.id) AS deal_id,
       CASE WHEN u.id IS NOT NULL THEN 'updated'
            WHEN c.id IS NOT NULL THEN 'created'
            WHEN e.ord IS NOT NULL THEN 'not_in_floor'
            WHEN i.name IS NULL OR i.account_name IS NULL OR i.owner_id IS NULL THEN 'missing_fields'
            ELSE 'owner_must_be_seller' END AS outcome
FROM input i JOIN me ON true
LEFT JOIN existing e ON e.ord = i.ord
LEFT JOIN updated u ON u.ord = i.ord
LEFT JOIN created c ON c.id = i.new_id
"""

ACTOR = """
SELECT m.id, m.role FROM api_key k JOIN member m ON m.id = k.member_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND m.active
"""


# --- Values --------------------------------------------------------------------------------------

# app/domain/money.py: the active ISO 4217 codes and the currencies whose minor unit is not the cent.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
    LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG""".split()
)
MINOR_UNITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}
MAX_MAJOR = Decimal(10) ** 15
STAGES = frozenset(
    {"prospecting", "qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost"}
)
# The stages the floor writes: an open deal, or one created won (no loss, no review to open).
FLOOR_STAGES = STAGES - {"closed_lost"}
STATUS = {"closed_won": "won", "closed_lost": "lost"}  # every other stage is open
SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
EXTERNAL_ID = re.compile(r"^[^/\s\x00]+$")
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
NIL = uuid.UUID(int=0)
JSON_OPTIONS = orjson.OPT_UTC_Z  # pydantic writes an aware UTC datetime with a trailing Z


def uuid7() -> uuid.UUID:
    """app/domain/ids.py: 48 bits of Unix milliseconds, then random bits."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62 | rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)


def money(minor: int, currency: str) -> str:
    digits = MINOR_UNITS.get(currency, 2)
    if digits == 0:
        return str(minor)
    whole, part = divmod(minor, 10**digits)
    return f"{whole}.{part:0{digits}d}"


class Invalid(Exception):
    """A request the floor refuses: status, code, detail."""

    def __init__(self, status: int, code: str, detail: str = "") -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _invalid(detail: str) -> Invalid:
    return Invalid(422, "validation_error", detail)


def _text(value: Any, name: str, *, max_length: int = 200) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string")
    value = value.strip()
    if not 1 <= len(value) <= max_length or UNSTORABLE.search(value):
        raise _invalid(f"{name} must be 1 to {max_length} storable characters")
    return value


def _amount(value: Any) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        raise _invalid("amount must be {amount, currency}")
    amount, currency = value["amount"], value["currency"]
    if not isinstance(amount, str) or currency not in CURRENCIES:
        raise _invalid("amount must be a decimal string in an ISO 4217 currency")
    try:
        number = Decimal(amount)
    except InvalidOperation:
        raise _invalid("amount must be a decimal string") from None
    if not number.is_finite() or number < 0 or number >= MAX_MAJOR:
        raise _invalid("amount must be finite, non-negative and not too large")
    scaled = number.scaleb(MINOR_UNITS.get(currency, 2))
    if scaled != scaled.to_integral_value():
        raise _invalid("too many decimal places for the currency")
    return int(scaled), currency


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise _invalid("expected_close_date must be a date") from None


def _uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        raise _invalid(f"{name} must be a UUID") from None


def _stage(value: Any) -> str:
    if value not in STAGES:
        raise _invalid("stage is not a stage")
    if value not in FLOOR_STAGES:
        raise Invalid(501, "not_in_floor", "the floor does not write losses")
    return str(value)


def _object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Invalid(400, "malformed_json") from None
    if not isinstance(doc, dict):
        raise _invalid("the body must be a JSON object")
    return doc


CREATE_FIELDS = {"name", "account_name", "amount", "expected_close_date", "stage", "owner_id", "external_refs", "loss"}
UPDATE_FIELDS = {
    "name",
    "account_name",
    "amount",
    "expected_close_date",
    "stage",
    "owner_id",
    "transfer_reason",
    "loss",
}


def deal_create(doc: dict[str, Any]) -> dict[str, Any]:
    """DealCreate, as far as the floor writes it."""
    if not doc.keys() <= CREATE_FIELDS or not {"name", "account_name", "owner_id"} <= doc.keys():
        raise _invalid("unknown or missing fields")
    if doc.get("external_refs") or doc.get("loss") is not None:
        raise Invalid(501, "not_in_floor", "the floor creates deals without references or losses")
    minor, currency = _amount(doc.get("amount"))
    return {
        "name": _text(doc["name"], "name"),
        "account_name": _text(doc["account_name"], "account_name"),
        "amount_minor": minor,
        "currency": currency,
        "expected_close_date": _date(doc.get("expected_close_date")),
        "stage": _stage(doc.get("stage", "prospecting")),
        "owner_id": _uuid(doc["owner_id"], "owner_id"),
    }


def deal_doc(row: Any, refs: Any) -> dict[str, Any]:
    """DealPublic from a row (a Record, or a dict of the same columns); refs is JSON text or a list."""
    minor, currency = row["amount_minor"], row["currency"]
    code = row["loss_reason_code"]
    stage = row["stage"]
    return {
        "id": row["id"],
        "name": row["name"],
        "account_name": row["account_name"],
        "amount": None if minor is None else {"amount": money(minor, currency), "currency": currency},
        "expected_close_date": row["expected_close_date"],
        "stage": stage,
        "status": STATUS.get(stage, "open"),
        "owner_id": row["owner_id"],
        "closed_at": row["closed_at"],
        "loss": None
        if code is None
        else {"reason_code": code, "competitor": row["loss_competitor"], "detail": row["loss_detail"]},
        # Only reads select it: the floor writes open and won deals, which have no review.
        "review_id": row.get("review_id"),
        "external_refs": orjson.Fragment(refs) if isinstance(refs, str) else (refs or []),
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, option=JSON_OPTIONS)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def seal(organization_id: str, listing: str, payload: bytes) -> bytes:
    """app/http/cursors.py: HMAC-SHA256 of organisation, listing and key, cut to 16 bytes."""
    return hmac.new(SECRET_KEY, f"{organization_id}\n{listing}\n".encode() + payload, hashlib.sha256).digest()[:16]


def cursor_of(organization_id: str, listing: str, key: list[Any]) -> str:
    """app/http/cursors.py Cursors.encode(): the key as JSON, sealed for its listing and organisation."""
    payload = orjson.dumps(key)
    return f"{_b64(payload)}.{_b64(seal(organization_id, listing, payload))}"


def unsealed(cursor: str) -> tuple[uuid.UUID, bytes, bytes]:
    """The key's id, the payload and the seal of a cursor; the seal is checked once the statement
    has told the key's organisation."""
    try:
        if len(cursor) > 512:
            raise ValueError
        body, _, mac = cursor.partition(".")
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        (after,) = orjson.loads(payload)
        return uuid.UUID(str(after)), payload, base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    except (ValueError, TypeError):
        raise Invalid(422, "invalid_cursor") from None


def fingerprint(method: str, path: str, query: bytes, doc: Any) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


# --- Handlers ------------------------------------------------------------------------------------

# (status, extra headers, body)
Response = tuple[int, list[tuple[bytes, bytes]], bytes]
JSON = [(b"content-type", b"application/json")]


def _etag(version: int) -> tuple[bytes, bytes]:
    return b"etag", b'"%d"' % version


class Request:
    __slots__ = ("method", "path", "query", "headers", "body", "key_hash")

    def __init__(self, scope: dict[str, Any], body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope["query_string"]
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self.body = body
        token = ""
        scheme, _, value = self.headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
        if not token.startswith("dc_") or len(token) > 128:
            raise Invalid(401, "unauthenticated")
        self.key_hash = hashlib.sha256(token.encode()).hexdigest()


async def get_me(conn: asyncpg.Connection, req: Request) -> Response:
    row = await conn.fetchrow(GET_ME, req.key_hash)
    if row is None:
        raise Invalid(401, "unauthenticated")
    doc = {
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
        "organization": {"id": row["organization_id"], "name": row["organization_name"]},
        "api_key_id": row["api_key_id"],
    }
    return 200, [*JSON, _etag(row["version"])], dumps(doc)


async def get_deal(conn: asyncpg.Connection, req: Request, deal_id: uuid.UUID) -> Response:
    row = await conn.fetchrow(GET_DEAL, req.key_hash, deal_id)
    if row is None:
        raise Invalid(401, "unauthenticated")
    if row["id"] is None:
        raise Invalid(404, "not_found")
    return 200, [*JSON, _etag(row["version"])], dumps(deal_doc(row, row["external_refs"]))


async def list_deals(conn: asyncpg.Connection, req: Request) -> Response:
    query = parse_qs(req.query.decode("latin-1"))
    try:
        limit = int(query.get("limit", ["50"])[0])
    except ValueError:
        raise _invalid("limit must be an integer") from None
    if not 1 <= limit <= 200:
        raise _invalid("limit must be 1 to 200")
    after, payload, mac = unsealed(query["cursor"][0]) if "cursor" in query else (NIL, b"", b"")
    rows = await conn.fetch(LIST_DEALS, req.key_hash, limit + 1, after)
    if not rows:
        raise Invalid(401, "unauthenticated")
    org = rows[0]["actor_organization_id"]
    if "cursor" in query and not hmac.compare_digest(mac, seal(org, "deals", payload)):
        raise Invalid(422, "invalid_cursor")
    items = [deal_doc(r, r["external_refs"]) for r in rows[:limit] if r["id"] is not None]
    next_cursor = cursor_of(org, "deals", [str(items[-1]["id"])]) if len(rows) > limit else None
    return 200, JSON, dumps({"items": items, "next_cursor": next_cursor})


async def create_deal(conn: asyncpg.Connection, req: Request) -> Response:
    doc = _object(req.body)
    fields = deal_create(doc)
    now = dt.datetime.now(dt.UTC)
    deal_id = uuid7()
    closed_at = now if fields["stage"] == "closed_won" else None
    row = {
        **fields,
        "id": deal_id,
        "closed_at": closed_at,
        "loss_reason_code": None,
        "loss_competitor": None,
        "loss_detail": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    body = dumps(deal_doc(row, []))
    headers = [*JSON, (b"location", f"/v1/deals/{deal_id}".encode()), _etag(1)]
    args = (
        req.key_hash,
        fields["owner_id"],
        deal_id,
        fields["name"],
        fields["account_name"],
        fields["amount_minor"],
        fields["currency"],
        fields["expected_close_date"],
        fields["stage"],
        closed_at,
        now,
    )
    key = req.headers.get(b"idempotency-key")
    if key is None:
        if await conn.fetchval(CREATE_DEAL, *args) is None:
            await _why_not_created(conn, req, fields["owner_id"])
        return 201, headers, body

    idem_key = key.decode("latin-1")
    if not 1 <= len(idem_key) <= 255:
        raise _invalid("Idempotency-Key must be 1 to 255 characters")
    fp = fingerprint(req.method, req.path, req.query, doc)
    stored_headers = orjson.dumps([[k.decode(), v.decode()] for k, v in headers]).decode()
    created = await conn.fetchval(
        CREATE_DEAL_IDEMPOTENT, *args, uuid7(), idem_key, fp, stored_headers, body, now + IDEMPOTENCY_TTL
    )
    if created is not None:
        return 201, headers, body
    stored = await conn.fetchrow(STORED_RESPONSE, req.key_hash, idem_key, now)
    if stored is None:
        await _why_not_created(conn, req, fields["owner_id"])
        raise Invalid(409, "idempotency_in_progress")  # the key's row expired between the two statements
    if stored["fingerprint"] != fp:
        raise Invalid(422, "idempotency_key_reused")
    if not stored["completed"]:
        raise Invalid(409, "idempotency_in_progress")
    replayed = [(k.encode(), v.encode()) for k, v in orjson.loads(stored["response_headers"] or "[]")]
    return stored["response_status"], [*replayed, (b"idempotent-replayed", b"true")], stored["response_body"] or b""


async def _why_not_created(conn: asyncpg.Connection, req: Request, owner_id: uuid.UUID) -> None:
    row = await conn.fetchrow(WHY_NOT_CREATED, req.key_hash, owner_id)
    if row is None:
        raise Invalid(401, "unauthenticated")
    if not row["owner_ok"]:
        raise Invalid(422, "owner_must_be_seller")
    raise Invalid(403, "forbidden", "You may not create deals for this seller.")


def _if_match(header: bytes | None) -> list[int] | None:
    """app/http/conditional.py parse_if_match(): None means any version."""
    if header is None or header.strip() == b"*":
        return None
    versions = []
    for tag in header.decode("latin-1").split(","):
        tag = tag.strip().removeprefix("W/")
        if len(tag) >= 3 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if tag.isascii() and tag.isdigit() and len(tag) < 12:
            versions.append(int(tag))
    return versions


async def update_deal(conn: asyncpg.Connection, req: Request, deal_id: uuid.UUID) -> Response:
    doc = _object(req.body)
    if not doc.keys() <= UPDATE_FIELDS:
        raise _invalid("unknown fields")
    if doc.keys() & {"stage", "owner_id", "transfer_reason", "loss"}:
        raise Invalid(501, "not_in_floor", "the floor changes deal facts only")
    name = _text(doc["name"], "name") if "name" in doc else None
    account = _text(doc["account_name"], "account_name") if "account_name" in doc else None
    minor, currency = _amount(doc["amount"]) if "amount" in doc else (None, None)
    close = _date(doc["expected_close_date"]) if "expected_close_date" in doc else None
    versions = _if_match(req.headers.get(b"if-match"))
    row = await conn.fetchrow(
        UPDATE_DEAL,
        req.key_hash,
        deal_id,
        versions,
        dt.datetime.now(dt.UTC),
        "name" in doc,
        name,
        "account_name" in doc,
        account,
        "amount" in doc,
        minor,
        currency,
        "expected_close_date" in doc,
        close,
    )
    if row is None:
        await _why_not_updated(conn, req, deal_id, versions)
    assert row is not None
    return 200, [*JSON, _etag(row["version"])], dumps(deal_doc(row, row["external_refs"]))


async def _why_not_updated(
    conn: asyncpg.Connection, req: Request, deal_id: uuid.UUID, versions: list[int] | None
) -> None:
    row = await conn.fetchrow(GET_DEAL, req.key_hash, deal_id)
    if row is None:
        raise Invalid(401, "unauthenticated")
    if row["id"] is None:
        raise Invalid(404, "not_found")
    if versions is not None and row["version"] not in versions:
        raise Invalid(412, "version_conflict", f"The resource is at version {row['version']}; If-Match names another.")
    if row["stage"] in ("closed_won", "closed_lost"):
        raise Invalid(409, "deal_closed")
    raise Invalid(403, "forbidden", "You may see this deal but not change it.")


BATCH_FIELDS = UPDATE_FIELDS | {"source", "external_id"}
GIVEN_BITS = {"name": 1, "account_name": 2, "amount": 4, "expected_close_date": 8, "stage": 16, "owner_id": 32}
BATCH_PROBLEMS = {
    "not_in_floor": (501, "not_in_floor", "The floor updates open deals only, without transfers."),
    "missing_fields": (422, "validation_error", "A new deal needs name, account_name and owner_id."),
    "owner_must_be_seller": (422, "owner_must_be_seller", "The owner must be an active seller."),
}


async def batch_upsert(conn: asyncpg.Connection, req: Request) -> Response:
    doc = _object(req.body)
    records = doc.get("records")
    if set(doc) != {"records"} or not isinstance(records, list) or not 1 <= len(records) <= 500:
        raise _invalid("records must be a list of 1 to 500 records")
    results: list[dict[str, Any] | None] = [None] * len(records)
    columns: list[list[Any]] = [[] for _ in range(13)]
    seen: set[tuple[str, str]] = set()
    for index, record in enumerate(records):
        source = record.get("source") if isinstance(record, dict) else None
        external_id = record.get("external_id") if isinstance(record, dict) else None
        try:
            if not isinstance(record, dict) or not record.keys() <= BATCH_FIELDS:
                raise _invalid("a record is an object of DealBatchRecord's fields")
            if not isinstance(source, str) or not SOURCE.match(source):
                raise _invalid("source is invalid")
            if not isinstance(external_id, str) or len(external_id) > 200 or not EXTERNAL_ID.match(external_id):
                raise _invalid("external_id is invalid")
            if (source, external_id) in seen:
                raise Invalid(501, "not_in_floor", "the floor takes each reference once per batch")
            if record.keys() & {"transfer_reason", "loss"}:
                raise Invalid(501, "not_in_floor", "the floor does not transfer or lose deals")
            minor, currency = _amount(record["amount"]) if "amount" in record else (None, None)
            values = (
                index,
                source,
                external_id,
                uuid7(),
                uuid7(),
                sum(bit for name, bit in GIVEN_BITS.items() if name in record),
                _text(record["name"], "name") if "name" in record else None,
                _text(record["account_name"], "account_name") if "account_name" in record else None,
                minor,
                currency,
                _date(record["expected_close_date"]) if "expected_close_date" in record else None,
                _stage(record["stage"]) if "stage" in record else None,
                _uuid(record["owner_id"], "owner_id") if "owner_id" in record else None,
            )
            if values[11] == "closed_won":
                raise Invalid(501, "not_in_floor", "the floor does not close deals in a batch")
        except Invalid as err:
            results[index] = _batch_error(index, source, external_id, err.status, err.code, err.detail)
            continue
        seen.add((source, external_id))
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    if columns[0]:
        rows = await conn.fetch(BATCH_UPSERT, req.key_hash, *columns, dt.datetime.now(dt.UTC))
        if not rows:
            actor = await conn.fetchrow(ACTOR, req.key_hash)
            if actor is None:
                raise Invalid(401, "unauthenticated")
            raise Invalid(403, "forbidden", "The floor's batch upsert is for organisation-wide keys.")
        for row in rows:
            index, outcome = row["ord"], row["outcome"]
            source, external_id = records[index]["source"], records[index]["external_id"]
            if outcome in BATCH_PROBLEMS:
                results[index] = _batch_error(index, source, external_id, *BATCH_PROBLEMS[outcome])
            else:
                results[index] = {
                    "index": index,
                    "source": source,
                    "external_id": external_id,
                    "outcome": outcome,
                    "deal_id": row["deal_id"],
                    "problem": None,
                }
    elif await conn.fetchval(ACTOR, req.key_hash) is None:
        raise Invalid(401, "unauthenticated")
    return 200, JSON, dumps({"results": results})


def _batch_error(index: int, source: Any, external_id: Any, status: int, code: str, detail: str) -> dict[str, Any]:
    return {
        "index": index,
        "source": source if isinstance(source, str) else None,
        "external_id": external_id if isinstance(external_id, str) else None,
        "outcome": "error",
        "deal_id": None,
        "problem": {"status": status, "code": code, "detail": detail},
    }


Handler = Callable[[asyncpg.Connection, Request], Awaitable[Response]]
ItemHandler = Callable[[asyncpg.Connection, Request, uuid.UUID], Awaitable[Response]]

ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/v1/me"): get_me,
    ("GET", "/v1/deals"): list_deals,
    ("POST", "/v1/deals"): create_deal,
    ("POST", "/v1/deals/batch-upsert"): batch_upsert,
}
DEAL_ROUTES: dict[str, ItemHandler] = {"GET": get_deal, "PATCH": update_deal}
DEAL_PREFIX = "/v1/deals/"


# --- ASGI ----------------------------------------------------------------------------------------

_pool: asyncpg.Pool | None = None


async def _init_connection(conn: asyncpg.Connection) -> None:
    # UUIDs as text both ways: orjson writes str as it is, and asyncpg's own UUID type is not one it knows.
    await conn.set_type_codec("uuid", encoder=str, decoder=str, schema="pg_catalog", format="text")


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
                    init=_init_connection,
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


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


async def _problem(send: Any, err: Invalid, path: str) -> None:
    body = dumps({"status": err.status, "code": err.code, "detail": err.detail, "instance": path})
    await _send(send, err.status, [(b"content-type", b"application/problem+json")], body)


async def _read_body(receive: Any) -> bytes:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path in ("/healthz", "/readyz"):
        await _send(send, 200, JSON, b'{"status":"ok"}')
        return
    handler = ROUTES.get((method, path))
    item: ItemHandler | None = None
    deal_id = NIL
    if handler is None and path.startswith(DEAL_PREFIX) and method in DEAL_ROUTES:
        try:
            deal_id = uuid.UUID(path[len(DEAL_PREFIX) :])
            item = DEAL_ROUTES[method]
        except ValueError:
            pass
    if handler is None and item is None:
        await _problem(send, Invalid(404, "not_found"), path)
        return
    assert _pool is not None
    try:
        req = Request(scope, await _read_body(receive) if method in ("POST", "PATCH") else b"")
        async with _pool.acquire() as conn:
            if item is not None:
                status, headers, body = await item(conn, req, deal_id)
            else:
                assert handler is not None
                status, headers, body = await handler(conn, req)
    except Invalid as err:
        await _problem(send, err, path)
        return
    await _send(send, status, headers, body)
