"""The SDK generated from openapi/openapi.json (`make sdk`) drives a real flow against a real server."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.process import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def python_client(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Generates the client as `make sdk` does (warnings fail it), in the background while the server starts."""
    proc = subprocess.Popen(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(ROOT / "openapi" / "openapi.json"),
            "--config",
            str(ROOT / "openapi" / "python-client.yaml"),
            "--output-path",
            str(tmp_path / "python"),
            "--meta",
            "setup",
            "--fail-on-warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real `dealcoach serve` on loopback over SQLite; yields (base URL, an admin key)."""
    port = free_port()
    env = {
        **os.environ,
        "DEALCOACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'sdk.db'}",
        "DEALCOACH_ACCESS_LOG": "false",
    }
    cli = str(BIN / "dealcoach")
    subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
    boot = subprocess.run(
        [cli, "bootstrap", "--org", "Acme", "--admin-email", "ada@acme.example", "--admin-name", "Ada Admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    admin_key = json.loads(boot.stdout)["api_key"]
    proc = subprocess.Popen(
        [cli, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base)
        yield base, admin_key
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_generated_python_client_drives_a_deal_from_strategy_to_review(
    tmp_path: Path, python_client: subprocess.Popen[str], server: tuple[str, str]
) -> None:
    output, _ = python_client.communicate(timeout=120)
    assert python_client.returncode == 0, output
    sys.path.insert(0, str(tmp_path / "python"))
    try:
        _flow(*server)
    finally:
        sys.path.remove(str(tmp_path / "python"))
        for name in [n for n in sys.modules if n == "dealcoach_client" or n.startswith("dealcoach_client.")]:
            del sys.modules[name]


def _flow(base: str, admin_key: str) -> None:
    sdk: Any = importlib.import_module("dealcoach_client")
    models: Any = importlib.import_module("dealcoach_client.models")

    def as_(key: str) -> Any:
        return sdk.AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)

    admin = as_(admin_key)
    members = importlib.import_module("dealcoach_client.api.members.create_member")
    manager = members.sync(
        client=admin,
        body=models.MemberCreate(name="Mia Manager", email="mia@acme.example", role=models.MemberRole.MANAGER),
    )
    assert isinstance(manager, models.MemberPublic), manager
    seller = members.sync(
        client=admin,
        body=models.MemberCreate(
            name="Sam Seller", email="sam@acme.example", role=models.MemberRole.SELLER, manager_id=manager.id
        ),
    )
    assert isinstance(seller, models.MemberPublic), seller

    create_key = importlib.import_module("dealcoach_client.api.api_keys.create_api_key")
    keys = {}
    for who in (manager, seller):
        made = create_key.sync(member_id=who.id, client=admin, body=models.ApiKeyCreate(label="sdk"))
        assert isinstance(made, models.ApiKeyCreated), made
        keys[who.role] = made.api_key
    as_seller, as_manager = as_(keys[models.MemberRole.SELLER]), as_(keys[models.MemberRole.MANAGER])

    deal = importlib.import_module("dealcoach_client.api.deals.create_deal").sync(
        client=as_seller, body=models.DealCreate(name="Globex renewal", account_name="Globex", owner_id=seller.id)
    )
    assert isinstance(deal, models.DealPublic), deal

    put_strategy = importlib.import_module("dealcoach_client.api.strategy.put_strategy")
    mine = put_strategy.sync(
        deal_id=deal.id,
        client=as_seller,
        if_match='"0"',
        body=models.StrategyUpdate(customer_objectives="Cut onboarding time in half", risks=["Budget freeze"]),
    )
    assert isinstance(mine, models.StrategyPublic), mine
    assert mine.customer_objectives == "Cut onboarding time in half"

    refused = put_strategy.sync_detailed(
        deal_id=deal.id, client=as_manager, if_match="*", body=models.StrategyUpdate(competition="Initech")
    )
    assert refused.status_code == 403
    assert isinstance(refused.parsed, models.PutStrategyResponse403), refused.parsed
    assert refused.parsed.code == models.PutStrategyResponse403Code.STRATEGY_OWNED_BY_SELLER
    assert refused.parsed.code.value == "strategy_owned_by_seller"

    lost = importlib.import_module("dealcoach_client.api.deals.update_deal").sync(
        deal_id=deal.id,
        client=as_seller,
        body=models.DealUpdate(
            stage=models.Stage.CLOSED_LOST, loss=models.Loss(reason_code="price", competitor="Initech")
        ),
    )
    assert isinstance(lost, models.DealPublic), lost
    assert lost.stage == models.Stage.CLOSED_LOST and lost.review_id is not None

    review = importlib.import_module("dealcoach_client.api.closed_lost_reviews.get_review").sync(
        review_id=lost.review_id, client=as_seller
    )
    assert isinstance(review, models.ReviewPublic), review
    assert review.id == lost.review_id and review.deal_id == deal.id


@pytest.mark.skipif(
    shutil.which("npm") is None and not os.environ.get("REQUIRE_NPM"), reason="npm is missing (CI sets REQUIRE_NPM=1)"
)
def test_typescript_example_compiles_strictly_against_the_generated_types(tmp_path: Path) -> None:
    tools = ROOT / "openapi" / "typescript"
    for name in ("package.json", "package-lock.json", "example.ts"):
        shutil.copy(tools / name, tmp_path / name)
    npm = shutil.which("npm") or "npm"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    bin_ = tmp_path / "node_modules" / ".bin"
    subprocess.run(
        [str(bin_ / "openapi-typescript"), str(ROOT / "openapi" / "openapi.json"), "-o", "schema.d.ts"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    done = subprocess.run(
        [str(bin_ / "tsc"), "--noEmit", "--strict", "--module", "nodenext", "--target", "es2022", "example.ts"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
