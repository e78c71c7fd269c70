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


def _front_end_guide() -> str:
    """The bash blocks of "Building a front end" from its three screens on, in order: what a reader pastes."""
    section = (ROOT / "README.md").read_text().split("## Building a front end", 1)[1].split("\n## ", 1)[0]
    screens = section.split("**Three screens, and the calls behind them.**", 1)[1]
    blocks = re.findall(r"```bash\n(.*?)```", screens, re.S)
    assert len(blocks) == 4, "a block of keys, then one per screen"
    return "\n".join(blocks)


def test_front_end_guide_runs_as_written_against_the_demo(tmp_path: Path, sqlite_template: Path) -> None:
    """`make demo` then the guide's calls, from the repository root: every call answers 2xx (curl -f)."""
    for tool in ("curl", "jq"):
        assert shutil.which(tool) is not None, f"{tool} is needed for the README's front-end guide"
    workdir = tmp_path / "repo"
    workdir.mkdir()
    database = tmp_path / "demo.db"
    shutil.copyfile(sqlite_template, database)
    port = free_port()
    env = {
        **os.environ,
        "DEALCOACH_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "DEALCOACH_ACCESS_LOG": "false",
        "DEALCOACH_WEBHOOKS_ALLOW_PRIVATE": "true",  # as `make demo` sets it
        "BASE": f"http://127.0.0.1:{port}",
    }
    dealcoach = str(Path(sys.executable).parent / "dealcoach")
    subprocess.run([dealcoach, "demo"], cwd=workdir, env=env, check=True, capture_output=True, timeout=180)
    assert (workdir / "demo-keys.json").exists()
    server = subprocess.Popen(
        [dealcoach, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_ready(env["BASE"])
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _front_end_guide()],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        out = done.stdout
        # The seller's page: tasks, the deal, a suggestion accepted, the strategy written with If-Match, a call planned.
        assert re.search(r"^suggestion\t.+\tSuggestion on ", out, re.M)
        assert re.search(r"^Morgan Manager on \w+: ", out, re.M)
        assert '"owner": "Lucas Moreau"' in out and '"status": "accepted"' in out
        assert '"Procurement steps not mapped yet"' in out
        assert "\tLucas Moreau (lead), Morgan Manager (" in out
        assert re.search(r"^\d+\tsuggestion\.accepted\tLucas Moreau$", out, re.M)
        assert re.search(r"^\d+\tstrategy\.updated\tLucas Moreau\n\d+\tcall\.created\tLucas Moreau$", out, re.M)
        # The manager's dashboard: only his line's sellers, and the brief of the call just planned.
        assert re.search(r"^Sam Seller\t\d+ open deals$", out, re.M) and "Kofi Mensah" not in out
        assert '"calls_attended": ' in out and '"seller": "Lucas Moreau"' in out
        # The weekly meeting: both reviewers' losses, a review, a note, the patterns and the feedback.
        assert re.search(r"^\d{4}-W\d\d Morgan Manager: \d+ pending, \d+ completed", out, re.M)
        assert re.search(r"^\d{4}-W\d\d Jonas Berg: ", out, re.M)
        assert '"note": "Good review: bring the lesson to the next team meeting."' in out
        assert re.search(r"^\w+\t\d+ lost\treviewed: \d+%$", out, re.M)
        assert re.search(r"^\w+\tThe buyer wanted an ERP connector out of the box$", out, re.M)
        assert re.search(r"^\w+\tA playbook for reaching the economic buyer before the proposal$", out, re.M)
    finally:
        server.terminate()
        server.wait(timeout=15)
