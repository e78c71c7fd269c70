"""How `dealcoach serve` runs several workers: uvicorn's supervisor, each worker listening on a socket
of its own.

With one listening socket shared by every worker, the worker that is awake when connections arrive
accepts all that are waiting: 64 connections opened at once by a load generator landed 56 on one
worker and 8 on the other, and clients that keep their connections (SDKs, load balancers, a CRM's
sync) keep such a split for as long as they run, so one worker queues requests while the other
idles. Sockets bound to one address with SO_REUSEPORT each get their share of new connections from
the kernel (spread by a hash of each connection), whichever worker is awake. Where the platform
has no SO_REUSEPORT the workers share one socket, as uvicorn does.
"""

from __future__ import annotations

import logging
import socket

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

__all__ = ["OwnSocketWorkers", "balanced_sockets"]

log = logging.getLogger("uvicorn.error")  # where uvicorn's supervisor says the same things


def balanced_sockets(config: Config, workers: int) -> list[socket.socket]:
    """One listening address for ``workers`` workers: a socket each (SO_REUSEPORT), or one shared.

    The address is first bound without SO_REUSEPORT, so a port another server holds (even one
    that bound it with SO_REUSEPORT as this does) is refused as in use instead of being shared
    with it; port 0 gives every socket the port the first one got."""
    if not hasattr(socket, "SO_REUSEPORT") or config.uds is not None or config.fd is not None:
        return [config.bind_socket()]
    family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((config.host, config.port))  # OSError (address in use) when another server has it
        port = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sock = socket.socket(family)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((config.host, port))
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class OwnSocketWorkers(Multiprocess):
    """uvicorn's supervisor (health checks, restarts, signals) where the i-th worker, and every
    worker started in its place, listens on the i-th socket only. With one socket, every worker
    listens on it."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.own = sockets if len(sockets) == config.workers else [sockets[0]] * config.workers

    def init_processes(self) -> None:
        for index in range(self.processes_num):
            process = Process(self.config, [self.own[index]])
            process.start()
            self.processes.append(process)

    def restart_all(self) -> None:
        """Each worker replaced in turn, its replacement serving (on its socket) before it stops."""
        for index, old_process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new_process = Process(self.config, [self.own[index]])
            new_process.start()
            if not new_process.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new_process.kill()
                new_process.join()
                if not self.should_exit.is_set():
                    log.error(
                        "New child process [%s] was not ready in time; keeping worker [%s] and aborting the restart.",
                        new_process.pid,
                        old_process.pid,
                    )
                return
            old_process.terminate()
            old_process.join()
            self.processes[index] = new_process

    def keep_subprocess_alive(self) -> None:
        """A worker that died or hangs is replaced on its socket; one that failed to start stops all."""
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # The app or its socket is broken: it would fail the same way on every restart.
                log.error("Child process [%s] failed to start, stopping the parent process.", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("Child process [%s] died", process.pid)
            replacement = Process(self.config, [self.own[index]])
            replacement.start()
            self.processes[index] = replacement
