"""Service configuration; the only place that reads the environment."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Good enough for a laptop, never for a deployment: anyone who reads this file can forge cursors.
DEVELOPMENT_SECRET_KEY = "dealcoach-development-secret-key-not-for-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALCOACH_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./dealcoach.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
    )
    # Connections the pool opens as requests need them and keeps. Overflow connections beyond it
    # are closed when returned: under load that is a new connection per request (325-525 in 10 s
    # at 64 concurrent requests on two workers, and a p99 five times as long), so by default the
    # pool is as large as the cap and nothing overflows.
    db_pool_size: int = Field(default=30, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    db_pool_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request may queue for a pooled connection under load"
    )
    db_connect_timeout: float = Field(
        default=2.0, gt=0, description="Seconds to wait for a database connection before answering 503"
    )
    db_statement_timeout: float = Field(default=30.0, gt=0, description="Seconds a query may run")
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    idempotency_lock_seconds: int = Field(
        default=60, ge=1, description="After this long an unfinished idempotent request may be retried"
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="A request body over this many bytes answers 413 payload_too_large"
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET_KEY),
        min_length=16,
        description="Seals pagination cursors (HMAC); the same on every worker and instance",
    )
    webhooks_dispatcher: Literal["on", "off"] = Field(
        default="on", description="Run a webhook dispatcher inside each `dealcoach serve` worker"
    )
    webhooks_allow_private: bool = Field(
        default=False, description="Allow http and private/loopback webhook URLs (development and tests only)"
    )
    webhooks_retry_schedule: str | None = Field(
        default=None, description="Comma-separated seconds between attempts; replaces the default schedule"
    )
    webhooks_poll_interval: float = Field(default=0.25, gt=0, le=60)
    webhooks_attempt_timeout: float = Field(default=15.0, gt=0, le=60, description="Seconds a receiver has to answer")
    webhooks_lease_margin: float = Field(
        default=30.0, gt=0, description="Seconds past the timeout before an unfinished attempt is tried again"
    )
    webhooks_max_in_flight: int = Field(default=32, ge=1, le=1000)
    webhooks_prune_after_days: int = Field(default=30, ge=1, description="Succeeded deliveries are kept this long")
    inbox_applier: Literal["on", "off"] = Field(
        default="on", description="Apply CRM events from the inbox inside each `dealcoach serve` worker"
    )
    inbox_poll_interval: float = Field(default=0.25, gt=0, le=60)
    hubspot_api_url: str = Field(
        default="https://api.hubapi.com",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="HubSpot's API, where the inbox applier reads the deals HubSpot's webhooks name",
    )
    trust_forwarded_headers: bool = Field(
        default=False,
        description="Behind a proxy: take the request's scheme and host from X-Forwarded-Proto and "
        "X-Forwarded-Host (the URI HubSpot signs); only when the proxy sets them",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True
    rate_limit_per_second: int = Field(
        default=50, ge=0, description="Sustained requests a second per API key (or client address); 0 turns limits off"
    )
    rate_limit_burst: int = Field(default=100, ge=1, description="Requests a client that kept quiet may send at once")
    rate_limit_inbound_per_second: int = Field(
        default=500, ge=1, description="CRM webhooks in: sustained requests a second per sending address (own budget)"
    )
    rate_limit_inbound_burst: int = Field(
        default=1000, ge=1, description="CRM webhooks in: requests a sending address that kept quiet may send at once"
    )
    rate_limit_storage_url: str | None = Field(
        default=None,
        pattern=r"^(redis|rediss|unix)://",
        description="redis://host:6379/0 shares the budgets between workers and instances; unset: each worker's memory",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins (https://app.example.com) whose pages may call the API from a browser; "
        "`*` for any; empty: no cross-origin access",
    )
    oidc_allow_insecure: bool = Field(
        default=False, description="Allow http identity providers (`oidc_issuer`): development and tests only"
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        # A browser sends `Origin: https://app.example.com` (no path, no trailing slash): anything
        # else would never match, silently.
        for origin in origins:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            parts.port  # noqa: B018  # a port that is not a number raises ValueError: refused
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.username is not None
                or origin != f"{parts.scheme}://{parts.netloc}"
            ):
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], without a path")
        return origins

    @property
    def uses_development_secret_key(self) -> bool:
        return self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
