"""The README's "How a seller gets better here" runs as written, after the walkthrough it continues."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.process import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]


def _first_block(text: str, heading: str) -> str:
    return re.search(r"```bash\n(.*?)```", text.split(heading, 1)[1], re.S).group(1)


def test_the_learning_loop_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    script = _first_block(text, "## Walkthrough") + _first_block(text, "## How a seller gets better here")
    assert shutil.which("curl") is not None, "curl is needed for the README walkthrough"
    workdir = tmp_path / "repo"
    (workdir / ".venv").mkdir(parents=True)
    (workdir / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    port = free_port()
    env = {
        **os.environ,
        "DEALCOACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'walk.db'}",
        "DEALCOACH_ACCESS_LOG": "false",
        "DEALCOACH_WEBHOOKS_ALLOW_PRIVATE": "true",  # as `make run` sets it (the walkthrough's step 5)
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
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        documents = [json.loads(line) for line in re.sub(r"\}\{", "}\n{", done.stdout).splitlines()[1:]]
        completed, brief, profile, team = documents
        assert completed["status"] == "done" and completed["note"] == "Did it on the Initech call"
        assert [c["text"] for c in brief["open_commitments"]][0] == "Role-play the price talk"
        assert [f["skill_code"] for f in brief["focus_skills"]] == ["negotiation"]
        assert brief["last_observation"]["summary"] == "Strong discovery; the price came too early"
        negotiation = {s["skill_code"]: s for s in profile["skills"]}["negotiation"]
        assert (negotiation["improvements"], negotiation["loss_gaps"], negotiation["trend"]) == (1, 1, "new")
        assert profile["commitments"] == {"open": 2, "done": 1, "dropped": 0, "overdue": 0}
        assert team["totals"][0]["skill_code"] == "negotiation"
    finally:
        server.terminate()
        server.wait(timeout=15)
