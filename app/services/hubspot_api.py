"""HubSpot's CRM API, as the inbox applier reads deals from it: `GET {api}/crm/v3/objects/deals/{id}
?properties=...` with the integration's private-app `access_token` as a bearer.

A read is tried a few times when HubSpot answers 429 or 5xx or cannot be reached, honouring
`Retry-After` (up to ``max_inline_wait`` seconds; a longer wait is left to the applier, which
tries the event again later). When HubSpot still does not answer, `CrmUnavailable` says when to
try again; the event stays pending, never lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.hubspot import DEAL_PROPERTIES

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
MAX_RETRY_AFTER = 3600.0
RETRIED = frozenset({429, 500, 502, 503, 504})


class CrmUnavailable(Exception):
    """The CRM did not answer (down, rate-limited, refusing the token): try again later."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class DealRead:
    """A deal as HubSpot holds it now: its properties, or None when HubSpot has no such deal."""

    properties: dict[str, Any] | None


class HubSpotClient:
    def __init__(
        self,
        api_url: str,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        max_inline_wait: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.attempts = attempts
        self.backoff = backoff
        self.max_inline_wait = max_inline_wait
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def read_deal(self, deal_id: str, access_token: str) -> DealRead:
        """The deal's current properties (those the inbox applies), retried on 429 and 5xx."""
        url = f"{self.api_url}/crm/v3/objects/deals/{quote(deal_id, safe='')}"
        params = {"properties": ",".join(DEAL_PROPERTIES), "archived": "false"}
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        problem = "HubSpot did not answer"
        retry_after: float | None = None
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(retry_after if retry_after is not None else self.backoff * 2 ** (attempt - 1))
            try:
                response = await self._client.get(url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                problem, retry_after = f"HubSpot could not be reached ({type(exc).__name__})", None
                continue
            if response.status_code == 200:
                return DealRead(_properties(response))
            if response.status_code == 404:
                return DealRead(None)
            problem = f"HubSpot answered {response.status_code} reading deal {deal_id}"
            if response.status_code in (401, 403):
                raise CrmUnavailable(problem + ": check the integration's access_token and its scopes")
            if response.status_code not in RETRIED:
                raise CrmUnavailable(problem)
            retry_after = _retry_after(response.headers.get("retry-after"))
            if retry_after is not None and retry_after > self.max_inline_wait:
                raise CrmUnavailable(problem, retry_after=retry_after)
        raise CrmUnavailable(problem, retry_after=retry_after)


def _properties(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise CrmUnavailable("HubSpot answered a deal that is not JSON") from None
    properties = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(properties, dict):
        raise CrmUnavailable("HubSpot answered a deal without properties")
    return properties


def _retry_after(value: str | None) -> float | None:
    """`Retry-After`: seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds()), MAX_RETRY_AFTER)
