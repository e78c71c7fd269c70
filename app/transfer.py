"""Moving deals in and data out over the HTTP API (`dealcoach import deals`, `dealcoach export`):
plain clients of the public contract, streaming, so a million-row file keeps memory flat."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

BATCH = 500
IN_FLIGHT = 2  # batches sent at once: a second keeps the server busy while the first is answered
REQUIRED = ("source", "external_id", "name", "account_name", "amount", "currency", "expected_close_date", "stage")
OWNER = ("owner_email", "owner_id")
OPTIONAL = ("loss_reason_code", "competitor")
STAGES = ("prospecting", "qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost")
MAX_CELL = 10_000  # far above any field the API takes (names: 200); a bigger cell is a mistake, not data
ERROR_COLUMNS = ("line", "source", "external_id", "code", "detail")
_AMOUNT = re.compile(r"^\d{1,15}(\.\d{1,4})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class HeaderError(Exception):
    """The file's header is not one the import reads; nothing is sent."""


class ApiError(Exception):
    """The API refused a request as a whole (not one record); the message says what to do."""


@dataclass
class RowError:
    line: int
    source: str
    external_id: str
    code: str
    detail: str


@dataclass
class ImportReport:
    rows: int = 0
    sent: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    replayed: int = 0  # rows of batches the server had already applied: their outcomes are the first answer's
    replayed_batches: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def check_header(header: list[str]) -> list[str]:
    """The columns, in the file's order; a missing, unknown or repeated column is a header error."""
    names = [h.strip() for h in header]
    unknown = [n for n in names if n not in REQUIRED + OWNER + OPTIONAL]
    if unknown:
        raise HeaderError(f"unknown column(s): {', '.join(unknown)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise HeaderError(f"repeated column(s): {', '.join(repeated)}")
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise HeaderError(f"missing column(s): {', '.join(missing)}")
    owners = [n for n in OWNER if n in names]
    if len(owners) != 1:
        raise HeaderError("the header needs exactly one of owner_email or owner_id")
    return names


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _ensure_ok(response: httpx.Response, what: str) -> Any:
    if response.status_code == 401:
        raise ApiError(f"{what}: the API key was refused (401); check --key")
    if response.status_code >= 400:
        try:
            body = response.json()
            detail = f"{body.get('code')}: {body.get('detail')}"
        except ValueError:
            detail = response.text[:200]
        raise ApiError(f"{what}: HTTP {response.status_code} {detail}")
    return response.json()


def pages(client: httpx.Client, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Every page of a listing, following next_cursor."""
    cursor: str | None = None
    while True:
        query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        body = _ensure_ok(_get(client, path, query), f"GET {path}")
        yield body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> httpx.Response:
    for attempt in range(4):
        try:
            return client.get(path, params=params)
        except httpx.TransportError:
            if attempt == 3:
                raise
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def load_members(client: httpx.Client) -> dict[str, tuple[str, str]]:
    """Email (lower case) -> (member id, role), from `GET /v1/members`, every page."""
    found: dict[str, tuple[str, str]] = {}
    for page in pages(client, "/v1/members", {}):
        for m in page:
            found[m["email"].lower()] = (m["id"], m["role"])
    return found


def _row_errors(
    row: dict[str, str], owners: dict[str, tuple[str, str]] | None, seen: set[int]
) -> tuple[dict[str, Any] | None, str, str]:
    """The record to send, or (None, code, detail) when the row is refused here."""
    too_long = next((k for k, v in row.items() if len(v) > MAX_CELL), None)
    if too_long:
        return None, "cell_too_long", f"{too_long} is {len(row[too_long])} characters (at most {MAX_CELL})"
    for name in ("source", "external_id", "name", "account_name"):
        if not row[name].strip():
            return None, "missing_field", f"{name} is empty"
    key = int.from_bytes(hashlib.blake2b(f"{row['source']}\0{row['external_id']}".encode(), digest_size=8).digest())
    if key in seen:
        return None, "duplicate_external_id", f"{row['source']}/{row['external_id']} appears earlier in the file"
    seen.add(key)
    record: dict[str, Any] = {
        "source": row["source"].strip(),
        "external_id": row["external_id"].strip(),
        "name": row["name"].strip(),
        "account_name": row["account_name"].strip(),
    }
    amount, currency = row["amount"].strip(), row["currency"].strip().upper()
    if amount or currency:
        if not _AMOUNT.match(amount) or not _CURRENCY.match(currency):
            return None, "invalid_amount", f"amount {amount!r} {currency!r} is not a decimal and a 3-letter currency"
        record["amount"] = {"amount": amount, "currency": currency}
    day = row["expected_close_date"].strip()
    if day:
        try:
            record["expected_close_date"] = dt.date.fromisoformat(day).isoformat()
        except ValueError:
            return None, "invalid_date", f"expected_close_date {day!r} is not a date (YYYY-MM-DD)"
        if len(day) != 10:
            return None, "invalid_date", f"expected_close_date {day!r} is not a date (YYYY-MM-DD)"
    stage = row["stage"].strip()
    if stage:
        if stage not in STAGES:
            return None, "invalid_stage", f"stage {stage!r} is not one of {', '.join(STAGES)}"
        record["stage"] = stage
    if "owner_email" in row:
        email = row["owner_email"].strip().lower()
        assert owners is not None
        if email not in owners:
            return None, "unknown_owner", f"no member has the email {email!r}"
        owner_id, role = owners[email]
        if role != "seller":
            return None, "owner_must_be_seller", f"{email} is a {role}; deals are owned by sellers"
        record["owner_id"] = owner_id
    else:
        owner_id = row["owner_id"].strip()
        if not _UUID.match(owner_id):
            return None, "unknown_owner", f"owner_id {owner_id!r} is not a member id"
        record["owner_id"] = owner_id
    reason = row.get("loss_reason_code", "").strip()
    if reason:
        record["loss"] = {"reason_code": reason}
        competitor = row.get("competitor", "").strip()
        if competitor:
            record["loss"]["competitor"] = competitor
    return record, "", ""


def batch_body(records: list[dict[str, Any]]) -> bytes:
    """The request body, encoded once: what is sent is what the key is derived from."""
    return json.dumps({"records": records}, ensure_ascii=False, separators=(",", ":")).encode()


def batch_key(file_id: str, number: int, body: bytes) -> str:
    """The same batch of the same file gets the same key: a re-run replays, never repeats."""
    return f"import-{file_id}-{number}-{hashlib.sha256(body).hexdigest()[:32]}"


def file_identity(path: str) -> str:
    """The file by name and size: a re-run of the same file shares its batches' keys."""
    return hashlib.sha256(f"{os.path.basename(path)}\0{os.path.getsize(path)}".encode()).hexdigest()[:16]


def import_deals(
    path: str,
    client: httpx.Client,
    errors_out: IO[str],
    *,
    dry_run: bool,
    progress: Callable[[int], None] = lambda n: None,
    batch_size: int = BATCH,
    in_flight: int = IN_FLIGHT,
) -> ImportReport:
    """Read, check and send the file in batches of ``batch_size`` (500), ``in_flight`` at once;
    answers are taken in the file's order, and rejected rows go to ``errors_out``."""
    if not 1 <= batch_size <= BATCH or in_flight < 1:
        raise ValueError("batch_size is 1..500 and in_flight at least 1")
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="import") as pool:
        return _import_deals(path, client, errors_out, dry_run, progress, batch_size, in_flight, pool)


def _import_deals(
    path: str,
    client: httpx.Client,
    errors_out: IO[str],
    dry_run: bool,
    progress: Callable[[int], None],
    batch_size: int,
    in_flight: int,
    pool: ThreadPoolExecutor,
) -> ImportReport:
    report = ImportReport()
    errors = csv.writer(errors_out)
    errors.writerow(ERROR_COLUMNS)
    csv.field_size_limit(max(MAX_CELL * 2, 64 * 1024 * 1024))  # read a huge cell to refuse it by name
    file_id = file_identity(path)
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise HeaderError("the file is empty") from None
        except csv.Error as exc:
            raise HeaderError(f"the header cannot be read: {exc}") from None
        names = check_header(header)
        owners = load_members(client) if "owner_email" in names else None
        seen: set[int] = set()
        batch: list[tuple[int, dict[str, Any]]] = []
        sending: deque[tuple[int, list[tuple[int, dict[str, Any]]], Future[httpx.Response]]] = deque()
        number = 0

        def answered() -> None:
            """Take the oldest batch's answer (the file's order, whatever order the answers arrive in)."""
            done_number, done_batch, future = sending.popleft()
            _record(future.result(), done_number, done_batch, report, errors)
            progress(len(done_batch))

        def flush() -> None:
            nonlocal number, batch
            if not batch:
                return
            number += 1
            report.sent += len(batch)
            if dry_run:
                progress(len(batch))
            else:
                body = batch_body([r for _, r in batch])
                key = batch_key(file_id, number, body)
                sending.append((number, batch, pool.submit(_post, client, key, body, number, batch[0][0])))
                if len(sending) >= in_flight:
                    answered()
            batch = []

        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                report.rows += 1
                report.failed += 1
                errors.writerow((reader.line_num, "", "", "unreadable_row", str(exc)))
                progress(1)
                continue
            report.rows += 1
            line = reader.line_num
            if not any(c.strip() for c in cells):
                report.rows -= 1
                continue
            if len(cells) != len(names):
                report.failed += 1
                errors.writerow(
                    (line, "", "", "wrong_column_count", f"{len(cells)} cells, the header has {len(names)}")
                )
                progress(1)
                continue
            row = dict(zip(names, cells, strict=True))
            record, code, detail = _row_errors(row, owners, seen)
            if record is None:
                report.failed += 1
                errors.writerow((line, row["source"][:200], row["external_id"][:200], code, detail))
                progress(1)
                continue
            batch.append((line, record))
            if len(batch) == batch_size:
                flush()
        flush()
        while sending:
            answered()
    return report


def _post(client: httpx.Client, key: str, body: bytes, number: int, line: int) -> httpx.Response:
    """Send one batch, retrying with the same key: a batch the server applied is replayed, not repeated."""
    response: httpx.Response | None = None
    waited_for_first = 0.0
    attempt = 0
    while True:
        try:
            response = client.post(
                "/v1/deals/batch-upsert",
                content=body,
                headers={"Idempotency-Key": key, "Content-Type": "application/json"},
            )
        except httpx.TransportError as exc:
            if attempt == 3:
                raise ApiError(
                    f"batch {number} (from line {line}) could not be sent: {exc}; "
                    "run the same command again to resume (batches already applied are not repeated)"
                ) from None
            time.sleep(0.5 * 2**attempt)
            attempt += 1
            continue
        if response.status_code in (429, 502, 503, 504) and attempt < 3:
            time.sleep(0.5 * 2**attempt)
            attempt += 1
            continue
        if (
            response.status_code == 409
            and waited_for_first < IN_PROGRESS_PATIENCE
            and _code(response) == ("idempotency_in_progress")
        ):
            # An earlier run, interrupted, sent this batch and the server is still applying it:
            # wait for that answer, then this request replays it.
            time.sleep(1.0)
            waited_for_first += 1.0
            continue
        return response


IN_PROGRESS_PATIENCE = 90.0  # seconds; the server takes an abandoned request over after 60


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _record(
    response: httpx.Response,
    number: int,
    batch: list[tuple[int, dict[str, Any]]],
    report: ImportReport,
    errors: Any,
) -> None:
    body = _ensure_ok(response, f"batch {number} (from line {batch[0][0]})")
    if response.headers.get("Idempotent-Replayed") == "true":
        report.replayed += len(batch)
        report.replayed_batches += 1
    for result in body["results"]:
        line, record = batch[result["index"]]
        outcome = result["outcome"]
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
        if outcome == "error":
            report.failed += 1
            problem = result.get("problem") or {}
            detail = problem.get("detail", "")
            if problem.get("errors"):
                detail = f"{detail} {json.dumps(problem['errors'])[:500]}"
            errors.writerow((line, record["source"], record["external_id"], problem.get("code", "error"), detail))
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)


# --- export ---------------------------------------------------------------------------------

LISTINGS = {"deals": "/v1/deals", "reviews": "/v1/reviews", "events": "/v1/events"}


def export(
    client: httpx.Client,
    what: str,
    params: dict[str, Any],
    out: IO[str],
    fmt: str,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Write every item of a listing, page by page, as CSV (nested values as JSON) or JSON lines."""
    writer: Any = None
    count = 0
    for page in pages(client, LISTINGS[what], params):
        for item in page:
            if fmt == "jsonl":
                out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
            else:
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(item), extrasaction="ignore", lineterminator="\n")
                    writer.writeheader()
                writer.writerow({k: _cell(v) for k, v in item.items()})
            count += 1
        out.flush()
        progress(len(page))
    return count


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if value is None:
        return ""
    return value


def stdout_text() -> IO[str]:
    return sys.stdout
