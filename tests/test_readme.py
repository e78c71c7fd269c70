"""The README's walkthrough works as written, against a real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.process import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]


def test_readme_names_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text


def _walkthrough() -> str:
    section = (ROOT / "README.md").read_text().split("## Walkthrough", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_readme_says_how_to_serve_on_another_port() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make run PORT=" in text and re.search(r"^PORT\s*\?=", (ROOT / "Makefile").read_text(), re.M)


def test_walkthrough_says_so_when_no_server_answers(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {**os.environ, "BASE": base, "DEALCOACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'walk.db'}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _walkthrough()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert f"No Dealcoach answers at {base}: start it with 'make run'" in done.stderr
    assert not (tmp_path / "walk.db").exists()  # it stopped before bootstrapping anything


def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    script = _walkthrough()
    if shutil.which("curl") is None:
        raise AssertionError("curl is needed for the README walkthrough")
    # The walkthrough calls .venv/bin/dealcoach from the repository root; point it at this venv.
    workdir = tmp_path / "repo"
    (workdir / ".venv").mkdir(parents=True)
    (workdir / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    port = free_port()
    env = {
        **os.environ,
        "DEALCOACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'walk.db'}",
        "DEALCOACH_ACCESS_LOG": "false",
        "DEALCOACH_WEBHOOKS_ALLOW_PRIVATE": "true",  # as `make run` sets it
        "BASE": f"http://127.0.0.1:{port}",
    }
    subprocess.run([str(workdir / ".venv/bin/dealcoach"), "migrate"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(workdir / ".venv/bin/dealcoach"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_ready(env["BASE"])
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert '"role":"seller"' in done.stdout and '"name":"Sam Seller"' in done.stdout
        assert '"organization":{' in done.stdout
    finally:
        server.terminate()
        server.wait(timeout=15)
