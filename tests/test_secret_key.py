"""DEALCOACH_SECRET_KEY seals cursors; its development default is fine on a laptop (SQLite) and
warned about at startup on PostgreSQL, where a deployment would run."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from app.main import create_app
from app.settings import Settings

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/not_connected"


async def _start(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass


@pytest.mark.parametrize(
    ("url", "secret", "warned"),
    [
        (PG, None, True),
        (PG, "a long random production secret", False),
        ("sqlite+aiosqlite:///:memory:", None, False),
    ],
)
async def test_the_development_secret_is_warned_about_on_postgresql(
    capsys: pytest.CaptureFixture[str], url: str, secret: str | None, warned: bool
) -> None:
    settings = Settings(database_url=url, log_level="WARNING", access_log=False)
    if secret is not None:
        settings = Settings(database_url=url, log_level="WARNING", access_log=False, secret_key=SecretStr(secret))
    assert settings.uses_development_secret_key is (secret is None)
    await _start(settings)
    assert ("DEALCOACH_SECRET_KEY" in capsys.readouterr().err) is warned


def test_the_secret_comes_from_the_environment_and_is_not_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALCOACH_SECRET_KEY", "from the environment, long enough")
    assert Settings().secret_key.get_secret_value() == "from the environment, long enough"
    assert "from the environment" not in repr(Settings())
    monkeypatch.setenv("DEALCOACH_SECRET_KEY", "short")
    with pytest.raises(ValidationError):
        Settings()
