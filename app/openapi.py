"""Write the generated OpenAPI document: `python -m app.openapi openapi/openapi.json`."""

from __future__ import annotations

import json
import sys
from typing import Any

from app.main import create_app
from app.settings import Settings


def generate() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "openapi/openapi.json"
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(render())
