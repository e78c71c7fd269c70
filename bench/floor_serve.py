"""Serve the floor (bench/baseline.py) as `dealcoach serve --workers N` serves Dealcoach: uvicorn's
workers, each listening on a socket of its own (app/serving.py), so the two are compared on the
same serving and the ratios measure what each app does with a request.

    python bench/floor_serve.py --host 127.0.0.1 --port 8001 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import uvicorn

from app.serving import OwnSocketWorkers, balanced_sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    options = {"host": args.host, "port": args.port, "workers": args.workers, "log_level": "warning"}
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # baseline.py; the workers inherit the path
    config = uvicorn.Config(
        "baseline:app",
        access_log=False,
        server_header=False,
        **options,
    )
    if args.workers == 1:
        uvicorn.Server(config).run()
        return
    with contextlib.suppress(KeyboardInterrupt):
        OwnSocketWorkers(config, balanced_sockets(config, args.workers)).run()


if __name__ == "__main__":
    main()
