"""Redis for the tests: where it is and whether it answers.

DEALCOACH_TEST_REDIS_URL points at a Redis the tests may write to (default 127.0.0.1:6379,
database 15); the keys they write expire within seconds. When Redis is unreachable its tests
are skipped, unless REQUIRE_REDIS=1 makes that a failure.
"""

from __future__ import annotations

import os

import redis

REDIS_URL = os.environ.get("DEALCOACH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_REDIS = os.environ.get("REQUIRE_REDIS") == "1"


def redis_unreachable() -> str | None:
    """Why Redis cannot be used, or None when it can."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (OSError, redis.RedisError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None
